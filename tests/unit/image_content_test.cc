// Content sections: file contents travel after the model in checked chunks, and every damage to
// them — a flipped bit, a cut, a lost or repeated chunk — is one clear sentence.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/format.h"
#include "image_test_util.h"
#include "util/error.h"
#include "util/fd.h"

using namespace crbox;
using namespace crbox::image;
using namespace crbox::image::testing;

namespace {

model::Image image_with_contents() {
  model::Image img = make_image();
  auto add = [&](uint64_t id, const std::string& path, uint32_t mode, uint64_t size) {
    model::FileContent c;
    c.id = id;
    c.path = path;
    c.mode = mode;
    c.size = size;
    img.contents.push_back(c);
  };
  add(1, "/memfd:scratch", 0100600, 2500);
  add(2, "/var/tmp/gone.dat (deleted)", 0100644, 0);
  add(3, "/usr/bin/prog", 0100755, 1000);
  return img;
}

ContentBytes contents() {
  ContentBytes c;
  for (int i = 0; i < 2500; ++i) c[1].push_back(static_cast<uint8_t>(i * 13 + 1));
  c[2] = {};
  for (int i = 0; i < 1000; ++i) c[3].push_back(static_cast<uint8_t>(i ^ 0x5a));
  return c;
}

std::string bytes_of(int fd) {
  off_t size = lseek(fd, 0, SEEK_END);
  std::string s(static_cast<size_t>(size), '\0');
  EXPECT_EQ(pread(fd, s.data(), s.size(), 0), size);
  return s;
}

// A bundle: the model, the contents in chunks of 1000 bytes, then the page batches.
std::string bundle(const ContentBytes& c = contents(), const model::Image& img = image_with_contents()) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), img, make_batches(), {}, c, 1000);
  return bytes_of(fd.get());
}

UniqueFd fd_with(const std::string& bytes) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  EXPECT_EQ(write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

// Reads a whole bundle, contents first; returns the error, or "" when valid. `got` collects the
// contents as read.
std::string read_all(const std::string& bytes, ContentBytes* got = nullptr, bool read_contents = true) {
  UniqueFd fd = fd_with(bytes);
  try {
    BundleReader r(fd.get(), "b.img");
    r.read_header();
    r.read_model();
    if (read_contents)
      while (auto c = r.next_content()) {
        if (!got) continue;
        auto& v = (*got)[c->id];
        EXPECT_EQ(c->offset, v.size());
        v.insert(v.end(), c->data.begin(), c->data.end());
      }
    while (r.next_pages()) {
    }
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

struct Sect {
  size_t at;
  uint32_t type, flags;
  uint64_t len;
};
std::vector<Sect> sections(const std::string& s) {
  std::vector<Sect> out;
  for (size_t off = format::kHeaderSize; off < s.size();) {
    auto* p = reinterpret_cast<const uint8_t*>(s.data() + off);
    out.push_back({off, format::get_u32(p), format::get_u32(p + 4), format::get_u64(p + 8)});
    off += format::kSectionHeaderSize + out.back().len;
  }
  return out;
}
std::vector<Sect> content_sections(const std::string& s) {
  std::vector<Sect> out;
  for (const auto& x : sections(s))
    if (x.type == format::kSectionContent) out.push_back(x);
  return out;
}
// The bundle without the section `x`.
std::string without(const std::string& s, const Sect& x) {
  return s.substr(0, x.at) + s.substr(x.at + format::kSectionHeaderSize + x.len);
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(ImageContent, ContentsComeBackInOrderBetweenModelAndPages) {
  const std::string s = bundle();
  auto all = sections(s);
  // model, 3 + 0 + 1 content sections (the empty file has none), 3 page batches, end.
  ASSERT_EQ(all.size(), 1u + 4 + 3 + 1);
  EXPECT_EQ(all[0].type, format::kSectionModel);
  for (size_t i = 1; i <= 4; ++i) {
    EXPECT_EQ(all[i].type, format::kSectionContent);
    // Not skippable: a reader that does not know content sections refuses the bundle.
    EXPECT_EQ(all[i].flags & format::kSectionSkippable, 0u);
  }
  EXPECT_EQ(all[5].type, format::kSectionPages);

  ContentBytes got;
  ASSERT_EQ(read_all(s, &got), "");
  ContentBytes want = contents();
  want.erase(2);
  EXPECT_EQ(got, want);

  UniqueFd fd = fd_with(s);
  BundleReader r(fd.get(), "b.img");
  EXPECT_EQ(r.read_header().major, 3);
  model::Image img = r.read_model();
  ASSERT_EQ(img.contents.size(), 3u);
  EXPECT_EQ(img.contents[0].size, 2500u);
  std::vector<std::pair<uint64_t, uint64_t>> order;
  while (auto c = r.next_content()) order.push_back({c->id, c->offset});
  EXPECT_EQ(order, (std::vector<std::pair<uint64_t, uint64_t>>{{1, 0}, {1, 1000}, {1, 2000}, {3, 0}}));
  EXPECT_FALSE(r.next_content());  // stays over
  int batches = 0;
  while (r.next_pages()) ++batches;
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(r.totals().content_sections, 4u);
  EXPECT_EQ(r.totals().content_bytes, 3500u);
}

TEST(ImageContent, ContentsNotAskedForAreStillChecked) {
  const std::string s = bundle();
  EXPECT_EQ(read_all(s, nullptr, false), "");
  std::string t = s;
  auto cs = content_sections(s);
  t[cs[1].at + 32 + 40] ^= 4;
  EXPECT_EQ(read_all(t, nullptr, false),
            "b.img is corrupt: checksum mismatch in section 'content' at byte " + std::to_string(cs[1].at) + ".");
}

TEST(ImageContent, ACorruptedChunkIsNamed) {
  const std::string s = bundle();
  auto cs = content_sections(s);
  auto flipped = [&](size_t at, int bit) {
    std::string t = s;
    t[at] = static_cast<char>(t[at] ^ (1 << bit));
    return read_all(t);
  };
  const std::string second = "b.img is corrupt: checksum mismatch in section 'content' at byte " + std::to_string(cs[1].at) + ".";
  EXPECT_EQ(flipped(cs[1].at + 32 + 500, 3), second);  // a byte of content
  EXPECT_EQ(flipped(cs[1].at + 32 + 8, 0), second);    // the chunk's offset
  EXPECT_EQ(flipped(cs[1].at + 32, 1), second);        // its content id
  EXPECT_EQ(flipped(cs[1].at + 9, 2),                  // the section's length
            "b.img is corrupt: the section header at byte " + std::to_string(cs[1].at) + " is damaged.");
  // Every bit of a sample of positions in the content sections.
  for (const auto& c : cs)
    for (size_t at = c.at; at < c.at + 32 + c.len; at += 97)
      for (int bit = 0; bit < 8; ++bit) {
        std::string msg = flipped(at, bit);
        EXPECT_TRUE(contains(msg, "b.img is corrupt: ")) << "byte " << at << " bit " << bit << ": " << msg;
      }
}

TEST(ImageContent, ATruncatedChunkIsNamed) {
  const std::string s = bundle();
  auto cs = content_sections(s);
  const size_t cut = cs[0].at + 32 + 32 + 300;  // 300 bytes into the first chunk's data
  EXPECT_EQ(read_all(s.substr(0, cut)), "b.img is truncated: section 'content' ends at byte " + std::to_string(cut) +
                                            ", " + std::to_string(1000 - 300) + " bytes before its declared end.");
  EXPECT_EQ(read_all(s.substr(0, cs[2].at + 10)),
            "b.img is truncated: the section header at byte " + std::to_string(cs[2].at) + " ends at byte " +
                std::to_string(cs[2].at + 10) + ".");
  EXPECT_EQ(read_all(s.substr(0, cs[2].at)),
            "b.img is truncated: it ends at byte " + std::to_string(cs[2].at) + " without an end section.");
}

TEST(ImageContent, ALostOrRepeatedChunkIsCorruption) {
  const std::string s = bundle();
  auto cs = content_sections(s);
  // The middle chunk of content 1 is gone: the next one does not continue it.
  EXPECT_EQ(read_all(without(s, cs[1])),
            "b.img is corrupt: the content section at byte " + std::to_string(cs[1].at) +
                " holds bytes from 2000 of /memfd:scratch, whose content so far ends at 1000.");
  // Its last chunk is gone: the contents end, at the first page batch, with it unfinished.
  auto first_pages = [](const std::string& t) {
    for (const auto& x : sections(t))
      if (x.type == format::kSectionPages) return x.at;
    return size_t{0};
  };
  std::string t = without(s, cs[2]);
  EXPECT_EQ(read_all(t), "b.img is corrupt: the content of /memfd:scratch (content 1) ends after 2000 of its 2500 "
                         "bytes, at byte " + std::to_string(first_pages(t)) + ".");
  // The only chunk of the last content is gone.
  t = without(s, cs[3]);
  EXPECT_EQ(read_all(t), "b.img is corrupt: the content of /usr/bin/prog (content 3) ends after 0 of its 1000 "
                         "bytes, at byte " + std::to_string(first_pages(t)) + ".");
  // A chunk repeated after its content ended.
  std::string rep = s.substr(0, cs[3].at) + s.substr(cs[2].at, 32 + cs[2].len) + s.substr(cs[3].at);
  EXPECT_EQ(read_all(rep), "b.img is corrupt: the content section at byte " + std::to_string(cs[3].at) +
                               " holds bytes from 2000 of /memfd:scratch, whose content so far ends at 2500.");
  // A whole content repeated after the page data.
  auto all = sections(s);
  const Sect& end = all.back();
  std::string late = s.substr(0, end.at) + s.substr(cs[3].at, 32 + cs[3].len) + s.substr(end.at);
  EXPECT_EQ(read_all(late), "b.img is corrupt: a content section appears at byte " + std::to_string(end.at) +
                                ", after the page data.");
}

TEST(ImageContent, ContentTheModelDoesNotListIsCorruption) {
  ContentBytes c = contents();
  c[9] = {1, 2, 3};
  const std::string s = bundle(c);
  auto cs = content_sections(s);
  EXPECT_EQ(read_all(s), "b.img is corrupt: the content section at byte " + std::to_string(cs.back().at) +
                             " belongs to content 9, which the model does not list.");
}

TEST(ImageContent, EndCountsContents) {
  std::string s = bundle();
  auto all = sections(s);
  auto* e = reinterpret_cast<uint8_t*>(s.data() + all.back().at);
  uint8_t* p = e + format::kSectionHeaderSize;
  format::put_u64(p + 32, format::get_u64(p + 32) + 1);  // one byte more than there is
  format::encode_section_header(e, format::kSectionEnd, 0, all.back().len, checksum(p, all.back().len));
  EXPECT_EQ(read_all(s), "b.img is corrupt: the end section at byte " + std::to_string(all.back().at) +
                             " counts 4 content sections of 3501 bytes but the bundle holds 4 of 3500.");
}

TEST(ImageContent, AbsurdLengthIsCorruptionNotAnAllocation) {
  std::string s = bundle();
  auto cs = content_sections(s);
  auto* p = reinterpret_cast<uint8_t*>(s.data() + cs[0].at);
  format::encode_section_header(p, format::kSectionContent, 0, 1ull << 40, format::get_u64(p + 16));
  EXPECT_EQ(read_all(s), "b.img is corrupt: the content section at byte " + std::to_string(cs[0].at) +
                             " claims 1099511627776 bytes (a content section holds at most 64 MiB).");
}

// A chunk longer than what is left of its content's size.
TEST(ImageContent, AChunkPastTheSizeIsCorruption) {
  model::Image img = image_with_contents();
  img.contents[2].size = 999;
  ContentBytes c = contents();
  const std::string s = bundle(c, img);
  auto cs = content_sections(s);
  EXPECT_EQ(read_all(s), "b.img is corrupt: the content section at byte " + std::to_string(cs[3].at) +
                             " runs past the end of /usr/bin/prog (999 bytes).");
}

TEST(ImageContent, WriterKeepsTheOrderAndTheBound) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  BundleWriter w(fd.get(), "x");
  w.write_header(Header{});
  std::vector<uint8_t> one(1, 0);
  EXPECT_THROW(w.write_content(1, 0, one), Error);  // the model first
  w.write_model(image_with_contents());
  // More than 64 MiB in one section: refused before a byte is read (PROT_NONE would fault).
  void* big = mmap(nullptr, kMaxContentChunk + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(big, MAP_FAILED);
  EXPECT_THROW(w.write_content(1, 0, std::span<const uint8_t>(static_cast<uint8_t*>(big), kMaxContentChunk + 1)),
               Error);
  EXPECT_THROW(w.write_content(1, 0, {}), Error);  // an empty chunk says nothing
  munmap(big, kMaxContentChunk + 4096);
  EXPECT_THROW(w.write_extra_section(format::kSectionContent, false, {}), Error);  // reserved type
  auto b = make_batches();
  w.write_pages(b[0].pid, b[0].runs, b[0].data.data(), b[0].data.size());
  EXPECT_THROW(w.write_content(1, 0, one), Error);  // not after the page data
}
