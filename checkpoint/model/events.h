// Event sources in the image (model for checkpoint/{dump,restore}/{epoll,inotify,timers}.cc):
// epoll sets, inotify watches and POSIX timers.
#pragma once

#include <cereal/types/string.hpp>
#include <cstdint>
#include <string>

namespace crbox::model {

// One entry of an epoll set (epoll_ctl(2)): the fd number it was added under, its events (as the
// kernel keeps them: with EPOLLERR|EPOLLHUP, and the EPOLLET/ONESHOT/WAKEUP/EXCLUSIVE flags), data.
struct EpollTarget {
  int32_t fd = -1;
  uint32_t events = 0;
  uint64_t data = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(fd), CEREAL_NVP(events), CEREAL_NVP(data));
  }
};

// One inotify watch (inotify(7)): its descriptor, mask (events and the IN_ONESHOT, IN_EXCL_UNLINK,
// IN_DONT_FOLLOW flags) and the path it watches, as the process saw it (in its mount namespace).
struct InotifyWatch {
  int32_t wd = 0;
  uint32_t mask = 0;
  std::string path;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(wd), CEREAL_NVP(mask), CEREAL_NVP(path));
  }
};

// A POSIX timer (timer_create(2)), as /proc/PID/timers lists it plus timer_gettime(2).
struct PosixTimer {
  int32_t id = 0;
  int32_t clockid = 0;
  int32_t notify = 0;     // SIGEV_SIGNAL or SIGEV_NONE, | SIGEV_THREAD_ID to signal one thread
  int32_t signo = 0;
  uint64_t sigval = 0;
  int32_t tid = 0;        // SIGEV_THREAD_ID: the thread, in the image's pid namespace
  uint64_t value_ns = 0, interval_ns = 0;  // time left, period
  int32_t overrun = 0;    // timer_getoverrun(2) at the checkpoint; not restorable, starts at 0

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(id), CEREAL_NVP(clockid), CEREAL_NVP(notify), CEREAL_NVP(signo), CEREAL_NVP(sigval),
      CEREAL_NVP(tid), CEREAL_NVP(value_ns), CEREAL_NVP(interval_ns), CEREAL_NVP(overrun));
  }
};

}  // namespace crbox::model
