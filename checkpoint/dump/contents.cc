// File contents kept in the bundle. A memfd or a file deleted while open or mapped cannot be found
// by name at restart, so its bytes travel with the image; BLCR's --save-exe/--save-private/
// --save-shared add the executable and mapped files, so a restart works where they were replaced
// or are missing (another machine). Each file is read once, through the process's own reference
// (/proc/PID/fd/N, /proc/PID/map_files/A-B, /proc/PID/exe: proc(5)), with a new open file
// description, so the target's offsets do not move.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <map>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/maps.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

class Contents {
 public:
  explicit Contents(model::Image& img) : img_(img) {}

  // The content id of the file behind `ref`, reading it the first time.
  uint64_t take(const std::string& ref, const std::string& path) {
    UniqueFd fd(open(ref.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("reading the content of " + path + " through " + ref);
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
    c.data.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < c.data.size()) {
      ssize_t n = pread(fd.get(), c.data.data() + done, c.data.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("reading the content of " + path);
      if (n == 0) break;  // shrank meanwhile (a file the frozen processes do not own)
      done += static_cast<size_t>(n);
    }
    c.data.resize(done);
    ids_[key] = c.id;
    img_.contents.push_back(std::move(c));
    return ids_[key];
  }

 private:
  model::Image& img_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> ids_;
};

}  // namespace

void collect_contents(model::Image& img, const SaveOptions& save) {
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
}

}  // namespace crbox::dump
