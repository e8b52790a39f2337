// Interval timers (setitimer(2)) and POSIX timers (timer_create(2)), armed with the time that
// remained at the checkpoint. Runs once every thread of the process exists: a timer may signal one
// thread (SIGEV_THREAD_ID).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

// prctl(2) PR_TIMER_CREATE_RESTORE_IDS (Linux 6.16; the installed headers predate it): while on,
// timer_create(2) reads the id it should give the new timer from *timerid, and fails with EBUSY if
// that id is taken. Values as in include/uapi/linux/prctl.h.
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif

namespace crbox::restore {

namespace {

timespec ts_of(uint64_t ns) { return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}; }

void apply_posix_timers(Puppet& pp, const model::Process& p) {
  if (p.posix_timers.empty()) return;
  long r = pp.call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0);
  if (r == -EINVAL)
    throw Error("this kernel cannot recreate POSIX timers at their ids (needs Linux 6.16)", FailureKind::environment);
  if (r < 0) throw_errno("prctl PR_TIMER_CREATE_RESTORE_IDS", static_cast<int>(-r));
  // Threads are at their image tids in the process's namespace; the leader may not be
  // (--no-restore-pid), so it is asked.
  const int32_t leader_image = p.threads.empty() ? p.pid : p.threads.front().tid;
  long leader_now = pp.check("gettid", SYS_gettid);
  for (const auto& t : p.posix_timers) {
    std::string what = "recreating POSIX timer " + std::to_string(t.id);
    sigevent sev;
    std::memset(&sev, 0, sizeof sev);
    sev.sigev_notify = t.notify;
    sev.sigev_signo = t.signo;
    sev.sigev_value.sival_ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(t.sigval));
    if (t.notify & SIGEV_THREAD_ID) sev._sigev_un._tid = t.tid == leader_image ? static_cast<pid_t>(leader_now) : t.tid;
    int32_t id = t.id;  // the id wanted, read by the kernel while restore-ids is on
    uint64_t sev_addr = pp.put(&sev, sizeof sev, 0);
    uint64_t id_addr = pp.put(&id, sizeof id, 512);
    r = pp.call(SYS_timer_create, static_cast<uint64_t>(t.clockid), sev_addr, id_addr);
    if (r == -EBUSY) throw Error(what + ": its id is taken");
    if (r < 0) throw_errno(what, static_cast<int>(-r));
    // Relative to now, with what was left. (An armed timer never shows 0 left: timer_gettime
    // reports at least 1ns while its signal is due, see common_timer_get in posix-timers.c.)
    if (t.value_ns) {
      itimerspec its{ts_of(t.interval_ns), ts_of(t.value_ns)};
      uint64_t its_addr = pp.put(&its, sizeof its, 1024);
      pp.check(what + ": timer_settime", SYS_timer_settime, static_cast<uint64_t>(t.id), 0, its_addr, 0);
    }
  }
  pp.check("prctl PR_TIMER_CREATE_RESTORE_IDS off", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
           PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0);
}

}  // namespace

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
  apply_posix_timers(pp, p);
}

}  // namespace crbox::restore
