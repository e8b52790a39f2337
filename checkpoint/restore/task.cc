// Plain per-process state, set by the new process itself: cwd, umask, resource limits,
// personality (personality(2)).
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

void apply_task_in_child(const model::Process& p, bool cwd_done) {
  if (!cwd_done && !p.cwd.empty() && chdir(p.cwd.c_str()) != 0)
    throw_errno("changing to the working directory " + p.cwd);
  umask(p.umask);
  for (const auto& r : p.rlimits) {
    rlimit lim{r.cur, r.max};
    if (setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) != 0)
      throw_errno("restoring resource limit " + std::to_string(r.resource));
  }
  if (personality(p.personality) < 0) throw_errno("restoring the personality");
}

}  // namespace crbox::restore
