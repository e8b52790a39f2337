// cr_run as a process: exit statuses, signals, limits, the registry, and bad input.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace crbox::test {
namespace {

using namespace std::chrono_literals;

bool path_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string unique_name(const std::string& base) { return base + "-" + std::to_string(getpid()); }

TEST(CrRunExit, CodesAndSignalsPassThrough) {
  for (bool sandbox : {false, true}) {
    std::vector<std::string> pre = {tool("cr_run")};
    if (sandbox) pre.push_back("--sandbox");
    auto with = [&](std::vector<std::string> rest) {
      auto v = pre;
      v.insert(v.end(), rest.begin(), rest.end());
      return v;
    };
    EXPECT_EQ(run(with({program("sb_signals"), "exit", "0"})).status, 0) << sandbox;
    EXPECT_EQ(run(with({program("sb_signals"), "exit", "42"})).status, 42) << sandbox;
    EXPECT_EQ(run(with({program("sb_signals"), "kill", "9"})).status, 137) << sandbox;
    EXPECT_EQ(run(with({program("sb_signals"), "kill", "15"})).status, 143) << sandbox;
  }
}

TEST(CrRunExit, StdioPassesThrough) {
  auto r = run({tool("cr_run"), "--sandbox", "--", "/bin/sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
}

void expect_forwarded(bool sandbox, int sig) {
  std::vector<std::string> argv = {tool("cr_run")};
  if (sandbox) argv.push_back("--sandbox");
  argv.push_back(program("sb_signals"));
  Child c(argv);
  ASSERT_TRUE(c.wait_for("ready")) << c.output();
  c.kill(sig);
  auto got = c.wait_for("got");
  ASSERT_TRUE(got) << c.output();
  EXPECT_EQ(*got, "got " + std::to_string(sig));
  EXPECT_EQ(c.wait(), 0);
}

TEST(CrRunSignals, ForwardedToTheSandboxedProgram) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) expect_forwarded(true, sig);
}

TEST(CrRunSignals, ForwardedToThePlainProgram) {
  for (int sig : {SIGTERM, SIGUSR2}) expect_forwarded(false, sig);
}

TEST(CrRunLimits, MemoryLimitKillsTheHog) {
  auto r = run({tool("cr_run"), "--sandbox", "--memory", "32M", program("sb_memhog"), "256"}, 60s);
  EXPECT_EQ(r.status, 137) << r.out << r.err;
  EXPECT_EQ(r.out.find("survived"), std::string::npos);
  auto ok = run({tool("cr_run"), "--sandbox", "--memory", "64M", program("sb_memhog"), "8"}, 60s);
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(ok.out, "survived\n");
}

TEST(CrRunLimits, PidsLimitStopsABoundedForkBomb) {
  // The program itself counts as one of the 10; the bomb tries 40 more.
  auto r = run({tool("cr_run"), "--sandbox", "--pids-limit", "10", program("sb_forkbomb"), "40"}, 60s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "forked 9 failed 31 other 0\n");
  auto free_run = run({tool("cr_run"), "--sandbox", program("sb_forkbomb"), "20"}, 60s);
  EXPECT_EQ(free_run.out, "forked 20 failed 0 other 0\n");
}

TEST(CrRunRegistry, EntryLivesAsLongAsTheSandbox) {
  std::string name = unique_name("crrun-registry");
  Child c({tool("cr_run"), "--sandbox", "--name", name, "--memory", "64M", program("sb_signals")});
  ASSERT_TRUE(c.wait_for("ready")) << c.output();
  std::string record = "/run/crbox/" + name + "/sandbox.json";
  ASSERT_TRUE(eventually([&] { return path_exists(record); })) << c.output();
  std::string json = slurp(record);
  EXPECT_NE(json.find("\"id\": \"" + name + "\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"app_inner_pid\": 2"), std::string::npos) << json;
  EXPECT_NE(json.find("sb_signals"), std::string::npos) << json;
  std::string freezer = "/sys/fs/cgroup/freezer/crbox/" + name;
  EXPECT_NE(json.find(freezer), std::string::npos) << json;
  EXPECT_TRUE(path_exists(freezer + "/freezer.state"));

  auto list = run({tool("cr_run"), "--list"});
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.out.find(name), std::string::npos) << list.out;

  // A second sandbox cannot take the same name while the first lives.
  auto dup = run({tool("cr_run"), "--sandbox", "--name", name, "true"});
  EXPECT_EQ(dup.status, 125);
  EXPECT_EQ(dup.err, "cr_run: a sandbox named '" + name + "' is already running\n");

  c.kill(SIGTERM);
  EXPECT_EQ(c.wait(), 0);
  EXPECT_FALSE(path_exists("/run/crbox/" + name));
  EXPECT_FALSE(path_exists(freezer));
  EXPECT_EQ(run({tool("cr_run"), "--list"}).out.find(name), std::string::npos);
}

TEST(CrRunRegistry, KilledLauncherLeavesAStaleEntryThatIsCleaned) {
  std::string name = unique_name("crrun-stale");
  Child c({tool("cr_run"), "--sandbox", "--name", name, program("sb_signals")});
  ASSERT_TRUE(c.wait_for("ready")) << c.output();
  ASSERT_TRUE(eventually([&] { return path_exists("/run/crbox/" + name + "/sandbox.json"); }));
  kill(c.pid(), SIGKILL);  // the launcher only: its init follows through PR_SET_PDEATHSIG
  c.wait();
  EXPECT_TRUE(path_exists("/run/crbox/" + name));
  auto list = run({tool("cr_run"), "--list"});
  EXPECT_EQ(list.out.find(name), std::string::npos) << list.out;
  EXPECT_FALSE(path_exists("/run/crbox/" + name));
  EXPECT_FALSE(path_exists("/sys/fs/cgroup/freezer/crbox/" + name));
  // And the name is free again.
  EXPECT_EQ(run({tool("cr_run"), "--sandbox", "--name", name, "true"}).status, 0);
}

TEST(CrRunBadInput, MissingAndNotExecutablePrograms) {
  TempDir dir;
  std::string data = dir / "data.txt";
  std::ofstream(data) << "not a program\n";
  chmod(data.c_str(), 0644);
  for (bool sandbox : {false, true}) {
    std::vector<std::string> a = {tool("cr_run")};
    if (sandbox) a.push_back("--sandbox");
    auto missing = a;
    missing.push_back("crbox-no-such-program");
    auto r = run(missing);
    EXPECT_EQ(r.status, 127);
    EXPECT_EQ(r.err, "cr_run: crbox-no-such-program: No such file or directory\n");
    auto noexec = a;
    noexec.push_back(data);
    auto r2 = run(noexec);
    EXPECT_EQ(r2.status, 126);
    EXPECT_EQ(r2.err, "cr_run: " + data + ": Permission denied\n");
  }
}

TEST(CrRunBadInput, BadOptionValuesExit2AndLeaveNothing) {
  std::string name = unique_name("crrun-bad");
  std::vector<std::vector<std::string>> cases = {
      {"--cap-add", "CAP_NO_SUCH"},
      {"--rlimit", "nofile=abc"},
      {"--rlimit", "nosuch=1"},
      {"--rlimit", "nofile=10:5"},
      {"--seccomp-profile", "/nonexistent/profile.json"},
      {"--memory", "lots"},
      {"--pids-limit", "0"},
      {"--net", "bridge"},
      {"--uid", "-1"},
      {"--bind", "/nonexistent-crbox-src"},
      {"--cwd", "relative"},
      {"--hostname", "bad host"},
  };
  for (const auto& opts : cases) {
    std::vector<std::string> argv = {tool("cr_run"), "--sandbox", "--name", name, "--memory", "64M"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(program("sb_signals"));
    auto r = run(argv);
    EXPECT_EQ(r.status, 2) << opts[0] << " " << opts[1] << ": " << r.err;
    EXPECT_EQ(r.err.rfind("cr_run: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(path_exists("/run/crbox/" + name));
    EXPECT_FALSE(path_exists("/sys/fs/cgroup/freezer/crbox/" + name));
  }
  auto bad_name = run({tool("cr_run"), "--sandbox", "--name", "../x", "true"});
  EXPECT_EQ(bad_name.status, 2);
  auto plain_only = run({tool("cr_run"), "--hostname", "x", "true"});
  EXPECT_EQ(plain_only.status, 2);
  EXPECT_EQ(plain_only.err, "cr_run: --hostname needs --sandbox\n");
  EXPECT_EQ(run({tool("cr_run")}).status, 2);
  EXPECT_EQ(run({tool("cr_run"), "--no-such-option", "true"}).status, 2);
}

TEST(CrRunBadInput, BadSeccompProfile) {
  TempDir dir;
  std::ofstream(dir / "p.json") << R"({"defaultAction": "SCMP_ACT_BOGUS"})";
  auto r = run({tool("cr_run"), "--sandbox", "--seccomp-profile", dir / "p.json", "true"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown action 'SCMP_ACT_BOGUS'"), std::string::npos) << r.err;
}

TEST(CrRunBadInput, SandboxNeedsRoot) {
  // setpriv(1) runs cr_run as nobody, from a copy nobody can reach (the build tree may sit in a
  // folder only root can enter).
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0755), 0);
  std::filesystem::copy_file(tool("cr_run"), dir / "cr_run");
  ASSERT_EQ(chmod((dir / "cr_run").c_str(), 0755), 0);
  auto r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", dir / "cr_run", "--sandbox", "true"});
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.err, "cr_run: --sandbox needs root privileges (crbox does not use user namespaces yet).\n");
}

}  // namespace
}  // namespace crbox::test
