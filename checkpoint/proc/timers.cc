#include "checkpoint/proc/timers.h"

#include <signal.h>

#include <string>

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

[[noreturn]] void bad(std::string_view what) {
  throw Error("malformed /proc/PID/timers: " + std::string(what) + ".");
}

int32_t i32(std::string_view v, std::string_view what) {
  auto r = parse_i64(v);
  if (!r || *r < INT32_MIN || *r > INT32_MAX) bad(std::string("bad ") + std::string(what) + " \"" + std::string(v) + "\"");
  return static_cast<int32_t>(*r);
}

}  // namespace

std::vector<TimerInfo> parse_timers(std::string_view text) {
  std::vector<TimerInfo> out;
  // Which of signal/notify/ClockID the current record has seen.
  bool sig = false, notify = false, clock = false;
  auto close_record = [&] {
    if (!out.empty() && !(sig && notify && clock)) bad("timer " + std::to_string(out.back().id) + " is incomplete");
  };
  for (std::string_view line : split(text, '\n')) {
    if (trim(line).empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) bad("a line without ':'");
    std::string_view key = trim(line.substr(0, colon)), v = trim(line.substr(colon + 1));
    if (key == "ID") {
      close_record();
      TimerInfo t;
      t.id = i32(v, "ID");
      out.push_back(t);
      sig = notify = clock = false;
      continue;
    }
    if (out.empty()) bad("a line before the first ID");
    TimerInfo& t = out.back();
    if (key == "signal") {
      size_t slash = v.find('/');
      if (slash == std::string_view::npos) bad("bad signal line");
      t.signo = i32(v.substr(0, slash), "signal");
      auto val = parse_u64(v.substr(slash + 1), 16);
      if (!val) bad("bad sigev_value \"" + std::string(v.substr(slash + 1)) + "\"");
      t.sigval = *val;
      sig = true;
    } else if (key == "notify") {
      // "<how>/<pid|tid>.<n>"
      size_t slash = v.find('/'), dot = v.find('.');
      if (slash == std::string_view::npos || dot == std::string_view::npos || dot < slash) bad("bad notify line");
      std::string_view how = v.substr(0, slash), whom = v.substr(slash + 1, dot - slash - 1);
      if (how == "signal") t.notify = SIGEV_SIGNAL;
      else if (how == "none") t.notify = SIGEV_NONE;
      else if (how == "thread") t.notify = SIGEV_THREAD;
      else bad("unknown notification \"" + std::string(how) + "\"");
      if (whom == "tid") t.notify |= SIGEV_THREAD_ID;
      else if (whom != "pid") bad("unknown notification target \"" + std::string(whom) + "\"");
      t.target = i32(v.substr(dot + 1), "notify target");
      notify = true;
    } else if (key == "ClockID") {
      t.clockid = i32(v, "ClockID");
      clock = true;
    }  // other lines: a newer kernel's additions, not needed
  }
  close_record();
  return out;
}

}  // namespace crbox::proc
