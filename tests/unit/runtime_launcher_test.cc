// run_sandbox's API for cr_restart: a custom start_app inside the init, on_started in the
// launcher, and teardown when on_started throws. Needs root (skipped otherwise).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/launcher.h"
#include "runtime/registry.h"
#include "runtime/signals.h"
#include "util/error.h"

namespace crbox::runtime {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

class RuntimeLauncher : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/tmp/crbox-launcher-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    setenv("CRBOX_RUN_DIR", root_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("CRBOX_RUN_DIR");
    if (!root_.empty()) std::filesystem::remove_all(root_);
  }
  std::string root_;
};

LaunchOptions options(const std::string& id) {
  LaunchOptions o;
  o.id = id;
  o.spec.argv = {"custom-app"};
  o.spec.capabilities = {};
  // The app: a child of the init that exits with 7 after the launcher lets it (it waits for SIGUSR1).
  o.start_app = [] {
    pid_t pid = fork();
    if (pid == 0) {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGUSR1);
      sigprocmask(SIG_BLOCK, &set, nullptr);
      int sig;
      sigwait(&set, &sig);
      _exit(getpid() == 2 ? 7 : 1);
    }
    return pid;
  };
  return o;
}

TEST_F(RuntimeLauncher, CustomStartAppAndOnStarted) {
  auto o = options("launch-ok");
  LaunchedSandbox seen;
  o.on_started = [&](const LaunchedSandbox& s) {
    seen = s;
    auto rec = find_sandbox("launch-ok", root_);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->app_pid, s.app_pid);
    EXPECT_EQ(rec->app_inner_pid, 2);
    auto of = find_sandbox_of(s.app_pid, root_);
    ASSERT_TRUE(of);
    EXPECT_EQ(of->id, "launch-ok");
    EXPECT_TRUE(exists(s.cgroups.freezer));
    kill(s.app_pid, SIGUSR1);
  };
  EXPECT_EQ(run_sandbox(o), 7);
  EXPECT_GT(seen.init_pid, 0);
  EXPECT_FALSE(exists(root_ + "/launch-ok"));
  EXPECT_FALSE(exists(seen.cgroups.freezer));
}

TEST_F(RuntimeLauncher, ThrowingOnStartedTearsDown) {
  auto o = options("launch-fail");
  LaunchedSandbox seen;
  o.on_started = [&](const LaunchedSandbox& s) {
    seen = s;
    throw Error("restore failed");
  };
  EXPECT_THROW(run_sandbox(o), Error);
  EXPECT_FALSE(exists("/proc/" + std::to_string(seen.init_pid)));
  EXPECT_FALSE(exists("/proc/" + std::to_string(seen.app_pid)));
  EXPECT_FALSE(exists(root_ + "/launch-fail"));
  EXPECT_FALSE(exists(seen.cgroups.freezer));
}

TEST_F(RuntimeLauncher, StartAppErrorReachesTheLauncher) {
  auto o = options("launch-err");
  o.start_app = []() -> pid_t { throw Error("cannot rebuild the tree"); };
  try {
    run_sandbox(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot rebuild the tree");
  }
  EXPECT_FALSE(exists(root_ + "/launch-err"));
}

}  // namespace
}  // namespace crbox::runtime
