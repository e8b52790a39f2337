// /proc/PID/pagemap: one 64-bit entry per virtual page (Documentation/admin-guide/mm/pagemap.rst).
#pragma once

#include <cstdint>
#include <vector>

namespace crbox::proc {

struct PagemapEntry {
  bool present = false;      // bit 63
  bool swapped = false;      // bit 62
  bool file_or_shared = false;  // bit 61: file page or shared anonymous page
  bool exclusive = false;    // bit 56: mapped exclusively
  bool soft_dirty = false;   // bit 55
  uint64_t pfn = 0;          // bits 0-54 when present (zero without CAP_SYS_ADMIN)
};

PagemapEntry decode_pagemap(uint64_t raw);

// Reads the raw entries for [start, start + npages * page_size) from an open pagemap fd.
// Throws crbox::Error.
std::vector<uint64_t> read_pagemap(int pagemap_fd, uint64_t start, uint64_t npages);

}  // namespace crbox::proc
