// libcr's API without a checkpoint: BLCR's numbers and strings, cr_init's page, handler and
// thread, callback registration, critical sections, holds, persistence, spinlocks.
#include <dirent.h>
#include <gtest/gtest.h>
#include <libcr.h>
#include <signal.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "libcr_test_util.h"

namespace crbox::libcr_test {
namespace {

// Runs `f` in a thread of its own (one that never called cr_init()).
template <class F>
void in_fresh_thread(F f) {
  std::thread t(f);
  t.join();
}

TEST(LibcrErrors, NumberedAsBlcr) {
  EXPECT_EQ(CR_MIN_ERRCODE, 2353);
  EXPECT_EQ(CR_ETEMPFAIL, 2354);
  EXPECT_EQ(CR_EPERMFAIL, 2355);
  EXPECT_EQ(CR_ENOSUPPORT, 2356);
  EXPECT_EQ(CR_EVERSION, 2357);
  EXPECT_EQ(CR_EOMITTED, 2358);
  EXPECT_EQ(CR_EBADARCH, 2359);
  EXPECT_EQ(CR_EPTRACED, 2360);
  EXPECT_EQ(CR_EPTRACER, 2361);
  EXPECT_EQ(CR_ERSTRTABRT, 2362);
  EXPECT_EQ(CR_ERESTARTED, 2363);
  EXPECT_EQ(CR_ENOTCB, 2364);
  EXPECT_EQ(CR_ENOINIT, 2365);
  EXPECT_EQ(CR_MAX_ERRCODE, 2366);
}

TEST(LibcrErrors, StringsAreBlcrsAndStrerrorsOtherwise) {
  EXPECT_STREQ(cr_strerror(CR_ETEMPFAIL), "Temporary error: checkpoint cancelled");
  EXPECT_STREQ(cr_strerror(CR_EPERMFAIL), "Permanent failure: checkpoint cancelled and job killed");
  EXPECT_STREQ(cr_strerror(CR_ENOSUPPORT), "Checkpoint support not linked into one or more processes");
  EXPECT_STREQ(cr_strerror(CR_EOMITTED), "Process omitted from checkpoint at a callback's request");
  EXPECT_STREQ(cr_strerror(CR_ERESTARTED), "Request is invalid across a restart");
  EXPECT_STREQ(cr_strerror(CR_ENOTCB), "Call is only valid from a checkpoint callback");
  EXPECT_STREQ(cr_strerror(CR_ENOINIT), "Calling thread has not called cr_init()");
  for (int e = CR_MIN_ERRCODE + 1; e < CR_MAX_ERRCODE; e++) EXPECT_GT(std::strlen(cr_strerror(e)), 10u) << e;
  EXPECT_STREQ(cr_strerror(ENOENT), strerror(ENOENT));
  EXPECT_STREQ(cr_strerror(EINVAL), strerror(EINVAL));
}

TEST(LibcrHeader, ValuesAreBlcrs) {
  EXPECT_EQ(CR_SCOPE_PROC, 0);
  EXPECT_EQ(CR_SCOPE_PGRP, 1);
  EXPECT_EQ(CR_SCOPE_SESS, 2);
  EXPECT_EQ(CR_SCOPE_TREE, 3);
  EXPECT_EQ(CR_CHECKPOINT_READY, 0);
  EXPECT_EQ(CR_CHECKPOINT_TEMP_FAILURE, 1);
  EXPECT_EQ(CR_CHECKPOINT_PERM_FAILURE, 2);
  EXPECT_EQ(CR_CHECKPOINT_OMIT, 4);
  EXPECT_EQ(CR_CHECKPOINT_TEMP_FAILURE_CODE(7), 1 | (7 << 16));
  EXPECT_EQ(CR_THREAD_CONTEXT, 0x4000000);
  EXPECT_EQ(CR_SIGNAL_CONTEXT, 0x2000000);
  EXPECT_EQ(CR_ID_CALLBACK, -1);
  EXPECT_EQ(CR_DEST_CWD, -4096);
  EXPECT_EQ(CR_CHKPT_PTRACED_ALLOW, 2);
  EXPECT_EQ(CR_CHKPT_ASYNC_ERR, 0x10);
  EXPECT_EQ(CR_CHKPT_DUMP_ALL, 0xe00);
  EXPECT_EQ(CR_HOLD_BOTH, 3);
  EXPECT_EQ(CR_HOLD_DFLT, 4);
  EXPECT_EQ(CR_STATE_IDLE, 0);
  EXPECT_EQ(CR_STATE_PENDING, 1);
  EXPECT_EQ(CR_STATE_ACTIVE, 2);
  EXPECT_EQ(CR_HOOK_CONT_SIGNAL_CONTEXT, 0);
  EXPECT_EQ(CR_HOOK_RSTRT_NO_CALLBACKS, 5);
  EXPECT_EQ(CR_NUM_HOOKS, 6);
  EXPECT_EQ(CR_POLL_CHKPT_ERR_POST, -2);
  EXPECT_EQ(CR_SIGNUM, CRBOX_LIBCR_SIGNAL);
}

TEST(LibcrArgs, InitialisedAsBlcrDoes) {
  cr_checkpoint_args_t a;
  std::memset(&a, 0x5a, sizeof a);
  ASSERT_EQ(cr_initialize_checkpoint_args_t(&a), 0);
  EXPECT_EQ(a.cr_version, CR_CHECKPOINT_ARGS_VERSION);
  EXPECT_EQ((int)a.cr_scope, -1);
  EXPECT_EQ(a.cr_target, 0);
  EXPECT_EQ(a.cr_fd, -1);
  EXPECT_EQ(a.cr_signal, 0);
  EXPECT_EQ(a.cr_timeout, 0u);
  EXPECT_EQ(a.cr_flags, 0u);
  errno = 0;
  EXPECT_EQ(cri_init_checkpoint_args_t(99, &a), -1);
  EXPECT_EQ(errno, EINVAL);
  cr_restart_args_t r;
  ASSERT_EQ(cr_initialize_restart_args_t(&r), 0);
  EXPECT_EQ(r.cr_fd, -1);
  EXPECT_EQ(r.cr_flags, (unsigned)CR_RSTRT_RESTORE_PID);
  EXPECT_EQ(r.cr_relocate, nullptr);
}

TEST(LibcrNoInit, CallsNeedCrInitInTheirThread) {
  in_fresh_thread([] {
    errno = 0;
    EXPECT_EQ(cr_register_callback([](void*) { return 0; }, nullptr, CR_THREAD_CONTEXT), -1);
    EXPECT_EQ(errno, CR_ENOINIT);
    errno = 0;
    EXPECT_EQ(cr_enter_cs(1), -1);
    EXPECT_EQ(errno, CR_ENOINIT);
    errno = 0;
    EXPECT_EQ(cr_status(), -1);
    EXPECT_EQ(errno, CR_ENOINIT);
    errno = 0;
    EXPECT_EQ(cr_register_hook(CR_HOOK_CONT_NO_CALLBACKS, nullptr), CR_HOOK_FN_ERROR);
    EXPECT_EQ(errno, CR_ENOINIT);
    errno = 0;
    EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_THREAD, CR_HOLD_READ), -1);
    EXPECT_EQ(errno, CR_ENOINIT);
    errno = 0;
    EXPECT_EQ(cr_inc_persist(), -1);
    EXPECT_EQ(errno, CR_ENOINIT);
  });
}

TEST(LibcrNoCallback, CallbackOnlyCallsSayNotACallback) {
  EXPECT_EQ(cr_checkpoint(CR_CHECKPOINT_READY), -CR_ENOTCB);
  errno = 0;
  EXPECT_EQ(cr_replace_self(nullptr, nullptr, CR_THREAD_CONTEXT), -1);
  EXPECT_EQ(errno, CR_ENOTCB);
  EXPECT_EQ(cr_get_checkpoint_info(), nullptr);
  EXPECT_EQ(cr_get_restart_info(), nullptr);
  errno = 0;
  EXPECT_EQ(cr_forward_checkpoint(CR_SCOPE_PROC, getpid()), -1);
  EXPECT_EQ(errno, CR_ENOTCB);
}

std::string comm_of_task(const std::string& tid) {
  std::ifstream f("/proc/self/task/" + tid + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

bool has_libcr_thread() {
  DIR* d = opendir("/proc/self/task");
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.' && comm_of_task(e->d_name) == "libcr") found = true;
  }
  closedir(d);
  return found;
}

TEST(LibcrInit, PageHandlerAndThread) {
  cr_client_id_t id = cr_init();
  ASSERT_GE(id, 0) << cr_strerror(errno);
  EXPECT_EQ(cr_init(), id) << "idempotent in one thread";
  crbox_libcr_page* p = own_page();
  ASSERT_NE(p, nullptr) << "no /memfd:crbox-libcr in /proc/self/maps";
  EXPECT_EQ(p->magic, CRBOX_LIBCR_MAGIC);
  EXPECT_EQ(p->version, CRBOX_LIBCR_VERSION);
  EXPECT_EQ(p->omit, 0u);
  std::ifstream maps("/proc/self/maps");
  std::string line, found;
  while (std::getline(maps, line))
    if (line.find("/memfd:crbox-libcr") != std::string::npos) found = line;
  EXPECT_NE(found.find(" rw-s "), std::string::npos) << found;  // shared, writable
  struct sigaction sa;
  ASSERT_EQ(sigaction(CRBOX_LIBCR_SIGNAL, nullptr, &sa), 0);
  EXPECT_TRUE(sa.sa_flags & SA_SIGINFO);
  EXPECT_TRUE(sa.sa_flags & SA_RESTART);
  EXPECT_NE(reinterpret_cast<void*>(sa.sa_sigaction), reinterpret_cast<void*>(SIG_DFL));
  EXPECT_TRUE(eventually(has_libcr_thread)) << "libcr's thread";
  EXPECT_EQ(cr_status(), CR_STATE_IDLE);
  int other = -1;
  in_fresh_thread([&] { other = cr_init(); });
  EXPECT_GE(other, 0);
  EXPECT_NE(other, id) << "each thread its own client id";
}

int noop(void*) { return 0; }

TEST(LibcrRegister, CountsInThePageAndValidates) {
  ASSERT_GE(cr_init(), 0);
  crbox_libcr_page* p = own_page();
  ASSERT_NE(p, nullptr);
  uint32_t before = load(p->callbacks);
  cr_callback_id_t a = cr_register_callback(noop, nullptr, CR_THREAD_CONTEXT);
  ASSERT_GE(a, 0);
  EXPECT_EQ(load(p->callbacks), before + 1);
  cr_callback_id_t b = cr_register_callback(noop, nullptr, CR_SIGNAL_CONTEXT);
  ASSERT_GE(b, 0);
  EXPECT_NE(a, b);
  EXPECT_EQ(load(p->callbacks), before + 2);

  errno = 0;
  EXPECT_EQ(cr_register_callback(noop, nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_register_callback(noop, nullptr, CR_THREAD_CONTEXT | CR_SIGNAL_CONTEXT), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_replace_callback(a, noop, nullptr, CR_SIGNAL_CONTEXT), -1) << "the context cannot change";
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_replace_callback(12345, noop, nullptr, CR_THREAD_CONTEXT), -1);
  EXPECT_EQ(errno, EINVAL);

  // Disabled callbacks (func NULL) do not count; every test leaves none behind.
  EXPECT_EQ(cr_replace_callback(a, nullptr, nullptr, CR_THREAD_CONTEXT), 0);
  EXPECT_EQ(cr_replace_callback(b, nullptr, nullptr, CR_SIGNAL_CONTEXT), 0);
  EXPECT_EQ(load(p->callbacks), before);
}

TEST(LibcrRegister, SignalCallbacksOfAThreadDieWithIt) {
  ASSERT_GE(cr_init(), 0);
  crbox_libcr_page* p = own_page();
  uint32_t before = load(p->callbacks);
  in_fresh_thread([&] {
    ASSERT_GE(cr_init(), 0);
    ASSERT_GE(cr_register_callback(noop, nullptr, CR_SIGNAL_CONTEXT), 0);
    EXPECT_EQ(load(p->callbacks), before + 1);
  });
  EXPECT_EQ(load(p->callbacks), before);
}

TEST(LibcrCriticalSection, NestsAndCountsThreads) {
  cr_client_id_t id = cr_init();
  ASSERT_GE(id, 0);
  crbox_libcr_page* p = own_page();
  int32_t base = p->cs_count;
  EXPECT_EQ(base, 0);
  ASSERT_EQ(cr_enter_cs(id), 0);
  EXPECT_EQ(p->cs_count, 1);
  ASSERT_EQ(cr_enter_cs(id), 0);
  EXPECT_EQ(p->cs_count, 1) << "one thread, nested";
  EXPECT_EQ(cr_tryenter_cs(id), 0) << "nested tryenter never waits";
  in_fresh_thread([&] {
    cr_client_id_t mine = cr_init();
    ASSERT_EQ(cr_enter_cs(mine), 0);
    EXPECT_EQ(p->cs_count, 2);
    ASSERT_EQ(cr_leave_cs(mine), 0);
  });
  EXPECT_EQ(cr_leave_cs(id), 0);
  EXPECT_EQ(cr_leave_cs(id), 0);
  EXPECT_EQ(p->cs_count, 1);
  EXPECT_EQ(cr_leave_cs(id), 0);
  EXPECT_EQ(p->cs_count, 0);
  errno = 0;
  EXPECT_EQ(cr_leave_cs(id), -1) << "not inside one";
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_enter_cs(-5), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_enter_cs(CR_ID_CALLBACK), -1) << "CR_ID_CALLBACK outside a callback";
  EXPECT_EQ(errno, EINVAL);
  EXPECT_GE(p->callbacks, 1u) << "using critical sections makes the engine ask first";
}

TEST(LibcrCriticalSection, SignalSafeFromAHandler) {
  static cr_client_id_t id;
  static std::atomic<int> result{-9};
  id = cr_init();
  ASSERT_GE(id, 0);
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = [](int) {
    int a = cr_enter_cs(id);
    int b = cr_leave_cs(id);
    result = a == 0 && b == 0 ? 0 : -1;
  };
  sigaction(SIGUSR2, &sa, &old);
  ASSERT_EQ(cr_enter_cs(id), 0);
  raise(SIGUSR2);  // nested inside the section
  EXPECT_EQ(result, 0);
  ASSERT_EQ(cr_leave_cs(id), 0);
  result = -9;
  raise(SIGUSR2);  // outermost, from the handler
  EXPECT_EQ(result, 0);
  EXPECT_EQ(own_page()->cs_count, 0);
  sigaction(SIGUSR2, &old, nullptr);
}

TEST(LibcrHold, ScopesAndValues) {
  ASSERT_GE(cr_init(), 0);
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_THREAD, CR_HOLD_READ), CR_HOLD_DFLT);
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_INIT, CR_HOLD_READ), CR_HOLD_BOTH);
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_UNINIT, CR_HOLD_READ), CR_HOLD_BOTH);
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_THREAD, CR_HOLD_NONE), CR_HOLD_DFLT);
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_THREAD, CR_HOLD_DFLT), CR_HOLD_NONE);
  errno = 0;
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_INIT, CR_HOLD_DFLT), -1) << "DFLT is for a thread only";
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_hold_ctrl(7, CR_HOLD_NONE), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_hold_ctrl(CR_HOLD_SCOPE_THREAD, 99), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(LibcrPersist, CountsAndRefusesUnderflow) {
  ASSERT_GE(cr_init(), 0);
  EXPECT_EQ(cr_inc_persist(), 0);
  EXPECT_EQ(cr_inc_persist(), 1);
  EXPECT_EQ(cr_dec_persist(), 2);
  EXPECT_EQ(cr_dec_persist(), 1);
  errno = 0;
  EXPECT_EQ(cr_dec_persist(), -1);
  EXPECT_EQ(errno, ERANGE);
}

TEST(LibcrSpinlock, LocksAndTries) {
  cr_spinlock_t l = CR_SPINLOCK_INITIALIZER;
  cr_spinlock_init(&l);
  EXPECT_TRUE(cr_spinlock_trylock(&l));
  EXPECT_FALSE(cr_spinlock_trylock(&l));
  cr_spinlock_unlock(&l);
  long counter = 0;
  std::thread a([&] {
    for (int i = 0; i < 100000; i++) {
      cr_spinlock_lock(&l);
      counter++;
      cr_spinlock_unlock(&l);
    }
  });
  for (int i = 0; i < 100000; i++) {
    cr_spinlock_lock(&l);
    counter++;
    cr_spinlock_unlock(&l);
  }
  a.join();
  EXPECT_EQ(counter, 200000);
}

TEST(LibcrHooks, RegisterReturnsThePrevious) {
  ASSERT_GE(cr_init(), 0);
  auto h1 = [](cr_hook_event_t) {};
  auto h2 = [](cr_hook_event_t) {};
  cr_hook_fn_t f1 = h1, f2 = h2;
  EXPECT_EQ(cr_register_hook(CR_HOOK_RSTRT_SIGNAL_CONTEXT, f1), nullptr);
  EXPECT_EQ(cr_register_hook(CR_HOOK_RSTRT_SIGNAL_CONTEXT, f2), f1);
  EXPECT_EQ(cr_register_hook(CR_HOOK_RSTRT_SIGNAL_CONTEXT, nullptr), f2);
  errno = 0;
  EXPECT_EQ(cr_register_hook(CR_NUM_HOOKS, f1), CR_HOOK_FN_ERROR);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(cr_register_hook(CR_HOOK_CONT_NO_CALLBACKS, CR_HOOK_FN_ERROR), CR_HOOK_FN_ERROR);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace
}  // namespace crbox::libcr_test
