#include "runtime/options.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cctype>

#include "runtime/caps.h"
#include "runtime/registry.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "runtime/usage_error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::runtime {
namespace {

std::string absolute_existing(const std::string& path, const std::string& what) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) throw UsageError(what + " " + path + " does not exist");
  return buf;
}

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

model::BindMount parse_bind(const std::string& text, bool read_only) {
  const char* opt = read_only ? "--ro-bind" : "--bind";
  if (text.empty()) throw UsageError(std::string(opt) + " needs SRC[:DST]");
  auto parts = split(text, ':');
  if (parts.size() > 2) throw UsageError(std::string(opt) + " expects SRC[:DST], got '" + text + "'");
  model::BindMount b;
  b.read_only = read_only;
  b.source = absolute_existing(std::string(parts[0]), std::string(opt) + " source");
  b.target = parts.size() == 2 ? std::string(parts[1]) : b.source;
  if (b.target.empty() || b.target[0] != '/') {
    throw UsageError(std::string(opt) + " target must be an absolute path, got '" + b.target + "'");
  }
  return b;
}

std::string parse_env(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError("--env expects K=V, got '" + text + "'");
  return text;
}

uint64_t parse_memory(const std::string& text) {
  auto v = parse_size(text);
  if (!v) throw UsageError("--memory expects a size like 512M or 2G, got '" + text + "'");
  if (*v < (4u << 20)) throw UsageError("--memory must be at least 4M");
  return *v;
}

uint64_t parse_pids_limit(const std::string& text) {
  auto v = parse_u64(trim(text));
  if (!v || *v == 0 || *v > (1u << 22)) throw UsageError("--pids-limit expects a positive number, got '" + text + "'");
  return *v;
}

uint32_t parse_id(const std::string& text, const char* option) {
  auto v = parse_u64(trim(text));
  if (!v || *v >= UINT32_MAX) throw UsageError(std::string(option) + " expects a numeric id, got '" + text + "'");
  return static_cast<uint32_t>(*v);
}

bool valid_hostname(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (auto label : split(name, '.')) {
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
  }
  return true;
}

RunPlan plan_run(const RunRequest& req) {
  RunPlan plan;
  plan.sandbox = req.sandbox;
  plan.omit = req.omit;
  if (req.argv.empty()) throw UsageError("no program given (usage: cr_run [options] [--] PROGRAM [ARGS...])");
  plan.spec.argv = req.argv;
  for (const auto& e : req.env) plan.spec.env.push_back(parse_env(e));

  if (!req.sandbox) {
    auto needs = [](const char* opt) { throw UsageError(std::string(opt) + " needs --sandbox"); };
    if (!req.name.empty()) needs("--name");
    if (req.hostname) needs("--hostname");
    if (req.net) needs("--net");
    if (req.rootfs) needs("--rootfs");
    if (req.cwd) needs("--cwd");
    if (req.uid) needs("--uid");
    if (req.gid) needs("--gid");
    if (req.seccomp) needs("--seccomp");
    if (req.seccomp_profile) needs("--seccomp-profile");
    if (req.memory) needs("--memory");
    if (req.pids_limit) needs("--pids-limit");
    if (req.time_offset) needs("--time-offset");
    if (req.read_only) needs("--read-only");
    if (req.tty) needs("--tty");
    if (!req.binds.empty()) needs("--bind");
    if (!req.ro_binds.empty()) needs("--ro-bind");
    if (!req.cap_add.empty()) needs("--cap-add");
    if (!req.cap_drop.empty()) needs("--cap-drop");
    if (!req.rlimits.empty()) needs("--rlimit");
    return plan;
  }

  auto& s = plan.spec;
  if (!req.name.empty()) {
    if (!valid_sandbox_id(req.name)) {
      throw UsageError("--name must be 1 to 64 characters of A-Z a-z 0-9 _ . - not starting with '.', got '" + req.name + "'");
    }
    plan.id = req.name;
  }
  if (req.hostname) {
    if (!valid_hostname(*req.hostname)) throw UsageError("--hostname '" + *req.hostname + "' is not a valid host name");
    s.hostname = *req.hostname;
  }
  if (req.net) {
    if (*req.net == "none") s.net = model::NetMode::none;
    else if (*req.net == "host") s.net = model::NetMode::host;
    else throw UsageError("--net must be 'host' or 'none', got '" + *req.net + "'");
  }
  if (req.rootfs) {
    s.rootfs = absolute_existing(*req.rootfs, "--rootfs");
    if (!is_dir(s.rootfs) || s.rootfs == "/") throw UsageError("--rootfs must be a directory other than /");
  }
  s.read_only_root = req.read_only;
  s.tty = req.tty;
  for (const auto& b : req.binds) s.binds.push_back(parse_bind(b, false));
  for (const auto& b : req.ro_binds) s.binds.push_back(parse_bind(b, true));
  if (req.cwd) {
    if (req.cwd->empty() || (*req.cwd)[0] != '/') throw UsageError("--cwd must be an absolute path, got '" + *req.cwd + "'");
    s.cwd = *req.cwd;
  }
  if (req.uid) s.uid = parse_id(*req.uid, "--uid");
  if (req.gid) s.gid = parse_id(*req.gid, "--gid");
  s.capabilities = resolve_capabilities(req.cap_add, req.cap_drop);
  for (const auto& r : req.rlimits) s.rlimits.push_back(parse_rlimit(r));

  if (req.seccomp) {
    if (*req.seccomp == "none") s.seccomp = model::SeccompMode::none;
    else if (*req.seccomp == "default") s.seccomp = model::SeccompMode::default_policy;
    else throw UsageError("--seccomp must be 'default' or 'none', got '" + *req.seccomp + "'");
  }
  if (req.seccomp_profile) {
    if (req.seccomp && *req.seccomp == "none") throw UsageError("--seccomp=none and --seccomp-profile contradict each other");
    std::optional<std::string> text;
    try {
      text = try_read_file(*req.seccomp_profile);
    } catch (const std::exception& e) {
      throw UsageError(std::string("cannot read the seccomp profile: ") + e.what());
    }
    if (!text) throw UsageError("cannot read the seccomp profile " + *req.seccomp_profile + ": No such file or directory");
    try {
      parse_seccomp_profile(*text);
    } catch (const UsageError& e) {
      throw UsageError(*req.seccomp_profile + ": " + e.what());
    }
    s.seccomp = model::SeccompMode::profile;
    s.seccomp_profile = *text;
  }
  if (req.memory) s.memory_limit = parse_memory(*req.memory);
  if (req.pids_limit) s.pids_limit = parse_pids_limit(*req.pids_limit);
  if (req.time_offset) {
    auto v = parse_i64(trim(*req.time_offset));
    if (!v || *v < -(int64_t{1} << 32) || *v > (int64_t{1} << 32)) {
      throw UsageError("--time-offset expects a whole number of seconds, got '" + *req.time_offset + "'");
    }
    int64_t ns = *v * 1000000000;
    plan.time_offsets_ns = std::make_pair(ns, ns);
  }
  return plan;
}

}  // namespace crbox::runtime
