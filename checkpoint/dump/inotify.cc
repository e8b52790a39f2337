// inotify instances (inotify(7)): each watch, as the instance's fdinfo lists it (proc(5): its
// descriptor, mask, and a file handle of the watched inode), with the path the process would use
// to watch that inode again. Events queued but not yet read are not kept.
#include <fcntl.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <memory>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/events.h"
#include "checkpoint/proc/mountinfo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

std::string fd_path(int fd) {
  char buf[4096];
  ssize_t n = readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf);
  if (n < 0) throw_errno("readlink /proc/self/fd/" + std::to_string(fd));
  return std::string(buf, static_cast<size_t>(n));
}

// The path, as process `pid` sees it, of the inode a watch holds: open_by_handle_at(2) through a
// mount of its file system taken from the process's own mount table (through /proc/PID/root, so
// a sandbox's mounts are the ones used), then the opened inode's path below that mount, put under
// the mount's mount point. Empty if no mount of the process reaches it.
//
// Nothing here may queue an inotify event the process (or anyone) would read: every open is
// O_PATH, which fsnotify ignores; the handle is opened relative to the working directory
// (mount_fd = AT_FDCWD, open_by_handle_at(2)), since an O_PATH mount_fd is refused and a real open
// of the mount point would be an IN_OPEN on it. So this runs on a thread of its own
// (watch_paths) whose working directory is its own (unshare(CLONE_FS)).
std::string watch_path(pid_t pid, const std::vector<proc::MountInfo>& mounts, const proc::InotifyEntry& w,
                       const std::string& where, bool& symlink) {
  dev_t dev = proc::user_dev(w.sdev);
  // Mounts of the whole file system first: a bind mount of a subtree reaches only part of it.
  std::vector<const proc::MountInfo*> cands;
  for (const auto& m : mounts)
    if (makedev(m.major, m.minor) == dev) cands.push_back(&m);
  std::stable_sort(cands.begin(), cands.end(), [](auto* a, auto* b) { return a->root == "/" && b->root != "/"; });

  std::unique_ptr<file_handle, decltype(&std::free)> fh(
      static_cast<file_handle*>(std::malloc(sizeof(file_handle) + w.handle.size())), &std::free);
  if (!fh) throw Error("out of memory");
  fh->handle_bytes = static_cast<unsigned>(w.handle.size());
  fh->handle_type = w.handle_type;
  std::copy(w.handle.begin(), w.handle.end(), fh->f_handle);

  std::string root = "/proc/" + std::to_string(pid) + "/root";
  for (const auto* m : cands) {
    UniqueFd mfd(open((root + m->mount_point).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    struct stat mst {};
    if (!mfd || fstat(mfd.get(), &mst) != 0 || mst.st_dev != dev) continue;  // gone, or mounted over
    if (fchdir(mfd.get()) != 0) continue;
    UniqueFd fd(open_by_handle_at(AT_FDCWD, fh.get(), O_PATH | O_CLOEXEC));
    if (!fd) {
      if (errno == ESTALE) throw Error(where + ": the file of inotify watch " + std::to_string(w.wd) + " no longer exists");
      if (errno == EPERM) throw Error(where + ": reading an inotify watch's file needs CAP_DAC_READ_SEARCH");
      continue;
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || st.st_ino != w.ino) continue;
    std::string got = fd_path(fd.get()), base = fd_path(mfd.get());
    if (got.size() > 10 && got.compare(got.size() - 10, 10, " (deleted)") == 0)
      throw Error(where + ": inotify watch " + std::to_string(w.wd) + " is on a file that was deleted (" +
                  got.substr(0, got.size() - 10) + ")");
    // Both paths are printed the same way (from our root or, for a mount of another mount
    // namespace, from that namespace's root): the part below the mount's root is what is added to
    // the mount point the process sees.
    std::string rel;
    if (base == "/") {
      rel = got;
    } else if (got == base) {
      rel = "";
    } else if (got.compare(0, base.size() + 1, base + "/") == 0) {
      rel = got.substr(base.size());
    } else {
      continue;  // outside this mount's subtree
    }
    std::string path = m->mount_point == "/" ? (rel.empty() ? "/" : rel) : m->mount_point + rel;
    // The process must reach that very inode by that path.
    struct stat there {};
    if (lstat((root + path).c_str(), &there) != 0 || there.st_ino != st.st_ino || there.st_dev != st.st_dev) continue;
    symlink = S_ISLNK(st.st_mode);
    return path;
  }
  return {};
}

// Every watch's path (see watch_path), on a thread with a working directory of its own.
std::vector<std::pair<std::string, bool>> watch_paths(pid_t pid, const std::vector<proc::InotifyEntry>& entries,
                                                      const std::string& where) {
  auto mounts = proc::parse_mountinfo(read_file("/proc/" + std::to_string(pid) + "/mountinfo"));
  auto job = std::async(std::launch::async, [&] {
    if (unshare(CLONE_FS) != 0) throw_errno("unshare(CLONE_FS)");
    std::vector<std::pair<std::string, bool>> out;
    for (const auto& w : entries) {
      bool symlink = false;
      std::string path = watch_path(pid, mounts, w, where, symlink);
      if (path.empty())
        throw Error(where + ": inotify watch " + std::to_string(w.wd) + " is on a file (inode " + std::to_string(w.ino) +
                    ") that the process cannot reach by any path");
      out.emplace_back(std::move(path), symlink);
    }
    return out;
  });
  return job.get();
}

}  // namespace

void collect_inotify(pid_t pid, const proc::FdInfo& info, model::Fd& f) {
  f.kind = model::FdKind::inotify;
  f.watches.clear();
  std::string where = "pid " + std::to_string(pid) + " fd " + std::to_string(f.fd);
  auto entries = proc::parse_inotify_entries(info.lines);
  if (entries.empty()) return;
  for (const auto& w : entries)
    if (w.handle.empty())
      throw Error(where + ": inotify watch " + std::to_string(w.wd) +
                  " is on a file the kernel shows no file handle for (a file system without them, or a kernel "
                  "without CONFIG_EXPORTFS), which is not supported");
  auto paths = watch_paths(pid, entries, where);
  for (size_t i = 0; i < entries.size(); i++) {
    const auto& w = entries[i];
    const auto& [path, symlink] = paths[i];
    model::InotifyWatch iw;
    iw.wd = w.wd;
    // The kernel shows the events and the flags it keeps (IN_ONESHOT, IN_EXCL_UNLINK); how the
    // path was looked up is not kept: a watch on a symbolic link itself was IN_DONT_FOLLOW.
    iw.mask = w.mask | (symlink ? IN_DONT_FOLLOW : 0);
    iw.path = path;
    f.watches.push_back(std::move(iw));
  }
}

}  // namespace crbox::dump
