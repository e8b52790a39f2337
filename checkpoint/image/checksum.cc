// XXH3-64 checksums (https://github.com/Cyan4973/xxHash, seed 0) for the header and every section.
#include <xxh_x86dispatch.h>
#include <xxhash.h>

#include <cstdlib>
#include <new>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/format.h"

namespace crbox::image {

// The *_dispatch entry points pick the widest vector unit the CPU has at run time (AVX2 or
// AVX-512 here, against SSE2 for the plain ones): the same hash, computed two to three times faster.
uint64_t checksum(const void* p, size_t n) { return XXH3_64bits_dispatch(p, n); }

namespace format {

std::string section_name(uint32_t type) {
  switch (type) {
    case kSectionModel: return "model";
    case kSectionPages: return "pages";
    case kSectionEnd: return "end";
    case kSectionContent: return "content";
    default: return "unknown type " + std::to_string(type);
  }
}

Hasher::Hasher() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}

Hasher::~Hasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Hasher::update(const void* p, size_t n) {
  XXH3_64bits_update_dispatch(static_cast<XXH3_state_t*>(state_), p, n);
}

uint64_t Hasher::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

void encode_section_header(uint8_t out[kSectionHeaderSize], uint32_t type, uint32_t flags, uint64_t length,
                           uint64_t payload_checksum) {
  put_u32(out + 0, type);
  put_u32(out + 4, flags);
  put_u64(out + 8, length);
  put_u64(out + 16, payload_checksum);
  put_u64(out + 24, checksum(out, 24));
}

}  // namespace format
}  // namespace crbox::image
