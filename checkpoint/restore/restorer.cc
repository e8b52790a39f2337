#include "checkpoint/restore/restorer.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <future>

#include "checkpoint/image/bundle.h"
#include "checkpoint/restore/apply.h"
#include "checkpoint/restore/puppet.h"
#include "checkpoint/restore/sandbox.h"
#include "util/error.h"

namespace crbox::restore {

namespace {

// What the new process does for itself before it stops.
void child_setup(const model::Image& img, const model::Process& p, const RestoreOptions& opt, int sync_fd) {
  if (opt.restore_sid && p.sid == p.pid) {
    if (setsid() < 0) throw_errno("setsid");
  } else if (opt.restore_pgid && p.pgid == p.pid) {
    if (setpgid(0, 0) < 0) throw_errno("setpgid");
  }
  apply_files_in_child(p, img.pipes, sync_fd);
  apply_task_in_child(p);
}

}  // namespace

void restore_into(Puppet& pp, const model::Process& p, image::BundleReader& reader, int stop_signal) {
  pp.take_control();
  replace_address_space(pp, p);
  // Read (and checksum) the next batch while this one is written into the process.
  auto read_next = [&reader] { return std::async(std::launch::async, [&reader] { return reader.next_pages(); }); };
  auto next = read_next();
  for (;;) {
    auto batch = next.get();
    if (!batch) break;
    next = read_next();
    if (batch->pid != p.pid)
      throw Error("the image's page data names pid " + std::to_string(batch->pid) + ", which it does not hold");
    fill_pages(pp, *batch);
  }
  finish_address_space(pp, p);
  apply_signals(pp, p);
  apply_timers(pp, p);
  const model::Thread& leader = p.threads.at(0);
  apply_thread_state(pp, pp.injector(), leader);
  std::vector<pid_t> hosts;
  // The other threads, each at its tid, created from the leader once the address space is whole.
  for (size_t i = 1; i < p.threads.size(); i++) {
    pid_t host = pp.create_thread(p.threads[i].tid);
    apply_thread_state(pp, pp.thread_injector(host), p.threads[i]);
    hosts.push_back(host);
  }
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
  pp.release(leader, stop_signal);
}

int restart(const RestoreOptions& opt, int fd, const std::string& name,
            const std::function<void(const Restored&)>& on_restored) {
  image::BundleReader reader(fd, name);
  reader.read_header();
  model::Image img = reader.read_model();
  if (img.processes.size() != 1)
    throw Error(name + " holds " + std::to_string(img.processes.size()) +
                " processes; restarting process trees is not supported yet");
  const model::Process& p = img.processes[0];
  // Paths as the process saw them; in a sandbox, under its rootfs, and its private /tmp and /proc
  // are not visible from here.
  std::function<std::string(const std::string&)> host_path = [](const std::string& s) { return s; };
  if (img.sandbox) {
    std::string root = img.sandbox->spec.rootfs;
    host_path = [root](const std::string& s) -> std::string {
      if (s.rfind("/tmp/", 0) == 0 || s.rfind("/proc/", 0) == 0) return "";
      return root.empty() ? s : root + s;
    };
  }
  check_memory_sources(p, host_path);
  check_file_sources(p, host_path);
  int stop_signal = opt.after_signal;

  if (img.sandbox) return restart_sandboxed(opt, img, reader, stop_signal, on_restored);

  uint64_t tramp = choose_trampoline(p);
  Puppet pp(opt.restore_pid ? p.pid : 0, tramp, [&](int sync_fd) { child_setup(img, p, opt, sync_fd); });
  restore_into(pp, p, reader, stop_signal);
  Restored r{pp.pid(), pp.pid()};
  if (on_restored) on_restored(r);
  return wait_forwarding_signals(pp.pid());
}

}  // namespace crbox::restore
