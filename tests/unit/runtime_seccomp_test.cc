// The Docker/OCI seccomp profile reader and crbox's default policy (as data; loading is tested
// by the integration tests, inside sandboxes).
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/seccomp.h"
#include "runtime/usage_error.h"

namespace crbox::runtime {
namespace {

TEST(RuntimeSeccompProfile, ParsesDockerFormat) {
  auto p = parse_seccomp_profile(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
      {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
       "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
       "includes": {"arches": ["amd64"], "minKernel": "4.8"}}
    ]})");
  EXPECT_EQ(p.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(p.default_errno_ret, 38u);
  EXPECT_EQ(p.architectures, (std::vector<std::string>{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}));
  ASSERT_EQ(p.syscalls.size(), 4u);
  EXPECT_EQ(p.syscalls[0].names, (std::vector<std::string>{"read", "write"}));
  ASSERT_EQ(p.syscalls[1].args.size(), 1u);
  EXPECT_EQ(p.syscalls[1].args[0].value, 8u);
  EXPECT_EQ(p.syscalls[1].args[0].op, "SCMP_CMP_EQ");
  EXPECT_EQ(p.syscalls[2].args[0].value, 2114060288u);
  EXPECT_EQ(p.syscalls[2].exclude_caps, (std::vector<std::string>{"CAP_SYS_ADMIN"}));
  EXPECT_EQ(p.syscalls[3].names, (std::vector<std::string>{"mkdir"}));
  EXPECT_EQ(p.syscalls[3].errno_ret, 13u);
  EXPECT_EQ(p.syscalls[3].include_arches, (std::vector<std::string>{"amd64"}));
  EXPECT_EQ(p.syscalls[3].min_kernel, "4.8");
}

TEST(RuntimeSeccompProfile, AcceptsUnknownSyscallNamesAndMinimalProfiles) {
  auto p = parse_seccomp_profile(R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["no_such_syscall_anywhere"], "action": "SCMP_ACT_KILL_PROCESS"}]})");
  EXPECT_EQ(p.syscalls.size(), 1u);
  EXPECT_TRUE(parse_seccomp_profile(R"({"defaultAction": "SCMP_ACT_LOG", "syscalls": null})").syscalls.empty());
}

TEST(RuntimeSeccompProfile, RejectsBadProfiles) {
  const char* bad[] = {
      "",
      "not json",
      "[]",
      R"({})",
      R"({"defaultAction": 1})",
      R"({"defaultAction": "SCMP_ACT_BOGUS"})",
      R"({"defaultAction": "SCMP_ACT_NOTIFY"})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SORT_OF"}]}]})",
      R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": "SCMP_ARCH_X86_64"})",
  };
  for (const char* text : bad) EXPECT_THROW(parse_seccomp_profile(text), UsageError) << text;
}

TEST(RuntimeSeccompProfile, ErrorsSayWhatIsWrong) {
  try {
    parse_seccomp_profile(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]})");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "bad seccomp profile: unknown action 'SCMP_ACT_NOPE'");
  }
}

TEST(RuntimeSeccompDefault, DeniesEscapesUnlessTheCapabilityIsGranted) {
  auto p = default_seccomp_profile();
  EXPECT_EQ(p.default_action, "SCMP_ACT_ALLOW");
  auto rule_for = [&](const std::string& name) -> const SeccompRule* {
    for (const auto& r : p.syscalls) {
      if (std::find(r.names.begin(), r.names.end(), name) != r.names.end()) return &r;
    }
    return nullptr;
  };
  for (const char* n : {"kexec_load", "init_module", "reboot", "mount", "umount2", "pivot_root", "bpf", "perf_event_open",
                        "keyctl", "add_key", "clock_settime", "settimeofday", "swapon", "acct", "open_by_handle_at",
                        "setns", "unshare"}) {
    auto* r = rule_for(n);
    ASSERT_NE(r, nullptr) << n;
    EXPECT_EQ(r->action, "SCMP_ACT_ERRNO") << n;
  }
  EXPECT_TRUE(rule_for("kexec_load")->exclude_caps.empty());
  EXPECT_EQ(rule_for("mount")->exclude_caps, (std::vector<std::string>{"CAP_SYS_ADMIN"}));
  EXPECT_EQ(rule_for("clone3")->errno_ret, 38u);  // ENOSYS: libc falls back to clone
  EXPECT_EQ(rule_for("ptrace"), nullptr);
  EXPECT_EQ(rule_for("process_vm_readv"), nullptr);
  EXPECT_EQ(rule_for("unshare")->args.size(), 8u);
}

}  // namespace
}  // namespace crbox::runtime
