// Interval timers (getitimer(2)), asked of the task itself.
#include <sys/syscall.h>
#include <sys/time.h>

#include "checkpoint/dump/collect.h"
#include "util/error.h"

namespace crbox::dump {

void collect_timers(RemoteSession& rs, model::Process& p) {
  p.itimers.clear();
  for (int which : {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF}) {
    rs.check("getitimer", SYS_getitimer, static_cast<uint64_t>(which), rs.scratch());
    itimerval v{};
    rs.read_scratch(&v, sizeof v);
    if (!v.it_value.tv_sec && !v.it_value.tv_usec && !v.it_interval.tv_sec && !v.it_interval.tv_usec) continue;
    model::Itimer t;
    t.which = which;
    t.interval_us = static_cast<uint64_t>(v.it_interval.tv_sec) * 1000000 + static_cast<uint64_t>(v.it_interval.tv_usec);
    t.value_us = static_cast<uint64_t>(v.it_value.tv_sec) * 1000000 + static_cast<uint64_t>(v.it_value.tv_usec);
    p.itimers.push_back(t);
  }
}

}  // namespace crbox::dump
