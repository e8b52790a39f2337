// BundleReader: reads a bundle strictly sequentially (never seeks), so it works on pipes, and checks
// everything it reads: magic, version, arch, page size, every checksum, every length, truncation.
// Layout: docs/image-format.md. Every error is one sentence naming the file.
#include <sys/utsname.h>
#include <unistd.h>

#include <cereal/archives/portable_binary.hpp>
#include <cerrno>
#include <cstring>
#include <istream>
#include <streambuf>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/format.h"
#include "util/error.h"

namespace crbox::image {

using namespace format;

namespace {

// A read-only streambuf over bytes already in memory, for cereal.
class MemBuf : public std::streambuf {
 public:
  MemBuf(const uint8_t* p, size_t n) {
    char* b = reinterpret_cast<char*>(const_cast<uint8_t*>(p));
    setg(b, b, b + n);
  }
};

std::string field_string(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

}  // namespace

BundleReader::BundleReader(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

void BundleReader::expect(Stage s, const char* what) const {
  if (stage_ != s) throw Error("internal error reading " + name_ + ": " + what + " out of order.");
}

void BundleReader::corrupt(const std::string& what) const { throw Error(name_ + " is corrupt: " + what + "."); }

size_t BundleReader::get_upto(void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd_, c + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("reading " + name_);
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  offset_ += done;
  totals_.bytes = offset_;
  return done;
}

void BundleReader::get(const Section& s, void* p, size_t n) {
  size_t got = get_upto(p, n);
  if (got < n) {
    uint64_t end = s.start + kSectionHeaderSize + s.length;
    throw Error(name_ + " is truncated: section '" + section_name(s.type) + "' ends at byte " +
                std::to_string(offset_) + ", " + std::to_string(end - offset_) + " bytes before its declared end.");
  }
}

void BundleReader::drain(const Section& s, uint64_t n, Hasher& h) {
  uint8_t tmp[65536];
  while (n > 0) {
    size_t k = n < sizeof tmp ? static_cast<size_t>(n) : sizeof tmp;
    get(s, tmp, k);
    h.update(tmp, k);
    n -= k;
  }
}

void BundleReader::check_checksum(const Section& s, uint64_t got) const {
  if (got != s.checksum)
    corrupt("checksum mismatch in section '" + section_name(s.type) + "' at byte " + std::to_string(s.start));
}

const Header& BundleReader::read_header() {
  expect(Stage::start, "the header");
  uint8_t b[kHeaderSize];
  size_t n = get_upto(b, sizeof b);
  if (n == 0) throw Error(name_ + " is empty; it is not a crbox bundle.");
  if (std::memcmp(b, kMagic, n < sizeof kMagic ? n : sizeof kMagic) != 0)
    throw Error(name_ + " is not a crbox bundle (it does not start with \"CRBOXIMG\").");
  if (n < kOffMinor + 2)
    throw Error(name_ + " is truncated: the header ends at byte " + std::to_string(n) + " of " +
                std::to_string(kHeaderSize) + ".");
  // Magic, major and minor keep their place in every format version, so this check comes before
  // anything whose layout a newer major could change.
  header_.major = get_u16(b + kOffMajor);
  header_.minor = get_u16(b + kOffMinor);
  if (header_.major > kFormatMajor)
    throw Error(name_ + " was written by a newer crbox (format " + std::to_string(header_.major) + "." +
                std::to_string(header_.minor) + "); this crbox reads format " + std::to_string(kFormatMajor) + ".x.");
  if (header_.major < 1) corrupt("the header names format version 0, which never existed");
  // The model has no per-field framing yet: an older major's model does not parse as this one's.
  if (header_.major < kFormatMajor)
    throw Error(name_ + " was written by an older crbox (format " + std::to_string(header_.major) + "." +
                std::to_string(header_.minor) + "); this crbox reads format " + std::to_string(kFormatMajor) + ".x only.");
  if (n < kHeaderSize)
    throw Error(name_ + " is truncated: the header ends at byte " + std::to_string(n) + " of " +
                std::to_string(kHeaderSize) + ".");
  if (checksum(b, kOffHeaderChecksum) != get_u64(b + kOffHeaderChecksum)) corrupt("checksum mismatch in the header");
  if (get_u32(b + kOffHeaderSize) != kHeaderSize) corrupt("the header size is not 4096");

  header_.page_size = get_u32(b + kOffPageSize);
  header_.flags = get_u64(b + kOffFlags);
  header_.arch = field_string(b + kOffArch, kArchLen);
  header_.kernel_release = field_string(b + kOffKernel, kKernelLen);

  Header host = host_header();
  if (header_.arch != host.arch)
    throw Error(name_ + " was taken on " + (header_.arch.empty() ? "an unnamed architecture" : header_.arch) +
                "; this machine is " + host.arch + ".");
  if (header_.page_size != host.page_size)
    throw Error(name_ + " was taken with " + std::to_string(header_.page_size) + "-byte pages; this machine uses " +
                std::to_string(host.page_size) + "-byte pages.");
  stage_ = Stage::header;
  return header_;
}

BundleReader::Section BundleReader::next_section() {
  for (;;) {
    Section s;
    s.start = offset_;
    uint8_t b[kSectionHeaderSize];
    size_t n = get_upto(b, sizeof b);
    if (n == 0)
      throw Error(name_ + " is truncated: it ends at byte " + std::to_string(offset_) + " without an end section.");
    if (n < sizeof b)
      throw Error(name_ + " is truncated: the section header at byte " + std::to_string(s.start) + " ends at byte " +
                  std::to_string(offset_) + ".");
    if (checksum(b, 24) != get_u64(b + 24)) corrupt("the section header at byte " + std::to_string(s.start) + " is damaged");
    s.type = get_u32(b);
    s.flags = get_u32(b + 4);
    s.length = get_u64(b + 8);
    s.checksum = get_u64(b + 16);
    if (s.type == kSectionModel || s.type == kSectionPages || s.type == kSectionEnd || s.type == kSectionContent)
      return s;
    if (!(s.flags & kSectionSkippable))
      throw Error(name_ + " needs a newer crbox: it holds a section of unknown type " + std::to_string(s.type) +
                  " at byte " + std::to_string(s.start) + " that cannot be skipped.");
    // An unknown section a reader may skip: still verify it, streaming, without allocating.
    Hasher h;
    drain(s, s.length, h);
    check_checksum(s, h.digest());
  }
}

model::Image BundleReader::read_model() {
  expect(Stage::header, "the model");
  Section s = next_section();
  if (s.type != kSectionModel)
    corrupt("the first section, at byte " + std::to_string(s.start) + ", is '" + section_name(s.type) +
            "' instead of the model");
  if (s.length > kMaxModelBytes)
    corrupt("the model section at byte " + std::to_string(s.start) + " claims " + std::to_string(s.length) +
            " bytes (the limit is 256 MiB)");
  if (buf_.size() < s.length) buf_.resize(s.length);
  get(s, buf_.data(), s.length);
  check_checksum(s, checksum(buf_.data(), s.length));

  model::Image img;
  try {
    MemBuf mb(buf_.data(), s.length);
    std::istream is(&mb);
    cereal::PortableBinaryInputArchive ar(is);
    ar(img);
  } catch (const std::exception& e) {
    corrupt("the model section at byte " + std::to_string(s.start) + " does not decode (" + e.what() + ")");
  }
  // Every file content of the model comes in content sections, right after the model.
  for (const auto& c : img.contents) {
    Expected& e = expected_[c.id];
    e.path = c.path;
    e.size = c.size;
  }
  stage_ = Stage::model;
  return img;
}

BundleReader::Section BundleReader::take_section() {
  if (!pending_) return next_section();
  Section s = *pending_;
  pending_.reset();
  return s;
}

void BundleReader::end_contents(uint64_t at) {
  contents_done_ = true;
  for (const auto& [id, e] : expected_)
    if (e.received != e.size)
      corrupt("the content of " + e.path + " (content " + std::to_string(id) + ") ends after " +
              std::to_string(e.received) + " of its " + std::to_string(e.size) + " bytes, at byte " + std::to_string(at));
}

std::optional<ContentChunk> BundleReader::next_content() {
  expect(Stage::model, "a content section");
  if (contents_done_) return std::nullopt;
  Section s = take_section();
  const std::string at = " at byte " + std::to_string(s.start);
  if (s.type != kSectionContent) {
    pending_ = s;
    end_contents(s.start);
    return std::nullopt;
  }
  // Bounded before anything is allocated; the payload is checked whole before a byte is used.
  if (s.length < kContentHeaderSize || s.length > kContentHeaderSize + kMaxContentData)
    corrupt("the content section" + at + " claims " + std::to_string(s.length) +
            " bytes (a content section holds at most 64 MiB)");
  if (content_buf_.size() < s.length) content_buf_.resize(s.length);
  get(s, content_buf_.data(), s.length);
  check_checksum(s, checksum(content_buf_.data(), s.length));

  const uint8_t* ch = content_buf_.data();
  ContentChunk c;
  c.id = get_u64(ch);
  c.offset = get_u64(ch + 8);
  const uint64_t len = get_u64(ch + 16);
  const uint32_t flags = get_u32(ch + 24);
  if (len == 0 || len != s.length - kContentHeaderSize || flags != 0 || get_u32(ch + 28) != 0)
    corrupt("the content section" + at + " has an inconsistent chunk header");
  auto it = expected_.find(c.id);
  if (it == expected_.end())
    corrupt("the content section" + at + " belongs to content " + std::to_string(c.id) +
            ", which the model does not list");
  Expected& e = it->second;
  if (c.offset != e.received)
    corrupt("the content section" + at + " holds bytes from " + std::to_string(c.offset) + " of " + e.path +
            ", whose content so far ends at " + std::to_string(e.received));
  if (len > e.size - e.received)
    corrupt("the content section" + at + " runs past the end of " + e.path + " (" + std::to_string(e.size) +
            " bytes)");
  e.received += len;
  c.data = std::span<const uint8_t>(ch + kContentHeaderSize, static_cast<size_t>(len));
  c.section_start = s.start;
  totals_.content_sections += 1;
  totals_.content_bytes += len;
  return c;
}

std::optional<PageBatch> BundleReader::next_pages() {
  if (done_) return std::nullopt;
  expect(Stage::model, "a page batch");
  // Contents nobody asked for are still read and checked (they come before the pages).
  while (!contents_done_ && next_content()) {
  }
  Section s = take_section();
  const std::string at = " at byte " + std::to_string(s.start);
  if (s.type == kSectionContent) corrupt("a content section appears" + at + ", after the page data");

  if (s.type == kSectionEnd) {
    if (s.length < kEndPayloadSize || s.length > kMaxEndPayload)
      corrupt("the end section" + at + " has an impossible length of " + std::to_string(s.length) + " bytes");
    uint8_t b[kMaxEndPayload];
    get(s, b, s.length);
    check_checksum(s, checksum(b, s.length));
    uint64_t batches = get_u64(b), pages = get_u64(b + 8), end_at = get_u64(b + 16);
    if (batches != totals_.batches || pages != totals_.pages || end_at != s.start)
      corrupt("the end section" + at + " counts " + std::to_string(batches) + " page batches and " +
              std::to_string(pages) + " pages but the bundle holds " + std::to_string(totals_.batches) + " and " +
              std::to_string(totals_.pages));
    uint64_t sections = get_u64(b + 24), bytes = get_u64(b + 32);
    if (sections != totals_.content_sections || bytes != totals_.content_bytes)
      corrupt("the end section" + at + " counts " + std::to_string(sections) + " content sections of " +
              std::to_string(bytes) + " bytes but the bundle holds " + std::to_string(totals_.content_sections) +
              " of " + std::to_string(totals_.content_bytes));
    done_ = true;
    stage_ = Stage::done;
    return std::nullopt;
  }
  if (s.type == kSectionModel) corrupt("a second model section appears" + at);

  // A pages section. Its length is protected by the section header's own checksum, so bound it
  // first; then read the batch header and runs, the padding, and the data straight into buf_.
  const uint64_t ps = header_.page_size;
  const uint64_t max_runs = kMaxBatchData / ps;
  if (s.length < kBatchHeaderSize || s.length > kBatchHeaderSize + max_runs * kRunSize + ps + kMaxBatchData)
    corrupt("the pages section" + at + " claims " + std::to_string(s.length) + " bytes (a batch holds at most 1 GiB)");

  Hasher h;
  uint64_t left = s.length;
  auto rest_and_fail = [&](const std::string& why) {
    // Read the rest of the payload: a damaged byte is reported as a checksum mismatch, a payload
    // that is intact but inconsistent as what it is.
    drain(s, left, h);
    check_checksum(s, h.digest());
    corrupt("the pages section" + at + " " + why);
  };

  uint8_t bh[kBatchHeaderSize];
  get(s, bh, sizeof bh);
  h.update(bh, sizeof bh);
  left -= sizeof bh;
  PageBatch batch;
  batch.pid = static_cast<int32_t>(get_u32(bh));
  const uint64_t nruns = get_u32(bh + 4);
  if (nruns == 0 || nruns > max_runs || nruns * kRunSize > left) rest_and_fail("has an impossible run count");

  small_.resize(nruns * kRunSize);
  get(s, small_.data(), small_.size());
  h.update(small_.data(), small_.size());
  left -= small_.size();
  batch.runs.resize(nruns);
  uint64_t pages = 0;
  bool bad_run = false;
  for (size_t i = 0; i < nruns; ++i) {
    PageRun& r = batch.runs[i];
    r.vaddr = get_u64(small_.data() + i * kRunSize);
    r.npages = get_u64(small_.data() + i * kRunSize + 8);
    if (r.npages == 0 || r.npages > max_runs || r.vaddr % ps != 0) bad_run = true;
    pages += r.npages;  // cannot overflow: nruns * max_runs < 2^64 with npages bounded
  }
  if (bad_run) rest_and_fail("has an empty, oversized or unaligned page run");

  const uint64_t pad = padding(offset_, ps);
  if (pages > max_runs || pad + pages * ps != left)
    rest_and_fail("holds " + std::to_string(left) + " bytes after its runs, which describe " + std::to_string(pages) +
                  " pages");
  small_.resize(pad);
  get(s, small_.data(), pad);
  h.update(small_.data(), pad);

  const size_t len = static_cast<size_t>(pages * ps);
  // Two page buffers, used in turn, so a caller may read the next batch while it still uses the
  // previous one (cr_restart overlaps reading with writing into the process).
  std::vector<uint8_t>& buf = page_bufs_[flip_ ^= 1];
  if (buf.size() < len) buf.resize(len);
  batch.data_offset = offset_;
  get(s, buf.data(), len);
  h.update(buf.data(), len);
  check_checksum(s, h.digest());
  batch.data = std::span<const uint8_t>(buf.data(), len);
  totals_.batches += 1;
  totals_.pages += pages;
  return batch;
}

}  // namespace crbox::image
