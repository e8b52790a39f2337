// cr_restart's engine: read and check the bundle, recreate the process (in a fresh sandbox when
// the image came from one), and hand it back running.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace crbox::restore {

struct RestoreOptions {
  bool restore_pid = true;
  bool restore_pgid = false;
  bool restore_sid = false;
  int after_signal = 0;  // sent as the process is let go (--stop, --kill, ...); 0: it runs
  bool verbose = false;
  // --relocate OLD=NEW, in order: paths under OLD are looked for under NEW.
  std::vector<std::pair<std::string, std::string>> relocate;
  // --accept-changed-files: a file whose size or mtime changed since the checkpoint is used anyway.
  bool accept_changed_files = false;
  // BLCR's --omit-maybe (default) / --omit-always / --omit-never: whether cr_restart leaves itself
  // out of later checkpoints of the processes it restored (maybe: unless they got their own
  // session back, --restore-sid, so nothing can take cr_restart with them by group or session).
  enum class Omit { maybe, always, never } omit = Omit::maybe;
};

struct Restored {
  pid_t pid = 0;       // host pid of the restored process
  pid_t waitable = 0;  // our child to wait for: the process itself, or the sandbox launcher's init
};

// Restores the bundle read from `fd` (named `name` in messages). All-or-nothing: on failure no
// restored process remains and crbox::Error says why. For an unsandboxed image the restored
// process is a child of the caller. `on_restored` runs once it runs (for --run-on-success etc.).
// Returns the exit status to exit with once the restored process (or sandbox) ends.
int restart(const RestoreOptions& opt, int fd, const std::string& name,
            const std::function<void(const Restored&)>& on_restored);

}  // namespace crbox::restore
