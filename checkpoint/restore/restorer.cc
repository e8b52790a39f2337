#include "checkpoint/restore/restorer.h"

#include <signal.h>
#include <sys/wait.h>
#include <mqueue.h>
#include <unistd.h>

#include <functional>

#include "checkpoint/image/bundle.h"
#include "checkpoint/restore/apply.h"
#include "checkpoint/restore/sandbox.h"
#include "checkpoint/restore/tree.h"
#include "util/error.h"

namespace crbox::restore {

int restart(const RestoreOptions& opt, int fd, const std::string& name,
            const std::function<void(const Restored&)>& on_restored) {
  image::BundleReader reader(fd, name);
  reader.read_header();
  model::Image img = reader.read_model();
  relocate_paths(img, opt.relocate);
  if (img.processes.empty()) throw Error(name + " holds no process");
  if (img.processes[0].zombie) throw Error(name + ": its first process is a zombie; there is nothing to run");
  if (!opt.restore_pid && img.processes.size() > 1)
    throw Error("--no-restore-pid restarts a single process; " + name + " holds " +
                std::to_string(img.processes.size()));
  // Paths as the processes saw them; in a sandbox, under its rootfs, and its private /tmp and
  // /proc are not visible from here.
  std::function<std::string(const std::string&)> host_path = [](const std::string& s) { return s; };
  if (img.sandbox) {
    std::string root = img.sandbox->spec.rootfs;
    host_path = [root](const std::string& s) -> std::string {
      if (s.rfind("/tmp/", 0) == 0 || s.rfind("/proc/", 0) == 0) return "";
      return root.empty() ? s : root + s;
    };
  }
  for (const auto& p : img.processes) {
    if (p.zombie) continue;
    check_memory_sources(p, host_path, opt.accept_changed_files);
    check_file_sources(p, host_path, opt.accept_changed_files);
  }
  int stop_signal = opt.after_signal;
  if (img.sandbox) return restart_sandboxed(opt, img, reader, stop_signal, on_restored);

  bool omit = opt.omit == RestoreOptions::Omit::always || (opt.omit == RestoreOptions::Omit::maybe && !opt.restore_sid);
  if (omit) omit_self_from_checkpoints();
  // Queues this restart makes in the host's namespace go again if it fails.
  std::vector<std::string> queues = restore_mqueues(img.ipc, false);
  auto unlink_queues = [&queues] {
    for (const auto& q : queues) mq_unlink(q.c_str());
  };
  TreePlan plan;
  plan.img = &img;
  plan.opt = opt;
  UniqueFd sync_read;
  try {
    plan.files.contents = receive_contents(img, reader);  // the file contents follow the model
    sync_read.reset(prepare_tree(plan));
  } catch (...) {
    unlink_queues();
    throw;
  }
  // The roots (one, or several for a process group or session) are cr_restart's children; the
  // first is the image's root, whose status cr_restart exits with.
  std::vector<pid_t> roots;
  auto kill_roots = [&roots] {
    // A root's death takes every process it made with it (PR_SET_PDEATHSIG).
    for (pid_t r : roots) {
      kill(r, SIGKILL);
      waitpid(r, nullptr, 0);
    }
  };
  try {
    for (size_t idx : plan.children[0]) roots.push_back(spawn_process(plan, idx));
  } catch (...) {
    kill_roots();
    unlink_queues();
    throw;
  }
  pid_t root = roots.front();
  for (int fd : plan.inherited_fds()) close(fd);
  try {
    restore_tree(plan, sync_read.get(), reader, true, host_pid_in_tree, root, stop_signal);
  } catch (...) {
    kill_roots();
    unlink_queues();
    throw;
  }
  Restored r{root, root};
  if (on_restored) on_restored(r);
  return wait_forwarding_signals(root);
}

}  // namespace crbox::restore
