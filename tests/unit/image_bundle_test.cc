#include <algorithm>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cereal/archives/portable_binary.hpp>
#include <cstring>
#include <sstream>
#include <thread>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/format.h"
#include "image_test_util.h"
#include "util/error.h"
#include "util/fd.h"

using namespace crbox;
using namespace crbox::image;

namespace {

using namespace crbox::image::testing;

std::string bundle_bytes(const std::function<void(BundleWriter&)>& before_end = {}) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), make_image(), make_batches(), before_end);
  off_t size = lseek(fd.get(), 0, SEEK_END);
  std::string s(static_cast<size_t>(size), '\0');
  EXPECT_EQ(pread(fd.get(), s.data(), s.size(), 0), size);
  return s;
}

UniqueFd fd_with(const std::string& bytes) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

// Reads a whole bundle; returns the error message, or "" when it is valid.
std::string read_all(const std::string& bytes, std::vector<Batch>* batches = nullptr) {
  UniqueFd fd = fd_with(bytes);
  try {
    BundleReader r(fd.get(), "b.img");
    r.read_header();
    r.read_model();
    while (auto b = r.next_pages())
      if (batches) batches->push_back({b->pid, b->runs, {b->data.begin(), b->data.end()}});
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

// Where the sections are, found by walking the framing.
struct Layout {
  size_t model_at, model_len;
  std::vector<size_t> pages_at;
  size_t end_at;
};
Layout layout(const std::string& s) {
  Layout l{};
  size_t off = format::kHeaderSize;
  while (off < s.size()) {
    auto* p = reinterpret_cast<const uint8_t*>(s.data() + off);
    uint32_t type = format::get_u32(p);
    uint64_t len = format::get_u64(p + 8);
    if (type == format::kSectionModel) {
      l.model_at = off;
      l.model_len = len;
    } else if (type == format::kSectionPages) {
      l.pages_at.push_back(off);
    } else if (type == format::kSectionEnd) {
      l.end_at = off;
    }
    off += format::kSectionHeaderSize + len;
  }
  return l;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(ImageBundle, RoundTripThroughFile) {
  auto img = make_image();
  auto batches = make_batches();
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  Totals wt = write_bundle(fd.get(), img, batches);
  EXPECT_EQ(wt.batches, 3u);
  EXPECT_EQ(wt.pages, 5u + 1 + 22);
  EXPECT_EQ(static_cast<off_t>(wt.bytes), lseek(fd.get(), 0, SEEK_END));
  lseek(fd.get(), 0, SEEK_SET);

  BundleReader r(fd.get(), "b.img");
  const Header& h = r.read_header();
  EXPECT_EQ(h.major, kFormatMajor);
  EXPECT_EQ(h.minor, kFormatMinor);
  EXPECT_EQ(h.arch, host_header().arch);
  EXPECT_EQ(h.page_size, kPs);
  EXPECT_EQ(h.kernel_release, host_header().kernel_release);

  model::Image back = r.read_model();
  EXPECT_EQ(serialize(back), serialize(img));  // every field, byte for byte
  EXPECT_EQ(back.hostname, "host-1");
  ASSERT_TRUE(back.sandbox);
  EXPECT_EQ(back.sandbox->id, "sb-42");
  EXPECT_EQ(back.sandbox->spec.uid, 1000u);
  ASSERT_EQ(back.processes.size(), 2u);
  EXPECT_EQ(back.processes[1].pid, 3);
  EXPECT_EQ(back.processes[0].comm, "a) b (c");
  EXPECT_EQ(back.processes[0].vmas[1].kind, model::VmaKind::file_private);
  EXPECT_EQ(back.processes[0].fds[1].path, "/tmp/\"quoted\"\n");
  EXPECT_EQ(back.processes[0].threads[1].regs.xstate.size(), 2696u);
  EXPECT_EQ(back.processes[0].rlimits[1].max, UINT64_MAX);

  for (auto& want : batches) {
    auto got = r.next_pages();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->pid, want.pid);
    ASSERT_EQ(got->runs.size(), want.runs.size());
    for (size_t i = 0; i < want.runs.size(); ++i) {
      EXPECT_EQ(got->runs[i].vaddr, want.runs[i].vaddr);
      EXPECT_EQ(got->runs[i].npages, want.runs[i].npages);
    }
    ASSERT_EQ(got->data.size(), want.data.size());
    EXPECT_EQ(0, memcmp(got->data.data(), want.data.data(), want.data.size()));
    // Page data sits page-aligned in the file, so restore can pread it straight into place.
    EXPECT_EQ(got->data_offset % kPs, 0u);
    std::vector<uint8_t> direct(want.data.size());
    ASSERT_EQ(pread(fd.get(), direct.data(), direct.size(), static_cast<off_t>(got->data_offset)),
              static_cast<ssize_t>(direct.size()));
    EXPECT_EQ(direct, want.data);
  }
  EXPECT_FALSE(r.next_pages());
  EXPECT_FALSE(r.next_pages());  // stays at the end
  EXPECT_EQ(r.totals().batches, 3u);
  EXPECT_EQ(r.totals().pages, wt.pages);
  EXPECT_EQ(r.totals().bytes, wt.bytes);
}

TEST(ImageBundle, RoundTripThroughPipe) {
  auto img = make_image();
  auto batches = make_batches();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]), wr(p[1]);
  std::string werr;
  std::thread writer([&] {
    try {
      write_bundle(wr.get(), img, batches);
    } catch (const std::exception& e) {
      werr = e.what();
    }
    wr.reset();
  });
  std::vector<Batch> got;
  model::Image back;
  std::string rerr;
  try {
    BundleReader r(rd.get(), "pipe:");
    r.read_header();
    back = r.read_model();
    while (auto b = r.next_pages()) got.push_back({b->pid, b->runs, {b->data.begin(), b->data.end()}});
  } catch (const std::exception& e) {
    rerr = e.what();
  }
  rd.reset();  // unblocks the writer if the reader failed
  writer.join();
  ASSERT_EQ(werr, "");
  ASSERT_EQ(rerr, "");
  EXPECT_EQ(serialize(back), serialize(img));
  ASSERT_EQ(got.size(), batches.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].pid, batches[i].pid);
    EXPECT_EQ(got[i].data, batches[i].data);
  }
}

// Two page buffers are used in turn: a batch's data stays valid while the next one is read (so a
// restore can overlap the two), and no buffer is reallocated once it is big enough.
TEST(ImageBundle, ReaderAlternatesTwoReusedBuffers) {
  UniqueFd fd = fd_with(bundle_bytes());
  BundleReader r(fd.get(), "b.img");
  r.read_header();
  r.read_model();
  std::vector<const uint8_t*> seen;
  std::vector<std::vector<uint8_t>> copies;
  std::optional<PageBatch> prev;
  while (auto b = r.next_pages()) {
    if (prev) {
      // The previous batch's bytes are untouched by this read.
      EXPECT_TRUE(std::equal(prev->data.begin(), prev->data.end(), copies.back().begin()));
      EXPECT_NE(prev->data.data(), b->data.data());
    }
    seen.push_back(b->data.data());
    copies.emplace_back(b->data.begin(), b->data.end());
    prev = b;
  }
  ASSERT_GE(seen.size(), 3u);
  // A buffer is reused whenever it is already big enough for its next batch.
  size_t biggest[2] = {0, 0};
  for (size_t i = 0; i < seen.size(); i++) {
    if (i >= 2 && copies[i].size() <= biggest[i % 2]) {
      EXPECT_EQ(seen[i], seen[i - 2]) << "batch " << i;
    }
    biggest[i % 2] = std::max(biggest[i % 2], copies[i].size());
  }
}

TEST(ImageBundle, EmptyModelAndNoPages) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), model::Image{}, {});
  lseek(fd.get(), 0, SEEK_SET);
  BundleReader r(fd.get(), "b.img");
  r.read_header();
  auto img = r.read_model();
  EXPECT_TRUE(img.processes.empty());
  EXPECT_FALSE(r.next_pages());
}

TEST(ImageBundle, WriterRefusesInconsistentBatches) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  BundleWriter w(fd.get(), "x");
  EXPECT_THROW(w.write_model(make_image()), Error);  // header first
  w.write_header(Header{});
  w.write_model(make_image());
  std::vector<uint8_t> data(2 * kPs);
  PageRun one[] = {{0x1000 * kPs, 1}};
  EXPECT_THROW(w.write_pages(1, one, data.data(), data.size()), Error);  // 1 page, 2 pages of data
  PageRun unaligned[] = {{0x1001, 2}};
  EXPECT_THROW(w.write_pages(1, unaligned, data.data(), data.size()), Error);
  EXPECT_THROW(w.write_extra_section(2, true, {}), Error);  // reserved type
}

TEST(ImageBundle, NotABundle) {
  EXPECT_EQ(read_all(""), "b.img is empty; it is not a crbox bundle.");
  EXPECT_EQ(read_all("#!/bin/sh\necho hello\n"), "b.img is not a crbox bundle (it does not start with \"CRBOXIMG\").");
  std::string bad = bundle_bytes();
  bad[3] = 'x';
  EXPECT_TRUE(contains(read_all(bad), "is not a crbox bundle"));
}

TEST(ImageBundle, NewerMajorVersionIsRefused) {
  std::string s = bundle_bytes();
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMajor, 4);
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMinor, 0);
  EXPECT_EQ(read_all(s), "b.img was written by a newer crbox (format 4.0); this crbox reads format 3.x.");
  // Only the first 12 bytes need to be there to tell.
  EXPECT_EQ(read_all(s.substr(0, 100)), read_all(s));
}

TEST(ImageBundle, OlderMajorVersionIsRefused) {
  std::string s = bundle_bytes();
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMajor, 1);
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMinor, 0);
  EXPECT_EQ(read_all(s), "b.img was written by an older crbox (format 1.0); this crbox reads format 3.x only.");
  // 2.x held file contents in the model, and its sockets had fewer fields.
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMajor, 2);
  format::put_u16(reinterpret_cast<uint8_t*>(s.data()) + format::kOffMinor, 1);
  EXPECT_EQ(read_all(s), "b.img was written by an older crbox (format 2.1); this crbox reads format 3.x only.");
}

TEST(ImageBundle, NewerMinorVersionIsRead) {
  std::string s = bundle_bytes();
  auto* b = reinterpret_cast<uint8_t*>(s.data());
  format::put_u16(b + format::kOffMinor, 7);
  format::put_u64(b + format::kOffHeaderChecksum, checksum(b, format::kOffHeaderChecksum));
  EXPECT_EQ(read_all(s), "");
}

TEST(ImageBundle, ForeignArchAndPageSizeAreRefused) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  Header h = host_header();
  h.arch = "aarch64";
  {
    BundleWriter w(fd.get(), "x");
    w.write_header(h);
  }
  std::string s(format::kHeaderSize, '\0');
  ASSERT_EQ(pread(fd.get(), s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
  EXPECT_TRUE(contains(read_all(s), "b.img was taken on aarch64; this machine is ")) << read_all(s);

  UniqueFd fd2(memfd_create("bundle", MFD_CLOEXEC));
  h = host_header();
  h.page_size = static_cast<uint32_t>(kPs * 4);
  {
    BundleWriter w(fd2.get(), "x");
    w.write_header(h);
  }
  ASSERT_EQ(pread(fd2.get(), s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
  EXPECT_TRUE(contains(read_all(s), "-byte pages; this machine uses " + std::to_string(kPs) + "-byte pages."))
      << read_all(s);
}

TEST(ImageBundle, TruncationAnywhereIsReported) {
  const std::string s = bundle_bytes();
  const Layout l = layout(s);
  ASSERT_EQ(l.pages_at.size(), 3u);
  struct Cut {
    size_t at;
    std::string want;
  };
  std::vector<Cut> cuts = {
      {5, "b.img is truncated: the header ends at byte 5 of 4096."},
      {100, "b.img is truncated: the header ends at byte 100 of 4096."},
      {4095, "b.img is truncated: the header ends at byte 4095 of 4096."},
      {4096, "b.img is truncated: it ends at byte 4096 without an end section."},
      {4096 + 10, "b.img is truncated: the section header at byte 4096 ends at byte 4106."},
      {l.model_at + 32 + l.model_len / 2, "b.img is truncated: section 'model' ends at byte " +
                                              std::to_string(l.model_at + 32 + l.model_len / 2) + ", " +
                                              std::to_string(l.model_len - l.model_len / 2) +
                                              " bytes before its declared end."},
      {l.pages_at[0], "without an end section."},
      {l.pages_at[0] + 36, "section 'pages' ends at byte " + std::to_string(l.pages_at[0] + 36)},  // mid batch header
      {l.pages_at[0] + 50, "section 'pages' ends at byte"},                                        // mid runs
      {l.pages_at[1] + 80, "section 'pages' ends at byte"},                                        // in the padding
      {l.pages_at[2] - 100, "section 'pages' ends at byte"},                                       // mid data
      {l.pages_at[2] + 1, "the section header at byte " + std::to_string(l.pages_at[2])},
      {l.end_at, "b.img is truncated: it ends at byte " + std::to_string(l.end_at) + " without an end section."},
      {l.end_at + 40, "section 'end' ends at byte " + std::to_string(l.end_at + 40)},
      {s.size() - 1, "section 'end' ends at byte"},
  };
  for (auto& c : cuts) {
    std::string msg = read_all(s.substr(0, c.at));
    EXPECT_TRUE(contains(msg, "b.img is truncated: ")) << "cut at " << c.at << ": " << msg;
    EXPECT_TRUE(contains(msg, c.want)) << "cut at " << c.at << ": " << msg;
  }
  // Every cut from the first byte to the last fails, and always as truncation.
  for (size_t at = 1; at < s.size(); at += 997) {
    std::string msg = read_all(s.substr(0, at));
    EXPECT_TRUE(contains(msg, "b.img is truncated: ")) << "cut at " << at << ": " << msg;
  }
  EXPECT_EQ(read_all(s), "");
}

TEST(ImageBundle, BitFlipsAreDetected) {
  const std::string s = bundle_bytes();
  const Layout l = layout(s);
  auto flipped = [&](size_t at, int bit) {
    std::string t = s;
    t[at] = static_cast<char>(t[at] ^ (1 << bit));
    return read_all(t);
  };
  EXPECT_EQ(flipped(40, 0), "b.img is corrupt: checksum mismatch in the header.");
  EXPECT_EQ(flipped(l.model_at + 32 + l.model_len / 3, 4),
            "b.img is corrupt: checksum mismatch in section 'model' at byte " + std::to_string(l.model_at) + ".");
  EXPECT_EQ(flipped(l.pages_at[1] + 32 + 1, 0),  // the pid
            "b.img is corrupt: checksum mismatch in section 'pages' at byte " + std::to_string(l.pages_at[1]) + ".");
  EXPECT_EQ(flipped(l.pages_at[0] + 32 + 4, 1),  // the run count
            "b.img is corrupt: checksum mismatch in section 'pages' at byte " + std::to_string(l.pages_at[0]) + ".");
  EXPECT_EQ(flipped(l.pages_at[0] + 32 + 8 + 8, 0),  // a run's length
            "b.img is corrupt: checksum mismatch in section 'pages' at byte " + std::to_string(l.pages_at[0]) + ".");
  EXPECT_EQ(flipped(l.pages_at[2] - 7, 7),  // page data of the second batch
            "b.img is corrupt: checksum mismatch in section 'pages' at byte " + std::to_string(l.pages_at[1]) + ".");
  EXPECT_EQ(flipped(l.pages_at[0] + 9, 3),  // a section's length field
            "b.img is corrupt: the section header at byte " + std::to_string(l.pages_at[0]) + " is damaged.");
  EXPECT_EQ(flipped(l.end_at + 32, 0),
            "b.img is corrupt: checksum mismatch in section 'end' at byte " + std::to_string(l.end_at) + ".");
  // Every single bit of a sample of positions after the magic and version.
  for (size_t at = 12; at < s.size(); at += 1231)
    for (int bit = 0; bit < 8; ++bit) {
      std::string msg = flipped(at, bit);
      EXPECT_TRUE(contains(msg, "b.img is corrupt: ")) << "byte " << at << " bit " << bit << ": " << msg;
    }
}

TEST(ImageBundle, UnknownSkippableSectionIsSkipped) {
  std::vector<uint8_t> payload(10000, 0x5a);
  std::string s = bundle_bytes([&](BundleWriter& w) {
    w.write_extra_section(77, true, payload);
    w.write_extra_section(78, true, {});
  });
  std::vector<Batch> got;
  EXPECT_EQ(read_all(s, &got), "");
  EXPECT_EQ(got.size(), 3u);

  // A skippable section is still checked.
  size_t at = s.find(std::string(100, '\x5a'));
  ASSERT_NE(at, std::string::npos);
  s[at + 50] ^= 1;
  EXPECT_TRUE(contains(read_all(s), "checksum mismatch in section 'unknown type 77' at byte ")) << read_all(s);
}

TEST(ImageBundle, UnknownRequiredSectionIsRefused) {
  std::vector<uint8_t> payload(64, 1);
  std::string s = bundle_bytes([&](BundleWriter& w) { w.write_extra_section(99, false, payload); });
  std::string msg = read_all(s);
  EXPECT_TRUE(contains(msg, "b.img needs a newer crbox: it holds a section of unknown type 99 at byte ")) << msg;
  EXPECT_TRUE(contains(msg, " that cannot be skipped.")) << msg;
}

TEST(ImageBundle, AbsurdLengthsAreCorruptionNotAllocations) {
  std::string s = bundle_bytes();
  Layout l = layout(s);
  auto set_len = [](std::string t, size_t at, uint64_t len) {
    auto* p = reinterpret_cast<uint8_t*>(t.data() + at);
    uint32_t type = format::get_u32(p), flags = format::get_u32(p + 4);
    uint64_t sum = format::get_u64(p + 16);
    format::encode_section_header(p, type, flags, len, sum);  // a consistent but absurd header
    return t;
  };
  EXPECT_EQ(read_all(set_len(s, l.model_at, 1ull << 40)),
            "b.img is corrupt: the model section at byte 4096 claims 1099511627776 bytes (the limit is 256 MiB).");
  EXPECT_TRUE(contains(read_all(set_len(s, l.pages_at[0], 3ull << 30)),
                       "b.img is corrupt: the pages section at byte " + std::to_string(l.pages_at[0]) + " claims "));
  EXPECT_TRUE(contains(read_all(set_len(s, l.end_at, 1ull << 50)), "b.img is corrupt: the end section at byte"));
}

TEST(ImageBundle, UndecodableModelIsRefused) {
  // A model section whose checksum is right but whose bytes are not a cereal model::Image.
  std::string s = bundle_bytes();
  Layout l = layout(s);
  std::string junk(8, '\x01');  // endianness byte, then a truncated string length
  std::string t = s.substr(0, l.model_at);
  uint8_t sh[format::kSectionHeaderSize];
  format::encode_section_header(sh, format::kSectionModel, 0, junk.size(), checksum(junk.data(), junk.size()));
  t.append(reinterpret_cast<char*>(sh), sizeof sh);
  t += junk;
  EXPECT_TRUE(contains(read_all(t), "b.img is corrupt: the model section at byte 4096 does not decode")) << read_all(t);
}

TEST(ImageBundle, EndCountsMustMatch) {
  // Drop the middle page batch: every section is intact, but END says three batches.
  std::string s = bundle_bytes();
  Layout l = layout(s);
  // Removing a section shifts later page data off its page boundary unless its size is a page
  // multiple; batch 1 holds a header, runs, padding and one page, so its size is not. Drop the last
  // batch instead, which only moves END.
  std::string t = s.substr(0, l.pages_at[2]) + s.substr(l.end_at);
  std::string msg = read_all(t);
  EXPECT_TRUE(contains(msg, "b.img is corrupt: the end section at byte")) << msg;
  EXPECT_TRUE(contains(msg, "counts 3 page batches")) << msg;
}

TEST(ImageBundle, ChecksumIsXxh3) {
  // Known XXH3-64 value of the empty input (seed 0), so other implementations can check theirs.
  EXPECT_EQ(checksum("", 0), 0x2D06800538D394C2ull);
}
