// Interval timers (setitimer(2)), armed with the time that remained at the checkpoint.
#include <sys/syscall.h>
#include <sys/time.h>

#include "checkpoint/restore/apply.h"

namespace crbox::restore {

void apply_timers(Puppet& pp, const model::Process& p) {
  for (const auto& t : p.itimers) {
    itimerval v{};
    v.it_interval.tv_sec = static_cast<time_t>(t.interval_us / 1000000);
    v.it_interval.tv_usec = static_cast<suseconds_t>(t.interval_us % 1000000);
    v.it_value.tv_sec = static_cast<time_t>(t.value_us / 1000000);
    v.it_value.tv_usec = static_cast<suseconds_t>(t.value_us % 1000000);
    uint64_t addr = pp.put(&v, sizeof v);
    pp.check("restoring an interval timer", SYS_setitimer, static_cast<uint64_t>(t.which), addr, 0);
  }
}

}  // namespace crbox::restore
