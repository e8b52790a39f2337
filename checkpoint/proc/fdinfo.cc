// /proc/PID/fdinfo/N parser (proc(5)): "key:\tvalue" lines. pos is decimal, flags is OCTAL
// (seq_printf "%llo" in fs/proc/fd.c) and includes O_CLOEXEC when close-on-exec is set, mnt_id and
// ino are decimal. File kinds add their own lines (eventfd-count, tfd, inotify, ...); those go to
// `extra`, keyed by the text before the first ':', first occurrence wins.
#include "checkpoint/proc/fdinfo.h"

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

FdInfo parse_fdinfo(std::string_view text) {
  FdInfo fi;
  bool have_pos = false, have_flags = false;
  for (std::string_view line : split(text, '\n')) {
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a key: value line; nothing we rely on
    std::string_view key = trim(line.substr(0, colon));
    std::string_view v = trim(line.substr(colon + 1));
    auto need = [&](int base) {
      auto r = parse_u64(v, base);
      if (!r) throw Error("malformed /proc/PID/fdinfo: bad value \"" + std::string(v) + "\" for " + std::string(key) + ".");
      return *r;
    };
    if (key == "pos") {
      fi.pos = need(10);
      have_pos = true;
    } else if (key == "flags") {
      uint64_t f = need(8);
      if (f > UINT32_MAX) throw Error("malformed /proc/PID/fdinfo: flags out of range.");
      fi.flags = static_cast<uint32_t>(f);
      have_flags = true;
    } else if (key == "mnt_id") {
      fi.mnt_id = need(10);
    } else if (key == "ino") {
      fi.ino = need(10);
    } else {
      fi.extra.emplace(std::string(key), std::string(v));  // emplace keeps the first occurrence
      fi.lines.emplace_back(line);
    }
  }
  if (!have_pos || !have_flags) throw Error("malformed /proc/PID/fdinfo: no pos or flags line.");
  return fi;
}

}  // namespace crbox::proc
