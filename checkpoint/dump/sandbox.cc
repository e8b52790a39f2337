#include "checkpoint/dump/sandbox.h"

#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "checkpoint/proc/misc.h"
#include "runtime/registry.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

bool in_our_pid_namespace(pid_t pid) {
  struct stat ours {}, theirs {};
  if (stat("/proc/self/ns/pid", &ours) != 0 || stat(("/proc/" + std::to_string(pid) + "/ns/pid").c_str(), &theirs) != 0)
    return true;
  return ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

}  // namespace

std::optional<SandboxInfo> sandbox_of(pid_t pid) {
  auto rec = runtime::find_sandbox_of(pid);
  // A sandbox's program may run a moment before its launcher has written the registry record.
  // Anything else in another pid namespace (some other container) could not get its pids back.
  for (int i = 0; !rec && !in_our_pid_namespace(pid) && i < 100; i++) {
    timespec ts{0, 20000000};
    nanosleep(&ts, nullptr);
    rec = runtime::find_sandbox_of(pid);
  }
  if (!rec && !in_our_pid_namespace(pid))
    throw Error("pid " + std::to_string(pid) +
                " lives in another pid namespace that is not a crbox sandbox; crbox can only restore such a process in a sandbox of its own");
  if (!rec) return std::nullopt;
  SandboxInfo info;
  info.sandbox.id = rec->id;
  info.sandbox.spec = rec->spec;
  info.cgroups = rec->cgroups;
  info.init_pid = rec->init_pid;
  info.app_inner_pid = rec->app_inner_pid;
  return info;
}

bool sandbox_init_of(pid_t pid) {
  auto rec = runtime::find_sandbox_of(pid);
  return rec && rec->init_pid == pid;
}

namespace {

void walk_tmp(const std::string& base, const std::string& rel, std::vector<model::TmpEntry>& out) {
  DIR* d = opendir((base + rel).c_str());
  if (!d) throw_errno("reading the sandbox's /tmp" + rel);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    // libcr's request socket (runtime/libcr/request_protocol.h) belongs to the launcher: a
    // restart binds a new one.
    if (rel.empty() && n == ".crbox-libcr.sock") continue;
    std::string r = rel + "/" + n;
    struct stat st {};
    if (lstat((base + r).c_str(), &st) != 0) continue;  // removed meanwhile
    model::TmpEntry e;
    e.path = r.substr(1);
    e.mode = st.st_mode;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) {
      std::string data = read_file(base + r);
      e.data.assign(data.begin(), data.end());
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t k = readlink((base + r).c_str(), buf, sizeof buf);
      if (k > 0) e.link.assign(buf, static_cast<size_t>(k));
    } else if (!S_ISDIR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      continue;  // sockets and device nodes are not carried over (a bound socket is refused as an fd)
    }
    out.push_back(std::move(e));
    if (S_ISDIR(st.st_mode)) walk_tmp(base, r, out);
  }
}

}  // namespace

std::vector<model::TmpEntry> sandbox_tmp(pid_t init_pid) {
  std::vector<model::TmpEntry> out;
  walk_tmp("/proc/" + std::to_string(init_pid) + "/root/tmp", "", out);
  return out;
}

model::TimeState sandbox_clocks(pid_t pid) {
  // The namespace's clocks are the host's plus its offsets (time_namespaces(7)).
  model::TimeState t;
  auto text = try_read_file("/proc/" + std::to_string(pid) + "/timens_offsets");
  proc::TimensOffsets off;
  if (text) off = proc::parse_timens_offsets(*text);
  timespec m{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &m);
  clock_gettime(CLOCK_BOOTTIME, &b);
  t.monotonic_ns = static_cast<int64_t>(m.tv_sec) * 1000000000 + m.tv_nsec + off.monotonic_ns;
  t.boottime_ns = static_cast<int64_t>(b.tv_sec) * 1000000000 + b.tv_nsec + off.boottime_ns;
  return t;
}

}  // namespace crbox::dump
