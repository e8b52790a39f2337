#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/proc/timers.h"
#include "util/error.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcTimers, ParsesEveryNotification) {
  auto t = parse_timers(
      "ID: 2\nsignal: 36/0000000000abcdef\nnotify: none/pid.32653\nClockID: 7\n"
      "ID: 1\nsignal: 14/ffff888812345678\nnotify: signal/tid.32654\nClockID: 0\n"
      "ID: 0\nsignal: 10/0000000000000000\nnotify: signal/pid.32653\nClockID: -6\n");
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].id, 2);
  EXPECT_EQ(t[0].signo, 36);
  EXPECT_EQ(t[0].sigval, 0xabcdefu);
  EXPECT_EQ(t[0].notify, SIGEV_NONE);
  EXPECT_EQ(t[0].target, 32653);
  EXPECT_EQ(t[0].clockid, 7);
  EXPECT_EQ(t[1].notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
  EXPECT_EQ(t[1].sigval, 0xffff888812345678u);
  EXPECT_EQ(t[1].target, 32654);
  EXPECT_EQ(t[2].notify, SIGEV_SIGNAL);
  EXPECT_EQ(t[2].clockid, -6);
}

TEST(ProcTimers, EmptyAndMalformed) {
  EXPECT_TRUE(parse_timers("").empty());
  EXPECT_THROW(parse_timers("signal: 14/0\n"), Error);                                      // before ID
  EXPECT_THROW(parse_timers("ID: 1\nsignal: 14/0\nClockID: 1\n"), Error);                   // no notify
  EXPECT_THROW(parse_timers("ID: 1\nsignal: 14/zz\nnotify: signal/pid.1\nClockID: 1\n"), Error);
  EXPECT_THROW(parse_timers("ID: 1\nsignal: 14/0\nnotify: carrier/pid.1\nClockID: 1\n"), Error);
  EXPECT_THROW(parse_timers("ID: x\n"), Error);
}

// The kernel's own output for this process's timers.
TEST(ProcTimers, ReadsOwnTimers) {
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGRTMIN + 3;
  sev.sigev_value.sival_ptr = reinterpret_cast<void*>(0x5eed);
  sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  int id1 = -1, id2 = -1;
  ASSERT_EQ(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id1), 0);
  sev.sigev_notify = SIGEV_NONE;
  ASSERT_EQ(syscall(SYS_timer_create, CLOCK_BOOTTIME, &sev, &id2), 0);
  auto t = parse_timers(read_file("/proc/self/timers"));
  bool seen1 = false, seen2 = false;
  for (const auto& x : t) {
    if (x.id == id1) {
      seen1 = true;
      EXPECT_EQ(x.notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
      EXPECT_EQ(x.signo, SIGRTMIN + 3);
      EXPECT_EQ(x.sigval, 0x5eedu);
      EXPECT_EQ(x.target, static_cast<pid_t>(syscall(SYS_gettid)));
      EXPECT_EQ(x.clockid, CLOCK_MONOTONIC);
    } else if (x.id == id2) {
      seen2 = true;
      EXPECT_EQ(x.notify, SIGEV_NONE);
      EXPECT_EQ(x.target, getpid());
      EXPECT_EQ(x.clockid, CLOCK_BOOTTIME);
    }
  }
  EXPECT_TRUE(seen1 && seen2);
  syscall(SYS_timer_delete, id1);
  syscall(SYS_timer_delete, id2);
}
