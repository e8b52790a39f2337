#include "runtime/caps.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cctype>

#include "runtime/usage_error.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::runtime {
namespace {

int last_cap() {
  static int last = [] {
    auto text = try_read_file("/proc/sys/kernel/cap_last_cap");
    auto v = text ? parse_u64(trim(*text)) : std::nullopt;
    return v ? static_cast<int>(*v) : static_cast<int>(CAP_LAST_CAP);
  }();
  return last;
}

std::optional<cap_value_t> cap_value(std::string_view name) {
  std::string n(trim(name));
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n.empty()) return std::nullopt;
  if (!starts_with(n, "cap_")) n = "cap_" + n;
  cap_value_t v;
  if (cap_from_name(n.c_str(), &v) != 0) return std::nullopt;
  if (v < 0 || v > last_cap()) return std::nullopt;
  return v;
}

std::string cap_name(cap_value_t v) {
  char* s = cap_to_name(v);
  std::string out = s ? s : ("cap_" + std::to_string(v));
  if (s) cap_free(s);
  return out;
}

bool is_all(std::string_view s) {
  std::string n(trim(s));
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return n == "all" || n == "cap_all";
}

std::vector<cap_value_t> values_of(const std::vector<std::string>& names) {
  std::vector<cap_value_t> out;
  for (const auto& n : names) {
    auto v = cap_value(n);
    if (!v) throw Error("unknown capability '" + n + "'");
    out.push_back(*v);
  }
  return out;
}

}  // namespace

std::vector<std::string> default_capabilities() {
  static const char* kDefault[] = {"chown",  "dac_override", "fowner",     "fsetid",           "kill",
                                   "setgid", "setuid",       "setpcap",    "net_bind_service", "net_raw",
                                   "sys_chroot", "mknod",    "audit_write", "setfcap"};
  std::vector<std::string> out;
  for (const char* n : kDefault) out.push_back(std::string("cap_") + n);
  return out;
}

std::vector<std::string> all_capabilities() {
  std::vector<std::string> out;
  for (int v = 0; v <= last_cap(); v++) out.push_back(cap_name(v));
  return out;
}

std::optional<std::string> canonical_capability(std::string_view name) {
  auto v = cap_value(name);
  if (!v) return std::nullopt;
  return cap_name(*v);
}

std::vector<std::string> resolve_capabilities(const std::vector<std::string>& add, const std::vector<std::string>& drop) {
  std::vector<bool> on(static_cast<size_t>(last_cap()) + 1, false);
  for (const auto& n : default_capabilities()) {
    if (auto v = cap_value(n)) on[static_cast<size_t>(*v)] = true;
  }
  auto each = [](const std::vector<std::string>& list, auto&& fn) {
    for (const auto& item : list) {
      // "--cap-add a,b" is accepted as well as repeating the option.
      for (auto part : split(item, ',')) {
        if (trim(part).empty()) continue;
        fn(part);
      }
    }
  };
  each(add, [&](std::string_view n) {
    if (is_all(n)) {
      std::fill(on.begin(), on.end(), true);
      return;
    }
    auto v = cap_value(n);
    if (!v) throw UsageError("unknown capability '" + std::string(n) + "' in --cap-add");
    on[static_cast<size_t>(*v)] = true;
  });
  each(drop, [&](std::string_view n) {
    if (is_all(n)) {
      std::fill(on.begin(), on.end(), false);
      return;
    }
    auto v = cap_value(n);
    if (!v) throw UsageError("unknown capability '" + std::string(n) + "' in --cap-drop");
    on[static_cast<size_t>(*v)] = false;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < on.size(); i++) {
    if (on[i]) out.push_back(cap_name(static_cast<cap_value_t>(i)));
  }
  return out;
}

bool has_capability(const std::vector<std::string>& set, std::string_view name) {
  auto c = canonical_capability(name);
  return c && std::find(set.begin(), set.end(), *c) != set.end();
}

void drop_bounding_set(const std::vector<std::string>& keep) {
  auto values = values_of(keep);
  for (int v = 0; v <= last_cap(); v++) {
    if (std::find(values.begin(), values.end(), v) != values.end()) continue;
    // prctl(2) PR_CAPBSET_DROP: needs CAP_SETPCAP; EINVAL means the kernel lacks the capability.
    if (::prctl(PR_CAPBSET_DROP, v, 0, 0, 0) != 0 && errno != EINVAL) {
      throw_errno("cannot drop " + cap_name(v) + " from the bounding set");
    }
  }
}

void apply_capabilities(const std::vector<std::string>& keep) {
  drop_bounding_set(keep);
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) throw_errno("cannot clear the ambient capabilities");
  auto values = values_of(keep);
  cap_t caps = cap_init();
  if (!caps) throw_errno("cap_init");
  if (!values.empty() &&
      (cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(values.size()), values.data(), CAP_SET) != 0 ||
       cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(values.size()), values.data(), CAP_SET) != 0)) {
    cap_free(caps);
    throw_errno("cap_set_flag");
  }
  int rc = cap_set_proc(caps);
  int err = errno;
  cap_free(caps);
  if (rc != 0) throw_errno("cannot set the capabilities", err);
}

}  // namespace crbox::runtime
