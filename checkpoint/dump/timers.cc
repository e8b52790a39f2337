// Interval timers (getitimer(2)) and POSIX timers (timer_create(2)), asked of the task itself.
// /proc/PID/timers (proc(5)) says which POSIX timers exist and how they notify; the time left and
// the period only the process can ask (timer_gettime(2)), so that is injected.
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/status.h"
#include "checkpoint/proc/timers.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

uint64_t ns_of(const timespec& t) {
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

void collect_itimers(RemoteSession& rs, model::Process& p) {
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

void collect_posix_timers(RemoteSession& rs, model::Process& p) {
  p.posix_timers.clear();
  std::string base = "/proc/" + std::to_string(p.host_pid);
  auto text = try_read_file(base + "/timers");
  if (!text) return;  // a kernel without CONFIG_CHECKPOINT_RESTORE: none can be seen
  auto timers = proc::parse_timers(*text);
  for (const auto& t : timers) {
    std::string what = "pid " + std::to_string(p.host_pid) + ": POSIX timer " + std::to_string(t.id);
    // A negative clock id is the CPU clock of a given process or thread (clock_getcpuclockid(3),
    // pthread_getcpuclockid(3)), numbered in the creator's pid namespace.
    if (t.clockid < 0) throw Error(what + " counts the CPU time of a given process or thread, which is not supported");
    // A thread's CPU-time timer counts the thread that made it, which /proc does not say.
    if (t.clockid == CLOCK_THREAD_CPUTIME_ID && p.threads.size() > 1)
      throw Error(what + " counts the CPU time of one thread of a multithreaded process, which is not supported");
    model::PosixTimer m;
    m.id = t.id;
    m.clockid = t.clockid;
    m.notify = t.notify;
    m.signo = t.signo;
    m.sigval = t.sigval;
    if (t.notify & SIGEV_THREAD_ID) {
      // The target thread, numbered in /proc's (our) namespace: in the image's, from its NSpid.
      auto st = t.target > 0 ? try_read_file(base + "/task/" + std::to_string(t.target) + "/status") : std::nullopt;
      if (!st) throw Error(what + " signals thread " + std::to_string(t.target) + ", which has exited");
      auto s = proc::parse_status(*st);
      m.tid = s.nspid.empty() ? t.target : s.nspid.back();
    }
    // timer_gettime(2): the time left and the period, both relative.
    rs.check("timer_gettime", SYS_timer_gettime, static_cast<uint64_t>(t.id), rs.scratch());
    itimerspec v{};
    rs.read_scratch(&v, sizeof v);
    m.value_ns = ns_of(v.it_value);
    m.interval_ns = ns_of(v.it_interval);
    m.overrun = static_cast<int32_t>(rs.check("timer_getoverrun", SYS_timer_getoverrun, static_cast<uint64_t>(t.id)));
    p.posix_timers.push_back(m);
  }
}

}  // namespace

void collect_timers(RemoteSession& rs, model::Process& p) {
  collect_itimers(rs, p);
  collect_posix_timers(rs, p);
}

}  // namespace crbox::dump
