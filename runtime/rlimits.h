// Resource limits (getrlimit(2)) by the short names users give to `--rlimit NAME=SOFT[:HARD]`.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "checkpoint/model/sandbox_spec.h"

namespace crbox::runtime {

// The RLIMIT_* resource for a name: "nofile", "nproc", "stack", "as", "core", "cpu", "fsize",
// "data", "memlock", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime", "rss",
// case-insensitive, with or without an "RLIMIT_" prefix. nullopt for an unknown name.
std::optional<int> rlimit_resource(std::string_view name);

// Parses "NAME=SOFT[:HARD]". Values are decimal numbers with an optional K/M/G/T suffix, or
// "unlimited"/"infinity" (stored as UINT64_MAX). HARD defaults to SOFT; SOFT must not exceed HARD.
// The name is stored in its canonical lower-case short form. Throws UsageError.
model::RlimitSetting parse_rlimit(std::string_view text);

// setrlimit(2) for each setting, in the calling process. Throws crbox::Error.
void apply_rlimits(const std::vector<model::RlimitSetting>& limits);

}  // namespace crbox::runtime
