// /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst): a 64-bit little-endian-native
// entry for each virtual page, at file offset (vaddr / PAGE_SIZE) * 8:
//   bits 0-54  PFN if present (zeroed for readers without CAP_SYS_ADMIN since 4.2),
//              or swap type (0-4) and offset (5-54) if swapped
//   bit  55    pte is soft-dirty
//   bit  56    page exclusively mapped (since 4.2)
//   bit  57    pte is uffd-wp write-protected
//   bit  58    guard region (since 6.15)
//   bit  61    page is file-page or shared-anon (since 3.5)
//   bit  62    page swapped
//   bit  63    page present
// A page never touched is neither present nor swapped.
#include "checkpoint/proc/pagemap.h"

#include <unistd.h>

#include <cerrno>

#include "util/error.h"

namespace crbox::proc {

PagemapEntry decode_pagemap(uint64_t raw) {
  PagemapEntry e;
  e.present = (raw >> 63) & 1;
  e.swapped = (raw >> 62) & 1;
  e.file_or_shared = (raw >> 61) & 1;
  e.exclusive = (raw >> 56) & 1;
  e.soft_dirty = (raw >> 55) & 1;
  e.pfn = e.present ? (raw & ((1ull << 55) - 1)) : 0;
  return e;
}

std::vector<uint64_t> read_pagemap(int pagemap_fd, uint64_t start, uint64_t npages) {
  static const uint64_t page_size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  std::vector<uint64_t> out(npages);
  auto* p = reinterpret_cast<char*>(out.data());
  const size_t want = npages * sizeof(uint64_t);
  const uint64_t base = (start / page_size) * sizeof(uint64_t);
  size_t done = 0;
  while (done < want) {
    ssize_t n = ::pread(pagemap_fd, p + done, want - done, static_cast<off_t>(base + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("reading /proc/PID/pagemap");
    }
    if (n == 0) throw Error("reading /proc/PID/pagemap: the range ends beyond the address space.");
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace crbox::proc
