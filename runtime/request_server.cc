#include "runtime/request_server.h"

#include <dirent.h>
#include <fcntl.h>
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
#include <vector>

#include "runtime/libcr/request_protocol.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/files.h"

extern char** environ;

namespace crbox::runtime {

namespace {

constexpr auto kClientTime = std::chrono::seconds(10);  // to send the request, and to hang up after the answer
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

// Whether `uid`/`gid` may create a file in the directory `dirfd` (mode bits only; root may).
bool may_write_in(int dirfd, uid_t uid, gid_t gid) {
  if (uid == 0) return true;
  struct stat st{};
  if (::fstat(dirfd, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  mode_t need = st.st_uid == uid ? S_IWUSR | S_IXUSR : st.st_gid == gid ? S_IWGRP | S_IXGRP : S_IWOTH | S_IXOTH;
  return (st.st_mode & need) == need;
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

// One request, from its connection to the end of its cr_checkpoint.
struct Job {
  UniqueFd conn;
  std::chrono::steady_clock::time_point deadline;
  bool accepted = false;  // answered; waiting for the requester to hang up
  bool settling = false;  // hung up; waiting for it to close its own descriptor of the destination
  std::chrono::steady_clock::time_point settle_until;
  UniqueFd status, log, dest;
  std::string dest_name;
  pid_t requester = 0;  // host pid
  uid_t uid = 0;
  gid_t gid = 0;
  std::string tool;               // cr_checkpoint's path
  std::vector<std::string> args;  // its arguments
  pid_t child = -1;
  UniqueFd pidfd;
};

}  // namespace

struct RequestServer::State {
  UniqueFd listener;
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
  void finish(Job& j, int wait_status);
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
  j.uid = cred.uid;
  j.gid = cred.gid;
  if (!j.status || !j.log || !j.dest) return EBADF;
  if (m.dest_name[0]) {
    if (!valid_dest_name(m.dest_name, sizeof m.dest_name)) return EINVAL;
    if (!may_write_in(j.dest.get(), j.uid, j.gid)) return EACCES;
    j.dest_name = m.dest_name;
  } else {
    int fl = ::fcntl(j.dest.get(), F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH)) return EBADF;
  }
  pid_t host = host_pid_of(m.scope, m.target);
  if (host <= 0) return ESRCH;
  j.tool = find_cr_checkpoint();
  if (j.tool.empty()) return ENOENT;  // as libcr says when it finds no cr_checkpoint itself
  static const char* const scopes[] = {"--pid", "--tree", "--tree", "--tree"};
  j.args.push_back(scopes[m.scope]);
  if (!j.dest_name.empty()) {
    j.args.push_back("--file");
    j.args.push_back(j.dest_name);
  }
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

// Runs cr_checkpoint for an accepted request: stdout and stderr into the log memfd, the
// destination as --fd (or the requester's directory as the working directory), and
// CRBOX_REQUESTER naming the requester's host pid.
void RequestServer::State::start(Job& j) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; e++)
    if (std::strncmp(*e, "CRBOX_REQUESTER=", 16) != 0) env.push_back(*e);
  env.push_back("CRBOX_REQUESTER=" + std::to_string(j.requester));
  // The destination fd gets a fixed number in the child: one above the three we move there.
  constexpr int kDestFd = 3;
  std::vector<std::string> args{j.tool};
  if (j.dest_name.empty()) {
    args.push_back("--fd");
    args.push_back(std::to_string(kDestFd));
  }
  args.insert(args.end(), j.args.begin(), j.args.end());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int log = j.log.get(), dest = j.dest.get(), in = null_in.get();
  bool to_dir = !j.dest_name.empty();

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
    if (to_dir) {
      if (::fchdir(d) != 0) ::_exit(126);
    } else if (::dup2(d, kDestFd) != kDestFd) {
      ::_exit(126);
    }
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

// Step 4: the status into the requester's page, ended last, then woken.
void RequestServer::State::finish(Job& j, int st) {
  j.child = -1;
  if (!j.dest_name.empty() && WIFEXITED(st) && WEXITSTATUS(st) == 0 && j.uid != 0)
    ::fchownat(j.dest.get(), j.dest_name.c_str(), j.uid, j.gid, AT_SYMLINK_NOFOLLOW);  // the requester's bundle
  void* at = ::mmap(nullptr, sizeof(crbox_req_status), PROT_READ | PROT_WRITE, MAP_SHARED, j.status.get(), 0);
  if (at != MAP_FAILED) {
    auto* s = static_cast<crbox_req_status*>(at);
    s->exited = WIFEXITED(st) ? 1 : 0;
    s->code = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
    std::atomic_ref<uint32_t>(s->state).store(CRBOX_REQ_ENDED, std::memory_order_release);
    ::syscall(SYS_futex, &s->state, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
    ::munmap(at, sizeof(crbox_req_status));
  }
  j.status.reset();
  j.log.reset();
  j.dest.reset();
  j.pidfd.reset();
}

void RequestServer::State::run() {
  for (;;) {
    std::vector<pollfd> pfds{{wake_read.get(), POLLIN, 0}, {listener.get(), POLLIN, 0}};
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
        start(j);
        busy = j.child > 0;
      } else if (!busy) {
        timeout_ms = 2;
      }
    }
    for (auto& j : jobs) {
      if (j.conn) {
        pfds.push_back({j.conn.get(), POLLIN, 0});
        owners.push_back(&j);
      } else if (j.pidfd) {
        pfds.push_back({j.pidfd.get(), POLLIN, 0});
        owners.push_back(&j);
      }
    }
    if (::poll(pfds.data(), pfds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (pfds[0].revents) return;  // stopped
    if (pfds[1].revents & POLLIN) {
      int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        Job j;
        j.conn.reset(c);
        j.deadline = now + kClientTime;
        jobs.push_back(std::move(j));
      }
    }
    for (size_t i = 2; i < pfds.size(); i++) {
      if (!pfds[i].revents) continue;
      Job& j = *owners[i];
      if (j.conn) {
        on_readable(j);
      } else if (j.child > 0) {
        int st = 0;
        if (::waitpid(j.child, &st, WNOHANG) == j.child) finish(j, st);
      }
    }
    now = std::chrono::steady_clock::now();
    for (auto it = jobs.begin(); it != jobs.end();) {
      if (it->conn && now > it->deadline) it->conn.reset();  // a requester that never finished its part
      bool live = it->conn || it->settling || it->child > 0;
      it = live ? std::next(it) : jobs.erase(it);
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
    if (j.child <= 0) continue;
    ::kill(j.child, SIGKILL);
    int st = 0;
    while (::waitpid(j.child, &st, 0) < 0 && errno == EINTR) {
    }
    s.finish(j, st);
  }
}

}  // namespace crbox::runtime
