#include "runtime/rlimits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>

#include "runtime/usage_error.h"
#include "util/error.h"
#include "util/strings.h"

namespace crbox::runtime {
namespace {

struct Entry {
  const char* name;
  int resource;
};

constexpr Entry kLimits[] = {
    {"as", RLIMIT_AS},         {"core", RLIMIT_CORE},         {"cpu", RLIMIT_CPU},
    {"data", RLIMIT_DATA},     {"fsize", RLIMIT_FSIZE},       {"locks", RLIMIT_LOCKS},
    {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},
    {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC},       {"rss", RLIMIT_RSS},
    {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME},     {"sigpending", RLIMIT_SIGPENDING},
    {"stack", RLIMIT_STACK},
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string canonical_name(std::string_view name) {
  std::string n = lower(trim(name));
  if (starts_with(n, "rlimit_")) n.erase(0, 7);
  return n;
}

std::optional<uint64_t> parse_limit_value(std::string_view v) {
  std::string s = lower(trim(v));
  if (s == "unlimited" || s == "infinity") return UINT64_MAX;
  return parse_size(s);
}

}  // namespace

std::optional<int> rlimit_resource(std::string_view name) {
  std::string n = canonical_name(name);
  for (const auto& e : kLimits) {
    if (n == e.name) return e.resource;
  }
  return std::nullopt;
}

model::RlimitSetting parse_rlimit(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos) {
    throw UsageError("--rlimit expects NAME=SOFT[:HARD], got '" + std::string(text) + "'");
  }
  std::string_view name = text.substr(0, eq);
  std::string_view values = text.substr(eq + 1);
  if (!rlimit_resource(name)) {
    throw UsageError("unknown resource limit '" + std::string(name) +
                     "' (known: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, "
                     "rtprio, rttime, sigpending, stack)");
  }
  model::RlimitSetting out;
  out.name = canonical_name(name);
  auto colon = values.find(':');
  std::string_view soft_text = values.substr(0, colon);
  auto soft = parse_limit_value(soft_text);
  if (!soft) throw UsageError("bad soft limit '" + std::string(soft_text) + "' for --rlimit " + out.name);
  out.soft = *soft;
  out.hard = *soft;
  if (colon != std::string_view::npos) {
    std::string_view hard_text = values.substr(colon + 1);
    auto hard = parse_limit_value(hard_text);
    if (!hard) throw UsageError("bad hard limit '" + std::string(hard_text) + "' for --rlimit " + out.name);
    out.hard = *hard;
  }
  if (out.soft > out.hard) {
    throw UsageError("the soft limit exceeds the hard limit in --rlimit " + std::string(text));
  }
  return out;
}

void apply_rlimits(const std::vector<model::RlimitSetting>& limits) {
  for (const auto& l : limits) {
    auto res = rlimit_resource(l.name);
    if (!res) throw Error("unknown resource limit '" + l.name + "'");
    rlimit r;
    r.rlim_cur = l.soft == UINT64_MAX ? RLIM_INFINITY : static_cast<rlim_t>(l.soft);
    r.rlim_max = l.hard == UINT64_MAX ? RLIM_INFINITY : static_cast<rlim_t>(l.hard);
    if (::setrlimit(static_cast<__rlimit_resource>(*res), &r) != 0) throw_errno("cannot set the " + l.name + " limit");
  }
}

}  // namespace crbox::runtime
