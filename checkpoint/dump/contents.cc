// File contents kept in the bundle. A memfd or a file deleted while open or mapped cannot be found
// by name at restart, so its bytes travel with the image; BLCR's --save-exe/--save-private/
// --save-shared add the executable and mapped files, so a restart works where they were replaced
// or are missing (another machine). Each file is read through the process's own reference
// (/proc/PID/fd/N, /proc/PID/map_files/A-B, /proc/PID/exe: proc(5)), with a new open file
// description, so the target's offsets do not move.
//
// The model only names each content (id, path, mode, identity); its bytes go in content sections
// after the model (docs/image-format.md), read in chunks of kChunk bytes: a file of any size costs
// the checkpoint one chunk of memory, and the model stays small.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/maps.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

// Bytes per content section: the writer hashes a chunk before writing its header, so it holds
// one in memory (the format allows up to 64 MiB).
constexpr size_t kChunk = 8u << 20;

UniqueFd open_source(const std::string& ref, const std::string& path) {
  UniqueFd fd(open(ref.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("reading the content of " + path + " through " + ref);
  return fd;
}

class Contents {
 public:
  explicit Contents(model::Image& img) : img_(img) {}

  // The content id of the file behind `ref`, new the first time that file is met.
  uint64_t take(const std::string& ref, const std::string& path) {
    UniqueFd fd = open_source(ref, path);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw_errno("stat " + ref);
    auto key = std::make_pair(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
    auto it = ids_.find(key);
    if (it != ids_.end()) return it->second;
    model::FileContent c;
    c.id = img_.contents.size() + 1;
    c.path = path;
    c.mode = st.st_mode;
    c.file = file_id(st);
    c.size = static_cast<uint64_t>(st.st_size);
    ids_[key] = c.id;
    sources_.push_back(ContentSource{c.id, ref, path, key.first, key.second, c.size});
    img_.contents.push_back(std::move(c));
    return ids_[key];
  }

  std::vector<ContentSource> sources() && { return std::move(sources_); }

 private:
  model::Image& img_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> ids_;
  std::vector<ContentSource> sources_;
};

// Fills buf from `fd` at `off` until `want` bytes or the end of the file; returns the count.
size_t read_chunk(int fd, uint8_t* buf, size_t want, uint64_t off, const std::string& path) {
  size_t done = 0;
  while (done < want) {
    ssize_t n = pread(fd, buf + done, want - done, static_cast<off_t>(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("reading the content of " + path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace

std::vector<ContentSource> collect_contents(model::Image& img, const SaveOptions& save) {
  Contents contents(img);
  for (auto& p : img.processes) {
    if (p.zombie) continue;
    const std::string base = "/proc/" + std::to_string(p.host_pid);
    for (auto& f : p.fds)
      if (f.content_id == kContentPending) f.content_id = contents.take(base + "/fd/" + std::to_string(f.fd), f.path);
    for (auto& v : p.vmas) {
      bool file = v.kind == model::VmaKind::file_private || v.kind == model::VmaKind::file_shared;
      if (!file) continue;
      bool wanted = v.content_id == kContentPending || (save.priv && v.kind == model::VmaKind::file_private) ||
                    (save.shared && v.kind == model::VmaKind::file_shared) || (save.exe && v.name == p.mm.exe);
      if (!wanted) continue;
      v.content_id = contents.take(proc::map_files_path(p.host_pid, v.start, v.end), v.name);
    }
    if (p.mm.exe_content_id == kContentPending || save.exe) p.mm.exe_content_id = contents.take(base + "/exe", p.mm.exe);
  }
  return std::move(contents).sources();
}

void dump_contents(const std::vector<ContentSource>& sources, image::BundleWriter& w) {
  std::vector<uint8_t> buf;
  for (const auto& s : sources) {
    // Opened again: the processes are still frozen, so the reference still leads to the same file.
    UniqueFd fd = open_source(s.ref, s.path);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) throw_errno("stat " + s.ref);
    if (static_cast<uint64_t>(st.st_dev) != s.dev || static_cast<uint64_t>(st.st_ino) != s.ino)
      throw Error("the content of " + s.path + " is no longer behind " + s.ref + " (the file changed during the checkpoint)");
    // Exactly the size the model announced. A file the frozen processes do not hold alone (one
    // mapped from a shared disk, say) might have been truncated by someone else meanwhile: that
    // fails the checkpoint rather than saving a content that never existed.
    const uint64_t size = s.size;
    if (buf.size() < std::min<uint64_t>(size, kChunk)) buf.resize(static_cast<size_t>(std::min<uint64_t>(size, kChunk)));
    for (uint64_t off = 0; off < size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
      const size_t got = read_chunk(fd.get(), buf.data(), want, off, s.path);
      if (got < want)
        throw Error("the content of " + s.path + " shrank during the checkpoint (" + std::to_string(size) +
                    " bytes, then " + std::to_string(off + got) + ")");
      w.write_content(s.id, off, std::span<const uint8_t>(buf.data(), got));
      off += got;
    }
  }
}

}  // namespace crbox::dump
