// Page content: only pages that exist (/proc/PID/pagemap, Documentation/admin-guide/mm/pagemap.rst)
// and are private to the process (anonymous memory, copied-on-write pages of private file
// mappings, shared anonymous memory); all-zero pages are left out. Read with process_vm_readv(2)
// in batches and streamed into the bundle.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <memory>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/pagemap.h"
#include "util/deadline.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/remote_mem.h"

namespace crbox::dump {

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kBatchPages = 1024;  // 4 MiB: fits the caches and IOV_MAX (1024) remote iovecs

bool is_zero_page(const uint8_t* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; i += 8) {
    if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) return false;
  }
  return true;
}

bool wanted(model::VmaKind kind, uint64_t raw) {
  auto e = proc::decode_pagemap(raw);
  switch (kind) {
    case model::VmaKind::anon_private:
    case model::VmaKind::anon_shared:
      return e.present || e.swapped;
    case model::VmaKind::file_private:
      // A present page that is not a file page is an anonymous copy made by a write.
      return (e.present && !e.file_or_shared) || e.swapped;
    default:
      return false;
  }
}

class BatchWriter {
 public:
  BatchWriter(pid_t pid, int32_t image_pid, model::Process& p, image::BundleWriter& w)
      : pid_(pid), image_pid_(image_pid), p_(p), w_(w) {
    for (auto& b : bufs_) {
      b = static_cast<uint8_t*>(aligned_alloc(kPage, kBatchPages * kPage));
      if (!b) throw Error("out of memory for the page buffer");
    }
    buf_ = bufs_[0];
  }
  ~BatchWriter() {
    if (pending_.valid()) pending_.wait();
    for (auto* b : bufs_) free(b);
  }

  void add(size_t vma, uint64_t addr) {
    if (!runs_.empty() && run_vma_.back() == vma && runs_.back().vaddr + runs_.back().npages * kPage == addr) {
      runs_.back().npages++;
    } else {
      runs_.push_back({addr, 1});
      run_vma_.push_back(vma);
    }
    if (++pages_ == kBatchPages) flush();
  }

  void flush() {
    if (pages_ == 0) return;
    read_runs();
    // Drop all-zero pages: compact the data and split runs around them.
    std::vector<image::PageRun> out;
    size_t src = 0, dst = 0;
    for (size_t r = 0; r < runs_.size(); r++) {
      for (uint64_t i = 0; i < runs_[r].npages; i++, src++) {
        const uint8_t* page = buf_ + src * kPage;
        if (is_zero_page(page)) continue;
        uint64_t addr = runs_[r].vaddr + i * kPage;
        if (!out.empty() && out.back().vaddr + out.back().npages * kPage == addr && last_vma_ == run_vma_[r]) {
          out.back().npages++;
        } else {
          out.push_back({addr, 1});
        }
        last_vma_ = run_vma_[r];
        if (dst != src) std::memcpy(buf_ + dst * kPage, page, kPage);
        dst++;
      }
    }
    // Write this batch in the background while the next one is read from the process into the
    // other buffer; batches stay in order because each waits for the last.
    // The checksum is taken here, the write(2) in the background.
    if (dst) {
      auto prepared = w_.prepare_pages(image_pid_, out, buf_, dst * kPage);
      if (pending_.valid()) pending_.get();
      pending_ = std::async(std::launch::async, [this, b = std::move(prepared)] { w_.write_prepared(b); });
      buf_ = bufs_[buf_ == bufs_[0] ? 1 : 0];
    }
    total_ += dst;
    runs_.clear();
    run_vma_.clear();
    pages_ = 0;
    last_vma_ = SIZE_MAX;
  }

  // Waits for the last background write; rethrows its failure.
  void finish() {
    flush();
    if (pending_.valid()) pending_.get();
  }

  uint64_t total() const { return total_; }

 private:
  void read_runs() {
    std::vector<iovec> remote(runs_.size());
    for (size_t i = 0; i < runs_.size(); i++)
      remote[i] = {reinterpret_cast<void*>(runs_[i].vaddr), runs_[i].npages * kPage};
    iovec local{buf_, pages_ * kPage};
    ssize_t n = process_vm_readv(pid_, &local, 1, remote.data(), remote.size(), 0);
    if (n == static_cast<ssize_t>(pages_ * kPage)) return;
    // A partial read stops at the first run it could not read (no PROT_READ, say): read run by
    // run, through /proc/PID/mem where needed.
    size_t off = 0;
    for (auto& r : runs_) {
      remote_read(pid_, r.vaddr, buf_ + off, r.npages * kPage);
      off += r.npages * kPage;
    }
  }

  pid_t pid_;
  int32_t image_pid_;
  model::Process& p_;
  image::BundleWriter& w_;
  uint8_t* bufs_[2] = {nullptr, nullptr};
  uint8_t* buf_ = nullptr;  // the one being filled
  std::future<void> pending_;
  std::vector<image::PageRun> runs_;
  std::vector<size_t> run_vma_;
  size_t pages_ = 0;
  size_t last_vma_ = SIZE_MAX;
  uint64_t total_ = 0;
};

}  // namespace

uint64_t dump_pages(pid_t pid, model::Process& p, image::BundleWriter& w) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  UniqueFd pm(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!pm) throw_errno(path);
  BatchWriter bw(pid, p.pid, p, w);
  for (size_t vi = 0; vi < p.vmas.size(); vi++) {
    const auto& v = p.vmas[vi];
    if (v.kind != model::VmaKind::anon_private && v.kind != model::VmaKind::anon_shared &&
        v.kind != model::VmaKind::file_private)
      continue;
    constexpr uint64_t kChunk = 8192;
    for (uint64_t addr = v.start; addr < v.end; addr += kChunk * kPage) {
      check_deadline("writing the memory of pid " + std::to_string(p.pid));
      uint64_t n = std::min<uint64_t>(kChunk, (v.end - addr) / kPage);
      auto raw = proc::read_pagemap(pm.get(), addr, n);
      for (uint64_t i = 0; i < raw.size(); i++)
        if (wanted(v.kind, raw[i])) bw.add(vi, addr + i * kPage);
    }
  }
  bw.finish();
  return bw.total();
}

}  // namespace crbox::dump
