// /proc/PID/timers (proc(5)): the POSIX timers (timer_create(2)) of a process, four lines each:
//   ID: 1
//   signal: 14/0000000000abcdef      signal number / sigev_value (hexadecimal)
//   notify: signal/pid.1234          "signal", "none" (or "thread"), then "pid" or "tid" (the
//                                    SIGEV_THREAD_ID flag) and the target in /proc's pid namespace
//   ClockID: 1
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace crbox::proc {

struct TimerInfo {
  int32_t id = 0;
  int32_t signo = 0;
  uint64_t sigval = 0;
  int32_t notify = 0;   // SIGEV_SIGNAL, SIGEV_NONE or SIGEV_THREAD, | SIGEV_THREAD_ID for "tid"
  int32_t target = 0;   // the pid or tid after the '.', as /proc's namespace numbers it (0: gone)
  int32_t clockid = 0;  // may be negative: the CPU clock of a given process or thread
};

// Throws crbox::Error on malformed text.
std::vector<TimerInfo> parse_timers(std::string_view text);

}  // namespace crbox::proc
