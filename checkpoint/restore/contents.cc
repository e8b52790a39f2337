// File contents held in the bundle come back as memfds (memfd_create(2)): a memfd, a file deleted
// while open, a mapped file saved with --save-*. Made once in cr_restart, before the processes (and
// a sandbox's init) exist, and inherited by every new process, so fds and mappings of one file
// share one inode again. Their names show as "/memfd:PATH (deleted)" in /proc/PID/fd and
// /proc/PID/maps.
//
// The bytes come from the bundle's content sections, each written into its memfd as it is read: a
// content of any size costs cr_restart one section's buffer, not the whole file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/restore/apply.h"
#include "util/error.h"

namespace crbox::restore {

namespace {

// An empty memfd named after the content (close-on-exec; make_contents moves it where the new
// processes inherit it).
int new_memfd(const model::FileContent& c) {
  // A memfd keeps its name ("/memfd:NAME"); other files are named by their path.
  std::string name = c.path.rfind("/memfd:", 0) == 0 ? c.path.substr(7) : c.path;
  if (name.size() > 249) name = name.substr(name.size() - 249);  // memfd_create(2): 249 bytes at most
  int fd = memfd_create(name.c_str(), MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (fd < 0) throw_errno("making a memfd for the content of " + c.path);
  return fd;
}

void close_all(std::map<uint64_t, int>& fds) {
  for (auto& [id, fd] : fds) close(fd);
  fds.clear();
}

}  // namespace

std::map<uint64_t, int> receive_contents(const model::Image& img, image::BundleReader& reader) {
  std::map<uint64_t, const model::FileContent*> by_id;
  for (const auto& c : img.contents) by_id[c.id] = &c;
  std::map<uint64_t, int> out;
  try {
    while (auto chunk = reader.next_content()) {
      // The reader checked the chunk: its checksum, that the model lists its content and that it
      // continues it where the previous one ended.
      const model::FileContent& c = *by_id.at(chunk->id);
      auto it = out.find(c.id);
      if (it == out.end()) it = out.emplace(c.id, new_memfd(c)).first;
      const uint8_t* p = chunk->data.data();
      size_t left = chunk->data.size();
      off_t at = static_cast<off_t>(chunk->offset);
      while (left > 0) {
        ssize_t n = pwrite(it->second, p, left, at);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw_errno("writing the content of " + c.path + " into a memfd");
        p += n;
        left -= static_cast<size_t>(n);
        at += n;
      }
    }
  } catch (...) {
    close_all(out);
    throw;
  }
  return out;
}

std::map<uint64_t, int> make_contents(const std::vector<model::FileContent>& contents, std::map<uint64_t, int> received,
                                      int min_fd) {
  std::map<uint64_t, int> out;
  try {
    for (const auto& c : contents) {
      int fd = -1;
      auto it = received.find(c.id);
      if (it != received.end()) {
        fd = it->second;
        received.erase(it);
      } else {
        // An empty file has no content section.
        if (c.size != 0) throw Error("the content of " + c.path + " is missing from the bundle");
        fd = new_memfd(c);
      }
      // Not O_CLOEXEC: every new process inherits it (see FileTables::contents).
      int high = fcntl(fd, F_DUPFD, min_fd);
      close(fd);
      if (high < 0) throw_errno("fcntl F_DUPFD");
      out[c.id] = high;
      // Permissions as the file had them: an executable stays executable (PR_SET_MM_MAP's exe_fd
      // and execve(2) need the execute bit).
      if (fchmod(high, c.mode & 07777) != 0) throw_errno("chmod of the content of " + c.path);
    }
  } catch (...) {
    close_all(out);
    close_all(received);
    throw;
  }
  close_all(received);  // none: the reader accepts only contents the model lists
  return out;
}

}  // namespace crbox::restore
