// The description of a sandbox: everything `cr_run --sandbox` was asked for. The registry stores it
// as JSON and a bundle stores it in binary, so a restart rebuilds the same sandbox.
#pragma once

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace crbox::model {

struct BindMount {
  std::string source;
  std::string target;
  bool read_only = false;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(source), CEREAL_NVP(target), CEREAL_NVP(read_only));
  }
};

struct RlimitSetting {
  std::string name;  // "nofile", "stack", ... as given by the user
  uint64_t soft = 0;
  uint64_t hard = 0;  // RLIM_INFINITY is stored as UINT64_MAX

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(name), CEREAL_NVP(soft), CEREAL_NVP(hard));
  }
};

enum class NetMode : uint8_t { host = 0, none = 1 };
enum class SeccompMode : uint8_t { default_policy = 0, none = 1, profile = 2 };

struct SandboxSpec {
  std::vector<std::string> argv;          // program and its arguments, as given
  std::vector<std::string> env;           // extra K=V from --env
  std::string cwd;                        // --cwd ("" = inherit)
  std::string hostname = "crbox";
  NetMode net = NetMode::host;
  std::string rootfs;                     // --rootfs ("" = the host's /)
  bool read_only_root = false;
  std::vector<BindMount> binds;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::vector<std::string> capabilities;  // the resolved effective set, by name ("cap_chown", ...)
  SeccompMode seccomp = SeccompMode::default_policy;
  std::string seccomp_profile;            // the profile's JSON text when seccomp == profile
  std::vector<RlimitSetting> rlimits;
  uint64_t memory_limit = 0;              // bytes, 0 = none
  uint64_t pids_limit = 0;                // 0 = none
  bool time_namespace = true;
  bool tty = false;                       // --tty: a pseudo-terminal is the program's stdio and ctty

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(argv), CEREAL_NVP(env), CEREAL_NVP(cwd), CEREAL_NVP(hostname), CEREAL_NVP(net),
      CEREAL_NVP(rootfs), CEREAL_NVP(read_only_root), CEREAL_NVP(binds), CEREAL_NVP(uid), CEREAL_NVP(gid),
      CEREAL_NVP(capabilities), CEREAL_NVP(seccomp), CEREAL_NVP(seccomp_profile), CEREAL_NVP(rlimits),
      CEREAL_NVP(memory_limit), CEREAL_NVP(pids_limit), CEREAL_NVP(time_namespace),
      CEREAL_NVP(tty));
  }
};

}  // namespace crbox::model
