#include "runtime/seccomp.h"

// cereal's JSON archive configures rapidjson (RAPIDJSON_ASSERT throws instead of aborting); include
// it first so every user of rapidjson in crbox sees the same configuration.
#include <cereal/archives/json.hpp>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <seccomp.h>
#include <sched.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>

#include "runtime/caps.h"
#include "runtime/usage_error.h"
#include "util/error.h"
#include "util/strings.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

namespace crbox::runtime {
namespace {

using rapidjson::Value;

[[noreturn]] void bad(const std::string& what) { throw UsageError("bad seccomp profile: " + what); }

std::string get_string(const Value& v, const std::string& what) {
  if (!v.IsString()) bad(what + " must be a string");
  return std::string(v.GetString(), v.GetStringLength());
}

std::vector<std::string> get_strings(const Value& v, const std::string& what) {
  if (!v.IsArray()) bad(what + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v.GetArray()) out.push_back(get_string(item, what));
  return out;
}

uint64_t get_u64(const Value& v, const std::string& what) {
  if (!v.IsUint64()) bad(what + " must be a non-negative integer");
  return v.GetUint64();
}

bool known_action(const std::string& a) {
  static const char* kActions[] = {"SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO",       "SCMP_ACT_KILL",
                                   "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                                   "SCMP_ACT_LOG",          "SCMP_ACT_TRACE"};
  return std::find(std::begin(kActions), std::end(kActions), a) != std::end(kActions);
}

void check_action(const std::string& a) {
  if (a == "SCMP_ACT_NOTIFY") bad("SCMP_ACT_NOTIFY is not supported");
  if (!known_action(a)) bad("unknown action '" + a + "'");
}

std::optional<scmp_compare> compare_op(const std::string& op) {
  static const std::map<std::string, scmp_compare> kOps = {
      {"SCMP_CMP_NE", SCMP_CMP_NE}, {"SCMP_CMP_LT", SCMP_CMP_LT}, {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ}, {"SCMP_CMP_GE", SCMP_CMP_GE}, {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = kOps.find(op);
  if (it == kOps.end()) return std::nullopt;
  return it->second;
}

void parse_filter(const Value& v, const std::string& what, std::vector<std::string>& caps,
                  std::vector<std::string>& arches, std::string* min_kernel) {
  if (!v.IsObject()) bad(what + " must be an object");
  for (const auto& m : v.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key == "caps") caps = get_strings(m.value, what + ".caps");
    else if (key == "arches") arches = get_strings(m.value, what + ".arches");
    else if (key == "minKernel" && min_kernel) *min_kernel = get_string(m.value, what + ".minKernel");
  }
}

SeccompRule parse_rule(const Value& v, size_t index) {
  std::string what = "syscalls[" + std::to_string(index) + "]";
  if (!v.IsObject()) bad(what + " must be an object");
  SeccompRule r;
  if (v.HasMember("names")) r.names = get_strings(v["names"], what + ".names");
  if (v.HasMember("name")) r.names.push_back(get_string(v["name"], what + ".name"));
  if (r.names.empty()) bad(what + " names no syscall");
  if (!v.HasMember("action")) bad(what + " has no action");
  r.action = get_string(v["action"], what + ".action");
  check_action(r.action);
  if (v.HasMember("errnoRet")) r.errno_ret = static_cast<uint32_t>(get_u64(v["errnoRet"], what + ".errnoRet"));
  if (v.HasMember("args") && !v["args"].IsNull()) {
    if (!v["args"].IsArray()) bad(what + ".args must be an array");
    size_t i = 0;
    for (const auto& a : v["args"].GetArray()) {
      std::string aw = what + ".args[" + std::to_string(i++) + "]";
      if (!a.IsObject()) bad(aw + " must be an object");
      SeccompArg arg;
      if (!a.HasMember("index")) bad(aw + " has no index");
      uint64_t idx = get_u64(a["index"], aw + ".index");
      if (idx > 5) bad(aw + ".index must be 0..5");
      arg.index = static_cast<unsigned>(idx);
      if (a.HasMember("value")) arg.value = get_u64(a["value"], aw + ".value");
      if (a.HasMember("valueTwo")) arg.value_two = get_u64(a["valueTwo"], aw + ".valueTwo");
      if (!a.HasMember("op")) bad(aw + " has no op");
      arg.op = get_string(a["op"], aw + ".op");
      if (!compare_op(arg.op)) bad(aw + ": unknown op '" + arg.op + "'");
      r.args.push_back(arg);
    }
  }
  if (v.HasMember("includes")) parse_filter(v["includes"], what + ".includes", r.include_caps, r.include_arches, &r.min_kernel);
  if (v.HasMember("excludes")) parse_filter(v["excludes"], what + ".excludes", r.exclude_caps, r.exclude_arches, nullptr);
  return r;
}

// Architecture names as Docker writes them in includes/excludes ("amd64") and as libseccomp does.
bool is_this_arch(const std::string& a) { return a == "amd64" || a == "x86_64" || a == "SCMP_ARCH_X86_64"; }

bool kernel_at_least(const std::string& min) {
  if (min.empty()) return true;
  utsname u;
  if (::uname(&u) != 0) return false;
  unsigned kmaj = 0, kmin = 0, rmaj = 0, rmin = 0;
  if (std::sscanf(u.release, "%u.%u", &kmaj, &kmin) != 2) return false;
  if (std::sscanf(min.c_str(), "%u.%u", &rmaj, &rmin) < 1) return false;
  return kmaj > rmaj || (kmaj == rmaj && kmin >= rmin);
}

bool rule_applies(const SeccompRule& r, const std::vector<std::string>& caps) {
  for (const auto& c : r.include_caps) {
    if (!has_capability(caps, c)) return false;
  }
  for (const auto& c : r.exclude_caps) {
    if (has_capability(caps, c)) return false;
  }
  if (!r.include_arches.empty() && std::none_of(r.include_arches.begin(), r.include_arches.end(), is_this_arch)) return false;
  if (std::any_of(r.exclude_arches.begin(), r.exclude_arches.end(), is_this_arch)) return false;
  return kernel_at_least(r.min_kernel);
}

uint32_t action_value(const std::string& a, std::optional<uint32_t> errno_ret) {
  if (a == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (a == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(errno_ret.value_or(EPERM));
  if (a == "SCMP_ACT_KILL" || a == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (a == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (a == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (a == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (a == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(errno_ret.value_or(EPERM));
  throw Error("unknown seccomp action '" + a + "'");
}

class Filter {
 public:
  explicit Filter(uint32_t def) : ctx_(seccomp_init(def)) {
    if (!ctx_) throw Error("cannot create a seccomp filter");
  }
  ~Filter() { seccomp_release(ctx_); }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

void add_rule(scmp_filter_ctx ctx, uint32_t action, int nr, const std::vector<scmp_arg_cmp>& conds, const std::string& name) {
  int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()), conds.empty() ? nullptr : conds.data());
  if (rc != 0) throw_errno("cannot add the seccomp rule for " + name, -rc);
}

}  // namespace

SeccompProfile parse_seccomp_profile(std::string_view json) {
  rapidjson::Document doc;
  std::string text(json);
  try {
    doc.Parse(text.c_str());
  } catch (const std::exception& e) {
    bad(std::string("invalid JSON: ") + e.what());
  }
  if (doc.HasParseError()) {
    bad(std::string("invalid JSON at offset ") + std::to_string(doc.GetErrorOffset()) + ": " +
        rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) bad("the top level must be an object");
  SeccompProfile p;
  if (!doc.HasMember("defaultAction")) bad("defaultAction is missing");
  p.default_action = get_string(doc["defaultAction"], "defaultAction");
  check_action(p.default_action);
  if (doc.HasMember("defaultErrnoRet")) p.default_errno_ret = static_cast<uint32_t>(get_u64(doc["defaultErrnoRet"], "defaultErrnoRet"));
  if (doc.HasMember("architectures") && !doc["architectures"].IsNull()) p.architectures = get_strings(doc["architectures"], "architectures");
  if (doc.HasMember("archMap") && !doc["archMap"].IsNull()) {
    if (!doc["archMap"].IsArray()) bad("archMap must be an array");
    for (const auto& m : doc["archMap"].GetArray()) {
      if (!m.IsObject() || !m.HasMember("architecture")) bad("archMap entries need an architecture");
      p.architectures.push_back(get_string(m["architecture"], "archMap.architecture"));
      if (m.HasMember("subArchitectures")) {
        for (auto& s : get_strings(m["subArchitectures"], "archMap.subArchitectures")) p.architectures.push_back(s);
      }
    }
  }
  if (doc.HasMember("syscalls") && !doc["syscalls"].IsNull()) {
    if (!doc["syscalls"].IsArray()) bad("syscalls must be an array");
    size_t i = 0;
    for (const auto& r : doc["syscalls"].GetArray()) p.syscalls.push_back(parse_rule(r, i++));
  }
  return p;
}

// Everything libcr needs inside a sandbox stays allowed here: its page and futexes (memfd_create,
// mmap, futex), CR_SIGNUM (rt_tgsigqueueinfo), its thread (clone without namespace flags), and
// checkpoint requests to the launcher (socket, connect, sendmsg with SCM_RIGHTS, recvfrom:
// runtime/libcr/request_protocol.h).
SeccompProfile default_seccomp_profile() {
  SeccompProfile p;
  p.default_action = "SCMP_ACT_ALLOW";
  p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto deny = [&](std::vector<std::string> names, std::vector<std::string> unless_caps) {
    SeccompRule r;
    r.names = std::move(names);
    r.action = "SCMP_ACT_ERRNO";
    r.errno_ret = EPERM;
    r.exclude_caps = std::move(unless_caps);
    p.syscalls.push_back(std::move(r));
  };
  deny({"kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key", "lookup_dcookie", "nfsservctl", "uselib",
        "ustat", "sysfs", "_sysctl"},
       {});
  deny({"init_module", "finit_module", "delete_module"}, {"CAP_SYS_MODULE"});
  deny({"reboot"}, {"CAP_SYS_BOOT"});
  deny({"settimeofday", "clock_settime", "clock_adjtime", "adjtimex"}, {"CAP_SYS_TIME"});
  deny({"mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsmount", "fsconfig", "fspick", "open_tree",
        "mount_setattr", "swapon", "swapoff", "quotactl", "quotactl_fd", "setns", "fanotify_init", "name_to_handle_at"},
       {"CAP_SYS_ADMIN"});
  deny({"bpf"}, {"CAP_SYS_ADMIN", "CAP_BPF"});
  deny({"perf_event_open"}, {"CAP_SYS_ADMIN", "CAP_PERFMON"});
  deny({"acct"}, {"CAP_SYS_PACCT"});
  deny({"iopl", "ioperm"}, {"CAP_SYS_RAWIO"});
  deny({"syslog"}, {"CAP_SYSLOG"});
  deny({"open_by_handle_at"}, {"CAP_DAC_READ_SEARCH"});
  deny({"userfaultfd"}, {"CAP_SYS_PTRACE"});
  // unshare(2) and clone(2) (flags are argument 0 of both on x86_64) with any namespace flag: one
  // condition per flag on the same argument, which the loader turns into OR-ed rules.
  SeccompRule ns;
  ns.names = {"unshare", "clone"};
  ns.action = "SCMP_ACT_ERRNO";
  ns.errno_ret = EPERM;
  ns.exclude_caps = {"CAP_SYS_ADMIN"};
  for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                        static_cast<decltype(CLONE_NEWNS)>(CLONE_NEWTIME)}) {
    ns.args.push_back(SeccompArg{0, flag, flag, "SCMP_CMP_MASKED_EQ"});
  }
  p.syscalls.push_back(ns);
  SeccompRule c3;
  c3.names = {"clone3"};
  c3.action = "SCMP_ACT_ERRNO";
  c3.errno_ret = ENOSYS;
  c3.exclude_caps = {"CAP_SYS_ADMIN"};
  p.syscalls.push_back(c3);
  return p;
}

void load_seccomp_profile(const SeccompProfile& profile, const std::vector<std::string>& caps) {
  uint32_t def = action_value(profile.default_action, profile.default_errno_ret);
  Filter f(def);
  for (const auto& a : profile.architectures) {
    std::string n = a;
    if (starts_with(n, "SCMP_ARCH_")) n.erase(0, 10);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    uint32_t arch = seccomp_arch_resolve_name(n.c_str());
    // Architectures this machine cannot run (arm on x86_64) are skipped, as runc does.
    if (arch == 0 || arch == seccomp_arch_native()) continue;
    int rc = seccomp_arch_add(f.get(), arch);
    if (rc != 0 && rc != -EEXIST) continue;
  }
  for (const auto& r : profile.syscalls) {
    if (!rule_applies(r, caps)) continue;
    uint32_t action = action_value(r.action, r.errno_ret);
    if (action == def) continue;  // libseccomp refuses rules that repeat the default action
    std::vector<std::vector<scmp_arg_cmp>> rule_conds;
    bool repeated_index = false;
    for (size_t i = 0; i < r.args.size(); i++) {
      for (size_t j = 0; j < i; j++) repeated_index |= r.args[i].index == r.args[j].index;
    }
    auto cond = [](const SeccompArg& a) {
      return scmp_arg_cmp{a.index, *compare_op(a.op), a.value, a.value_two};
    };
    if (repeated_index) {
      for (const auto& a : r.args) rule_conds.push_back({cond(a)});
    } else {
      std::vector<scmp_arg_cmp> all;
      for (const auto& a : r.args) all.push_back(cond(a));
      rule_conds.push_back(all);
    }
    for (const auto& name : r.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) continue;  // not a syscall of this kernel's architectures
      for (const auto& conds : rule_conds) add_rule(f.get(), action, nr, conds, name);
    }
  }
  int rc = seccomp_load(f.get());
  if (rc != 0) throw_errno("cannot load the seccomp filter", -rc);
}

void apply_seccomp(const model::SandboxSpec& spec) {
  switch (spec.seccomp) {
    case model::SeccompMode::none:
      return;
    case model::SeccompMode::default_policy:
      load_seccomp_profile(default_seccomp_profile(), spec.capabilities);
      return;
    case model::SeccompMode::profile:
      load_seccomp_profile(parse_seccomp_profile(spec.seccomp_profile), spec.capabilities);
      return;
  }
}

}  // namespace crbox::runtime
