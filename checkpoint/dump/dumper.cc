#include "checkpoint/dump/dumper.h"

#include <dirent.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "checkpoint/dump/collect.h"
#include "checkpoint/dump/sandbox.h"
#include "checkpoint/image/bundle.h"
#include "checkpoint/proc/maps.h"
#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/stat.h"
#include "checkpoint/proc/status.h"
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
  uint64_t vdso_start = 0, vdso_end = 0;
  for (const auto& m : maps)
    if (m.path == "[vdso]") vdso_start = m.start, vdso_end = m.end;
  RemoteSession rs(pid, vdso_start, vdso_end);
  collect_securebits(rs, p);
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

}  // namespace

void check_dumpable(pid_t pid, const DumpOptions& opt) {
  if (pid <= 0) throw Error("invalid pid " + pid_s(pid));
  auto stat_text = try_read_file("/proc/" + pid_s(pid) + "/stat");
  if (!stat_text) throw Error("no process with pid " + pid_s(pid));
  auto st = proc::parse_stat(*stat_text);
  if (st.flags & kPfKthread) throw Error("pid " + pid_s(pid) + " (" + st.comm + ") is a kernel thread; only user processes can be checkpointed");
  if (pid == 1) throw Error("pid 1 is the system's init; crbox does not checkpoint it");
  if (pid == getpid()) throw Error("cr_checkpoint cannot checkpoint itself");
  if (pid == getppid()) throw Error("pid " + pid_s(pid) + " is cr_checkpoint's own parent; it cannot be checkpointed from inside");
  if (st.state == 'Z' || st.state == 'X') throw Error("pid " + pid_s(pid) + " is a zombie (it has exited)");
  auto status = proc::parse_status(read_file("/proc/" + pid_s(pid) + "/status"));
  if (status.tracer_pid != 0 && opt.ptraced != TracedPolicy::allow)
    throw Error("pid " + pid_s(pid) + " is already traced by pid " + pid_s(status.tracer_pid) +
                " (a debugger?); detach it first");
  if (opt.ptracer == TracedPolicy::error) {
    if (pid_t tracee = traced_by(pid))
      throw Error("pid " + pid_s(pid) + " is tracing pid " + pid_s(tracee) + " (a debugger?); crbox cannot take a tracer");
  }
  if (sandbox_init_of(pid)) throw Error("pid " + pid_s(pid) + " is the init of a crbox sandbox; checkpoint its application's pid instead");
  if (opt.scope == Scope::tree && !children_of(pid).empty())
    throw Error("pid " + pid_s(pid) + " has child processes; checkpointing process trees is not supported yet (use --pid to take it alone)");
}

DumpStats checkpoint(const DumpOptions& opt, int out_fd, const std::string& out_name,
                     const std::function<void()>& before_release) {
  auto t0 = std::chrono::steady_clock::now();
  if (opt.scope == Scope::pgid || opt.scope == Scope::sid)
    throw Error("checkpointing by process group or session is not supported yet; name a pid");
  pid_t pid = opt.id;
  check_dumpable(pid, opt);
  auto sandbox = sandbox_of(pid);

  DumpStats stats;
  FrozenProcess fp(pid, sandbox ? &sandbox->cgroups : nullptr);
  model::Image img;
  utsname u{};
  uname(&u);
  img.hostname = u.nodename;
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  img.created_unix_ns = static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  img.processes.push_back(dump_one(pid, fp));
  for (const auto& p : img.processes) collect_pipes(p.host_pid, p, img.pipes);
  img.root_pid = img.processes[0].pid;
  if (sandbox) {
    img.sandbox = sandbox->sandbox;
    img.sandbox->time = sandbox_clocks(pid);
    // Inside a sandbox the parent is the crbox init, pid 1 of its namespace.
    img.processes[0].ppid = 1;
  }

  image::BundleWriter w(out_fd, out_name);
  image::Header h;
  h.arch = "x86_64";
  h.page_size = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  h.kernel_release = u.release;
  w.write_header(h);
  w.write_model(img);
  for (auto& p : img.processes) stats.pages += dump_pages(p.host_pid, p, w);
  w.finish();
  stats.bytes = w.totals().bytes;
  stats.processes = static_cast<int32_t>(img.processes.size());
  if (before_release) before_release();
  stats.frozen_us = fp.frozen_us();
  fp.release(opt.after_signal);
  stats.total_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  return stats;
}

}  // namespace crbox::dump
