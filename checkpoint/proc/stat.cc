// /proc/PID/stat parser (proc(5)). The second field is the command name in parentheses, and the
// name is whatever the process set with prctl(PR_SET_NAME) or its executable's basename: it may
// contain spaces, '(' and ')'. The kernel prints it raw (no escaping), so the only reliable split is
// at the LAST ')' of the line: every field after it is a number or the one-letter state.
// Fields 45-52 (start_data ... exit_code) appeared in Linux 3.3-3.5; older kernels end at 44 and we
// leave them 0. The address fields (26-28, 45-51) read as 0 unless the reader may ptrace the task.
#include "checkpoint/proc/stat.h"

#include <vector>

#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

[[noreturn]] void bad(const char* why) { throw Error(std::string("malformed /proc/PID/stat: ") + why + "."); }

}  // namespace

Stat parse_stat(std::string_view text) {
  Stat s;
  text = trim(text);
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    bad("no command name in parentheses");

  auto pid = parse_i64(trim(text.substr(0, open)));
  if (!pid) bad("bad pid");
  s.pid = static_cast<int32_t>(*pid);
  s.comm = std::string(text.substr(open + 1, close - open - 1));

  // fields[0] is field 3 (state) of proc(5); field N is fields[N - 3].
  std::vector<std::string_view> fields;
  for (std::string_view f : split(trim(text.substr(close + 1)), ' '))
    if (!f.empty()) fields.push_back(f);
  if (fields.size() < 28 - 2) bad("fewer than 28 fields");
  if (fields[0].size() != 1) bad("bad state");
  s.state = fields[0][0];

  auto u = [&](int n) -> uint64_t {
    size_t i = static_cast<size_t>(n - 3);
    if (i >= fields.size()) return 0;  // an older kernel without this field
    auto v = parse_u64(fields[i]);
    if (!v) bad("a field that should be an unsigned number is not");
    return *v;
  };
  auto i = [&](int n) -> int64_t {
    size_t k = static_cast<size_t>(n - 3);
    if (k >= fields.size()) return 0;
    auto v = parse_i64(fields[k]);
    if (!v) bad("a field that should be a number is not");
    return *v;
  };
  s.ppid = static_cast<int32_t>(i(4));
  s.pgrp = static_cast<int32_t>(i(5));
  s.session = static_cast<int32_t>(i(6));
  s.tty_nr = static_cast<int32_t>(i(7));
  s.flags = u(9);
  s.num_threads = i(20);
  s.starttime = u(22);
  s.startcode = u(26);
  s.endcode = u(27);
  s.startstack = u(28);
  s.start_data = u(45);
  s.end_data = u(46);
  s.start_brk = u(47);
  s.arg_start = u(48);
  s.arg_end = u(49);
  s.env_start = u(50);
  s.env_end = u(51);
  s.exit_code = static_cast<int32_t>(i(52));
  return s;
}

bool is_exited(pid_t pid) {
  auto text = try_read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return false;
  char state = parse_stat(*text).state;
  return state == 'Z' || state == 'X';
}

}  // namespace crbox::proc
