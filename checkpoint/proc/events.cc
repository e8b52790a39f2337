#include "checkpoint/proc/events.h"

#include <sys/sysmacros.h>

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

// Whitespace-separated words of a line.
std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) i++;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') j++;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

[[noreturn]] void bad(std::string_view line) {
  throw Error("malformed /proc/PID/fdinfo line \"" + std::string(line) + "\".");
}

uint64_t number(std::string_view v, int base, std::string_view line) {
  auto r = parse_u64(v, base);
  if (!r) bad(line);
  return *r;
}

}  // namespace

std::vector<EpollEntry> parse_epoll_entries(const std::vector<std::string>& lines) {
  std::vector<EpollEntry> out;
  for (const auto& line : lines) {
    if (!starts_with(line, "tfd:")) continue;
    auto w = words(line);
    // tfd: N events: X data: X [pos:N ino:X sdev:X]
    if (w.size() < 6 || w[0] != "tfd:" || w[2] != "events:" || w[4] != "data:") bad(line);
    EpollEntry e;
    uint64_t tfd = number(w[1], 10, line);
    uint64_t ev = number(w[3], 16, line);
    if (tfd > INT32_MAX || ev > UINT32_MAX) bad(line);
    e.tfd = static_cast<int32_t>(tfd);
    e.events = static_cast<uint32_t>(ev);
    e.data = number(w[5], 16, line);
    bool ino = false, sdev = false;
    for (size_t i = 6; i < w.size(); i++) {
      if (starts_with(w[i], "ino:")) {
        e.ino = number(w[i].substr(4), 16, line);
        ino = true;
      } else if (starts_with(w[i], "sdev:")) {
        uint64_t d = number(w[i].substr(5), 16, line);
        if (d > UINT32_MAX) bad(line);
        e.sdev = static_cast<uint32_t>(d);
        sdev = true;
      }
    }
    e.has_file = ino && sdev;
    out.push_back(e);
  }
  return out;
}

std::vector<InotifyEntry> parse_inotify_entries(const std::vector<std::string>& lines) {
  std::vector<InotifyEntry> out;
  for (const auto& line : lines) {
    auto w = words(line);
    if (w.empty() || w[0] != "inotify") continue;
    InotifyEntry e;
    bool wd = false, ino = false, sdev = false, mask = false;
    uint64_t handle_bytes = 0;
    bool have_bytes = false;
    for (size_t i = 1; i < w.size(); i++) {
      size_t colon = w[i].find(':');
      if (colon == std::string_view::npos) bad(line);
      std::string_view k = w[i].substr(0, colon), v = w[i].substr(colon + 1);
      if (k == "f_handle") {
        if (v.size() % 2) bad(line);
        for (size_t j = 0; j < v.size(); j += 2) e.handle.push_back(static_cast<uint8_t>(number(v.substr(j, 2), 16, line)));
        continue;
      }
      uint64_t n = number(v, 16, line);
      if (k == "wd") {
        if (n > INT32_MAX) bad(line);
        e.wd = static_cast<int32_t>(n), wd = true;
      } else if (k == "ino") {
        e.ino = n, ino = true;
      } else if (k == "sdev") {
        e.sdev = static_cast<uint32_t>(n), sdev = true;
      } else if (k == "mask") {
        e.mask = static_cast<uint32_t>(n), mask = true;
      } else if (k == "ignored_mask") {
        e.ignored_mask = static_cast<uint32_t>(n);
      } else if (k == "fhandle-bytes") {
        handle_bytes = n, have_bytes = true;
      } else if (k == "fhandle-type") {
        e.handle_type = static_cast<int32_t>(n);
      }
    }
    if (!wd || !ino || !sdev || !mask) bad(line);
    if (have_bytes && handle_bytes != e.handle.size()) bad(line);
    out.push_back(std::move(e));
  }
  return out;
}

dev_t user_dev(uint32_t kernel_dev) { return makedev(kernel_dev >> 20, kernel_dev & 0xfffff); }

}  // namespace crbox::proc
