#include "namespaces/pid.h"

#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "checkpoint/proc/status.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::ns {

uint64_t CloneNamespaces::flags() const {
  uint64_t f = 0;
  if (pid) f |= CLONE_NEWPID;
  if (mount) f |= CLONE_NEWNS;
  if (uts) f |= CLONE_NEWUTS;
  if (ipc) f |= CLONE_NEWIPC;
  if (net) f |= CLONE_NEWNET;
  return f;
}

pid_t fork_into_namespaces(const CloneNamespaces& which) {
  // clone3(2) with no stack behaves like fork(2): the child runs on a copy of the caller's stack.
  // glibc's fork handlers do not run, which is fine: the caller is single-threaded.
  clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = which.flags();
  args.exit_signal = SIGCHLD;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r < 0) throw_errno("cannot create the sandbox's namespaces (clone3)");
  return static_cast<pid_t>(r);
}

std::optional<NsId> namespace_of(pid_t pid, const char* kind) {
  struct stat st;
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return NsId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

std::optional<pid_t> innermost_pid(pid_t host_pid) {
  auto text = try_read_file("/proc/" + std::to_string(host_pid) + "/status");
  if (!text) return std::nullopt;
  auto st = proc::parse_status(*text);
  if (st.nspid.empty()) return st.pid;
  return st.nspid.back();
}

}  // namespace crbox::ns
