#include "checkpoint/restore/tree.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <memory>

#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/status.h"
#include "checkpoint/restore/puppet.h"
#include "checkpoint/restore/sandbox.h"
#include "runtime/signals.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::restore {

namespace {

constexpr size_t kReportMax = 480;  // one report is a single write below PIPE_BUF: atomic (pipe(7))

[[noreturn]] void exit_like(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    raise(sig);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
}

void spawn_orphan(const TreePlan& plan, size_t idx);

[[noreturn]] void tree_child_main(const TreePlan& plan, size_t idx, bool orphan) {
  const model::Process& p = plan.img->processes[idx];
  auto report = [&](const std::string& what) {
    std::string line = std::to_string(p.pid) + " " + what;
    if (line.size() > kReportMax) line.resize(kReportMax);
    line += '\n';
    ssize_t r = write(plan.sync_fd, line.data(), line.size());
    (void)r;
  };
  try {
    // If cr_restart (or the process that made this one) dies first, so does the half-made one.
    // (Not for an orphan, whose maker exits on purpose; it dies with the sandbox's init.)
    if (!orphan) prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Signals sent while the process is being made wait, blocked, for the image's own mask and
    // handlers (set last, as it is let go); a default action now would kill it half-made, and its
    // maker's handlers (the sandbox init's, which forward signals) must not take one either. It
    // was cloned with every signal blocked already (spawn_process), so none gets through here.
    if (plan.sandboxed) runtime::reset_signal_handlers();
    bool root = p.pid == plan.img->root_pid;
    // Sessions and groups: a leader makes its own before its children are made, so they inherit
    // it. Outside a sandbox the root joins cr_restart's unless asked (--restore-sid/-pgid).
    bool want_sid = plan.sandboxed || !root || plan.opt.restore_sid;
    // (A root whose group other processes of the image share leads it again in any case.)
    bool want_pgid = plan.sandboxed || !root || plan.opt.restore_pgid || plan.shared_groups.count(p.pid);
    if (want_sid && p.sid == p.pid) {
      if (setsid() < 0) throw_errno("setsid");
    } else if (want_pgid && p.pgid == p.pid) {
      if (setpgid(0, 0) < 0) throw_errno("setpgid");
    }
    if (plan.sandboxed) take_console_foreground(p);  // a sandbox's terminal (console.cc)
    if (p.zombie) {
      prctl(PR_SET_NAME, p.comm.substr(0, 15).c_str());
      exit_like(p.exit_status);
    }
    auto kids = plan.children.find(p.pid);
    if (kids != plan.children.end())
      for (size_t c : kids->second) spawn_process(plan, c);
    auto orphans = plan.orphans_by_session.find(p.pid);
    if (orphans != plan.orphans_by_session.end())
      for (size_t o : orphans->second) spawn_orphan(plan, o);
    auto cwd = plan.cwd_fds.find(p.pid);
    if (cwd != plan.cwd_fds.end() && fchdir(cwd->second) != 0) throw_errno("changing to the working directory " + p.cwd);
    apply_files_in_child(p, plan.files, {plan.sync_fd});
    apply_task_in_child(p, cwd != plan.cwd_fds.end());
    map_trampoline(plan.trampoline);
  } catch (const std::exception& e) {
    report(std::string("err ") + e.what());
    _exit(1);
  }
  report("ok");
  for (;;) pause();
}

// Makes orphan `idx` through a helper that exits at once (see TreePlan::orphans_by_session).
void spawn_orphan(const TreePlan& plan, size_t idx) {
  const model::Process& x = plan.img->processes[idx];
  bool leaderless = x.pgid != x.pid;
  for (const auto& q : plan.img->processes) leaderless = leaderless && q.pid != x.pgid;
  pid_t h = clone_with_pid(leaderless ? x.pgid : 0);
  if (h == 0) {
    try {
      if (leaderless && setpgid(0, 0) != 0) _exit(1);
      spawn_process(plan, idx, /*orphan=*/true);
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  int st = 0;
  while (waitpid(h, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    throw Error("could not recreate the orphan pid " + std::to_string(x.pid) + " in its session");
}

// Page batches in bundle order, read ahead on another thread, with one batch of look-ahead so a
// restore can tell where one process's pages end.
class BatchStream {
 public:
  explicit BatchStream(image::BundleReader& r) : r_(r) { start(); }
  ~BatchStream() {
    if (next_.valid()) next_.wait();
  }
  const image::PageBatch* peek() {
    if (!have_ && !done_) {
      peeked_ = next_.get();
      if (peeked_) {
        have_ = true;
        start();
      } else {
        done_ = true;
      }
    }
    return have_ ? &*peeked_ : nullptr;
  }
  void pop() { have_ = false; }

 private:
  // The reader keeps two buffers: the batch in hand stays valid while the next one is read.
  void start() {
    next_ = std::async(std::launch::async, [this] { return r_.next_pages(); });
  }
  image::BundleReader& r_;
  std::future<std::optional<image::PageBatch>> next_;
  std::optional<image::PageBatch> peeked_;
  bool have_ = false, done_ = false;
};

// Everything of one process but its release: memory, signals, timers, threads, credentials.
void restore_state(Puppet& pp, const model::Process& p, BatchStream& batches, SharedMemory& shared,
                   const std::map<uint64_t, int>& contents) {
  replace_address_space(pp, p, shared, contents);
  while (const image::PageBatch* b = batches.peek()) {
    if (b->pid != p.pid) break;
    fill_pages(pp, *b);
    batches.pop();
  }
  finish_address_space(pp, p, contents);
  apply_signals(pp, p);
  const model::Thread& leader = p.threads.at(0);
  apply_thread_state(pp, pp.injector(), leader);
  std::vector<pid_t> hosts;
  // The other threads, each at its tid, created from the leader once the address space is whole.
  for (size_t i = 1; i < p.threads.size(); i++) {
    pid_t host = pp.create_thread(p.threads[i].tid);
    apply_thread_state(pp, pp.thread_injector(host), p.threads[i]);
    hosts.push_back(host);
  }
  // Timers once every thread exists: a POSIX timer may signal one thread (SIGEV_THREAD_ID).
  apply_timers(pp, p);
  // The process's seccomp filters (the sandbox's policy among them), before the privilege to load
  // them goes with the credentials.
  apply_seccomp_filters(pp, p);
  pp.check("closing the restore channel", SYS_close, static_cast<uint64_t>(pp.child_sync_fd()));
  pp.check("PR_SET_PDEATHSIG", SYS_prctl, PR_SET_PDEATHSIG, 0);
  // Credentials last: each step may drop a privilege the restore still needs (clone3 with set_tid
  // needs CAP_CHECKPOINT_RESTORE). They are per task, so every thread gets them.
  for (size_t i = 0; i < hosts.size(); i++) {
    apply_creds(pp, pp.thread_injector(hosts[i]), p.creds);
    pp.finish_thread(hosts[i], p.threads[i + 1]);
  }
  apply_creds(pp, pp.injector(), p.creds);
  for (const auto& ps : p.shared_pending) {
    if (ps.siginfo.size() != sizeof(siginfo_t)) continue;
    siginfo_t si;
    std::memcpy(&si, ps.siginfo.data(), sizeof si);
    if (syscall(SYS_rt_sigqueueinfo, pp.pid(), si.si_signo, &si) != 0) kill(pp.pid(), si.si_signo);
  }
}

}  // namespace

std::set<int> TreePlan::inherited_fds() const {
  std::set<int> out;
  if (sync_fd >= 0) out.insert(sync_fd);
  for (auto& [id, ends] : files.pipes) out.insert(ends.first), out.insert(ends.second);
  for (auto& [k, fd] : files.objects) out.insert(fd);
  for (auto& [k, fd] : files.contents) out.insert(fd);
  for (auto& [k, fd] : cwd_fds) out.insert(fd);
  for (auto& [k, fd] : fifo_holders) out.insert(fd);
  return out;
}

void open_shared_objects(TreePlan& plan) {
  std::set<uint64_t> refilled;
  for (const auto& p : plan.img->processes) {
    for (const auto& f : p.fds) {
      if (f.kind != model::FdKind::fifo || plan.fifo_holders.count(f.path)) continue;
      int fd = open(f.path.c_str(), O_RDWR | O_NONBLOCK);
      if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + " of pid " + std::to_string(p.pid) + ": the named pipe " + f.path);
      int high = fcntl(fd, F_DUPFD, plan.fd_base);
      close(fd);
      if (high < 0) throw_errno("fcntl F_DUPFD");
      plan.fifo_holders[f.path] = high;
      if (!refilled.insert(f.pipe_id).second) continue;
      for (const auto& pd : plan.img->pipes)
        if (pd.id == f.pipe_id && !pd.data.empty()) write_all(high, pd.data.data(), pd.data.size(), "refilling " + f.path);
    }
  }
  auto& objects = plan.files.objects;
  make_socket_pairs(*plan.img, objects, plan.fd_base);
  // Descriptions held by several fds (dup(2), inherited across fork(2)): made once, here.
  std::map<uint64_t, int> holders;
  for (const auto& p : plan.img->processes)
    for (const auto& f : p.fds)
      if (f.desc_id && f.kind != model::FdKind::stdio && f.kind != model::FdKind::pipe) holders[f.desc_id]++;
  for (const auto& p : plan.img->processes)
    for (const auto& f : p.fds) {
      if (!f.desc_id || f.kind == model::FdKind::stdio || f.kind == model::FdKind::pipe) continue;
      if (holders[f.desc_id] < 2 || objects.count(f.desc_id)) continue;
      int fd = make_fd(f, plan.files.contents);
      int high = fcntl(fd, F_DUPFD, plan.fd_base);  // not O_CLOEXEC: inherited
      close(fd);
      if (high < 0) throw_errno("fcntl F_DUPFD");
      objects[f.desc_id] = high;
    }
}

int prepare_tree(TreePlan& plan) {
  const model::Image& img = *plan.img;
  // The new processes' own descriptors sit above every number the image uses.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  int top = 2;
  std::set<int32_t> pids;
  for (const auto& p : img.processes) pids.insert(p.pid);
  for (size_t i = 0; i < img.processes.size(); i++) {
    const auto& p = img.processes[i];
    for (const auto& f : p.fds) top = std::max(top, f.fd);
    if (p.pgid != p.pid) plan.shared_groups.insert(p.pgid);
    if (plan.sandboxed && p.ppid == 1 && p.sid != 1 && p.sid != p.pid && pids.count(p.sid))
      plan.orphans_by_session[p.sid].push_back(i);
    else
      plan.children[p.ppid].push_back(i);
  }
  const int base = std::max(top + 1, 100);
  plan.fd_base = base;
  plan.trampoline = choose_trampoline(img);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
  plan.sync_fd = fcntl(fds[1], F_DUPFD, base);
  close(fds[1]);
  if (plan.sync_fd < 0) throw_errno("fcntl F_DUPFD");
  // plan.files.contents holds the memfds receive_contents filled; they move up to `base`.
  plan.files.contents = make_contents(img.contents, std::move(plan.files.contents), base);
  plan.libcr_pages = keep_libcr_pages(img, plan.files.contents);
  plan.files.pipes = make_pipe_table(img.pipes, base);
  if (!plan.sandboxed) open_shared_objects(plan);
  if (plan.sandboxed) {
    for (const auto& p : img.processes) {
      if (p.zombie) continue;
      // Files on mounts outside the sandbox's mount namespace: opened here, where they are visible.
      for (const auto& f : p.fds) {
        if (!f.outside || f.content_id || f.kind == model::FdKind::stdio || f.kind == model::FdKind::pipe ||
            plan.files.objects.count(f.desc_id))
          continue;
        int fd = make_fd(f, plan.files.contents);
        int high = fcntl(fd, F_DUPFD, base);  // not O_CLOEXEC: inherited through the sandbox's init
        close(fd);
        if (high < 0) throw_errno("fcntl F_DUPFD");
        plan.files.objects[f.desc_id] = high;
      }
      if (p.cwd_outside) {
        int cfd = open(p.cwd.c_str(), O_PATH | O_DIRECTORY);  // inherited through the sandbox's init
        if (cfd < 0) throw_errno("the working directory " + p.cwd, errno);
        int high = fcntl(cfd, F_DUPFD, base);
        close(cfd);
        plan.cwd_fds[p.pid] = high;
      }
    }
  }
  return fds[0];
}

pid_t spawn_process(const TreePlan& plan, size_t idx, bool orphan) {
  const model::Process& p = plan.img->processes[idx];
  // The new process exists (and can be sent signals: its pid is known) from the clone on; it
  // starts with every signal blocked, the mask a child inherits (sigprocmask(2)).
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, &old);
  pid_t c = clone_with_pid(plan.opt.restore_pid ? p.pid : 0);
  if (c == 0) tree_child_main(plan, idx, orphan);
  int err = errno;
  sigprocmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return c;
}

pid_t host_pid_in_tree(const TreePlan& plan, int32_t inner, pid_t anchor) {
  if (!plan.sandboxed) return inner;
  std::vector<pid_t> queue{anchor};
  for (size_t i = 0; i < queue.size(); i++) {
    auto text = try_read_file("/proc/" + std::to_string(queue[i]) + "/task/" + std::to_string(queue[i]) + "/children");
    if (!text) continue;
    for (pid_t c : proc::parse_children(*text)) {
      queue.push_back(c);
      auto st = try_read_file("/proc/" + std::to_string(c) + "/status");
      if (st) {
        auto s = proc::parse_status(*st);
        if (!s.nspid.empty() && s.nspid.back() == inner) return c;
      }
    }
  }
  throw Error("restored process " + std::to_string(inner) + " cannot be found in its sandbox");
}

void restore_tree(const TreePlan& plan, int sync_read, image::BundleReader& reader, bool root_is_child,
                  pid_t (*host_pid_of)(const TreePlan&, int32_t, pid_t), pid_t anchor, int stop_signal) {
  const model::Image& img = *plan.img;
  size_t expected = 0;
  for (const auto& p : img.processes) expected += p.zombie ? 0 : 1;
  pid_t root_host = root_is_child ? anchor : 0;

  // 1. Every new process reports "ok" (or what went wrong) once set up.
  std::set<int32_t> ready;
  std::string buf;
  auto last = std::chrono::steady_clock::now();
  while (ready.size() < expected) {
    pollfd pfd{sync_read, POLLIN, 0};
    int n = poll(&pfd, 1, 200);
    if (n > 0) {
      char tmp[4096];
      ssize_t k = read(sync_read, tmp, sizeof tmp);
      if (k > 0) {
        buf.append(tmp, static_cast<size_t>(k));
        last = std::chrono::steady_clock::now();
      }
    }
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      auto sp = line.find(' ');
      int32_t pid = std::atoi(line.substr(0, sp).c_str());
      std::string what = sp == std::string::npos ? "" : line.substr(sp + 1);
      if (what == "ok") {
        ready.insert(pid);
      } else {
        std::string msg = what.rfind("err ", 0) == 0 ? what.substr(4) : what;
        throw Error((expected > 1 ? "restoring pid " + std::to_string(pid) + ": " : std::string()) + msg,
                    msg.find("in use") != std::string::npos ? FailureKind::temporary : FailureKind::permanent);
      }
    }
    if (root_host > 0) {
      int st = 0;
      if (waitpid(root_host, &st, WNOHANG) == root_host)
        throw Error("the restored process died while it was being set up");
    }
    if (std::chrono::steady_clock::now() - last > std::chrono::seconds(30))
      throw Error(std::to_string(expected - ready.size()) + " of the restored processes did not come up");
  }

  // 2. Seize them all.
  std::vector<std::unique_ptr<Puppet>> puppets;
  std::vector<const model::Process*> procs;
  for (const auto& p : img.processes) {
    if (p.zombie) continue;
    // cr_restart's own children: the roots of an image taken outside a sandbox (several for a
    // process group or session). The first is the anchor (it may have a new pid: --no-restore-pid).
    bool child = root_is_child && p.ppid == 0;
    pid_t host = (child && p.pid == img.root_pid) ? anchor : host_pid_of(plan, p.pid, anchor);
    puppets.push_back(std::make_unique<Puppet>(host, plan.trampoline, UniqueFd(), child));
    puppets.back()->set_child_sync_fd(plan.sync_fd);
    puppets.back()->take_control();
    procs.push_back(&p);
  }
  // 3. Process groups that were not the process's own nor its parent's, where the group's leader
  // is in the image: every such group exists now. (A group led by a process outside the image,
  // such as the shell's, stays the one inherited.)
  std::set<int32_t> led;
  for (const auto& p : img.processes) led.insert(p.pid);
  for (size_t i = 0; i < puppets.size(); i++) {
    if (!led.count(procs[i]->pgid)) continue;
    auto st = proc::parse_status(read_file("/proc/" + std::to_string(puppets[i]->pid()) + "/status"));
    int32_t now = st.nspgid.empty() ? 0 : st.nspgid.back();
    bool root = procs[i]->pid == img.root_pid;
    if (now != procs[i]->pgid && (plan.sandboxed || !root || plan.opt.restore_pgid))
      puppets[i]->check("joining process group " + std::to_string(procs[i]->pgid), SYS_setpgid, 0,
                        static_cast<uint64_t>(procs[i]->pgid));
  }
  // 4. Rebuild each, in the bundle's order.
  BatchStream batches(reader);
  SharedMemory shared;
  for (size_t i = 0; i < puppets.size(); i++)
    restore_state(*puppets[i], *procs[i], batches, shared, plan.files.contents);
  if (const image::PageBatch* b = batches.peek())
    throw Error("the image's page data names pid " + std::to_string(b->pid) + " out of order or unknown");
  // Segments and queues the image had removed while in use go now that all hold them (ipc.cc).
  finish_ipc(img.ipc, plan.sandboxed ? anchor : 0);
  // Callbacks waiting in libcr's cr_checkpoint() will see "restarted" (libcr.cc).
  mark_restarted(plan.libcr_pages, reader.name(), plan.sandboxed ? 0 : getpid());
  // 5. Let them all go, children first.
  for (size_t i = puppets.size(); i-- > 0;) puppets[i]->release(procs[i]->threads.at(0), stop_signal);
}

}  // namespace crbox::restore
