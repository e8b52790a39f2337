// libcr in a real process (tests/programs/libcr_probe), with this test playing the engine's side
// of runtime/libcr/protocol.h on the page it maps from /proc: callbacks in their contexts and
// order, "continue" then "restart", failures, a critical section holding a checkpoint back, and a
// fork child with a page of its own. (The real engine's tests are elsewhere.)
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "harness.h"
#include "libcr_util.h"

namespace crbox::test {
namespace {

using namespace std::chrono_literals;
using libcr::RemotePage;

// BLCR's numbers (runtime/libcr/blcr_errcodes.h), as the probe prints them.
constexpr int kEPermFail = 2355, kEOmitted = 2358;

// The position of `line` (a whole line) in the output, or npos.
size_t line_at(const std::string& out, const std::string& line) {
  auto at = ("\n" + out).find("\n" + line + "\n");
  return at;
}

::testing::AssertionResult in_order(const std::string& out, const std::vector<std::string>& lines) {
  size_t prev = 0;
  for (const auto& l : lines) {
    size_t at = line_at(out, l);
    if (at == std::string::npos) return ::testing::AssertionFailure() << "no line \"" << l << "\" in:\n" << out;
    if (at < prev) return ::testing::AssertionFailure() << "\"" << l << "\" comes too early in:\n" << out;
    prev = at;
  }
  return ::testing::AssertionSuccess();
}

// Whether `needle` is in the output, reading more lines for it if need be (unlike
// Child::wait_for, it also finds what an earlier wait already read past).
bool saw(Child& c, const std::string& needle, std::chrono::milliseconds timeout = 20s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (c.output().find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !c.read_line(left)) return c.output().find(needle) != std::string::npos;
  }
  return true;
}

pid_t ready_pid(Child& c, const std::string& prefix = "") {
  auto line = c.wait_for(prefix + "ready pid=");
  if (!line) return -1;
  return std::stoi(line->substr(line->find("pid=") + 4));
}

TEST(LibcrProtocol, CallbacksContinueThenRestart) {
  Child c({program("libcr_probe"), "thread", "signal", "signal2", "worker", "hooks", "info"});
  pid_t pid = ready_pid(c);
  ASSERT_GT(pid, 0) << c.output();
  RemotePage page(pid);
  ASSERT_TRUE(page.ok()) << libcr::maps_of(pid);
  EXPECT_EQ(page->magic, CRBOX_LIBCR_MAGIC);
  EXPECT_EQ(page->version, CRBOX_LIBCR_VERSION);
  EXPECT_EQ(page->omit, 0u);
  EXPECT_EQ(page->callbacks, 5u) << "four callbacks, and hooks to run";

  page.request("/var/tmp/ctx.1", 4321);
  ASSERT_EQ(page.wait_decision(), (uint32_t)CRBOX_STATE_READY) << c.output();
  ASSERT_TRUE(saw(c, "W before")) << c.output();
  ASSERT_TRUE(saw(c, "S1 before")) << c.output();
  // Thread-context first; the main thread's signal-context ones last registered first.
  EXPECT_TRUE(in_order(c.output(), {"T before status=2", "info dest=/var/tmp/ctx.1 signal=0 requester=4321",
                                    "S2 before status=2", "S1 before status=2"}));
  EXPECT_LT(line_at(c.output(), "T before status=2"), line_at(c.output(), "W before status=2"));
  EXPECT_EQ(c.output().find(" rc="), std::string::npos) << "all wait in cr_checkpoint()";

  ASSERT_TRUE(page.finish(CRBOX_RESULT_CONTINUE)) << c.output();
  for (const char* l : {"T rc=0", "S1 rc=0", "S2 rc=0", "W rc=0", "hook 0", "hook 1", "hook 2"}) {
    EXPECT_TRUE(saw(c, std::string("\n") + l + "\n")) << l << " in\n" << c.output();
  }
  EXPECT_EQ(c.output().find("restart src"), std::string::npos);

  page.request();
  ASSERT_EQ(page.wait_decision(), (uint32_t)CRBOX_STATE_READY) << c.output();
  ASSERT_TRUE(page.finish(CRBOX_RESULT_RESTART, "/var/tmp/ctx.1", 777)) << c.output();
  ASSERT_TRUE(saw(c, "restart src=/var/tmp/ctx.1 requester=777")) << c.output();
  for (const char* l : {"T rc=1", "S1 rc=1", "S2 rc=1", "W rc=1", "hook 3", "hook 4", "hook 5"}) {
    EXPECT_TRUE(saw(c, std::string("\n") + l + "\n")) << l << " in\n" << c.output();
  }
  EXPECT_EQ(page->state, (uint32_t)CRBOX_STATE_IDLE);
}

TEST(LibcrProtocol, TemporaryFailureCancelsAndTheProgramGoesOn) {
  Child c({program("libcr_probe"), "thread", "temp=77", "signal"});
  pid_t pid = ready_pid(c);
  ASSERT_GT(pid, 0) << c.output();
  RemotePage page(pid);
  ASSERT_TRUE(page.ok());
  page.request();
  ASSERT_EQ(page.wait_decision(), (uint32_t)CRBOX_STATE_TEMP_FAILURE) << c.output();
  EXPECT_NE(page.message().find("CR_CHECKPOINT_TEMP_FAILURE_CODE(77)"), std::string::npos) << page.message();
  ASSERT_TRUE(page.finish(CRBOX_RESULT_ABORTED));
  ASSERT_TRUE(saw(c, "T rc=-77")) << c.output();
  EXPECT_EQ(c.output().find("S1 before"), std::string::npos) << "signal-context callbacks never started";
  kill(pid, SIGUSR2);
  EXPECT_TRUE(saw(c, "alive")) << c.output();
}

TEST(LibcrProtocol, ReturningNonzeroOmittingAndPermanentFailure) {
  struct Case {
    const char* word;
    uint32_t state;
    uint32_t result;
    std::string rc_line;
  } cases[] = {
      {"ret1", CRBOX_STATE_TEMP_FAILURE, CRBOX_RESULT_ABORTED, ""},
      {"omit", CRBOX_STATE_OMIT, CRBOX_RESULT_OMITTED, "T rc=" + std::to_string(-kEOmitted)},
      {"perm", CRBOX_STATE_PERM_FAILURE, CRBOX_RESULT_ABORTED_PERM, "T rc=" + std::to_string(-kEPermFail)},
  };
  for (auto& k : cases) {
    Child c({program("libcr_probe"), "thread", k.word});
    pid_t pid = ready_pid(c);
    ASSERT_GT(pid, 0) << c.output();
    RemotePage page(pid);
    ASSERT_TRUE(page.ok());
    page.request();
    EXPECT_EQ(page.wait_decision(), k.state) << k.word << "\n" << c.output();
    EXPECT_FALSE(page.message().empty() && k.state != CRBOX_STATE_OMIT) << k.word;
    ASSERT_TRUE(page.finish(k.result)) << k.word;
    if (!k.rc_line.empty()) {
      EXPECT_TRUE(saw(c, k.rc_line)) << k.word << "\n" << c.output();
    }
    kill(pid, SIGUSR2);
    EXPECT_TRUE(saw(c, "alive")) << k.word;
  }
}

TEST(LibcrProtocol, ACriticalSectionDelaysReadyUntilLeft) {
  Child c({program("libcr_probe"), "thread", "cs"});
  pid_t pid = ready_pid(c);
  ASSERT_GT(pid, 0) << c.output();
  RemotePage page(pid);
  ASSERT_TRUE(page.ok());
  kill(pid, SIGUSR1);
  ASSERT_TRUE(saw(c, "cs entered")) << c.output();
  EXPECT_EQ(page->cs_count, 1);
  page.request();
  // The program leaves only once it sees the request pending (cr_status() == CR_STATE_PENDING).
  ASSERT_TRUE(saw(c, "cs pending status=1")) << c.output();
  ASSERT_EQ(page.wait_decision(), (uint32_t)CRBOX_STATE_READY) << c.output();
  ASSERT_TRUE(saw(c, "T before")) << c.output();
  EXPECT_TRUE(in_order(c.output(), {"cs entered", "cs pending status=1", "cs leaving", "T before status=2"}));
  ASSERT_TRUE(page.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(saw(c, "T rc=0")) << c.output();
  EXPECT_EQ(page->cs_count, 0);
}

TEST(LibcrProtocol, AForkChildHasAPageOfItsOwn) {
  Child c({program("libcr_probe"), "thread", "signal", "fork"});
  pid_t parent = ready_pid(c);
  pid_t child = ready_pid(c, "child ");
  ASSERT_GT(parent, 0) << c.output();
  ASSERT_GT(child, 0) << c.output();
  RemotePage pp(parent), cp(child);
  ASSERT_TRUE(pp.ok());
  ASSERT_TRUE(cp.ok()) << libcr::maps_of(child);
  EXPECT_NE(pp.inode(), cp.inode()) << "two memfds";
  EXPECT_EQ(cp->magic, CRBOX_LIBCR_MAGIC);
  EXPECT_EQ(cp->callbacks, 2u) << "the forking thread's callbacks go on in the child";
  cp.request();
  ASSERT_EQ(cp.wait_decision(), (uint32_t)CRBOX_STATE_READY) << c.output();
  EXPECT_EQ(pp.state(), (uint32_t)CRBOX_STATE_IDLE) << "the parent is not asked";
  ASSERT_TRUE(cp.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(saw(c, "child T rc=0")) << c.output();
  EXPECT_TRUE(saw(c, "child S1 rc=0")) << c.output();
  EXPECT_EQ(line_at(c.output(), "T before status=2"), std::string::npos) << "nothing ran in the parent";
  kill(child, SIGKILL);
}

}  // namespace
}  // namespace crbox::test

namespace crbox::test {
namespace {

TEST(LibcrProtocol, WithNscdTurnedOff) {
  // LIBCR_DISABLE_NSCD (BLCR's variable): libcr turns glibc's nscd client off as it starts; the
  // program runs and answers requests as usual.
  setenv("LIBCR_DISABLE_NSCD", "1", 1);
  Child c({program("libcr_probe"), "thread"});
  unsetenv("LIBCR_DISABLE_NSCD");
  auto line = c.wait_for("ready pid=");
  ASSERT_TRUE(line) << c.output();
  pid_t pid = std::stoi(line->substr(line->find("pid=") + 4));
  RemotePage page(pid);
  ASSERT_TRUE(page.ok());
  page.request();
  ASSERT_EQ(page.wait_decision(), (uint32_t)CRBOX_STATE_READY) << c.output();
  ASSERT_TRUE(page.finish(CRBOX_RESULT_CONTINUE));
  EXPECT_TRUE(c.wait_for("T rc=0")) << c.output();
}

}  // namespace
}  // namespace crbox::test
