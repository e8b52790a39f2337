// BundleWriter: writes a bundle strictly sequentially (never seeks), so it works on pipes.
// Layout: docs/image-format.md.
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cereal/archives/portable_binary.hpp>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/format.h"
#include "util/error.h"

namespace crbox::image {

using namespace format;

Header host_header() {
  Header h;
  struct utsname u;
  if (::uname(&u) != 0) throw_errno("uname");
  h.arch = u.machine;
  h.kernel_release = u.release;
  h.page_size = static_cast<uint32_t>(::sysconf(_SC_PAGESIZE));
  return h;
}

BundleWriter::BundleWriter(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

void BundleWriter::expect(Stage s, const char* what) const {
  if (stage_ != s) throw Error("internal error writing " + name_ + ": " + what + " out of order.");
}

void BundleWriter::put(const void* p, size_t n) {
  struct iovec iov = {const_cast<void*>(p), n};
  putv(&iov, 1);
}

void BundleWriter::putv(struct iovec* iov, int n) {
  while (n > 0) {
    ssize_t w = ::writev(fd_, iov, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("writing " + name_);
    }
    offset_ += static_cast<uint64_t>(w);
    totals_.bytes = offset_;
    size_t left = static_cast<size_t>(w);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

void BundleWriter::write_header(const Header& given) {
  expect(Stage::start, "the header");
  Header host = host_header();
  Header h = given;
  if (h.arch.empty()) h.arch = host.arch;
  if (h.kernel_release.empty()) h.kernel_release = host.kernel_release;
  if (h.page_size == 0) h.page_size = host.page_size;
  if (h.arch.size() >= kArchLen || h.kernel_release.size() >= kKernelLen)
    throw Error("cannot write " + name_ + ": the arch or kernel release name is too long for the header.");
  if (h.page_size < 4096 || h.page_size > kMaxPageSize || (h.page_size & (h.page_size - 1)) != 0)
    throw Error("cannot write " + name_ + ": page size " + std::to_string(h.page_size) + " is not supported.");

  uint8_t b[kHeaderSize] = {};
  std::memcpy(b + kOffMagic, kMagic, sizeof kMagic);
  put_u16(b + kOffMajor, h.major);
  put_u16(b + kOffMinor, h.minor);
  put_u32(b + kOffHeaderSize, kHeaderSize);
  put_u32(b + kOffPageSize, h.page_size);
  put_u64(b + kOffFlags, h.flags);
  std::memcpy(b + kOffArch, h.arch.data(), h.arch.size());
  std::memcpy(b + kOffKernel, h.kernel_release.data(), h.kernel_release.size());
  put_u64(b + kOffHeaderChecksum, checksum(b, kOffHeaderChecksum));
  put(b, sizeof b);
  planned_ = offset_;
  page_size_ = h.page_size;
  stage_ = Stage::header;
}

void BundleWriter::write_model(const model::Image& img) {
  expect(Stage::header, "the model");
  std::ostringstream os(std::ios::binary);
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(img);
  }
  const std::string payload = std::move(os).str();
  if (payload.size() > kMaxModelBytes)
    throw Error("cannot write " + name_ + ": the model is " + std::to_string(payload.size()) +
                " bytes, more than the format allows (256 MiB).");
  uint8_t sh[kSectionHeaderSize];
  encode_section_header(sh, kSectionModel, 0, payload.size(), checksum(payload.data(), payload.size()));
  struct iovec iov[2] = {{sh, sizeof sh}, {const_cast<char*>(payload.data()), payload.size()}};
  putv(iov, 2);
  planned_ = offset_;
  stage_ = Stage::model;
}

void BundleWriter::write_content(uint64_t id, uint64_t offset, std::span<const uint8_t> data) {
  expect(Stage::model, "a content section");
  if (pages_started_) throw Error("internal error writing " + name_ + ": a content section after the page data.");
  if (data.empty() || data.size() > kMaxContentChunk)
    throw Error("internal error writing " + name_ + ": a content section of " + std::to_string(data.size()) +
                " bytes (at most 64 MiB).");
  // The payload's checksum goes in the section header, before the payload: the chunk is in memory
  // already, so it is hashed first and then written with its headers in one writev.
  uint8_t head[kSectionHeaderSize + kContentHeaderSize] = {};
  uint8_t* ch = head + kSectionHeaderSize;
  put_u64(ch, id);
  put_u64(ch + 8, offset);
  put_u64(ch + 16, data.size());
  Hasher h;
  h.update(ch, kContentHeaderSize);
  h.update(data.data(), data.size());
  encode_section_header(head, kSectionContent, 0, kContentHeaderSize + data.size(), h.digest());
  struct iovec iov[2] = {{head, sizeof head}, {const_cast<uint8_t*>(data.data()), data.size()}};
  putv(iov, 2);
  planned_ = offset_;
  totals_.content_sections += 1;
  totals_.content_bytes += data.size();
}

void BundleWriter::write_pages(int32_t pid, std::span<const PageRun> runs, const void* data, size_t len) {
  write_prepared(prepare_pages(pid, runs, data, len));
}

BundleWriter::PreparedPages BundleWriter::prepare_pages(int32_t pid, std::span<const PageRun> runs, const void* data,
                                                        size_t len) {
  expect(Stage::model, "a page batch");
  PreparedPages b;
  if (runs.empty()) return b;
  pages_started_ = true;
  uint64_t pages = 0;
  for (const PageRun& r : runs) {
    if (r.npages == 0 || r.npages > kMaxBatchData / page_size_ || r.vaddr % page_size_ != 0)
      throw Error("internal error writing " + name_ + ": a page run is empty, too long or not page-aligned.");
    pages += r.npages;
  }
  if (pages > kMaxBatchData / page_size_ || pages * page_size_ != len)
    throw Error("internal error writing " + name_ + ": a page batch holds " + std::to_string(len) + " bytes for " +
                std::to_string(pages) + " pages (at most 1 GiB a batch).");

  // Section header, batch header, runs and padding go in one buffer; the page data follows it in
  // the same writev, straight from the caller's memory.
  const size_t prefix = kBatchHeaderSize + runs.size() * kRunSize;
  const uint64_t data_at = planned_ + kSectionHeaderSize + prefix;
  const size_t pad = static_cast<size_t>(padding(data_at, page_size_));
  b.head.assign(kSectionHeaderSize + prefix + pad, 0);
  uint8_t* payload = b.head.data() + kSectionHeaderSize;
  put_u32(payload, static_cast<uint32_t>(pid));
  put_u32(payload + 4, static_cast<uint32_t>(runs.size()));
  for (size_t i = 0; i < runs.size(); ++i) {
    put_u64(payload + kBatchHeaderSize + i * kRunSize, runs[i].vaddr);
    put_u64(payload + kBatchHeaderSize + i * kRunSize + 8, runs[i].npages);
  }
  Hasher hs;
  hs.update(payload, prefix + pad);
  hs.update(data, len);
  encode_section_header(b.head.data(), kSectionPages, 0, prefix + pad + len, hs.digest());
  b.data = data;
  b.len = len;
  planned_ += b.head.size() + len;
  totals_.batches += 1;
  totals_.pages += pages;
  return b;
}

void BundleWriter::write_prepared(const PreparedPages& b) {
  if (b.head.empty()) return;
  struct iovec iov[2] = {{const_cast<uint8_t*>(b.head.data()), b.head.size()}, {const_cast<void*>(b.data), b.len}};
  putv(iov, b.len ? 2 : 1);
}

void BundleWriter::write_extra_section(uint32_t type, bool skippable, std::span<const uint8_t> payload) {
  expect(Stage::model, "an extra section");
  if (type == kSectionModel || type == kSectionPages || type == kSectionEnd || type == kSectionContent)
    throw Error("internal error writing " + name_ + ": extra section type " + std::to_string(type) + " is reserved.");
  uint8_t sh[kSectionHeaderSize];
  encode_section_header(sh, type, skippable ? kSectionSkippable : 0, payload.size(),
                        checksum(payload.data(), payload.size()));
  struct iovec iov[2] = {{sh, sizeof sh}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  putv(iov, payload.empty() ? 1 : 2);
  planned_ = offset_;
}

void BundleWriter::finish() {
  expect(Stage::model, "the end section");
  uint8_t b[kSectionHeaderSize + kEndPayloadSize];
  uint8_t* p = b + kSectionHeaderSize;
  put_u64(p, totals_.batches);
  put_u64(p + 8, totals_.pages);
  put_u64(p + 16, offset_);
  put_u64(p + 24, totals_.content_sections);
  put_u64(p + 32, totals_.content_bytes);
  encode_section_header(b, kSectionEnd, 0, kEndPayloadSize, checksum(p, kEndPayloadSize));
  put(b, sizeof b);
  totals_.bytes = offset_;
  planned_ = offset_;
  stage_ = Stage::done;
}

}  // namespace crbox::image
