// Identity and plain per-process state read from /proc and prlimit(2).
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/stat.h"
#include "checkpoint/proc/status.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) throw_errno("readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

// The pid as the process's own (innermost) pid namespace sees it: the last NSpid field.
int32_t innermost(const std::vector<int32_t>& ns, int32_t fallback) { return ns.empty() ? fallback : ns.back(); }

}  // namespace

void collect_task(pid_t pid, model::Process& p) {
  std::string base = "/proc/" + std::to_string(pid);
  auto st = proc::parse_status(read_file(base + "/status"));
  auto stat = proc::parse_stat(read_file(base + "/stat"));
  p.host_pid = pid;
  p.pid = innermost(st.nspid, pid);
  p.pgid = innermost(st.nspgid, stat.pgrp);
  p.sid = innermost(st.nssid, stat.session);
  // The parent's pid in our namespace; translated to the image's namespace by the caller if needed.
  p.ppid = st.ppid;
  p.comm = stat.comm;
  p.umask = st.umask;
  p.creds.uids = {st.uid[0], st.uid[1], st.uid[2], st.uid[3]};
  p.creds.gids = {st.gid[0], st.gid[1], st.gid[2], st.gid[3]};
  p.creds.groups = st.groups;
  p.creds.cap_inh = st.cap_inh;
  p.creds.cap_prm = st.cap_prm;
  p.creds.cap_eff = st.cap_eff;
  p.creds.cap_bnd = st.cap_bnd;
  p.creds.cap_amb = st.cap_amb;
  p.creds.no_new_privs = st.no_new_privs;
  p.cwd = read_link(base + "/cwd");
  p.root = read_link(base + "/root");
  auto pers = parse_u64(trim(read_file(base + "/personality")), 16);
  p.personality = pers ? static_cast<uint32_t>(*pers) : 0;
  p.rlimits.clear();
  for (int r = 0; r < RLIM_NLIMITS; r++) {
    rlimit lim{};
    if (prlimit(pid, static_cast<__rlimit_resource>(r), nullptr, &lim) != 0) {
      // prlimit(2) on another user's process wants CAP_SYS_RESOURCE, which root may lack (a
      // container's bounding set); /proc/PID/limits says the same to anyone.
      if (errno != EPERM) throw_errno("reading the resource limits of pid " + std::to_string(pid));
      p.rlimits.clear();
      for (const auto& l : proc::parse_limits(read_file(base + "/limits")))
        if (l.resource < RLIM_NLIMITS) p.rlimits.push_back({l.resource, l.soft, l.hard});
      break;
    }
    p.rlimits.push_back({r, lim.rlim_cur, lim.rlim_max});
  }
}

}  // namespace crbox::dump
