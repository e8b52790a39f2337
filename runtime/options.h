// cr_run's options, as typed, turned into a SandboxSpec. All validation happens here, before
// anything is started, so a bad value costs nothing but an error message (exit status 2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/model/sandbox_spec.h"

namespace crbox::runtime {

// The raw option values. An unset optional / empty list means "not given".
struct RunRequest {
  bool sandbox = false;
  std::vector<std::string> argv;
  std::string name;
  std::optional<std::string> hostname, net, rootfs, cwd, uid, gid, seccomp, seccomp_profile, memory, pids_limit,
      time_offset;
  bool read_only = false;
  bool tty = false;
  bool omit = false;  // --omit: preload libcr_omit.so instead of libcr_run.so
  std::vector<std::string> env, binds, ro_binds, cap_add, cap_drop, rlimits;
};

struct RunPlan {
  bool sandbox = false;
  bool omit = false;        // preload libcr_omit.so (BLCR's cr_run --omit) instead of libcr_run.so
  model::SandboxSpec spec;  // argv and env are filled in plain mode too
  std::string id;           // "" = generate
  std::optional<std::pair<int64_t, int64_t>> time_offsets_ns;
};

// Validates a request. Throws UsageError with one sentence naming the bad option.
RunPlan plan_run(const RunRequest& req);

// Pieces of plan_run, for tests and other tools. Each throws UsageError.
model::BindMount parse_bind(const std::string& text, bool read_only);  // "SRC[:DST]"; SRC must exist
std::string parse_env(const std::string& text);                        // "K=V"
uint64_t parse_memory(const std::string& text);                        // "64M"; at least 4M
uint64_t parse_pids_limit(const std::string& text);                    // a positive count
uint32_t parse_id(const std::string& text, const char* option);       // --uid/--gid: 0..2^32-2
bool valid_hostname(const std::string& name);                          // RFC 1123 labels, at most 64 chars

}  // namespace crbox::runtime
