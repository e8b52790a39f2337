// Capabilities (capabilities(7)) of a sandboxed application, by name, through libcap.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::runtime {

// Docker's default set, the one container users know: chown, dac_override, fowner, fsetid, kill,
// setgid, setuid, setpcap, net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap.
std::vector<std::string> default_capabilities();

// Every capability the running kernel knows (0 .. /proc/sys/kernel/cap_last_cap), by name.
std::vector<std::string> all_capabilities();

// Canonical name ("cap_chown") for a user's spelling: "chown", "CHOWN", "CAP_CHOWN", "cap_chown".
// nullopt when neither libcap nor the kernel know it.
std::optional<std::string> canonical_capability(std::string_view name);

// The default set, plus `add`, minus `drop`, in capability-number order. "ALL" (any case) in `add`
// means every capability, in `drop` the empty set; drops apply after adds. Throws UsageError on an
// unknown name.
std::vector<std::string> resolve_capabilities(const std::vector<std::string>& add, const std::vector<std::string>& drop);

// Whether `set` (canonical names) holds `name` (any spelling).
bool has_capability(const std::vector<std::string>& set, std::string_view name);

// In the calling process: drops every capability outside `keep` from the bounding set
// (PR_CAPBSET_DROP), clears the ambient set, and sets permitted and effective to `keep`, with an
// empty inheritable set. Needs CAP_SETPCAP. Throws crbox::Error.
void apply_capabilities(const std::vector<std::string>& keep);

// Drops only the bounding set down to `keep` (the first step of apply_capabilities), for callers
// that still need their capabilities for a moment, e.g. to change uid. Throws crbox::Error.
void drop_bounding_set(const std::vector<std::string>& keep);

}  // namespace crbox::runtime
