// One checkpoint round inside this process, the test playing the engine on its own page
// (protocol.h steps 2, 4 and 5): callbacks see 0 when the process goes on and > 0 after a
// restart; failures, omission, ordering of thread- and signal-context callbacks, hooks, and a
// critical section that holds a checkpoint back.
#include <gtest/gtest.h>
#include <libcr.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libcr_test_util.h"

namespace crbox::libcr_test {
namespace {

// What the callbacks saw, in order (callbacks may run in signal handlers: a fixed array and an
// atomic index, no allocation).
struct Log {
  static constexpr int kMax = 64;
  std::atomic<int> n{0};
  const char* what[kMax];
  long value[kMax];
  void add(const char* w, long v = 0) {
    int i = n.fetch_add(1);
    if (i < kMax) {
      what[i] = w;
      value[i] = v;
    }
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (int i = 0; i < n && i < kMax; i++) out.push_back(std::string(what[i]) + "=" + std::to_string(value[i]));
    return out;
  }
  void clear() { n = 0; }
};

Log g_log;

class LibcrRound : public ::testing::Test {
 protected:
  void SetUp() override {
    g_log.clear();
    ASSERT_GE(cr_init(), 0);
    engine_.p = own_page();
    ASSERT_NE(engine_.p, nullptr);
    ASSERT_EQ(load(engine_.p->state), (uint32_t)CRBOX_STATE_IDLE);
  }
  void TearDown() override {
    for (auto [id, flags] : ids_) cr_replace_callback(id, nullptr, nullptr, flags);
  }
  void add(cr_callback_t f, void* arg, int flags) {
    cr_callback_id_t id = cr_register_callback(f, arg, flags);
    ASSERT_GE(id, 0) << cr_strerror(errno);
    ids_.push_back({id, flags});
  }
  Engine engine_;
  std::vector<std::pair<cr_callback_id_t, int>> ids_;
};

int ready_cb(void* name) {
  g_log.add(static_cast<const char*>(name), cr_status());
  int rc = cr_checkpoint(CR_CHECKPOINT_READY);
  g_log.add("rc", rc);
  return 0;
}

TEST_F(LibcrRound, ContinueThenRestart) {
  static const struct cr_checkpoint_info* seen_info;
  static const struct cr_restart_info* seen_restart;
  static std::string dest, src;
  static pid_t requester, restarter;
  add(
      [](void*) {
        seen_info = cr_get_checkpoint_info();
        if (seen_info) {
          dest = seen_info->dest;
          requester = seen_info->requester;
        }
        g_log.add("T", cr_status());
        int rc = cr_checkpoint(CR_CHECKPOINT_READY);
        g_log.add("rc", rc);
        seen_restart = cr_get_restart_info();
        if (seen_restart) {
          src = seen_restart->src;
          restarter = seen_restart->requester;
        }
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);

  engine_.request("/tmp/ctx.1", 15, 4242);
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  EXPECT_EQ(g_log.lines(), std::vector<std::string>({"T=" + std::to_string(CR_STATE_ACTIVE)}))
      << "the callback has reached cr_checkpoint() and waits there";
  ASSERT_NE(seen_info, nullptr);
  EXPECT_EQ(dest, "/tmp/ctx.1");
  EXPECT_EQ(requester, 4242);
  EXPECT_EQ(cr_status(), CR_STATE_ACTIVE);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(eventually([] { return g_log.n == 2; }));
  EXPECT_EQ(g_log.value[1], 0) << "the process goes on: 0";
  EXPECT_EQ(seen_restart, nullptr);
  EXPECT_EQ(cr_status(), CR_STATE_IDLE);

  g_log.clear();
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_RESTART, "/tmp/ctx.1", 777));
  EXPECT_TRUE(eventually([] { return g_log.n == 2; }));
  EXPECT_GT(g_log.value[1], 0) << "the restarted copy: > 0";
  ASSERT_NE(seen_restart, nullptr);
  EXPECT_EQ(src, "/tmp/ctx.1");
  EXPECT_EQ(restarter, 777);
}

TEST_F(LibcrRound, ThreadContextFirstThenSignalContextLastRegisteredFirst) {
  add(ready_cb, (void*)"T1", CR_THREAD_CONTEXT);
  add(ready_cb, (void*)"T2", CR_THREAD_CONTEXT);
  // Signal-context callbacks belong to the thread that registers them: a worker, so that this
  // thread stays free to play the engine.
  std::mutex m;
  std::condition_variable cv;
  bool registered = false, stop = false;
  std::thread worker([&] {
    ASSERT_GE(cr_init(), 0);
    cr_register_callback(ready_cb, (void*)"S1", CR_SIGNAL_CONTEXT);
    cr_register_callback(ready_cb, (void*)"S2", CR_SIGNAL_CONTEXT);
    std::unique_lock<std::mutex> l(m);
    registered = true;
    cv.notify_all();
    cv.wait(l, [&] { return stop; });
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return registered; });
  }
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  auto a = std::to_string(CR_STATE_ACTIVE);
  EXPECT_EQ(g_log.lines(), std::vector<std::string>({"T1=" + a, "T2=" + a, "S2=" + a, "S1=" + a}));
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(eventually([] { return g_log.n == 8; }));
  for (int i = 4; i < 8; i++) EXPECT_EQ(std::string(g_log.what[i]) + std::to_string(g_log.value[i]), "rc0");
  {
    std::lock_guard<std::mutex> l(m);
    stop = true;
    cv.notify_all();
  }
  worker.join();
}

TEST_F(LibcrRound, TemporaryFailureWithAndWithoutCode) {
  static int flags;
  add(
      [](void*) {
        int rc = cr_checkpoint(flags);
        g_log.add("rc", rc);
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);
  for (int code : {0, 77}) {
    g_log.clear();
    flags = code ? CR_CHECKPOINT_TEMP_FAILURE_CODE(code) : CR_CHECKPOINT_TEMP_FAILURE;
    engine_.request();
    ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_TEMP_FAILURE);
    EXPECT_NE(engine_.message().find("CR_CHECKPOINT_TEMP_FAILURE"), std::string::npos) << engine_.message();
    ASSERT_TRUE(engine_.finish(CRBOX_RESULT_ABORTED));
    EXPECT_TRUE(eventually([] { return g_log.n == 1; }));
    EXPECT_EQ(g_log.value[0], code ? -code : -CR_ETEMPFAIL);
  }
}

TEST_F(LibcrRound, ACallbackReturningNonzeroFailsAndStopsItsGroup) {
  static std::atomic<int> second_ran{0};
  add([](void*) { return 3; }, nullptr, CR_THREAD_CONTEXT);
  add(
      [](void*) {
        second_ran++;
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_TEMP_FAILURE);
  EXPECT_NE(engine_.message().find("returned 3 without calling cr_checkpoint()"), std::string::npos) << engine_.message();
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_ABORTED));
  EXPECT_EQ(second_ran, 0);
}

TEST_F(LibcrRound, ACallbackReturningWithoutCrCheckpointIsReady) {
  add(
      [](void*) {
        g_log.add("first");
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);
  add(ready_cb, (void*)"second", CR_THREAD_CONTEXT);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(eventually([] { return g_log.n == 3; }));
  EXPECT_STREQ(g_log.what[0], "first");
  EXPECT_STREQ(g_log.what[1], "second");
  EXPECT_EQ(g_log.value[2], 0);
}

TEST_F(LibcrRound, OmitAndPermanentFailure) {
  static int flags;
  add(
      [](void*) {
        g_log.add("rc", cr_checkpoint(flags));
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);
  flags = CR_CHECKPOINT_OMIT;
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_OMIT);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_OMITTED));
  EXPECT_TRUE(eventually([] { return g_log.n == 1; }));
  EXPECT_EQ(g_log.value[0], -CR_EOMITTED);

  g_log.clear();
  flags = CR_CHECKPOINT_PERM_FAILURE;
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_PERM_FAILURE);
  // The engine would kill the process; should that fail, the callback learns it this way.
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_ABORTED_PERM));
  EXPECT_TRUE(eventually([] { return g_log.n == 1; }));
  EXPECT_EQ(g_log.value[0], -CR_EPERMFAIL);
}

TEST_F(LibcrRound, EngineGivingUpAbortsWaitingCallbacks) {
  add(ready_cb, (void*)"T", CR_THREAD_CONTEXT);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_ABORTED));  // e.g. --time ran out elsewhere
  EXPECT_TRUE(eventually([] { return g_log.n == 2; }));
  EXPECT_EQ(g_log.value[1], -CR_ETEMPFAIL);
}

TEST_F(LibcrRound, HooksRunAtTheirMoments) {
  static std::atomic<int> events[CR_NUM_HOOKS];
  for (auto& e : events) e = 0;
  cr_hook_fn_t h = [](cr_hook_event_t e) { events[e]++; };
  for (int e = 0; e < CR_NUM_HOOKS; e++) cr_register_hook((cr_hook_event_t)e, h);
  add(ready_cb, (void*)"T", CR_THREAD_CONTEXT);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_EQ(events[CR_HOOK_CONT_THREAD_CONTEXT], 1);
  EXPECT_EQ(events[CR_HOOK_CONT_NO_CALLBACKS], 1);
  EXPECT_EQ(events[CR_HOOK_RSTRT_THREAD_CONTEXT], 0);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_RESTART));
  EXPECT_EQ(events[CR_HOOK_RSTRT_THREAD_CONTEXT], 1);
  EXPECT_EQ(events[CR_HOOK_RSTRT_NO_CALLBACKS], 1);
  EXPECT_EQ(events[CR_HOOK_CONT_SIGNAL_CONTEXT], 0) << "no thread has signal-context callbacks";
  for (int e = 0; e < CR_NUM_HOOKS; e++) cr_register_hook((cr_hook_event_t)e, nullptr);
}

TEST_F(LibcrRound, CriticalSectionHoldsTheCheckpointBack) {
  cr_client_id_t id = cr_init();
  add(ready_cb, (void*)"T", CR_THREAD_CONTEXT);
  ASSERT_EQ(cr_enter_cs(id), 0);
  engine_.request();
  ASSERT_TRUE(eventually([] { return cr_status() == CR_STATE_PENDING; }));
  // Another thread may neither try nor enter now: tryenter says so, enter waits for the round.
  std::atomic<int> tried{-9};
  std::atomic<bool> entered{false};
  std::thread other([&] {
    cr_client_id_t mine = cr_init();
    tried = cr_tryenter_cs(mine);
    cr_enter_cs(mine);
    entered = true;
    cr_leave_cs(mine);
  });
  ASSERT_TRUE(eventually([&] { return tried != -9; }));
  EXPECT_GT(tried, 0) << "a checkpoint is pending";
  EXPECT_EQ(load(engine_.p->state), (uint32_t)CRBOX_STATE_REQUESTED) << "no callback runs inside a critical section";
  EXPECT_EQ(g_log.n, 0);
  EXPECT_EQ(cr_enter_cs(id), 0) << "nested entries do not wait";
  EXPECT_EQ(cr_leave_cs(id), 0);
  ASSERT_EQ(cr_leave_cs(id), 0);  // the last one out lets it go on
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  EXPECT_EQ(g_log.n, 1);
  EXPECT_FALSE(entered) << "entering waits while the checkpoint runs";
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  other.join();
  EXPECT_TRUE(entered);
  EXPECT_EQ(engine_.p->cs_count, 0);
}

TEST_F(LibcrRound, CallbacksCannotRegisterAndEnterCsAtOnce) {
  static int reg_errno, cs_rc, replace_rc;
  add(
      [](void*) {
        errno = 0;
        if (cr_register_callback(ready_cb, nullptr, CR_THREAD_CONTEXT) < 0) reg_errno = errno;
        cs_rc = cr_enter_cs(CR_ID_CALLBACK) | cr_leave_cs(CR_ID_CALLBACK);
        replace_rc = cr_replace_self(nullptr, nullptr, CR_THREAD_CONTEXT);  // runs once only
        g_log.add("rc", cr_checkpoint(CR_CHECKPOINT_READY));
        return 0;
      },
      nullptr, CR_THREAD_CONTEXT);
  uint32_t before = load(engine_.p->callbacks);
  engine_.request();
  ASSERT_EQ(engine_.wait_decision(), (uint32_t)CRBOX_STATE_READY);
  ASSERT_TRUE(engine_.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_EQ(reg_errno, EBUSY);
  EXPECT_EQ(cs_rc, 0);
  EXPECT_EQ(replace_rc, 0);
  EXPECT_EQ(load(engine_.p->callbacks), before - 1) << "replaced by nothing";
}

}  // namespace
}  // namespace crbox::libcr_test
