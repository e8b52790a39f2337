#include "runtime/request_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <list>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/libcr/request_protocol.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/files.h"

extern char** environ;

namespace crbox::runtime {

namespace {

constexpr auto kClientTime = std::chrono::seconds(10);  // to send the request, and to hang up after the answer
// At most this many connections and jobs at once: the listener is not polled while there are as
// many (further connections wait in its backlog, then are refused by the kernel).
constexpr size_t kMaxJobs = 16;
// How long the listener is left alone after accept(2) ran out of descriptors (EMFILE, ENFILE...),
// so that a full table does not make the poll loop spin.
constexpr auto kAcceptPause = std::chrono::seconds(1);
// How long a requester may keep its own descriptor of the destination before the checkpoint starts
// anyway (see settled()).
constexpr auto kSettleTime = std::chrono::seconds(1);

sockaddr_un socket_address() {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, CRBOX_LIBCR_SOCKET_PATH, sizeof a.sun_path - 1);
  return a;
}

// The NSpid / NSpgid / NSsid line of /proc/PID/status (proc(5)): the ids in each pid namespace
// from the one of our /proc inward. Empty when the process is gone.
std::vector<pid_t> ns_ids(pid_t pid, const char* key) {
  auto text = try_read_file("/proc/" + std::to_string(pid) + "/status");
  std::vector<pid_t> out;
  if (!text) return out;
  std::string k = std::string("\n") + key + ":";
  auto at = ("\n" + *text).find(k);
  if (at == std::string::npos) return out;
  auto start = at + k.size() - 1;  // the text lacks the leading '\n' we added
  std::istringstream line(text->substr(start, text->find('\n', start) - start));
  pid_t v;
  while (line >> v) out.push_back(v);
  return out;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto text = try_read_file(tasks + "/" + e->d_name + "/children");
    if (!text) continue;
    std::istringstream in(*text);
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  ::closedir(d);
  return out;
}

std::optional<ino_t> pid_ns_of(pid_t pid) {
  struct stat st{};
  if (::stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

// The credentials of a task, from its /proc/.../status (proc(5)): real, effective, saved and
// filesystem uid and gid, supplementary groups, permitted and effective capabilities.
struct Creds {
  uid_t uid[4] = {};
  gid_t gid[4] = {};
  std::vector<gid_t> groups;
  uint64_t cap_prm = 0, cap_eff = 0;
};

std::optional<Creds> creds_at(const std::string& status_path) {
  auto text = try_read_file(status_path);
  if (!text) return std::nullopt;
  Creds c;
  int found = 0;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::istringstream v(line.substr(colon + 1));
    if (key == "Uid") {
      for (auto& u : c.uid) v >> u;
      found += v ? 1 : 0;
    } else if (key == "Gid") {
      for (auto& g : c.gid) v >> g;
      found += v ? 1 : 0;
    } else if (key == "Groups") {
      gid_t g;
      while (v >> g) c.groups.push_back(g);
    } else if (key == "CapPrm") {
      v >> std::hex >> c.cap_prm;
      found += v ? 1 : 0;
    } else if (key == "CapEff") {
      v >> std::hex >> c.cap_eff;
      found += v ? 1 : 0;
    }
  }
  if (found != 4) return std::nullopt;
  return c;
}

// The rule a request must pass (the one ptrace(2) applies, "Ptrace access mode checking", for
// PTRACE_MODE_ATTACH_REALCREDS, minus the dumpable flag and the LSMs): a sandbox's checkpoint takes
// every process of it, their memory included, and may signal them (--signal), so the requester
// must be one that could ptrace each of them itself. Either it is uid 0 with CAP_SYS_PTRACE in its
// effective set (the sandbox has no user namespace of its own: the kernel would check the
// capability in the one that all its processes share), or every thread of every process of the
// sandbox but its init (which crbox runs, and which the requester cannot reach anyway) has real,
// effective and saved uid and gid equal to the requester's real uid and gid, and a permitted
// capability set within the requester's. A process that changes its credentials after the check
// is caught by a second check right before cr_checkpoint starts; one that changes them while
// cr_checkpoint runs is not.
bool may_take_sandbox(const Creds& who, pid_t init) {
  if (who.uid[1] == 0 && (who.cap_eff & (uint64_t{1} << CAP_SYS_PTRACE))) return true;
  std::vector<pid_t> queue = children_of(init);
  for (size_t i = 0; i < queue.size(); i++) {
    pid_t p = queue[i];
    std::string tasks = "/proc/" + std::to_string(p) + "/task";
    DIR* d = ::opendir(tasks.c_str());
    if (!d) continue;  // gone
    bool ok = true;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      auto c = creds_at(tasks + "/" + e->d_name + "/status");
      if (!c) continue;  // a thread that ended meanwhile
      for (int k = 0; k < 3; k++) ok = ok && c->uid[k] == who.uid[0] && c->gid[k] == who.gid[0];
      ok = ok && (c->cap_prm & ~who.cap_prm) == 0;
      if (!ok) break;
    }
    ::closedir(d);
    if (!ok) return false;
    for (pid_t c : children_of(p)) queue.push_back(c);
  }
  return true;
}

// The server thread's filesystem ids and supplementary groups switched to a requester's for as
// long as this lives: files it opens or creates meanwhile are checked by the kernel as the
// requester's (mode bits, sticky directories, ACLs, groups: path_resolution(7)) and owned by it.
// Raw system calls on purpose: setfsuid(2), setfsgid(2) and setgroups(2) change the calling thread
// only, where glibc's setgroups() would change every thread of the launcher. Going back to
// fsuid 0 gives the thread back the capabilities the change took from its effective set
// (capabilities(7), "Effect of user ID changes on capabilities").
class AsRequester {
 public:
  AsRequester(uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
    int n = ::getgroups(0, nullptr);
    if (n >= 0) {
      saved_groups_.resize(static_cast<size_t>(n));
      n = ::getgroups(n, saved_groups_.data());
    }
    saved_uid_ = static_cast<uid_t>(::syscall(SYS_setfsuid, -1));
    saved_gid_ = static_cast<gid_t>(::syscall(SYS_setfsgid, -1));
    ok_ = n >= 0 && ::syscall(SYS_setgroups, groups.size(), groups.data()) == 0;
    ::syscall(SYS_setfsgid, gid);
    ::syscall(SYS_setfsuid, uid);
    // setfsuid(2) reports no failure: read the ids back.
    ok_ = ok_ && static_cast<uid_t>(::syscall(SYS_setfsuid, -1)) == uid &&
          static_cast<gid_t>(::syscall(SYS_setfsgid, -1)) == gid;
  }
  ~AsRequester() {
    ::syscall(SYS_setfsuid, saved_uid_);
    ::syscall(SYS_setfsgid, saved_gid_);
    ::syscall(SYS_setgroups, saved_groups_.size(), saved_groups_.data());
  }
  AsRequester(const AsRequester&) = delete;
  AsRequester& operator=(const AsRequester&) = delete;
  bool ok() const { return ok_; }

 private:
  std::vector<gid_t> saved_groups_;
  uid_t saved_uid_ = 0;
  gid_t saved_gid_ = 0;
  bool ok_ = false;
};

// cr_checkpoint: $CRBOX_CR_CHECKPOINT, else next to this program (cr_run and cr_restart are
// installed, and built, beside it), else in $PATH.
std::string find_cr_checkpoint() {
  const char* env = std::getenv("CRBOX_CR_CHECKPOINT");
  if (env && *env && ::access(env, X_OK) == 0) return env;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = 0;
    std::string dir(self);
    dir.erase(dir.rfind('/') + 1);
    if (::access((dir + "cr_checkpoint").c_str(), X_OK) == 0) return dir + "cr_checkpoint";
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (!d.empty() && ::access((d + "/cr_checkpoint").c_str(), X_OK) == 0) return d + "/cr_checkpoint";
  }
  return "";
}

bool valid_dest_name(const char* name, size_t cap) {
  size_t len = strnlen(name, cap);
  if (len == cap || len <= 8 || std::strncmp(name, "context.", 8) != 0) return false;
  for (size_t i = 8; i < len; i++)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

// Whether `pid` has a descriptor open on the file `fd` is open on (same device and inode).
bool holds_file_of(pid_t pid, int fd) {
  struct stat want{};
  if (::fstat(fd, &want) != 0) return false;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    struct stat st{};
    if (::stat((dir + "/" + e->d_name).c_str(), &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}

}  // namespace

UniqueFd make_request_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("cannot make the socket for libcr's requests");
  return fd;
}

void bind_request_socket(int fd) noexcept {
  sockaddr_un a = socket_address();
  ::unlink(a.sun_path);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    ::chmod(a.sun_path, 0666);  // connect(2) needs write permission on the socket file (unix(7))
    ::listen(fd, 16);
  }
  ::close(fd);
}

namespace {

// The requester's status page, mapped by the server for as long as the job lives.
struct StatusPage {
  crbox_req_status* at = nullptr;
  StatusPage() = default;
  StatusPage(StatusPage&& o) noexcept : at(std::exchange(o.at, nullptr)) {}
  StatusPage& operator=(StatusPage&&) = delete;
  ~StatusPage() {
    if (at) ::munmap(at, sizeof *at);
  }
};

// One request, from its connection to the end of its cr_checkpoint.
struct Job {
  UniqueFd conn;
  std::chrono::steady_clock::time_point deadline;
  bool accepted = false;  // answered; waiting for the requester to hang up
  bool settling = false;  // hung up; waiting for it to close its own descriptor of the destination
  std::chrono::steady_clock::time_point settle_until;
  UniqueFd status, log, dest;
  StatusPage page;       // the status memfd, mapped once checked (prepare)
  std::string dest_name;  // CR_DEST_CWD: the bundle's name in the directory `dir`
  UniqueFd dir;           // CR_DEST_CWD: the requester's directory (dest is then the temporary file)
  std::string tmp_name;   // CR_DEST_CWD: the temporary file, made as the requester, renamed when done
  pid_t requester = 0;  // host pid
  Creds creds;          // the requester's, when it asked
  pid_t target = 0;     // host pid
  UniqueFd target_pidfd;
  std::string tool;               // cr_checkpoint's path
  std::vector<std::string> args;  // its arguments
  pid_t child = -1;
  UniqueFd pidfd;
};

}  // namespace

struct RequestServer::State {
  UniqueFd listener;
  std::chrono::steady_clock::time_point accept_paused_until{};
  pid_t init = 0;
  ino_t ns = 0;        // the sandbox's pid namespace
  size_t level = 0;    // its index in an NSpid line read from our /proc
  UniqueFd wake_read, wake_write;
  std::list<Job> jobs;
  std::thread thread;

  void run();
  void on_readable(Job& j);
  int prepare(Job& j, const crbox_req_msg& m);
  pid_t host_pid_of(int32_t scope, int32_t target);
  bool settled(Job& j, std::chrono::steady_clock::time_point now);
  void start(Job& j);
  void finish(Job& j, int wait_status, const std::string& why = "");
  void end_with(Job& j, int code, const std::string& why);
  void remove_tmp(Job& j);
  bool ready_to_start(Job& j);
  void guarded(Job& j, const char* what, void (State::*step)(Job&));
  void step_readable(Job& j) { on_readable(j); }
  void step_reap(Job& j);
};

// The host pid of the process (scope 0, 3) or of a member of the group or session (1, 2) that the
// sandbox numbers `target`; 0 when the sandbox holds none. Inside a sandbox every scope takes the
// whole sandbox (cr_checkpoint does so for any of its pids), so one member stands for a group.
pid_t RequestServer::State::host_pid_of(int32_t scope, int32_t target) {
  if (target == 1 && (scope == 0 || scope == 3)) return init;  // cr_checkpoint refuses it, saying why
  const char* key = scope == 1 ? "NSpgid" : scope == 2 ? "NSsid" : "NSpid";
  std::vector<pid_t> queue = children_of(init);
  for (size_t i = 0; i < queue.size(); i++) {
    pid_t p = queue[i];
    auto ids = ns_ids(p, key);
    if (ids.size() > level && ids[level] == target && pid_ns_of(p) == ns) return p;
    for (pid_t c : children_of(p)) queue.push_back(c);
  }
  return 0;
}

// Checks the request and builds cr_checkpoint's arguments: 0, or the errno to answer.
int RequestServer::State::prepare(Job& j, const crbox_req_msg& m) {
  if (m.magic != CRBOX_REQ_MAGIC || m.version != CRBOX_REQ_VERSION) return EPROTO;
  if (m.scope < 0 || m.scope > 3 || m.target <= 0 || m.signal < 0 || m.signal > 64 || m.time_s < 0) return EINVAL;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(j.conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) return EPERM;
  // The requester must live in this sandbox's pid namespace itself (not outside, not deeper).
  if (pid_ns_of(cred.pid) != ns || ns_ids(cred.pid, "NSpid").size() != level + 1) return EPERM;
  j.requester = cred.pid;
  auto creds = creds_at("/proc/" + std::to_string(cred.pid) + "/status");
  if (!creds) return ESRCH;
  j.creds = *creds;
  if (!j.status || !j.log || !j.dest) return EBADF;
  // The status page is written by this thread: a memfd that could be shrunk under the mapping
  // would kill the launcher with SIGBUS (mmap(2)). So only a memfd sealed against shrinking
  // (fcntl(2) F_ADD_SEALS, F_SEAL_SHRINK; only memfds take seals) and at least one status long.
  int seals = ::fcntl(j.status.get(), F_GET_SEALS);
  struct stat st{};
  if (seals < 0 || !(seals & F_SEAL_SHRINK) || ::fstat(j.status.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size < static_cast<off_t>(sizeof(crbox_req_status)))
    return EINVAL;
  void* at = ::mmap(nullptr, sizeof(crbox_req_status), PROT_READ | PROT_WRITE, MAP_SHARED, j.status.get(), 0);
  if (at == MAP_FAILED) return EINVAL;  // e.g. sealed against writing
  j.page.at = static_cast<crbox_req_status*>(at);
  if (!may_take_sandbox(j.creds, init)) return EPERM;
  if (m.dest_name[0]) {
    if (!valid_dest_name(m.dest_name, sizeof m.dest_name)) return EINVAL;
    struct stat dst{};
    if (::fstat(j.dest.get(), &dst) != 0 || !S_ISDIR(dst.st_mode)) return ENOTDIR;
    j.dest_name = m.dest_name;
    j.dir = std::move(j.dest);
    // The bundle goes into a temporary file that the requester itself makes (the kernel checks
    // its permission in the directory, and it owns the file: no chown later), renamed over
    // context.N as the requester once cr_checkpoint succeeded: atomic as cr_checkpoint's own.
    static unsigned serial = 0;
    std::string tmp = j.dest_name + ".crbox-tmp." + std::to_string(::getpid()) + "." + std::to_string(++serial);
    int fd = -1, err = 0;
    {
      AsRequester as(j.creds.uid[3], j.creds.gid[3], j.creds.groups);
      if (!as.ok()) return EPERM;
      fd = ::openat(j.dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      err = errno;
    }
    if (fd < 0) return err;
    j.dest.reset(fd);
    j.tmp_name = tmp;
  } else {
    int fl = ::fcntl(j.dest.get(), F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH)) return EBADF;
  }
  pid_t host = host_pid_of(m.scope, m.target);
  if (host <= 0) return ESRCH;
  // The target is found by host pid now but checkpointed later (after the settling, behind other
  // jobs): a pidfd (pidfd_open(2)) tells then whether it is still this process.
  j.target = host;
  j.target_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, host, 0)));
  if (!j.target_pidfd) return ESRCH;
  j.tool = find_cr_checkpoint();
  if (j.tool.empty()) return ENOENT;  // as libcr says when it finds no cr_checkpoint itself
  static const char* const scopes[] = {"--pid", "--tree", "--tree", "--tree"};
  j.args.push_back(scopes[m.scope]);
  if (m.time_s) {
    j.args.push_back("--time");
    j.args.push_back(std::to_string(m.time_s));
  }
  if (m.signal) {
    j.args.push_back("--signal");
    j.args.push_back(std::to_string(m.signal));
  }
  if (m.flags & CRBOX_REQ_PTRACED_ALLOW) j.args.push_back("--ptraced-allow");
  if (m.flags & CRBOX_REQ_PTRACED_SKIP) j.args.push_back("--ptraced-skip");
  if (m.flags & CRBOX_REQ_PTRACER_SKIP) j.args.push_back("--ptracer-skip");
  if (m.flags & CRBOX_REQ_DUMP_EXEC) j.args.push_back("--save-exe");
  if (m.flags & CRBOX_REQ_DUMP_PRIVATE) j.args.push_back("--save-private");
  if (m.flags & CRBOX_REQ_DUMP_SHARED) j.args.push_back("--save-shared");
  j.args.push_back(std::to_string(host));
  return 0;
}

void RequestServer::State::on_readable(Job& j) {
  if (j.accepted) {
    // The requester hangs up once it has the answer (step 3); anything else breaks the protocol.
    char c;
    ssize_t n = ::recv(j.conn.get(), &c, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    j.conn.reset();
    if (n == 0) {
      j.settling = true;
      j.settle_until = std::chrono::steady_clock::now() + kSettleTime;
    } else {
      end_with(j, 1, "crbox: the request was dropped: the requester broke the protocol after the answer");
    }
    return;
  }
  crbox_req_msg m{};
  iovec iov{&m, sizeof m};
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(j.conn.get(), &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  if (fds.size() == 3) {
    j.status.reset(fds[0]);
    j.log.reset(fds[1]);
    j.dest.reset(fds[2]);
  } else {
    for (int fd : fds) ::close(fd);
  }
  int err = n != static_cast<ssize_t>(sizeof m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ? EPROTO : prepare(j, m);
  crbox_req_ack ack{CRBOX_REQ_MAGIC, err};
  if (n <= 0 || ::send(j.conn.get(), &ack, sizeof ack, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof ack) || err) {
    j.conn.reset();  // refused (or gone): the job is dropped
    remove_tmp(j);
    return;
  }
  j.accepted = true;
  j.deadline = std::chrono::steady_clock::now() + kClientTime;
}

// BLCR's usage: the requester closes its descriptor of the bundle once the request is made, so
// the image does not hold a file being written (a restart would find it changed). It does so
// right after cr_request_checkpoint() returns, which is after it hung up: start only once it has
// (or after kSettleTime, for a program that keeps it).
bool RequestServer::State::settled(Job& j, std::chrono::steady_clock::time_point now) {
  if (!j.dest_name.empty() || now > j.settle_until) return true;
  return !holds_file_of(j.requester, j.dest.get());
}

// Right before cr_checkpoint starts: the target must still be the process the request named, and
// the requester must still pass the rule of may_take_sandbox (a process may have changed its
// credentials, or a new one come, since the answer). Ends the job with cr_checkpoint's own exit
// statuses otherwise (3: ESRCH, 4: EPERM; docs/cli/cr_checkpoint.md). The pid is checked through
// /proc first and the pidfd second: alive at the second check, the process read at the first was
// this one. What remains: the target may still end, and its pid be reused by another process of
// the sandbox, between this check and cr_checkpoint's attach (a few milliseconds, against up to
// a second and any queueing before); such a process is in the sandbox, which the requester passed
// the rule for, and a sandbox's checkpoint takes all of it anyway.
bool RequestServer::State::ready_to_start(Job& j) {
  bool same_ns = pid_ns_of(j.target) == ns;
  if (!same_ns || ::syscall(SYS_pidfd_send_signal, j.target_pidfd.get(), 0, nullptr, 0) != 0) {
    end_with(j, 3, "crbox: the process the request named (host pid " + std::to_string(j.target) +
                       ") no longer exists; nothing was checkpointed");
    return false;
  }
  if (!may_take_sandbox(j.creds, init)) {
    end_with(j, 4, "crbox: permission denied: a process of the sandbox now has credentials the requester "
                   "could not ptrace; nothing was checkpointed");
    return false;
  }
  return true;
}

// Runs cr_checkpoint for an accepted request: stdout and stderr into the log memfd, the
// destination (the caller's descriptor, or the temporary file made for CR_DEST_CWD) as --fd, and
// CRBOX_REQUESTER naming the requester's host pid.
void RequestServer::State::start(Job& j) {
  if (!ready_to_start(j)) return;
  std::vector<std::string> env;
  for (char** e = environ; e && *e; e++)
    if (std::strncmp(*e, "CRBOX_REQUESTER=", 16) != 0) env.push_back(*e);
  env.push_back("CRBOX_REQUESTER=" + std::to_string(j.requester));
  // The destination fd gets a fixed number in the child: one above the three we move there.
  constexpr int kDestFd = 3;
  std::vector<std::string> args{j.tool, "--fd", std::to_string(kDestFd)};
  args.insert(args.end(), j.args.begin(), j.args.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int log = j.log.get(), dest = j.dest.get(), in = null_in.get();

  pid_t pid = ::fork();
  if (pid == 0) {
    // A copy of one thread of the launcher: system calls only until execve.
    reset_signals();
    // Move what we keep above every fd we set, then set 0-3.
    int l = ::fcntl(log, F_DUPFD_CLOEXEC, 10), d = ::fcntl(dest, F_DUPFD_CLOEXEC, 10);
    int i = in >= 0 ? ::fcntl(in, F_DUPFD_CLOEXEC, 10) : -1;
    if (l < 0 || d < 0) ::_exit(126);
    if (i >= 0) ::dup2(i, 0);
    ::dup2(l, 1);
    ::dup2(l, 2);
    if (::dup2(d, kDestFd) != kDestFd) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    static const char msg[] = "crbox: cannot run cr_checkpoint for a libcr request\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  if (pid < 0) {
    finish(j, 127 << 8);
    return;
  }
  j.child = pid;
  j.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!j.pidfd) {  // cannot happen on a kernel that has everything else crbox uses; do not lose it
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    finish(j, st);
  }
}

// CR_DEST_CWD: removes the temporary file (as the requester, who owns it) unless it was renamed.
void RequestServer::State::remove_tmp(Job& j) {
  if (j.tmp_name.empty() || !j.dir) return;
  AsRequester as(j.creds.uid[3], j.creds.gid[3], j.creds.groups);
  if (as.ok()) ::unlinkat(j.dir.get(), j.tmp_name.c_str(), 0);
  j.tmp_name.clear();
}

// Ends an accepted job that will have no (or had no successful) cr_checkpoint: `why` goes to the
// request's messages, and the status page says cr_checkpoint exited with `code`, so that the
// requester's cr_wait_checkpoint() ends (1: EIO, from the message: runtime/libcr/request.c).
void RequestServer::State::end_with(Job& j, int code, const std::string& why) {
  finish(j, (code & 0xff) << 8, why);
}

// Step 4: the status into the requester's page, ended last, then woken.
void RequestServer::State::finish(Job& j, int st, const std::string& why) {
  j.child = -1;
  j.settling = false;
  j.conn.reset();
  std::string say = why;
  if (!j.tmp_name.empty() && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    // Still the file we made (the requester cannot swap it for another: we write by descriptor
    // and rename by name as the requester, who could have renamed it itself).
    bool renamed = false;
    int err = 0;
    if (::fsync(j.dest.get()) == 0) {
      AsRequester as(j.creds.uid[3], j.creds.gid[3], j.creds.groups);
      renamed = as.ok() && ::renameat(j.dir.get(), j.tmp_name.c_str(), j.dir.get(), j.dest_name.c_str()) == 0;
      err = errno;
    } else {
      err = errno;
    }
    if (renamed) {
      j.tmp_name.clear();
    } else {
      st = 1 << 8;
      say = std::string("crbox: cannot put the bundle in place as ") + j.dest_name + ": " + std::strerror(err);
    }
  }
  remove_tmp(j);
  if (!say.empty() && j.log) {
    say += "\n";
    ::lseek(j.log.get(), 0, SEEK_END);
    (void)!::write(j.log.get(), say.data(), say.size());
  }
  if (auto* s = j.page.at) {
    s->exited = WIFEXITED(st) ? 1 : 0;
    s->code = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
    std::atomic_ref<uint32_t>(s->state).store(CRBOX_REQ_ENDED, std::memory_order_release);
    ::syscall(SYS_futex, &s->state, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    ::munmap(s, sizeof(crbox_req_status));
    j.page.at = nullptr;
  }
  j.status.reset();
  j.log.reset();
  j.dest.reset();
  j.dir.reset();
  j.pidfd.reset();
  j.target_pidfd.reset();
}

void RequestServer::State::step_reap(Job& j) {
  int st = 0;
  if (::waitpid(j.child, &st, WNOHANG) == j.child) finish(j, st);
}

// One step of one job, so that nothing it throws (e.g. EMFILE reading /proc) stops the server:
// a request not answered yet is answered EIO, an accepted one ends with an error status, and the
// job is dropped either way.
void RequestServer::State::guarded(Job& j, const char* what, void (State::*step)(Job&)) {
  try {
    (this->*step)(j);
  } catch (const std::exception& e) {
    try {
      if (j.child > 0) return;  // running: its end is reaped as usual
      if (j.conn && !j.accepted) {
        crbox_req_ack ack{CRBOX_REQ_MAGIC, EIO};
        (void)::send(j.conn.get(), &ack, sizeof ack, MSG_NOSIGNAL | MSG_DONTWAIT);
        j.conn.reset();
        remove_tmp(j);
      } else {
        end_with(j, 1, std::string("crbox: the request failed while ") + what + ": " + e.what());
      }
    } catch (...) {
      j.conn.reset();
      j.settling = false;
    }
  }
}

void RequestServer::State::run() {
  for (;;) {
    try {
      std::vector<pollfd> pfds{{wake_read.get(), POLLIN, 0}, {-1, POLLIN, 0}};
      std::vector<Job*> owners{nullptr, nullptr};
      auto now = std::chrono::steady_clock::now();
      int timeout_ms = 1000;
      // One cr_checkpoint at a time: two at once would find the sandbox traced by the other. The
      // next request waits (its requester holds nothing of ours meanwhile).
      bool busy = false;
      for (auto& j : jobs) busy |= j.child > 0;
      for (auto& j : jobs) {
        if (!j.settling) continue;
        if (!busy && settled(j, now)) {
          j.settling = false;
          guarded(j, "starting cr_checkpoint", &State::start);
          busy = j.child > 0;
        } else if (!busy) {
          timeout_ms = 2;
        }
      }
      // The listener only below the cap, and not right after accept(2) ran out of descriptors.
      if (jobs.size() < kMaxJobs && now >= accept_paused_until) pfds[1].fd = listener.get();
      else if (jobs.size() < kMaxJobs) timeout_ms = std::min(timeout_ms, 100);
      for (auto& j : jobs) {
        if (j.conn) {
          pfds.push_back({j.conn.get(), POLLIN, 0});
          owners.push_back(&j);
        } else if (j.pidfd) {
          pfds.push_back({j.pidfd.get(), POLLIN, 0});
          owners.push_back(&j);
        }
      }
      if (::poll(pfds.data(), pfds.size(), timeout_ms) < 0 && errno != EINTR) {
        if (errno != ENOMEM) return;
        continue;
      }
      if (pfds[0].revents) return;  // stopped
      if (pfds[1].revents & POLLIN) {
        int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          Job& j = jobs.emplace_back();
          j.conn.reset(c);
          j.deadline = now + kClientTime;
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          accept_paused_until = now + kAcceptPause;
        }
      }
      for (size_t i = 2; i < pfds.size(); i++) {
        if (!pfds[i].revents) continue;
        Job& j = *owners[i];
        if (j.conn) guarded(j, "reading the request", &State::step_readable);
        else if (j.child > 0) guarded(j, "reaping cr_checkpoint", &State::step_reap);
      }
      now = std::chrono::steady_clock::now();
      for (auto it = jobs.begin(); it != jobs.end();) {
        if (it->conn && now > it->deadline) {  // a requester that never finished its part
          if (it->accepted) end_with(*it, 1, "crbox: the request was dropped: the requester did not hang up in time");
          else remove_tmp(*it);
          it->conn.reset();
        }
        bool live = it->conn || it->settling || it->child > 0;
        it = live ? std::next(it) : jobs.erase(it);
      }
    } catch (const std::exception&) {
      // Outside any one job (e.g. no memory for the poll set): try again shortly.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}
RequestServer::RequestServer(UniqueFd listener, pid_t init) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.listener = std::move(listener);
  s.init = init;
  sockaddr_un a{};
  socklen_t len = sizeof a;
  // The init may have failed to bind it (bind_request_socket): then there is nothing to serve.
  if (::getsockname(s.listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0 || len <= sizeof(sa_family_t) ||
      !a.sun_path[0])
    return;
  auto ns = pid_ns_of(init);
  auto ids = ns_ids(init, "NSpid");
  if (!ns || ids.empty()) return;
  s.ns = *ns;
  s.level = ids.size() - 1;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  s.wake_read.reset(p[0]);
  s.wake_write.reset(p[1]);
  s.thread = std::thread([&s] { s.run(); });
}

RequestServer::~RequestServer() {
  State& s = *state_;
  if (!s.thread.joinable()) return;
  s.wake_write.reset();  // EOF wakes the poll
  s.thread.join();
  for (auto& j : s.jobs) {
    try {
      if (j.child > 0) {
        ::kill(j.child, SIGKILL);
        int st = 0;
        while (::waitpid(j.child, &st, 0) < 0 && errno == EINTR) {
        }
        s.finish(j, st, "crbox: cr_checkpoint was stopped: the sandbox's launcher is ending");
      } else if (j.accepted && j.page.at) {
        s.end_with(j, 1, "crbox: the request was dropped: the sandbox's launcher is ending");
      } else {
        s.remove_tmp(j);
      }
    } catch (...) {
    }
  }
}

}  // namespace crbox::runtime
