// Option parsing for cr_run: rlimits, capabilities, sizes, binds, whole requests.
#include <gtest/gtest.h>

#include <cstdint>

#include "runtime/caps.h"
#include "runtime/options.h"
#include "runtime/registry.h"
#include "runtime/rlimits.h"
#include "runtime/usage_error.h"

namespace crbox::runtime {
namespace {

TEST(RuntimeRlimit, ParsesSoftHardAndUnlimited) {
  auto a = parse_rlimit("nofile=1024:4096");
  EXPECT_EQ(a.name, "nofile");
  EXPECT_EQ(a.soft, 1024u);
  EXPECT_EQ(a.hard, 4096u);
  auto b = parse_rlimit("RLIMIT_CORE=unlimited");
  EXPECT_EQ(b.name, "core");
  EXPECT_EQ(b.soft, UINT64_MAX);
  EXPECT_EQ(b.hard, UINT64_MAX);
  auto c = parse_rlimit("stack=8M:infinity");
  EXPECT_EQ(c.soft, 8u << 20);
  EXPECT_EQ(c.hard, UINT64_MAX);
  EXPECT_EQ(parse_rlimit("AS=1g").soft, 1ull << 30);
  EXPECT_TRUE(rlimit_resource("nproc"));
  EXPECT_FALSE(rlimit_resource("bogus"));
}

TEST(RuntimeRlimit, RejectsBadText) {
  for (const char* bad : {"nofile", "nofile=", "nofile=abc", "nofile=10:x", "nofile=10:5", "bogus=1", "=5", "nofile=-1"}) {
    EXPECT_THROW(parse_rlimit(bad), UsageError) << bad;
  }
}

TEST(RuntimeCaps, NamesInEverySpelling) {
  EXPECT_EQ(canonical_capability("chown"), "cap_chown");
  EXPECT_EQ(canonical_capability("CAP_SYS_ADMIN"), "cap_sys_admin");
  EXPECT_EQ(canonical_capability("Net_Raw"), "cap_net_raw");
  EXPECT_FALSE(canonical_capability("no_such"));
  EXPECT_FALSE(canonical_capability(""));
}

TEST(RuntimeCaps, DefaultAddDropAll) {
  auto def = resolve_capabilities({}, {});
  EXPECT_EQ(def.size(), 14u);
  EXPECT_TRUE(has_capability(def, "CAP_CHOWN"));
  EXPECT_FALSE(has_capability(def, "sys_admin"));
  auto more = resolve_capabilities({"SYS_ADMIN,cap_net_admin"}, {"chown"});
  EXPECT_TRUE(has_capability(more, "sys_admin"));
  EXPECT_TRUE(has_capability(more, "net_admin"));
  EXPECT_FALSE(has_capability(more, "chown"));
  EXPECT_EQ(more.size(), 15u);
  EXPECT_EQ(resolve_capabilities({"ALL"}, {}).size(), all_capabilities().size());
  EXPECT_TRUE(resolve_capabilities({"all"}, {"ALL"}).empty());
  auto only = resolve_capabilities({"kill"}, {"all"});
  EXPECT_TRUE(only.empty()) << "drops apply after adds";
  EXPECT_THROW(resolve_capabilities({"CAP_BOGUS"}, {}), UsageError);
  EXPECT_THROW(resolve_capabilities({}, {"bogus"}), UsageError);
}

TEST(RuntimeOptions, SizesIdsAndNames) {
  EXPECT_EQ(parse_memory("64M"), 64u << 20);
  EXPECT_EQ(parse_memory("1g"), 1u << 30);
  EXPECT_THROW(parse_memory("1M"), UsageError);
  EXPECT_THROW(parse_memory("lots"), UsageError);
  EXPECT_EQ(parse_pids_limit("50"), 50u);
  EXPECT_THROW(parse_pids_limit("0"), UsageError);
  EXPECT_THROW(parse_pids_limit("-3"), UsageError);
  EXPECT_EQ(parse_id("1000", "--uid"), 1000u);
  EXPECT_THROW(parse_id("root", "--uid"), UsageError);
  EXPECT_THROW(parse_id("4294967295", "--uid"), UsageError);
  EXPECT_TRUE(valid_hostname("crbox"));
  EXPECT_TRUE(valid_hostname("a-b.example"));
  EXPECT_FALSE(valid_hostname("bad host"));
  EXPECT_FALSE(valid_hostname("-x"));
  EXPECT_FALSE(valid_hostname(""));
  EXPECT_TRUE(valid_sandbox_id("job_1.a-b"));
  EXPECT_FALSE(valid_sandbox_id("../x"));
  EXPECT_FALSE(valid_sandbox_id(".hidden"));
  EXPECT_FALSE(valid_sandbox_id(""));
  EXPECT_FALSE(valid_sandbox_id(std::string(65, 'a')));
  EXPECT_EQ(generate_sandbox_id().size(), 12u);
  EXPECT_NE(generate_sandbox_id(), generate_sandbox_id());
}

TEST(RuntimeOptions, Binds) {
  auto b = parse_bind("/usr:/mnt/usr", true);
  EXPECT_EQ(b.source, "/usr");
  EXPECT_EQ(b.target, "/mnt/usr");
  EXPECT_TRUE(b.read_only);
  auto same = parse_bind("/etc", false);
  EXPECT_EQ(same.target, "/etc");
  EXPECT_THROW(parse_bind("/nonexistent-crbox", false), UsageError);
  EXPECT_THROW(parse_bind("/usr:relative", false), UsageError);
  EXPECT_THROW(parse_bind("/usr:/a:/b", false), UsageError);
  EXPECT_THROW(parse_bind("", false), UsageError);
  EXPECT_EQ(parse_env("A=b=c"), "A=b=c");
  EXPECT_THROW(parse_env("=x"), UsageError);
  EXPECT_THROW(parse_env("novalue"), UsageError);
}

TEST(RuntimeOptions, PlanRunBuildsTheSpec) {
  RunRequest req;
  req.sandbox = true;
  req.argv = {"prog", "arg"};
  req.name = "job1";
  req.hostname = "h1";
  req.net = "none";
  req.cap_add = {"sys_ptrace"};
  req.cap_drop = {"CAP_MKNOD"};
  req.rlimits = {"nofile=64"};
  req.memory = "128M";
  req.pids_limit = "20";
  req.seccomp = "none";
  req.uid = "1000";
  req.time_offset = "-5";
  req.read_only = true;
  auto plan = plan_run(req);
  EXPECT_TRUE(plan.sandbox);
  EXPECT_EQ(plan.id, "job1");
  EXPECT_EQ(plan.spec.argv, (std::vector<std::string>{"prog", "arg"}));
  EXPECT_EQ(plan.spec.hostname, "h1");
  EXPECT_EQ(plan.spec.net, model::NetMode::none);
  EXPECT_TRUE(has_capability(plan.spec.capabilities, "sys_ptrace"));
  EXPECT_FALSE(has_capability(plan.spec.capabilities, "mknod"));
  ASSERT_EQ(plan.spec.rlimits.size(), 1u);
  EXPECT_EQ(plan.spec.memory_limit, 128u << 20);
  EXPECT_EQ(plan.spec.pids_limit, 20u);
  EXPECT_EQ(plan.spec.seccomp, model::SeccompMode::none);
  EXPECT_EQ(plan.spec.uid, 1000u);
  EXPECT_FALSE(plan.spec.gid);
  EXPECT_TRUE(plan.spec.read_only_root);
  ASSERT_TRUE(plan.time_offsets_ns);
  EXPECT_EQ(plan.time_offsets_ns->first, -5000000000LL);
}

TEST(RuntimeOptions, PlanRunRejects) {
  RunRequest plain;
  plain.argv = {"prog"};
  plain.memory = "64M";
  EXPECT_THROW(plan_run(plain), UsageError) << "sandbox-only option without --sandbox";
  RunRequest none;
  none.sandbox = true;
  EXPECT_THROW(plan_run(none), UsageError) << "no program";
  RunRequest both;
  both.sandbox = true;
  both.argv = {"prog"};
  both.seccomp = "none";
  both.seccomp_profile = "/dev/null";
  EXPECT_THROW(plan_run(both), UsageError);
  RunRequest missing;
  missing.sandbox = true;
  missing.argv = {"prog"};
  missing.seccomp_profile = "/nonexistent/profile.json";
  EXPECT_THROW(plan_run(missing), UsageError);
  RunRequest net;
  net.sandbox = true;
  net.argv = {"prog"};
  net.net = "bridge";
  EXPECT_THROW(plan_run(net), UsageError);
}

TEST(RuntimeOptions, TtyNeedsTheSandboxAndIsInTheSpec) {
  RunRequest req;
  req.argv = {"prog"};
  req.tty = true;
  try {
    plan_run(req);
    ADD_FAILURE() << "--tty without --sandbox was accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--tty needs --sandbox");
  }
  req.sandbox = true;
  EXPECT_TRUE(plan_run(req).spec.tty);
  req.tty = false;
  EXPECT_FALSE(plan_run(req).spec.tty);
}

}  // namespace
}  // namespace crbox::runtime
