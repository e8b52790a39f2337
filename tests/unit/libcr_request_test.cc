// cr_request_checkpoint and friends with a stand-in for crbox's cr_checkpoint (a shell script
// named by $CRBOX_CR_CHECKPOINT): the command line and environment it gets, the messages, BLCR's
// return conventions for wait / poll / reap, errors found at request time or deferred (from
// cr_checkpoint's exit status, its message only for status 1), the
// "restarted" answer, a child the application itself reaped, and requests served by a sandbox's
// launcher (a stand-in server at $CRBOX_LIBCR_SOCKET).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libcr.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "libcr_test_util.h"
#include "request_protocol.h"

namespace crbox::libcr_test {
namespace {

class LibcrRequest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crbox-libcr-request-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    tool_ = dir_ + "/fake_cr_checkpoint";
    // Prints its arguments and environment, writes "bundle" to the --fd it got, sleeps
    // $FAKE_SLEEP, says $FAKE_SAY on stderr and exits $FAKE_EXIT.
    std::ofstream(tool_) << "#!/bin/sh\n"
                            "echo \"args: $*\"\n"
                            "echo \"requester=$CRBOX_REQUESTER preload=${LD_PRELOAD-unset}\"\n"
                            "prev=; fd=\n"
                            "for a in \"$@\"; do [ \"$prev\" = --fd ] && fd=$a; prev=$a; done\n"
                            "[ -n \"$fd\" ] && eval \"echo bundle >&$fd\"\n"
                            "[ -n \"$FAKE_SLEEP\" ] && sleep \"$FAKE_SLEEP\"\n"
                            "[ -n \"$FAKE_SAY\" ] && echo \"$FAKE_SAY\" >&2\n"
                            "exit ${FAKE_EXIT:-0}\n";
    chmod(tool_.c_str(), 0755);
    setenv("CRBOX_CR_CHECKPOINT", tool_.c_str(), 1);
    setenv("CRBOX_CR_RESTART", tool_.c_str(), 1);
    unsetenv("FAKE_EXIT");
    unsetenv("FAKE_SLEEP");
    unsetenv("FAKE_SAY");
  }
  void TearDown() override {
    unsetenv("CRBOX_CR_CHECKPOINT");
    unsetenv("CRBOX_CR_RESTART");
    std::filesystem::remove_all(dir_);
  }
  int open_out(const std::string& name) { return open((dir_ + "/" + name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600); }
  std::string slurp(const std::string& name) {
    std::ifstream f(dir_ + "/" + name);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  cr_checkpoint_args_t args(int fd, cr_scope_t scope = CR_SCOPE_PROC) {
    cr_checkpoint_args_t a;
    cr_initialize_checkpoint_args_t(&a);
    a.cr_scope = scope;
    a.cr_fd = fd;
    return a;
  }
  static std::string log_of(cr_checkpoint_handle_t* h) {
    int need = cr_log_checkpoint(h, 0, nullptr);
    if (need <= 0) return "";
    std::string s(need, '\0');
    cr_log_checkpoint(h, need, s.data());
    s.resize(need - 1);
    return s;
  }
  // Runs fn in a forked child and returns the text it returned ("" when all was well), or what
  // went wrong with the child itself.
  static std::string in_child(const std::function<std::string()>& fn) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
      close(p[0]);
      std::string r = fn();
      (void)!write(p[1], r.data(), r.size());
      _exit(0);
    }
    close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, n);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += "the child died (status " + std::to_string(status) + ")";
    return out;
  }
  std::string dir_, tool_;
};

TEST_F(LibcrRequest, RunsCrCheckpointOnItselfWithTheArguments) {
  int fd = open_out("ctx");
  ASSERT_GE(fd, 0);
  cr_checkpoint_args_t a = args(fd);
  a.cr_timeout = 7;
  a.cr_signal = SIGTERM;
  a.cr_flags = CR_CHKPT_DUMP_EXEC | CR_CHKPT_PTRACED_SKIP;
  cr_checkpoint_handle_t h;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0) << cr_strerror(errno);
  close(fd);
  int rc;
  do rc = cr_wait_checkpoint(&h, nullptr);
  while (rc < 0 && errno == EINTR);
  ASSERT_EQ(rc, 1);
  std::string log = log_of(&h);
  // The fd keeps its number (it is above 2), made inheritable in the child only.
  std::string expect = "args: --pid --fd " + std::to_string(fd) + " --time 7 --signal 15 --ptraced-skip --save-exe " +
                       std::to_string(getpid());
  EXPECT_NE(log.find(expect), std::string::npos) << log;
  EXPECT_NE(log.find("requester=" + std::to_string(getpid())), std::string::npos) << log;
  EXPECT_EQ(cr_reap_checkpoint(&h), 1);
  EXPECT_EQ(slurp("ctx"), "bundle\n");
  errno = 0;
  EXPECT_EQ(cr_reap_checkpoint(&h), -1) << "the handle is gone";
  EXPECT_EQ(errno, EINVAL);
}

// The default targets are the caller's own process group and session. Whatever ran the test
// (ctest in a container: its session leader may sit in an ancestor pid namespace, where getsid()
// says 0), the cases run in a child that leads a session of its own, with the test as its parent.
TEST_F(LibcrRequest, ScopesTargetsAndTheWorkingDirectory) {
  pid_t test_pid = getpid();
  std::string out = in_child([this, test_pid] {
    if (setsid() < 0) return std::string("setsid failed");
    std::string self = std::to_string(getpid());
    struct Case {
      cr_scope_t scope;
      pid_t target;
      std::string expect;
    } cases[] = {
        {CR_SCOPE_TREE, 0, "--tree " + self},
        {CR_SCOPE_PGRP, 0, "--pgid " + self},
        {CR_SCOPE_SESS, 0, "--sid " + self},
        {CR_SCOPE_PROC, test_pid, "--pid " + std::to_string(test_pid)},
    };
    std::string bad;
    for (auto& c : cases) {
      cr_checkpoint_args_t a = args(CR_DEST_CWD, c.scope);
      a.cr_target = c.target;
      cr_checkpoint_handle_t h;
      if (cr_request_checkpoint(&a, &h) != 0) {
        bad += c.expect + ": " + cr_strerror(errno) + "\n";
        continue;
      }
      char* msgs = nullptr;
      if (cr_poll_checkpoint_msg(&h, nullptr, &msgs) != 1 || !msgs) {
        bad += c.expect + ": no messages\n";
        continue;
      }
      std::string log = msgs;
      free(msgs);
      if (log.find("args: " + c.expect + "\n") == std::string::npos) bad += c.expect + ": got " + log;
    }
    return bad;
  });
  EXPECT_EQ(out, "");
}

// A process whose session and group are led from an ancestor pid namespace cannot name them:
// getsid() and getpgrp() say 0 there. The request says "no such process" at once (it was a vague
// EINVAL before), and nothing is signalled or started.
TEST_F(LibcrRequest, GroupAndSessionLedFromAnAncestorPidNamespaceAreNoSuchProcess) {
  std::string out = in_child([this] {
    if (unshare(CLONE_NEWPID) != 0) return std::string("unshare(CLONE_NEWPID): ") + strerror(errno);
    return in_child([this] {
      std::string bad;
      if (getsid(0) != 0 || getpgrp() != 0) bad += "the session and group should have no pid here\n";
      for (cr_scope_t scope : {CR_SCOPE_PGRP, CR_SCOPE_SESS}) {
        cr_checkpoint_args_t a = args(CR_DEST_CWD, scope);
        cr_checkpoint_handle_t h;
        errno = 0;
        int rc = cr_request_checkpoint(&a, &h);
        if (rc != -1 || errno != ESRCH)
          bad += "scope " + std::to_string(scope) + ": rc " + std::to_string(rc) + ", " + strerror(errno) + "\n";
      }
      return bad;
    });
  });
  EXPECT_EQ(out, "");
}

TEST_F(LibcrRequest, DescriptorsZeroToTwoAreMovedUp) {
  int saved = dup(1);
  int fd = open_out("ctx1");
  ASSERT_EQ(dup2(fd, 1), 1);
  close(fd);
  cr_checkpoint_args_t a = args(1);
  cr_checkpoint_handle_t h;
  int rc = cr_request_checkpoint(&a, &h);
  dup2(saved, 1);
  close(saved);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(cr_poll_checkpoint(&h, nullptr), 1);
  EXPECT_EQ(slurp("ctx1"), "bundle\n") << "written through fd 1 of the requester, renumbered in the child";
}

TEST_F(LibcrRequest, LibcrIsNotPreloadedIntoTheTool) {
  const char* old = getenv("LD_PRELOAD");
  std::string saved = old ? old : "";
  setenv("LD_PRELOAD", "/nonexistent/libcr_run.so.0:/lib/x86_64-linux-gnu/libm.so.6 /x/libcr_omit.so.0", 1);
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  int rc = cr_request_checkpoint(&a, &h);
  if (old) setenv("LD_PRELOAD", saved.c_str(), 1);
  else unsetenv("LD_PRELOAD");
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(cr_wait_checkpoint(&h, nullptr), 1);
  std::string log = log_of(&h);
  EXPECT_NE(log.find("preload=/lib/x86_64-linux-gnu/libm.so.6\n"), std::string::npos) << log;
  EXPECT_EQ(cr_reap_checkpoint(&h), 1);
}

TEST_F(LibcrRequest, WaitTimesOutAndWritesBackTheTimeLeft) {
  setenv("FAKE_SLEEP", "1", 1);
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0);
  struct timeval tv = {0, 50000};
  EXPECT_EQ(cr_wait_checkpoint(&h, &tv), 0) << "not done yet";
  EXPECT_EQ(tv.tv_sec, 0);
  EXPECT_EQ(tv.tv_usec, 0);
  errno = 0;
  EXPECT_EQ(cr_reap_checkpoint(&h), -1);
  EXPECT_EQ(errno, EAGAIN) << "not ended: the handle stays";
  struct timeval zero = {0, 0};
  EXPECT_EQ(cr_poll_checkpoint(&h, &zero), 0);
  tv = {30, 0};
  EXPECT_EQ(cr_wait_checkpoint(&h, &tv), 1);
  EXPECT_GT(tv.tv_sec, 20) << "most of the time is left";
  EXPECT_EQ(cr_reap_checkpoint(&h), 1);
}

TEST_F(LibcrRequest, FailuresMapToBlcrErrors) {
  struct Case {
    const char* exit_code;
    const char* say;
    int err;
  } cases[] = {
      {"1", "cr_checkpoint: pid 7: a libcr callback asked for a temporary failure", CR_ETEMPFAIL},
      {"1", "cr_checkpoint: pid 7: a libcr callback asked for a permanent failure; it was killed", CR_EPERMFAIL},
      {"1", "cr_checkpoint: gave up after 2 s (--time)", CR_ETEMPFAIL},
      {"1", "cr_checkpoint: pid 7 does not exist", ESRCH},
      {"1", "cr_checkpoint: pid 7 is traced by pid 9", CR_EPTRACED},
      {"1", "cr_checkpoint: something else went wrong", EIO},
      {"2", "cr_checkpoint: bad option", EINVAL},
      // cr_checkpoint's documented exit statuses decide, whatever the message says.
      {"3", "cr_checkpoint: the message is not read", ESRCH},
      {"4", "cr_checkpoint: the message is not read", EPERM},
      {"5", "cr_checkpoint: the message is not read", CR_EPTRACED},
      {"6", "cr_checkpoint: the message is not read", CR_EPTRACER},
      {"7", "cr_checkpoint: pid 7 does not exist", CR_ETEMPFAIL},
      {"8", "cr_checkpoint: a temporary-looking message", CR_EPERMFAIL},
      {"9", "cr_checkpoint: permission denied in the text only", ENOSPC},
      {"42", "cr_checkpoint: an unknown status: pid 7 is traced by pid 9", CR_EPTRACED},
  };
  for (auto& c : cases) {
    setenv("FAKE_EXIT", c.exit_code, 1);
    setenv("FAKE_SAY", c.say, 1);
    cr_checkpoint_args_t a = args(CR_DEST_CWD);
    cr_checkpoint_handle_t h;
    ASSERT_EQ(cr_request_checkpoint(&a, &h), 0);
    char* msgs = nullptr;
    errno = 0;
    EXPECT_EQ(cr_poll_checkpoint_msg(&h, nullptr, &msgs), CR_POLL_CHKPT_ERR_POST) << c.say;
    EXPECT_EQ(errno, c.err) << c.say << ": " << cr_strerror(errno);
    ASSERT_NE(msgs, nullptr);
    EXPECT_NE(std::string(msgs).find(c.say), std::string::npos);
    free(msgs);
  }
}

TEST_F(LibcrRequest, BadRequestsAreRefusedOrDeferred) {
  cr_checkpoint_handle_t h;
  cr_checkpoint_args_t a = args(-1);
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1);
  EXPECT_EQ(errno, EBADF);
  int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
  a = args(ro);
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1) << "a read-only descriptor";
  EXPECT_EQ(errno, EBADF);
  close(ro);
  a = args(CR_DEST_CWD);
  a.cr_scope = (cr_scope_t)-1;  // as cr_initialize_checkpoint_args_t leaves it
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1);
  EXPECT_EQ(errno, EINVAL);
  a = args(CR_DEST_CWD);
  a.cr_target = 4194000;  // above any pid in use here
  while (kill(a.cr_target, 0) == 0) a.cr_target++;
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1);
  EXPECT_EQ(errno, ESRCH);
  a = args(CR_DEST_CWD, CR_SCOPE_TREE);
  a.cr_target = getppid();
  a.cr_flags = CR_CHKPT_PROHIBIT_SELF;
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1) << "its parent's tree holds the requester";
  EXPECT_EQ(errno, EDEADLK);

  // CR_CHKPT_ASYNC_ERR: the request "succeeds"; the error comes with the reap.
  a = args(-1);
  a.cr_flags = CR_CHKPT_ASYNC_ERR;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0);
  EXPECT_EQ(cr_wait_checkpoint(&h, nullptr), 1);
  errno = 0;
  EXPECT_EQ(cr_reap_checkpoint(&h), -1);
  EXPECT_EQ(errno, EBADF);

  cr_checkpoint_handle_t bogus = 12345;
  errno = 0;
  EXPECT_EQ(cr_wait_checkpoint(&bogus, nullptr), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(cr_log_checkpoint(&bogus, 0, nullptr), -1);
  EXPECT_EQ(cr_poll_checkpoint(&bogus, nullptr), CR_POLL_CHKPT_ERR_PRE);
}

// Our children as /proc lists them (the request's child is one).
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc/self/task");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/children");
    pid_t p;
    while (f >> p) out.push_back(p);
  }
  closedir(d);
  return out;
}

TEST_F(LibcrRequest, TheRestartedCopyIsToldCrERestarted) {
  // What a process restarted from its own checkpoint finds: its request's child is not its
  // child any more, and the page counts one more restart.
  ASSERT_GE(cr_init(), 0);
  auto before = children();
  setenv("FAKE_SLEEP", "30", 1);
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0);
  pid_t child = -1;
  for (pid_t p : children())
    if (std::find(before.begin(), before.end(), p) == before.end()) child = p;
  ASSERT_GT(child, 0);
  __atomic_add_fetch(&own_page()->restarts, 1, __ATOMIC_SEQ_CST);
  kill(child, SIGKILL);
  siginfo_t si;
  ASSERT_EQ(waitid(P_PID, child, &si, WEXITED), 0);
  errno = 0;
  EXPECT_EQ(cr_poll_checkpoint(&h, nullptr), CR_POLL_CHKPT_ERR_POST);
  EXPECT_EQ(errno, CR_ERESTARTED);
}

TEST_F(LibcrRequest, AChildTheApplicationReapedIsJudgedByItsMessages) {
  // An application reaping any child (waitpid(-1), as launchers do) may take the status of the
  // request's child; libcr then goes by what cr_checkpoint said.
  for (bool fail : {false, true}) {
    if (fail) {
      setenv("FAKE_EXIT", "1", 1);
      setenv("FAKE_SAY", "cr_checkpoint: pid 7: a libcr callback asked for a temporary failure", 1);
    }
    cr_checkpoint_args_t a = args(CR_DEST_CWD);
    cr_checkpoint_handle_t h;
    ASSERT_EQ(cr_request_checkpoint(&a, &h), 0);
    int st;
    pid_t got;
    do got = waitpid(-1, &st, 0);
    while (got < 0 && errno == EINTR);
    ASSERT_GT(got, 0);
    EXPECT_EQ(WEXITSTATUS(st), fail ? 1 : 0);
    errno = 0;
    if (fail) {
      EXPECT_EQ(cr_poll_checkpoint(&h, nullptr), CR_POLL_CHKPT_ERR_POST);
      EXPECT_EQ(errno, CR_ETEMPFAIL);
    } else {
      EXPECT_EQ(cr_poll_checkpoint(&h, nullptr), 1) << cr_strerror(errno);
    }
  }
}

// A stand-in for the launcher's server of a sandbox (runtime/request_server.cc) at
// $CRBOX_LIBCR_SOCKET: takes one request, answers `ack_err`, and unless that refuses it or
// `never_end` is set, waits for the hang-up, writes `say` as cr_checkpoint's messages and ends the
// request with exit status `exit_code`.
struct FakeServer {
  int ack_err = 0;
  int exit_code = 0;
  bool never_end = false;
  std::string say;
  crbox_req_msg got{};
  int nfds = 0;
  bool dest_is_dir = false, dest_writable = false, hung_up = false;
  int status_seals = -1;
  off_t status_size = -1;
  int listener = -1;
  std::thread thread;

  explicit FakeServer(const std::string& path) {
    listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listener, 4);
    setenv(CRBOX_LIBCR_SOCKET_ENV, path.c_str(), 1);
  }
  ~FakeServer() {
    if (thread.joinable()) thread.join();
    close(listener);
    unsetenv(CRBOX_LIBCR_SOCKET_ENV);
  }
  void start() {
    thread = std::thread([this] {
      int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      iovec iov{&got, sizeof got};
      alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = control;
      mh.msg_controllen = sizeof control;
      recvmsg(c, &mh, MSG_CMSG_CLOEXEC);
      int fds[4] = {-1, -1, -1, -1};
      if (cmsghdr* cm = CMSG_FIRSTHDR(&mh)) {
        nfds = static_cast<int>((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        std::memcpy(fds, CMSG_DATA(cm), std::min(nfds, 4) * sizeof(int));
      }
      struct stat st{};
      status_seals = fcntl(fds[0], F_GET_SEALS);
      if (fstat(fds[0], &st) == 0) status_size = st.st_size;
      dest_is_dir = fstat(fds[2], &st) == 0 && S_ISDIR(st.st_mode);
      dest_writable = (fcntl(fds[2], F_GETFL) & O_ACCMODE) != O_RDONLY;
      crbox_req_ack ack{CRBOX_REQ_MAGIC, ack_err};
      send(c, &ack, sizeof ack, MSG_NOSIGNAL);
      char b;
      hung_up = recv(c, &b, 1, 0) == 0;
      close(c);
      if (!ack_err && !never_end) {
        (void)!write(fds[1], say.data(), say.size());
        void* at = mmap(nullptr, sizeof(crbox_req_status), PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
        auto* st = static_cast<crbox_req_status*>(at);
        st->exited = 1;
        st->code = exit_code;
        __atomic_store_n(&st->state, CRBOX_REQ_ENDED, __ATOMIC_RELEASE);
        syscall(SYS_futex, &st->state, FUTEX_WAKE, 1 << 30, nullptr, nullptr, 0);
        munmap(at, sizeof(crbox_req_status));
      }
      for (int fd : fds)
        if (fd >= 0) close(fd);
    });
  }
};

// Inside a sandbox a server answers: the request goes there, with the status page, the messages'
// memfd and the caller's descriptor; no cr_checkpoint is run here; the exit status comes back.
TEST_F(LibcrRequest, ASandboxServerTakesTheRequest) {
  FakeServer srv(dir_ + "/s.sock");
  srv.exit_code = 7;
  srv.say = "cr_checkpoint: pid 7 cancelled the checkpoint\n";
  srv.start();
  int fd = open_out("ctx");
  cr_checkpoint_args_t a = args(fd);
  a.cr_timeout = 5;
  a.cr_signal = SIGTERM;
  a.cr_flags = CR_CHKPT_DUMP_EXEC | CR_CHKPT_PTRACED_SKIP;
  cr_checkpoint_handle_t h;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0) << cr_strerror(errno);
  close(fd);
  char* msgs = nullptr;
  errno = 0;
  EXPECT_EQ(cr_poll_checkpoint_msg(&h, nullptr, &msgs), CR_POLL_CHKPT_ERR_POST);
  EXPECT_EQ(errno, CR_ETEMPFAIL) << cr_strerror(errno);
  ASSERT_NE(msgs, nullptr);
  EXPECT_EQ(std::string(msgs), srv.say) << "the stand-in cr_checkpoint script was not run";
  free(msgs);
  srv.thread.join();
  EXPECT_EQ(srv.nfds, 3);
  EXPECT_TRUE(srv.hung_up);
  EXPECT_TRUE(srv.dest_writable);
  EXPECT_FALSE(srv.dest_is_dir);
  // The server maps the status page: it refuses one that could shrink (or grow, or be unsealed)
  // under its mapping (request_protocol.h).
  EXPECT_EQ(srv.status_seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_GE(srv.status_size, static_cast<off_t>(sizeof(crbox_req_status)));
  EXPECT_EQ(srv.got.magic, CRBOX_REQ_MAGIC);
  EXPECT_EQ(srv.got.scope, CR_SCOPE_PROC);
  EXPECT_EQ(srv.got.target, getpid());
  EXPECT_EQ(srv.got.signal, SIGTERM);
  EXPECT_EQ(srv.got.time_s, 5);
  EXPECT_EQ(srv.got.flags, static_cast<uint32_t>(CR_CHKPT_DUMP_EXEC | CR_CHKPT_PTRACED_SKIP));
  EXPECT_STREQ(srv.got.dest_name, "");
}

// CR_DEST_CWD: the working directory goes along with "context.PID"; a refusal is the request's error.
TEST_F(LibcrRequest, ASandboxServerRefusal) {
  FakeServer srv(dir_ + "/s.sock");
  srv.ack_err = EPERM;
  srv.start();
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  errno = 0;
  EXPECT_EQ(cr_request_checkpoint(&a, &h), -1);
  EXPECT_EQ(errno, EPERM);
  srv.thread.join();
  EXPECT_TRUE(srv.dest_is_dir);
  EXPECT_EQ(std::string(srv.got.dest_name), "context." + std::to_string(getpid()));
}

// The copy restarted from the image its request took: nobody ends its request, its page counts a
// restart: CR_ERESTARTED.
TEST_F(LibcrRequest, ASandboxRequestOfTheRestartedCopy) {
  ASSERT_GE(cr_init(), 0);
  FakeServer srv(dir_ + "/s.sock");
  srv.never_end = true;
  srv.start();
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  ASSERT_EQ(cr_request_checkpoint(&a, &h), 0) << cr_strerror(errno);
  struct timeval zero = {0, 0};
  EXPECT_EQ(cr_poll_checkpoint(&h, &zero), 0) << "pending";
  __atomic_add_fetch(&own_page()->restarts, 1, __ATOMIC_SEQ_CST);
  errno = 0;
  EXPECT_EQ(cr_poll_checkpoint(&h, nullptr), CR_POLL_CHKPT_ERR_POST);
  EXPECT_EQ(errno, CR_ERESTARTED);
}

// Outside a sandbox, /tmp is everyone's: a socket another user bound at the sandbox's path is not
// the launcher, and gets nothing (it would be sent the destination of our checkpoint). Only a
// root-owned one is trusted there; the request runs cr_checkpoint itself, as any plain one.
TEST_F(LibcrRequest, ASocketAnotherUserBoundAtTheSandboxPathIsIgnored) {
  struct stat st{};
  // What a squatter of an interrupted run of this test left behind goes first.
  if (lstat(CRBOX_LIBCR_SOCKET_PATH, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == 65534) unlink(CRBOX_LIBCR_SOCKET_PATH);
  ASSERT_NE(lstat(CRBOX_LIBCR_SOCKET_PATH, &st), 0) << CRBOX_LIBCR_SOCKET_PATH << " exists on this machine";
  int ready[2], done[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(done, O_CLOEXEC), 0);
  pid_t squatter = fork();
  ASSERT_GE(squatter, 0);
  if (squatter == 0) {
    // nobody: binds, listens, and reports whether anyone connected.
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", CRBOX_LIBCR_SOCKET_PATH);
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 4) != 0) _exit(4);
    (void)!write(ready[1], "r", 1);
    char c;
    (void)!read(done[0], &c, 1);  // the test is done
    int got = accept(l, nullptr, nullptr);
    unlink(CRBOX_LIBCR_SOCKET_PATH);
    _exit(got >= 0 ? 1 : 0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  cr_checkpoint_args_t a = args(CR_DEST_CWD);
  cr_checkpoint_handle_t h;
  int rc = cr_request_checkpoint(&a, &h);
  char* msgs = nullptr;
  int polled = rc == 0 ? cr_poll_checkpoint_msg(&h, nullptr, &msgs) : -1;
  std::string log = msgs ? msgs : "";
  free(msgs);
  (void)!write(done[1], "d", 1);
  int status = 0;
  waitpid(squatter, &status, 0);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) close(fd);
  ASSERT_EQ(rc, 0) << cr_strerror(errno);
  EXPECT_EQ(polled, 1);
  EXPECT_NE(log.find("args: --pid"), std::string::npos) << "cr_checkpoint was not run here: " << log;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the squatter was connected to (or could not bind)";
}

TEST_F(LibcrRequest, RestartRequestRunsCrRestartDetached) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_restart_args_t a;
  cr_initialize_restart_args_t(&a);
  a.cr_fd = fd;
  a.cr_signal = SIGUSR1;
  a.cr_flags = CR_RSTRT_RESTORE_SID;  // no RESTORE_PID
  char storage[CR_RSTRT_RELOCATE_SIZE(1)];
  auto* reloc = reinterpret_cast<cr_rstrt_relocate*>(storage);
  reloc->count = 1;
  reloc->path[0].oldpath = "/old";
  reloc->path[0].newpath = "/new";
  a.cr_relocate = reloc;
  // cr_restart's output is the restored processes' stdio: it is not captured. Have the stand-in
  // write its arguments to a file instead.
  std::string out = dir_ + "/restart.out";
  std::ofstream(tool_) << "#!/bin/sh\necho \"$*\" > " << out << "\n";
  cr_restart_handle_t h;
  ASSERT_EQ(cr_request_restart(&a, &h), 0) << cr_strerror(errno);
  close(fd);
  ASSERT_EQ(cr_poll_restart(&h, nullptr), 1);
  EXPECT_EQ(slurp("restart.out"), "--detach --fd " + std::to_string(fd) +
                                      " --no-restore-pid --restore-sid --signal 10 --relocate /old=/new\n");
}

}  // namespace
}  // namespace crbox::libcr_test
