#include "namespaces/time.h"

#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace crbox::ns {

static std::string offset_line(int clock_id, int64_t ns) {
  // time_namespaces(7): "<clock-id> <offset-secs> <offset-nanosecs>", clock-id 1 for
  // CLOCK_MONOTONIC and 7 for CLOCK_BOOTTIME; the kernel reads the nanoseconds as an unsigned
  // value below 1e9, so a negative offset is floor(seconds) plus a positive remainder.
  int64_t sec = ns / 1000000000;
  int64_t nsec = ns % 1000000000;
  if (nsec < 0) {
    sec -= 1;
    nsec += 1000000000;
  }
  return std::to_string(clock_id) + " " + std::to_string(sec) + " " + std::to_string(nsec) + "\n";
}

void enter_time_namespace_for_children(const std::optional<TimeOffsets>& offsets) {
  if (::unshare(CLONE_NEWTIME) != 0) throw_errno("cannot create a time namespace");
  if (!offsets) return;
  UniqueFd fd(::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open /proc/self/timens_offsets");
  // Both lines in one write(2): the kernel applies a write as one batch.
  std::string text = offset_line(CLOCK_MONOTONIC, offsets->monotonic_ns) + offset_line(CLOCK_BOOTTIME, offsets->boottime_ns);
  write_all(fd.get(), text.data(), text.size(), "cannot set the time namespace's clock offsets");
}

}  // namespace crbox::ns
