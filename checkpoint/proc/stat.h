// /proc/PID/stat (proc(5)): the fields crbox needs, by their proc(5) names.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace crbox::proc {

struct Stat {
  int32_t pid = 0;
  std::string comm;  // without the parentheses; may contain spaces and ')'
  char state = '?';
  int32_t ppid = 0, pgrp = 0, session = 0, tty_nr = 0;
  uint64_t flags = 0;
  int64_t num_threads = 0;
  uint64_t starttime = 0;
  uint64_t startcode = 0, endcode = 0, startstack = 0;                 // fields 26-28
  uint64_t start_data = 0, end_data = 0, start_brk = 0;                // fields 45-47
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;     // fields 48-51
  int32_t exit_code = 0;                                               // field 52
};

// Throws crbox::Error on malformed text.
Stat parse_stat(std::string_view text);

// Whether `pid` has exited but still holds its pid: a zombie waiting to be reaped ('Z'), or one
// being reaped ('X'). False for a live process and for one that is gone.
bool is_exited(pid_t pid);

}  // namespace crbox::proc
