#include "namespaces/mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::ns {
namespace {

void do_mount(const char* src, const std::string& target, const char* type, unsigned long flags,
              const char* data, const std::string& what) {
  if (::mount(src, target.c_str(), type, flags, data) != 0) throw_errno(what);
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Creates the mount point `target` for a bind of `source` (a directory or a file).
void make_mount_point(const std::string& source, const std::string& target) {
  if (exists(target)) return;
  if (is_dir(source)) {
    make_dirs(target);
    return;
  }
  auto slash = target.rfind('/');
  if (slash != std::string::npos && slash > 0) make_dirs(target.substr(0, slash));
  UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("cannot create the mount point " + target);
}

// mount(2): the read-only flag of a bind mount is changed with a second, remounting call, which
// replaces all per-mount flags; keep nosuid/nodev/noexec/atime flags as they were (statvfs(3)).
void remount_read_only(const std::string& target, const std::string& shown_target) {
  struct statvfs sv;
  if (::statvfs(target.c_str(), &sv) != 0) throw_errno("cannot inspect " + shown_target);
  unsigned long keep = 0;
  if (sv.f_flag & ST_NOSUID) keep |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) keep |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) keep |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) keep |= MS_RELATIME;
  do_mount(nullptr, target, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, nullptr,
           "cannot make " + shown_target + " read-only");
}

// Binds `source` (a /proc/self/fd link to `shown_source`) onto `target`.
void bind_mount(const std::string& source, const std::string& shown_source, const std::string& target, bool read_only,
          bool may_create, const std::string& shown_target) {
  if (may_create) {
    make_mount_point(source, target);
  } else if (!exists(target)) {
    throw Error("bind target " + shown_target + " does not exist (crbox creates missing targets only in --rootfs or below /tmp)");
  }
  do_mount(source.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr,
           "cannot bind " + shown_source + " onto " + shown_target);
  if (read_only) remount_read_only(target, shown_target);
}

void setup_dev(const std::string& root) {
  std::string dev = root + "/dev";
  make_dirs(dev);
  do_mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k", "cannot mount a tmpfs on /dev");
  for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string host = std::string("/dev/") + name;
    if (!exists(host)) continue;
    std::string target = dev + "/" + name;
    UniqueFd fd(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
    if (!fd) throw_errno("cannot create " + target);
    do_mount(host.c_str(), target, nullptr, MS_BIND, nullptr, "cannot bind " + host + " into the rootfs");
  }
  const char* links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (auto& l : links) {
    if (::symlink(l[0], (dev + "/" + l[1]).c_str()) != 0) throw_errno("cannot create /dev/" + std::string(l[1]));
  }
  make_dirs(dev + "/shm", 01777);
}

bool below_tmp(const std::string& path) { return path == "/tmp" || starts_with(path, "/tmp/"); }

void mount_private_tmp(const std::string& root) {
  make_dirs(root + "/tmp");
  do_mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "cannot mount a private /tmp");
}

}  // namespace

void setup_sandbox_mounts(const model::SandboxSpec& spec) {
  // Hold every bind source open (O_PATH) before anything is mounted: a source below the host's
  // /tmp or outside a rootfs is hidden once the private /tmp or the new root is in place, but the
  // open descriptor still reaches it through /proc/self/fd/N (proc(5): these links can be
  // followed even where the path could not).
  std::vector<UniqueFd> sources;
  std::vector<std::string> source_paths;
  for (const auto& b : spec.binds) {
    UniqueFd fd(::open(b.source.c_str(), O_PATH | O_CLOEXEC));
    if (!fd) throw_errno("cannot open the bind source " + b.source);
    source_paths.push_back("/proc/self/fd/" + std::to_string(fd.get()));
    sources.push_back(std::move(fd));
  }
  auto bind_all = [&](const std::string& prefix, bool rootfs_mode) {
    for (size_t i = 0; i < spec.binds.size(); i++) {
      const auto& b = spec.binds[i];
      bind_mount(source_paths[i], b.source, prefix + b.target, b.read_only, rootfs_mode || below_tmp(b.target), b.target);
    }
  };
  do_mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr, "cannot make the sandbox's mounts private");

  const bool has_root = !spec.rootfs.empty();
  if (has_root) {
    // pivot_root(2): new_root must be a mount point, so bind it onto itself.
    do_mount(spec.rootfs.c_str(), spec.rootfs, nullptr, MS_BIND | MS_REC, nullptr,
             "cannot bind the rootfs " + spec.rootfs + " onto itself");
    // The host paths of the binds are reachable only before the pivot, so /tmp comes first here.
    mount_private_tmp(spec.rootfs);
    bind_all(spec.rootfs, true);
    setup_dev(spec.rootfs);
    if (::chdir(spec.rootfs.c_str()) != 0) throw_errno("cannot enter the rootfs " + spec.rootfs);
    // pivot_root(2): "pivot_root(".", ".")" stacks the old root on top of the new one at "/",
    // and unmounting "." then removes it, without needing a put_old directory.
    if (::syscall(SYS_pivot_root, ".", ".") != 0) throw_errno("cannot switch to the rootfs (pivot_root)");
    if (::umount2(".", MNT_DETACH) != 0) throw_errno("cannot detach the host's root");
    if (::chdir("/") != 0) throw_errno("cannot enter the new root");
  }

  // proc(5): a proc mount shows the pid namespace of the process that mounted it.
  make_dirs("/proc");
  do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "cannot mount a private /proc");
  if (!has_root) {
    mount_private_tmp("");
    bind_all("", false);
  }
  // sysfs(5) shows the network devices of the mounter's network namespace: with --net=none the
  // host's /sys/class/net would lie, so mount a fresh, read-only one.
  if (spec.net == model::NetMode::none && is_dir("/sys")) {
    do_mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "cannot mount /sys");
  }
  if (spec.read_only_root) {
    remount_read_only("/", "/");
  }
}

}  // namespace crbox::ns
