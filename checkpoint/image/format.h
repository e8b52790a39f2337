// Private to checkpoint/image: the byte layout of a bundle (docs/image-format.md) and the helpers
// that encode and decode it. Every multi-byte integer of the header and of section framing is
// little-endian and read/written byte by byte, so the layout does not depend on the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace crbox::image::format {

// The fixed header: one 4096-byte block at offset 0.
inline constexpr size_t kHeaderSize = 4096;
inline constexpr size_t kOffMagic = 0;            // char[8] "CRBOXIMG"
inline constexpr size_t kOffMajor = 8;            // u16
inline constexpr size_t kOffMinor = 10;           // u16
inline constexpr size_t kOffHeaderSize = 12;      // u32, 4096
inline constexpr size_t kOffPageSize = 16;        // u32
inline constexpr size_t kOffReserved = 20;        // u32, 0
inline constexpr size_t kOffFlags = 24;           // u64
inline constexpr size_t kOffArch = 32;            // char[16], NUL-padded
inline constexpr size_t kArchLen = 16;
inline constexpr size_t kOffKernel = 48;          // char[128], NUL-padded
inline constexpr size_t kKernelLen = 128;
inline constexpr size_t kOffHeaderChecksum = kHeaderSize - 8;  // u64 xxh3-64 of bytes [0, 4088)

// Every section starts with this 32-byte header.
inline constexpr size_t kSectionHeaderSize = 32;
// u32 type @0, u32 flags @4, u64 payload length @8, u64 payload checksum @16,
// u64 checksum of bytes [0, 24) of this section header @24.

enum SectionType : uint32_t {
  kSectionModel = 1,
  kSectionPages = 2,
  kSectionEnd = 3,
  kSectionContent = 4,  // from 3.0
};
inline constexpr uint32_t kSectionSkippable = 1u << 0;

// A pages payload: i32 pid, u32 nruns, nruns x {u64 vaddr, u64 npages}, zero padding up to the next
// page boundary of the stream, then the page data.
inline constexpr size_t kBatchHeaderSize = 8;
inline constexpr size_t kRunSize = 16;
// A content payload: u64 content id, u64 offset, u64 length, u32 flags (0), u32 reserved (0), then
// `length` bytes of the file's content from `offset`.
inline constexpr size_t kContentHeaderSize = 32;
// The END payload: u64 batches, u64 pages, u64 offset of the END section's header, u64 content
// sections, u64 content bytes.
inline constexpr size_t kEndPayloadSize = 40;
inline constexpr size_t kMaxEndPayload = 4096;

// Bounds above which a length is corruption, not something to allocate.
inline constexpr uint64_t kMaxModelBytes = 256ull << 20;
inline constexpr uint64_t kMaxBatchData = 1ull << 30;
inline constexpr uint64_t kMaxContentData = 64ull << 20;  // per content section
inline constexpr uint64_t kMaxPageSize = 1ull << 21;  // 2 MiB; the largest base page of any arch we would support

inline void put_u16(uint8_t* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Zero bytes needed after stream offset `off` to reach a multiple of `align` (a power of two).
inline uint64_t padding(uint64_t off, uint64_t align) { return (align - (off & (align - 1))) & (align - 1); }

// The name of a section type in messages: "model", "pages", "end", "content", or "unknown type N".
std::string section_name(uint32_t type);

// Streaming XXH3-64 (seed 0): identical to checksum() over the concatenated bytes.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* p, size_t n);
  uint64_t digest() const;

 private:
  void* state_;
};

// The 32-byte section header for a payload.
void encode_section_header(uint8_t out[kSectionHeaderSize], uint32_t type, uint32_t flags, uint64_t length,
                           uint64_t payload_checksum);

}  // namespace crbox::image::format
