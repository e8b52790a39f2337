// The address space's layout: VMAs from /proc/PID/maps, identities of mapped files through
// /proc/PID/map_files (proc(5)), and the mm fields prctl(PR_SET_MM_MAP) will need on restore.
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "checkpoint/dump/collect.h"
#include "checkpoint/image/bundle.h"
#include "checkpoint/proc/misc.h"
#include "checkpoint/proc/stat.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"
#include "util/remote_mem.h"

namespace crbox::dump {

namespace {

model::FileId stat_id(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw_errno("stat " + path);
  return file_id(st);
}

model::Vma to_vma(pid_t pid, const proc::MapsEntry& m) {
  model::Vma v;
  v.start = m.start;
  v.end = m.end;
  v.prot = (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
  v.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
  v.pgoff = m.offset;
  v.name = m.path;
  const std::string where = "pid " + std::to_string(pid) + " mapping " + hex(m.start, false) + "-" + hex(m.end, false);
  const std::string map_file = proc::map_files_path(pid, m.start, m.end);
  if (m.path == "[vdso]") {
    v.kind = model::VmaKind::vdso;
  } else if (m.path == "[vvar]" || m.path == "[vvar_vclock]") {
    v.kind = model::VmaKind::vvar;
  } else if (m.path == "[vsyscall]") {
    v.kind = model::VmaKind::vsyscall;
  } else if (m.path.empty() || m.path[0] == '[' || (m.path == "/dev/zero" && m.deleted)) {
    // Plain anonymous memory, [heap], [stack], named anonymous memory ("[anon:...]"), and
    // MAP_SHARED|MAP_ANONYMOUS, which the kernel backs with a shmem file shown as /dev/zero.
    v.kind = m.shared ? model::VmaKind::anon_shared : model::VmaKind::anon_private;
    if (m.path == "[stack]") v.flags |= MAP_GROWSDOWN;
    if (m.path == "/dev/zero") v.name.clear();
    if (m.shared) v.shmem_id = stat_id(map_file).ino;
  } else if (auto shmid = sysv_shm_id(pid, m, map_file)) {
    // A System V shared memory segment (shmat(2)): attached again on restore. Its content is saved
    // once with its ipc namespace's objects (ipc.cc), never as this process's pages.
    v.kind = model::VmaKind::sysv_shm;
    v.shmid = *shmid;
  } else if (m.deleted && m.shared && m.path.rfind("/dev/shm/", 0) == 0) {
    // A POSIX shared memory object (shm_open(3)) already unlinked: nobody can open it by name any
    // more, so it is restored as shared anonymous memory, shared again by every VMA that mapped it.
    v.kind = model::VmaKind::anon_shared;
    v.shmem_id = stat_id(map_file).ino;
  } else if (m.deleted && m.path[0] == '/') {
    // A file unlinked while mapped (a program rebuilt or a library upgraded while it runs), or a
    // memfd ("/memfd:NAME (deleted)"): nobody can open it by name, so its content goes into the
    // bundle (contents.cc) and the mapping is restored from that.
    v.kind = m.shared ? model::VmaKind::file_shared : model::VmaKind::file_private;
    v.file = stat_id(map_file);
    v.content_id = kContentPending;
  } else if (m.deleted) {
    throw Error(where + ": a mapping of the deleted file " + m.path + " is not supported yet");
  } else if (m.path[0] != '/') {
    throw Error(where + ": a mapping of " + m.path + " is not supported yet");
  } else {
    v.kind = m.shared ? model::VmaKind::file_shared : model::VmaKind::file_private;
    v.file = stat_id(map_file);
  }
  return v;
}

}  // namespace

void collect_memory(pid_t pid, const std::vector<proc::MapsEntry>& maps, RemoteSession& rs, model::Process& p) {
  std::string base = "/proc/" + std::to_string(pid);
  p.vmas.clear();
  for (const auto& m : maps) p.vmas.push_back(to_vma(pid, m));

  auto st = proc::parse_stat(read_file(base + "/stat"));
  auto& mm = p.mm;
  mm.start_code = st.startcode;
  mm.end_code = st.endcode;
  mm.start_data = st.start_data;
  mm.end_data = st.end_data;
  mm.start_brk = st.start_brk;
  mm.start_stack = st.startstack;
  mm.arg_start = st.arg_start;
  mm.arg_end = st.arg_end;
  mm.env_start = st.env_start;
  mm.env_end = st.env_end;
  // brk(0) fails by returning the current break, which is what we want (brk(2), "C library/kernel
  // differences").
  mm.brk = static_cast<uint64_t>(rs.call(SYS_brk, 0));
  mm.auxv.clear();
  for (auto [k, v] : proc::parse_auxv(read_file(base + "/auxv"))) {
    mm.auxv.push_back(k);
    mm.auxv.push_back(v);
  }
  char buf[4096];
  ssize_t n = readlink((base + "/exe").c_str(), buf, sizeof buf);
  if (n < 0) throw_errno("reading the executable of pid " + std::to_string(pid));
  mm.exe.assign(buf, static_cast<size_t>(n));
  mm.exe_id = stat_id(base + "/exe");
  if (mm.exe.size() > 10 && mm.exe.compare(mm.exe.size() - 10, 10, " (deleted)") == 0) {
    // Rebuilt or removed while running: its content goes into the bundle (contents.cc).
    mm.exe.resize(mm.exe.size() - 10);
    mm.exe_content_id = kContentPending;
  }
  for (const auto& v : p.vmas) {
    if (v.kind != model::VmaKind::vdso) continue;
    std::vector<uint8_t> code(v.end - v.start);
    remote_read(pid, v.start, code.data(), code.size());
    mm.vdso_hash = image::checksum(code.data(), code.size());
  }
}

}  // namespace crbox::dump
