#include "checkpoint/dump/dumper.h"

#include <dirent.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "checkpoint/dump/collect.h"
#include "checkpoint/dump/libcr.h"
#include "checkpoint/dump/sandbox.h"
#include "checkpoint/image/bundle.h"
#include "checkpoint/proc/maps.h"
#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/stat.h"
#include "checkpoint/proc/status.h"
#include "util/deadline.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

constexpr uint64_t kPfKthread = 0x00200000;  // PF_KTHREAD in /proc/PID/stat flags (proc(5))

std::string pid_s(pid_t p) { return std::to_string(p); }

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  auto tids = try_read_file("/proc/" + pid_s(pid) + "/task/" + pid_s(pid) + "/children");
  if (tids) out = proc::parse_children(*tids);
  return out;
}

// Translate a task id to the innermost pid namespace of the image.
int32_t inner_tid(pid_t pid, pid_t tid) {
  auto st = try_read_file("/proc/" + pid_s(pid) + "/task/" + pid_s(tid) + "/status");
  if (!st) return tid;
  auto s = proc::parse_status(*st);
  return s.nspid.empty() ? tid : s.nspid.back();
}

model::Process dump_one(pid_t pid, const FrozenProcess& fp) {
  model::Process p;
  collect_task(pid, p);
  auto maps = proc::parse_maps(read_file("/proc/" + pid_s(pid) + "/maps"));
  collect_thread_registers(fp, p);
  collect_files(pid, p);
  collect_seccomp(pid, p);
  uint64_t vdso_start = 0, vdso_end = 0;
  for (const auto& m : maps)
    if (m.path == "[vdso]") vdso_start = m.start, vdso_end = m.end;
  RemoteSession rs(pid, vdso_start, vdso_end);
  collect_securebits(rs, p);
  confirm_cloexec(rs, p);
  collect_signals(pid, rs, p);
  collect_thread_injected(fp, rs, p);
  collect_timers(rs, p);
  collect_memory(pid, maps, rs, p);
  rs.close();
  for (auto& t : p.threads) t.tid = inner_tid(pid, t.tid);
  return p;
}

// A task that `pid` traces, or 0 (TracerPid in /proc/*/status, proc(5)).
pid_t traced_by(pid_t pid) {
  DIR* d = opendir("/proc");
  if (!d) return 0;
  pid_t found = 0;
  while (dirent* e = readdir(d)) {
    auto v = parse_u64(e->d_name);
    if (!v) continue;
    auto text = try_read_file(std::string("/proc/") + e->d_name + "/status");
    if (!text) continue;
    auto pos = text->find("TracerPid:");
    if (pos == std::string::npos) continue;
    auto tracer = parse_i64(trim(std::string_view(*text).substr(pos + 10, text->find('\n', pos) - pos - 10)));
    if (tracer && *tracer == pid) {
      found = static_cast<pid_t>(*v);
      break;
    }
  }
  closedir(d);
  return found;
}

bool requested_by(pid_t pid) {
  const char* r = getenv("CRBOX_REQUESTER");
  return r && parse_u64(r) == static_cast<uint64_t>(pid);
}

}  // namespace

void check_dumpable(pid_t pid, const DumpOptions& opt) {
  if (pid <= 0) throw Error("invalid pid " + pid_s(pid), Cause::no_process);
  auto stat_text = try_read_file("/proc/" + pid_s(pid) + "/stat");
  if (!stat_text) throw Error("no process with pid " + pid_s(pid), Cause::no_process);
  auto st = proc::parse_stat(*stat_text);
  if (st.flags & kPfKthread) throw Error("pid " + pid_s(pid) + " (" + st.comm + ") is a kernel thread; only user processes can be checkpointed", Cause::permission);
  if (pid == 1) throw Error("pid 1 is the system's init; crbox does not checkpoint it", Cause::permission);
  if (pid == getpid()) throw Error("cr_checkpoint cannot checkpoint itself");
  // A process asking for its own checkpoint (libcr's cr_request_checkpoint) runs cr_checkpoint as
  // its child and says so with CRBOX_REQUESTER; cr_checkpoint then leaves itself out of the tree.
  if (pid == getppid() && !requested_by(pid))
    throw Error("pid " + pid_s(pid) + " is cr_checkpoint's own parent; it cannot be checkpointed from inside");
  if (st.state == 'Z' || st.state == 'X') throw Error("pid " + pid_s(pid) + " is a zombie (it has exited)", Cause::no_process);
  auto status = proc::parse_status(read_file("/proc/" + pid_s(pid) + "/status"));
  if (status.tracer_pid != 0 && opt.ptraced != TracedPolicy::allow)
    throw Error("pid " + pid_s(pid) + " is already traced by pid " + pid_s(status.tracer_pid) +
                " (a debugger?); detach it first", Cause::ptraced);
  if (opt.ptracer == TracedPolicy::error) {
    if (pid_t tracee = traced_by(pid))
      throw Error("pid " + pid_s(pid) + " is tracing pid " + pid_s(tracee) + " (a debugger?); crbox cannot take a tracer", Cause::ptracer);
  }
  if (sandbox_init_of(pid)) throw Error("pid " + pid_s(pid) + " is the init of a crbox sandbox; checkpoint its application's pid instead", Cause::permission);
}

namespace {

// `root` and its descendants, parents before children (breadth first).
std::vector<pid_t> descendants(pid_t root, bool include_root) {
  std::vector<pid_t> out;
  if (include_root) out.push_back(root);
  std::vector<pid_t> queue{root};
  for (size_t i = 0; i < queue.size(); i++) {
    for (pid_t c : children_of(queue[i])) {
      out.push_back(c);
      queue.push_back(c);
    }
  }
  return out;
}

// Every process whose process group (or session) is `id`, each parent before its children.
std::vector<pid_t> members(pid_t id, bool session) {
  std::map<pid_t, pid_t> parent;
  DIR* d = opendir("/proc");
  if (!d) throw_errno("/proc");
  while (dirent* e = readdir(d)) {
    auto v = parse_u64(e->d_name);
    if (!v) continue;
    auto text = try_read_file(std::string("/proc/") + e->d_name + "/stat");
    if (!text) continue;
    auto st = proc::parse_stat(*text);
    if ((session ? st.session : st.pgrp) == id) parent[static_cast<pid_t>(*v)] = st.ppid;
  }
  closedir(d);
  std::vector<pid_t> out;
  for (auto& [p, pp] : parent)
    if (!parent.count(pp)) out.push_back(p);  // roots of the set
  for (size_t i = 0; i < out.size(); i++)
    for (auto& [p, pp] : parent)
      if (pp == out[i]) out.push_back(p);
  return out;
}

// A zombie keeps only its ids, name and wait status.
model::Process dump_zombie(pid_t pid) {
  model::Process p;
  auto st = proc::parse_status(read_file("/proc/" + pid_s(pid) + "/status"));
  auto stat = proc::parse_stat(read_file("/proc/" + pid_s(pid) + "/stat"));
  p.host_pid = pid;
  p.pid = st.nspid.empty() ? pid : st.nspid.back();
  p.pgid = st.nspgid.empty() ? stat.pgrp : st.nspgid.back();
  p.sid = st.nssid.empty() ? stat.session : st.nssid.back();
  p.ppid = stat.ppid;
  p.comm = stat.comm;
  p.zombie = true;
  p.exit_status = stat.exit_code;
  return p;
}

}  // namespace

DumpStats checkpoint(const DumpOptions& opt, int out_fd, const std::string& out_name,
                     const std::function<void()>& before_release) {
  auto t0 = std::chrono::steady_clock::now();
  pid_t pid = opt.id;
  const bool by_group = opt.scope == Scope::pgid || opt.scope == Scope::sid;
  if (by_group) {
    // BLCR's -g/-s: every process of the group or session; the first one stands for the checks.
    auto m = members(opt.id, opt.scope == Scope::sid);
    if (m.empty())
      throw Error("no process in " + std::string(opt.scope == Scope::sid ? "session " : "process group ") + pid_s(opt.id),
                  Cause::no_process);
    pid = m.front();
  }
  check_dumpable(pid, opt);
  auto sandbox = sandbox_of(pid);

  // What to take: a whole sandbox but its init; or the process, with its descendants for --tree.
  std::function<std::vector<pid_t>()> scope;
  if (sandbox) {
    pid_t init = sandbox->init_pid;
    scope = [init] { return descendants(init, false); };
  } else if (by_group) {
    pid_t id = opt.id;
    bool session = opt.scope == Scope::sid;
    scope = [id, session] { return members(id, session); };
  } else if (opt.scope == Scope::pid) {
    scope = [pid] { return std::vector<pid_t>{pid}; };
  } else {
    scope = [pid] { return descendants(pid, true); };
  }
  // Left out: ourselves (a process checkpointing itself through us), and processes libcr says to
  // omit (libcr_omit loaded, or a callback's CR_CHECKPOINT_OMIT).
  std::set<pid_t> left_out{getpid()};
  auto live = [&scope, &left_out] {
    std::vector<pid_t> out;
    for (pid_t p : scope())
      if (!proc::is_exited(p) && !left_out.count(p)) out.push_back(p);
    return out;
  };
  // Every process must be one we may take, before any is touched.
  for (pid_t p : live()) {
    if (p == pid) continue;
    auto status = proc::parse_status(read_file("/proc/" + pid_s(p) + "/status"));
    if (status.tracer_pid != 0 && opt.ptraced != TracedPolicy::allow)
      throw Error("pid " + pid_s(p) + " (in the tree of " + pid_s(pid) + ") is already traced by pid " +
                  pid_s(status.tracer_pid) + "; detach it first", Cause::ptraced);
  }

  // Processes with libcr run their callbacks up to cr_checkpoint() before anything is frozen.
  LibcrSession libcr(live());
  left_out.insert(libcr.omitted().begin(), libcr.omitted().end());
  // Who asked, for cr_get_checkpoint_info(): the process checkpointing itself, or us (a pid the
  // processes can see only outside a sandbox).
  const char* req = getenv("CRBOX_REQUESTER");
  int32_t requester = req ? static_cast<int32_t>(parse_u64(req).value_or(0)) : (sandbox ? 0 : getpid());
  // A process of a sandbox asking through its launcher is named by its host pid: tell the
  // processes the pid they know it by.
  if (sandbox && req && requester > 0) requester = inner_tid(requester, requester);
  libcr.run_callbacks(out_name, opt.after_signal, requester);
  left_out.insert(libcr.omitted().begin(), libcr.omitted().end());
  // cr_forward_checkpoint(): callbacks asked for more processes in this checkpoint (BLCR). In a
  // sandbox every process is taken already.
  std::unique_ptr<LibcrSession> forwarded;
  if (auto fw = libcr.forwards(); !fw.empty() && !sandbox) {
    auto now = live();
    std::vector<pid_t> more;
    for (auto [kind, id] : fw) {
      std::vector<pid_t> got = kind == 0 ? std::vector<pid_t>{id}
                               : kind == 3 ? descendants(id, true)
                                           : members(id, kind == 2);
      if (got.empty() || (kind == 0 && !try_read_file("/proc/" + pid_s(id) + "/stat")))
        throw Error("a callback of pid " + pid_s(pid) + " forwarded the checkpoint to " + pid_s(id) + ", which does not exist",
                    Cause::no_process);
      for (pid_t q : got)
        if (std::find(now.begin(), now.end(), q) == now.end() && std::find(more.begin(), more.end(), q) == more.end() &&
            !left_out.count(q) && !proc::is_exited(q))
          more.push_back(q);
    }
    for (pid_t q : more) check_dumpable(q, opt);
    if (!more.empty()) {
      auto base = scope;
      scope = [base, more] {
        auto v = base();
        for (pid_t q : more)
          if (std::find(v.begin(), v.end(), q) == v.end()) v.push_back(q);
        return v;
      };
      forwarded = std::make_unique<LibcrSession>(more);
      left_out.insert(forwarded->omitted().begin(), forwarded->omitted().end());
      forwarded->run_callbacks(out_name, opt.after_signal, requester);
      left_out.insert(forwarded->omitted().begin(), forwarded->omitted().end());
    }
  }
  if (live().empty()) throw Error("every process of pid " + pid_s(pid) + "'s checkpoint asked to be omitted; there is nothing to save",
                                      Cause::no_process);

  DumpStats stats;
  FrozenTree tree(live, sandbox ? &sandbox->cgroups : nullptr);
  model::Image img;
  utsname u{};
  uname(&u);
  img.hostname = u.nodename;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  img.created_unix_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  check_deadline("freezing the processes");
  for (const auto& fp : tree.processes()) {
    check_deadline("reading the state of pid " + pid_s(fp->pid()));
    img.processes.push_back(dump_one(fp->pid(), *fp));
  }
  for (pid_t p : scope())
    if (proc::is_exited(p) && !left_out.count(p)) img.processes.push_back(dump_zombie(p));

  // Parents as the image's namespace numbers them; the root's parent is the sandbox's init (1) or,
  // outside a sandbox, whoever restarts it (0).
  std::map<pid_t, int32_t> inner;
  for (const auto& p : img.processes) inner[p.host_pid] = p.pid;
  if (sandbox) inner[sandbox->init_pid] = 1;
  // (A process whose parent was left out is a root: made by cr_restart, or by a sandbox's init.)
  for (auto& p : img.processes) p.ppid = inner.count(p.ppid) ? inner[p.ppid] : (sandbox ? 1 : 0);
  img.root_pid = sandbox ? sandbox->app_inner_pid : img.processes[0].pid;
  if (sandbox) {
    img.sandbox = sandbox->sandbox;
    img.sandbox->time = sandbox_clocks(pid);
    img.sandbox->tmp = sandbox_tmp(sandbox->init_pid);
    img.sandbox->console = collect_console_state(sandbox->init_pid, img.processes);
  }
  resolve_pipes(img.processes);
  resolve_sockets(img.processes);
  resolve_descriptions(img.processes);
  for (const auto& p : img.processes)
    if (!p.zombie) collect_pipes(p.host_pid, p, img.pipes);
  auto content_sources = collect_contents(img, SaveOptions{opt.save_exe, opt.save_private, opt.save_shared});
  collect_ipc(img.processes, sandbox ? pid : 0, img.ipc);

  image::BundleWriter w(out_fd, out_name);
  image::Header h;
  h.arch = "x86_64";
  h.page_size = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  h.kernel_release = u.release;
  w.write_header(h);
  w.write_model(img);
  dump_contents(content_sources, w);  // file contents: after the model, before the pages
  for (auto& p : img.processes)
    if (!p.zombie) stats.pages += dump_pages(p.host_pid, p, w);
  w.finish();
  stats.bytes = w.totals().bytes;
  stats.processes = static_cast<int32_t>(img.processes.size());
  if (before_release) before_release();
  libcr.finish();
  if (forwarded) forwarded->finish();
  stats.frozen_us = tree.frozen_us();
  tree.release(opt.after_signal);
  stats.total_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  return stats;
}

}  // namespace crbox::dump
