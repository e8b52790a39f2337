// Rebuilding the address space inside the puppet: unmap what it inherited from cr_restart, move
// the vDSO to where the image had it, map every VMA at its address, fill the pages, then set the
// final protections and the mm fields (prctl(2), PR_SET_MM_MAP).
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <functional>
#include <map>

#include "checkpoint/image/bundle.h"
#include "checkpoint/proc/maps.h"
#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::restore {

namespace {

constexpr uint64_t kPage = 4096;

bool is_special(model::VmaKind k) {
  return k == model::VmaKind::vdso || k == model::VmaKind::vvar || k == model::VmaKind::vsyscall;
}

// A mapped file must be the one the image had: same size and mtime (the pages never dumped come
// from it). Its inode may differ: a copy (rsync -a, cp -p) on another machine, or --relocate.
void check_file(const std::string& path, const model::FileId& id, const std::string& use, bool accept_changed) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw Error(path + " (" + use + ") is missing: " + std::strerror(errno), FailureKind::environment);
  std::string change = describe_change(id, st);
  if (!change.empty() && !accept_changed)
    throw Error(path + " (" + use + ") has changed since the checkpoint (" + change +
                    "); restart with --accept-changed-files to use it as it is now, or checkpoint with --save-all",
                FailureKind::environment);
}

uint64_t own_vdso_hash() {
  for (const auto& m : proc::parse_maps(read_file("/proc/self/maps"))) {
    if (m.path == "[vdso]") return image::checksum(reinterpret_cast<const void*>(m.start), m.end - m.start);
  }
  return 0;
}

// The puppet's mapping named `name` (from its own maps), or nullopt.
std::optional<proc::MapsEntry> find_named(const std::vector<proc::MapsEntry>& maps, const std::string& name) {
  for (const auto& m : maps)
    if (m.path == name) return m;
  return std::nullopt;
}

}  // namespace

void check_memory_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path,
                          bool accept_changed) {
  for (const auto& v : p.vmas) {
    if (v.kind != model::VmaKind::file_private && v.kind != model::VmaKind::file_shared) continue;
    if (v.content_id) continue;  // restored from the bundle
    std::string path = host_path(v.name);
    if (!path.empty()) check_file(path, v.file, "mapped at " + hex(v.start), accept_changed);
  }
  std::string exe = p.mm.exe_content_id ? "" : host_path(p.mm.exe);
  if (!exe.empty()) check_file(exe, p.mm.exe_id, "the executable", accept_changed);
  if (p.mm.vdso_hash && p.mm.vdso_hash != own_vdso_hash())
    throw Error("this kernel's vDSO differs from the one the image was taken with; restart it on a machine running the same kernel",
                FailureKind::environment);
}

void replace_address_space(Puppet& pp, const model::Process& p, SharedMemory& shared,
                           const std::map<uint64_t, int>& contents) {
  pid_t pid = pp.pid();
  // glibc registered an rseq area in the puppet's TLS (inherited from cr_restart). The kernel
  // writes to it on preemption; unregister it before that memory disappears (rseq(2)).
  struct {
    uint64_t ptr;
    uint32_t size, sig, flags, pad;
  } rc{};
  if (ptrace(static_cast<__ptrace_request>(0x420f), pid, sizeof rc, &rc) > 0 && rc.ptr)
    pp.check("unregistering rseq", SYS_rseq, rc.ptr, rc.size, 1 /* RSEQ_FLAG_UNREGISTER */, rc.sig);

  auto maps = proc::parse_maps(read_file("/proc/" + std::to_string(pid) + "/maps"));
  const uint64_t tramp_end = pp.trampoline() + kTrampolinePages * kPage;
  for (const auto& m : maps) {
    if (m.start >= pp.trampoline() && m.end <= tramp_end) continue;  // code page and scratch pages
    if (m.path == "[vdso]" || m.path == "[vvar]" || m.path == "[vvar_vclock]" || m.path == "[vsyscall]") continue;
    pp.check("unmapping " + hex(m.start), SYS_munmap, m.start, m.end - m.start);
  }

  // Move the vDSO and its data pages together, keeping their offsets: glibc caches pointers into
  // the vDSO, so it must sit exactly where the image had it (KERNEL-NOTES: moving [vdso] alone
  // crashes on its first call).
  std::vector<std::pair<proc::MapsEntry, uint64_t>> moves;  // puppet mapping -> image address
  for (const auto& v : p.vmas) {
    if (v.kind != model::VmaKind::vdso && v.kind != model::VmaKind::vvar) continue;
    auto cur = find_named(maps, v.name);
    if (!cur || cur->end - cur->start != v.end - v.start)
      throw Error("this kernel's " + v.name + " differs from the image's; restart it on a machine running the same kernel");
    if (cur->start != v.start) moves.push_back({*cur, v.start});
  }
  if (!moves.empty()) {
    // Park every piece first in a place free in both layouts, so no move overlaps another piece.
    uint64_t park = 0;
    uint64_t span = 0;
    for (auto& [m, to] : moves) span += m.end - m.start;
    for (uint64_t a = 0x20000000; a < 0x7f0000000000ull && !park; a += 0x100000) {
      bool busy = a < tramp_end && pp.trampoline() < a + span;
      for (const auto& v : p.vmas) busy = busy || (a < v.end && v.start < a + span);
      for (const auto& m : maps) busy = busy || (a < m.end && m.start < a + span);
      if (!busy) park = a;
    }
    if (!park) throw Error("no free place to move the vDSO through");
    uint64_t at = park;
    std::vector<uint64_t> parked;
    for (auto& [m, to] : moves) {
      uint64_t len = m.end - m.start;
      pp.check("moving " + m.path, SYS_mremap, m.start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, at);
      parked.push_back(at);
      at += len;
    }
    for (size_t i = 0; i < moves.size(); i++) {
      uint64_t len = moves[i].first.end - moves[i].first.start;
      pp.check("moving " + moves[i].first.path + " to " + hex(moves[i].second), SYS_mremap, parked[i], len, len,
               MREMAP_MAYMOVE | MREMAP_FIXED, moves[i].second);
    }
  }

  // Map every VMA, writable for now so the pages can be filled; file mappings through an fd opened
  // in the puppet.
  std::map<std::pair<std::string, bool>, long> fds;
  for (const auto& v : p.vmas) {
    if (is_special(v.kind)) continue;
    uint64_t len = v.end - v.start;
    uint64_t flags = v.flags | MAP_FIXED;
    if (v.kind == model::VmaKind::sysv_shm) {
      attach_sysv_shm(pp, p, v);  // ipc.cc: the segment exists already, made at its id
      continue;
    }
    if (v.kind == model::VmaKind::anon_shared && v.shmem_id && shared.count(v.shmem_id)) {
      // Memory another VMA of the image shares: map the object that VMA got, through the restored
      // process that holds it (/proc/PID/map_files, proc(5)).
      const auto& first = shared.at(v.shmem_id);
      if (v.pgoff < first.pgoff) throw Error("shared memory at " + hex(v.start) + " starts before its first mapping; not supported yet");
      std::string path = proc::map_files_path(first.pid, first.start, first.end);
      long fd = pp.check("opening shared memory " + path, SYS_openat, static_cast<uint64_t>(AT_FDCWD), pp.put_string(path),
                         O_RDWR | O_CLOEXEC);
      pp.check("mapping shared memory at " + hex(v.start), SYS_mmap, v.start, len, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, static_cast<uint64_t>(fd), v.pgoff - first.pgoff);
      pp.call(SYS_close, static_cast<uint64_t>(fd));
      continue;
    }
    if (v.kind == model::VmaKind::anon_private || v.kind == model::VmaKind::anon_shared) {
      pp.check("mapping " + hex(v.start), SYS_mmap, v.start, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS,
               static_cast<uint64_t>(-1), 0);
      // Named by its pid in the image: the pid the puppets see, in and out of a sandbox.
      if (v.kind == model::VmaKind::anon_shared && v.shmem_id) shared[v.shmem_id] = {p.pid, v.start, v.end, v.pgoff};
      continue;
    }
    // Shared file mappings get their final protection now: their content is the file's.
    uint64_t prot = v.kind == model::VmaKind::file_shared ? v.prot : (PROT_READ | PROT_WRITE);
    if (v.content_id) {
      // The file's content is in the bundle: map the memfd holding it, which this process
      // inherited at a number cr_restart chose (FileTables::contents).
      auto it = contents.find(v.content_id);
      if (it == contents.end()) throw Error("the content of " + v.name + " is missing from the bundle");
      pp.check("mapping " + v.name + " at " + hex(v.start), SYS_mmap, v.start, len, prot, flags,
               static_cast<uint64_t>(it->second), v.pgoff);
      continue;
    }
    bool shared_write = v.kind == model::VmaKind::file_shared && (v.prot & PROT_WRITE);
    auto key = std::make_pair(v.name, shared_write);
    if (!fds.count(key)) {
      uint64_t path = pp.put_string(v.name);
      fds[key] = pp.check("opening " + v.name + " in the new process", SYS_openat, static_cast<uint64_t>(AT_FDCWD), path,
                          static_cast<uint64_t>((shared_write ? O_RDWR : O_RDONLY) | O_CLOEXEC));
    }
    pp.check("mapping " + v.name + " at " + hex(v.start), SYS_mmap, v.start, len, prot, flags,
             static_cast<uint64_t>(fds[key]), v.pgoff);
  }
  for (auto& [k, fd] : fds) pp.call(SYS_close, static_cast<uint64_t>(fd));
}

void fill_pages(Puppet& pp, const image::PageBatch& b) {
  std::vector<iovec> remote;
  remote.reserve(b.runs.size());
  size_t total = 0;
  for (const auto& r : b.runs) {
    remote.push_back({reinterpret_cast<void*>(r.vaddr), r.npages * kPage});
    total += r.npages * kPage;
  }
  if (total != b.data.size()) throw Error("a page batch's runs do not match its data");
  // Fresh memory is slow to fault in one page at a time; MADV_POPULATE_WRITE (madvise(2), Linux
  // 5.14) allocates a whole run at once (KERNEL-NOTES: ~2.5x faster here). Only for long runs: each
  // call is an injected syscall.
  for (const auto& r : b.runs) {
    if (r.npages >= 64) pp.call(SYS_madvise, r.vaddr, r.npages * kPage, 23 /* MADV_POPULATE_WRITE */);
  }
  size_t done_iov = 0;
  const uint8_t* src = b.data.data();
  while (done_iov < remote.size()) {
    size_t n_iov = std::min<size_t>(remote.size() - done_iov, 1024);
    size_t bytes = 0;
    for (size_t i = 0; i < n_iov; i++) bytes += remote[done_iov + i].iov_len;
    iovec local{const_cast<uint8_t*>(src), bytes};
    ssize_t n = process_vm_writev(pp.pid(), &local, 1, remote.data() + done_iov, n_iov, 0);
    if (n != static_cast<ssize_t>(bytes))
      throw Error("writing pages at " + hex(reinterpret_cast<uint64_t>(remote[done_iov].iov_base)) +
                  " into the new process failed: the image's page data does not match its memory layout");
    src += bytes;
    done_iov += n_iov;
  }
}

void finish_address_space(Puppet& pp, const model::Process& p, const std::map<uint64_t, int>& contents) {
  for (const auto& v : p.vmas) {
    if (is_special(v.kind) || v.kind == model::VmaKind::file_shared) continue;
    if (v.kind == model::VmaKind::sysv_shm) {
      protect_sysv_shm(pp, p, v);  // ipc.cc: attached with its final protection already
      continue;
    }
    if (v.prot == (PROT_READ | PROT_WRITE)) continue;
    pp.check("protecting " + hex(v.start), SYS_mprotect, v.start, v.end - v.start, v.prot);
  }
  // prctl(PR_SET_MM, PR_SET_MM_MAP): code/data/brk/stack/args/env/auxv and the exe link in one
  // call (prctl(2)); the kernel checks the addresses against the VMAs just made. The exe link can
  // only change once no mapping of the old executable remains (KERNEL-NOTES), which is so now.
  const auto& mm = p.mm;
  long exe_fd = -1;
  bool own_exe_fd = !mm.exe_content_id;
  if (mm.exe_content_id) {
    auto it = contents.find(mm.exe_content_id);
    if (it == contents.end()) throw Error("the content of the executable " + mm.exe + " is missing from the bundle");
    exe_fd = it->second;
  } else {
    uint64_t exe_path = pp.put_string(mm.exe, 2048);
    exe_fd = pp.check("opening the executable " + mm.exe, SYS_openat, static_cast<uint64_t>(AT_FDCWD), exe_path,
                      O_RDONLY | O_CLOEXEC);
  }
  uint64_t auxv = pp.put(mm.auxv.data(), mm.auxv.size() * 8, 4096);
  prctl_mm_map map{};
  map.start_code = mm.start_code;
  map.end_code = mm.end_code;
  map.start_data = mm.start_data;
  map.end_data = mm.end_data;
  map.start_brk = mm.start_brk;
  map.brk = mm.brk;
  map.start_stack = mm.start_stack;
  map.arg_start = mm.arg_start;
  map.arg_end = mm.arg_end;
  map.env_start = mm.env_start;
  map.env_end = mm.env_end;
  map.auxv = reinterpret_cast<__u64*>(auxv);
  map.auxv_size = static_cast<uint32_t>(mm.auxv.size() * 8);
  map.exe_fd = static_cast<uint32_t>(exe_fd);
  uint64_t addr = pp.put(&map, sizeof map, 0);
  pp.check("setting the memory layout (PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, addr, sizeof map);
  if (own_exe_fd) pp.call(SYS_close, static_cast<uint64_t>(exe_fd));
  // The bundle's contents were kept open for this; the mappings hold what they need now.
  for (auto& [id, fd] : contents) pp.call(SYS_close, static_cast<uint64_t>(fd));
}

}  // namespace crbox::restore
