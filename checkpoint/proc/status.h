// /proc/PID/status (proc(5)).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace crbox::proc {

struct Status {
  std::string name;
  uint32_t umask = 0;
  char state = '?';
  int32_t tgid = 0, pid = 0, ppid = 0, tracer_pid = 0;
  uint32_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, fs
  uint32_t gid[4] = {0, 0, 0, 0};
  std::vector<uint32_t> groups;
  std::vector<int32_t> nstgid, nspid, nspgid, nssid;  // outermost first, as the kernel prints them
  int64_t threads = 0;
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  bool no_new_privs = false;
  int32_t seccomp = 0;  // 0 disabled, 1 strict, 2 filter
  int32_t seccomp_filters = 0;
};

// Throws crbox::Error on malformed text.
Status parse_status(std::string_view text);

}  // namespace crbox::proc
