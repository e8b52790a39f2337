// Seccomp policy of a sandboxed application (seccomp(2)), built and loaded with libseccomp.
//
// Policies are written as profiles in the Docker/OCI JSON format, and crbox's own default policy is
// one such profile built in code, so a single loader serves both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/model/sandbox_spec.h"

namespace crbox::runtime {

struct SeccompArg {
  unsigned index = 0;       // syscall argument 0..5
  uint64_t value = 0;       // for SCMP_CMP_MASKED_EQ: the mask
  uint64_t value_two = 0;   // for SCMP_CMP_MASKED_EQ: the value compared after masking
  std::string op;           // SCMP_CMP_EQ, _NE, _LT, _LE, _GT, _GE, _MASKED_EQ
};

struct SeccompRule {
  std::vector<std::string> names;
  std::string action;                // SCMP_ACT_ALLOW, _ERRNO, _KILL, _KILL_PROCESS, _KILL_THREAD, _TRAP, _LOG, _TRACE
  std::optional<uint32_t> errno_ret; // for SCMP_ACT_ERRNO (default EPERM) and SCMP_ACT_TRACE
  std::vector<SeccompArg> args;      // AND-ed; conditions on the same argument become separate rules (OR), as runc does
  // "includes"/"excludes": the rule applies only when the application has all of include_caps and
  // none of exclude_caps, the machine's architecture (amd64/x86_64) is in include_arches (when
  // given) and not in exclude_arches, and the kernel is at least min_kernel ("5.8").
  std::vector<std::string> include_caps, exclude_caps, include_arches, exclude_arches;
  std::string min_kernel;
};

struct SeccompProfile {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // SCMP_ARCH_X86_64, ...; "archMap" entries are flattened in
  std::vector<SeccompRule> syscalls;
};

// Parses a Docker/OCI seccomp profile. Unknown syscall names are accepted (they are skipped when
// loading, as runc does: profiles list syscalls of many kernels). Throws UsageError naming what is
// wrong. SCMP_ACT_NOTIFY is not supported.
SeccompProfile parse_seccomp_profile(std::string_view json);

// crbox's default policy for an application holding capabilities `caps`: everything is allowed
// except the syscalls that reach outside a container, which fail with EPERM:
//  - always: kexec_load, kexec_file_load, keyctl, add_key, request_key (the keyrings are not
//    namespaced), lookup_dcookie, nfsservctl, uselib, ustat, sysfs, _sysctl;
//  - unless CAP_SYS_MODULE: init_module, finit_module, delete_module;
//  - unless CAP_SYS_BOOT: reboot;
//  - unless CAP_SYS_TIME: settimeofday, clock_settime, clock_adjtime, adjtimex (CLOCK_REALTIME is
//    not namespaced: time_namespaces(7));
//  - unless CAP_SYS_ADMIN: mount, umount2, pivot_root, move_mount, fsopen, fsmount, fsconfig,
//    fspick, open_tree, mount_setattr (so the mount table the init set up stays as it is), swapon,
//    swapoff, quotactl, quotactl_fd, setns, fanotify_init, name_to_handle_at; unshare and clone with
//    any CLONE_NEW* flag (this also stops user namespaces, which need no capability, widen the
//    kernel's attack surface, and cannot be checkpointed); clone3 fails with ENOSYS because its
//    flags sit in memory a filter cannot read, and libc then falls back to clone;
//  - unless CAP_SYS_ADMIN or CAP_BPF: bpf; unless CAP_SYS_ADMIN or CAP_PERFMON: perf_event_open;
//  - unless CAP_SYS_PACCT: acct; unless CAP_SYS_RAWIO: iopl, ioperm; unless CAP_SYSLOG: syslog;
//  - unless CAP_DAC_READ_SEARCH: open_by_handle_at; unless CAP_SYS_PTRACE: userfaultfd.
// ptrace and process_vm_readv stay allowed: the checkpoint engine uses them from outside anyway.
SeccompProfile default_seccomp_profile();

// Builds the filter for `profile` as seen by an application holding `caps` and loads it into the
// calling thread (with no_new_privs, which libseccomp sets). Throws crbox::Error.
void load_seccomp_profile(const SeccompProfile& profile, const std::vector<std::string>& caps);

// What the app side does: nothing for SeccompMode::none, else loads the default policy or the
// spec's profile, for the spec's capabilities. Throws crbox::Error.
void apply_seccomp(const model::SandboxSpec& spec);

}  // namespace crbox::runtime
