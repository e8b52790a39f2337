// cr_run --sandbox: real programs report from inside what the sandbox looks like.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "harness.h"

namespace crbox::test {
namespace {

std::vector<std::string> sandboxed(std::vector<std::string> opts, const std::string& prog, std::vector<std::string> args) {
  std::vector<std::string> argv = {tool("cr_run"), "--sandbox"};
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.push_back("--");
  argv.push_back(program(prog));
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

RunResult probe(std::vector<std::string> opts, std::vector<std::string> args) {
  return run(sandboxed(std::move(opts), "sb_probe", std::move(args)), std::chrono::seconds(30));
}

bool has_line(const std::string& out, const std::string& line) {
  return ("\n" + out).find("\n" + line + "\n") != std::string::npos;
}

TEST(CrRunSandbox, ProgramIsPid2WithInitAsParent) {
  auto r = probe({}, {"pid"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "pid 2 ppid 1\n");
}

TEST(CrRunSandbox, ProcShowsOnlyTheSandbox) {
  auto r = probe({}, {"ps"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "proc 1\nproc 2\n");
}

TEST(CrRunSandbox, HostnameDefaultAndChosen) {
  EXPECT_EQ(probe({}, {"hostname"}).out, "hostname crbox\n");
  EXPECT_EQ(probe({"--hostname", "box-7"}, {"hostname"}).out, "hostname box-7\n");
}

TEST(CrRunSandbox, TmpIsPrivateAndEmpty) {
  std::string host_marker = "/tmp/crbox-cr-run-host-marker-" + std::to_string(getpid());
  { std::ofstream(host_marker) << "x"; }
  auto r = probe({}, {"tmp"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "tmp entries 0 write ok\n");
  struct stat st;
  EXPECT_NE(stat("/tmp/sb_probe_marker", &st), 0) << "the sandbox's /tmp leaked to the host";
  unlink(host_marker.c_str());
}

TEST(CrRunSandbox, MountInsideIsInvisibleOutside) {
  auto r = probe({"--cap-add", "SYS_ADMIN"}, {"mount", "/mnt"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "mount ok\nmounted-inside yes\n");
  std::ifstream mi("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mi, line)) EXPECT_EQ(line.find(" /mnt "), std::string::npos) << line;
}

TEST(CrRunSandbox, MountIsDeniedByDefault) {
  auto r = probe({}, {"mount", "/mnt"});
  EXPECT_EQ(r.out, "mount Operation not permitted\n");
}

TEST(CrRunSandbox, DefaultSeccompDeniesWithEpermAndAllowsTheRest) {
  auto r = probe({}, {"denied"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "add_key 1\nunshare_user 1\nkeyctl 1\nuname 0\ngetcwd 0\npthread 0\nfork 0\n");
  auto none = probe({"--seccomp=none"}, {"denied"});
  EXPECT_TRUE(has_line(none.out, "add_key 0")) << none.out;
  EXPECT_TRUE(has_line(none.out, "unshare_user 0")) << none.out;
}

TEST(CrRunSandbox, SeccompProfileFromJson) {
  TempDir dir;
  std::ofstream(dir / "profile.json") << R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
      {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
      {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
       "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}
    ]})";
  auto mk = probe({"--seccomp-profile", dir / "profile.json"}, {"mkdir", "/tmp/d"});
  EXPECT_EQ(mk.out, "mkdir 13\n") << mk.err;
  EXPECT_EQ(probe({"--seccomp-profile", dir / "profile.json"}, {"socket", "16"}).out, "socket 1\n");
  EXPECT_EQ(probe({"--seccomp-profile", dir / "profile.json"}, {"socket", "2"}).out, "socket 0\n");
  // The profile replaces the default policy: add_key is allowed now.
  EXPECT_TRUE(has_line(probe({"--seccomp-profile", dir / "profile.json"}, {"denied"}).out, "add_key 0"));
}

TEST(CrRunSandbox, CapabilitySets) {
  // Docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
  // net_bind_service net_raw sys_chroot mknod audit_write setfcap = 0xa80425fb.
  auto r = probe({}, {"caps"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(has_line(r.out, "CapEff:\t00000000a80425fb")) << r.out;
  EXPECT_TRUE(has_line(r.out, "CapPrm:\t00000000a80425fb")) << r.out;
  EXPECT_TRUE(has_line(r.out, "CapBnd:\t00000000a80425fb")) << r.out;
  EXPECT_TRUE(has_line(r.out, "CapInh:\t0000000000000000")) << r.out;
  EXPECT_TRUE(has_line(r.out, "NoNewPrivs:\t1")) << r.out;
  EXPECT_TRUE(has_line(r.out, "Seccomp:\t2")) << r.out;
  // + sys_admin (bit 21), - chown (bit 0).
  auto r2 = probe({"--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "chown"}, {"caps"});
  EXPECT_TRUE(has_line(r2.out, "CapEff:\t00000000a82425fa")) << r2.out;
  auto none = probe({"--cap-drop", "ALL"}, {"caps"});
  EXPECT_TRUE(has_line(none.out, "CapEff:\t0000000000000000")) << none.out;
  EXPECT_TRUE(has_line(none.out, "CapBnd:\t0000000000000000")) << none.out;
}

TEST(CrRunSandbox, UidGidDropCapabilities) {
  auto r = probe({"--uid", "65534", "--gid", "65534"}, {"ids"});
  EXPECT_EQ(r.out, "uid 65534 gid 65534\n") << r.err;
  auto c = probe({"--uid", "65534"}, {"caps"});
  EXPECT_TRUE(has_line(c.out, "CapEff:\t0000000000000000")) << c.out;
}

TEST(CrRunSandbox, Rlimits) {
  EXPECT_EQ(probe({"--rlimit", "nofile=100:200"}, {"rlimit", "nofile"}).out, "rlimit nofile 100 200\n");
  EXPECT_EQ(probe({"--rlimit", "core=unlimited"}, {"rlimit", "core"}).out,
            "rlimit core 18446744073709551615 18446744073709551615\n");
}

TEST(CrRunSandbox, EnvAndCwd) {
  EXPECT_EQ(probe({"--env", "CRBOX_X=hello world"}, {"env", "CRBOX_X"}).out, "env CRBOX_X=hello world\n");
  EXPECT_EQ(probe({"--cwd", "/proc"}, {"cwd"}).out, "cwd /proc\n");
}

TEST(CrRunSandbox, ReadOnlyRootKeepsTmpWritable) {
  EXPECT_EQ(probe({"--read-only"}, {"mkdir", "/crbox-should-not-exist"}).out, "mkdir 30\n");  // EROFS
  EXPECT_EQ(probe({"--read-only"}, {"mkdir", "/tmp/ok"}).out, "mkdir 0\n");
}

TEST(CrRunSandbox, NetNoneHasOnlyLoopbackUp) {
  auto r = probe({"--net=none"}, {"net"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "if lo up\n");
}

TEST(CrRunSandbox, TimeNamespaceOffset) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto r = probe({"--time-offset", "1000000"}, {"clock"});
  ASSERT_EQ(r.status, 0) << r.err;
  long long inside = std::stoll(r.out.substr(r.out.find(' ') + 1));
  EXPECT_GE(inside, ts.tv_sec + 1000000);
  EXPECT_LT(inside, ts.tv_sec + 1000000 + 30);
}

TEST(CrRunSandbox, BindMounts) {
  TempDir dir;
  std::ofstream(dir / "file") << "x";
  // Into the private /tmp, where crbox may create the mount point.
  auto r = probe({"--ro-bind", dir.path() + ":/tmp/in"}, {"exists", "/tmp/in/file"});
  EXPECT_EQ(r.out, "exists yes\n") << r.err;
  EXPECT_EQ(probe({"--ro-bind", dir.path() + ":/tmp/in"}, {"mkdir", "/tmp/in/sub"}).out, "mkdir 30\n");
  EXPECT_EQ(probe({"--bind", dir.path() + ":/tmp/in"}, {"mkdir", "/tmp/in/sub"}).out, "mkdir 0\n");
  struct stat st;
  EXPECT_EQ(stat((dir / "sub").c_str(), &st), 0) << "a writable bind writes through to the host";
}

TEST(CrRunSandbox, Rootfs) {
  TempDir dir;
  std::string root = dir / "root";
  mkdir(root.c_str(), 0755);
  for (const char* d : {"usr", "progs"}) mkdir((root + "/" + d).c_str(), 0755);
  for (const char* l : {"bin", "lib", "lib64", "sbin"}) symlink((std::string("usr/") + l).c_str(), (root + "/" + l).c_str());
  std::ofstream(root + "/marker") << "inside";
  std::string progs = program("sb_probe").substr(0, program("sb_probe").rfind('/'));
  std::vector<std::string> opts = {"--rootfs", root, "--ro-bind", "/usr:/usr", "--ro-bind", progs + ":/progs"};
  auto run_in = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {tool("cr_run"), "--sandbox"};
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back("/progs/sb_probe");
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, std::chrono::seconds(30));
  };
  auto r = run_in({"exists", "/marker"});
  EXPECT_EQ(r.out, "exists yes\n") << r.err;
  EXPECT_EQ(run_in({"exists", "/work"}).out, "exists no\n");
  EXPECT_EQ(run_in({"ps"}).out, "proc 1\nproc 2\n");
  EXPECT_EQ(run_in({"exists", "/dev/null"}).out, "exists yes\n");
  auto missing = run({tool("cr_run"), "--sandbox", "--rootfs", root, "/no/such/program"});
  EXPECT_EQ(missing.status, 127);
  EXPECT_EQ(missing.err, "cr_run: /no/such/program: No such file or directory\n");
}

TEST(CrRunSandbox, OrphansAreReaped) {
  auto r = run(sandboxed({}, "sb_orphans", {"5"}), std::chrono::seconds(30));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "zombies 0\n");
}

}  // namespace
}  // namespace crbox::test
