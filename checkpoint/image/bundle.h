// The bundle file: a fixed header, then sections, each with its own length and checksum
// (docs/image-format.md). Written and read strictly sequentially, so a bundle can go through a pipe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/model/process.h"

namespace crbox::image {

namespace format {
class Hasher;
}

inline constexpr char kMagic[8] = {'C', 'R', 'B', 'O', 'X', 'I', 'M', 'G'};
inline constexpr uint16_t kFormatMajor = 3;  // readers refuse any other major
inline constexpr uint16_t kFormatMinor = 0;  // a newer minor only adds skippable sections
// The most file content one content section may carry (a reader's bound; BundleWriter refuses more).
inline constexpr size_t kMaxContentChunk = 64u << 20;

struct Header {
  uint16_t major = kFormatMajor;
  uint16_t minor = kFormatMinor;
  std::string arch;            // "x86_64"
  uint32_t page_size = 0;
  std::string kernel_release;  // uname -r of the checkpointing machine
  uint64_t flags = 0;
};

// A run of consecutive pages at `vaddr` in the process `pid` (innermost-namespace pid).
struct PageRun {
  uint64_t vaddr = 0;
  uint64_t npages = 0;
};

// One batch of page data: the runs, then their bytes back to back (sum of npages * page_size).
struct PageBatch {
  int32_t pid = 0;
  std::vector<PageRun> runs;
  std::span<const uint8_t> data;  // owned by the reader; valid until the second call after this one
  uint64_t data_offset = 0;       // offset of data[0] from the start of the bundle (a page multiple)
};

// One piece of a file's content (model::FileContent, by id): `data` holds its bytes from `offset`.
// A content's pieces come in order, back to back, up to its size.
struct ContentChunk {
  uint64_t id = 0;
  uint64_t offset = 0;
  std::span<const uint8_t> data;  // owned by the reader; valid until its next call
  uint64_t section_start = 0;     // offset of the section's header in the bundle
};

struct Totals {
  uint64_t batches = 0;
  uint64_t pages = 0;
  uint64_t content_sections = 0;
  uint64_t content_bytes = 0;
  uint64_t bytes = 0;  // bytes of the whole bundle
};

// A header describing this machine: arch (uname machine), page size, kernel release, flags 0.
Header host_header();

class BundleWriter {
 public:
  // `fd` may be a pipe or a regular file; `name` is used in error messages.
  BundleWriter(int fd, std::string name);
  // Writes the header; must come first. Empty arch/kernel_release and a zero page_size are filled
  // in from this machine (host_header()).
  void write_header(const Header& h);
  // The model section. File contents go in content sections (write_content), not in the model.
  void write_model(const model::Image& img);
  // One content section: `data` (1 to kMaxContentChunk bytes) of the file content `id`
  // (model::FileContent::id) from byte `offset`. After the model and before any page batch; each
  // content's chunks in order, covering exactly its `size` bytes (none for an empty one).
  void write_content(uint64_t id, uint64_t offset, std::span<const uint8_t> data);
  // A page batch. `data` holds sum(runs.npages) pages (len must be exactly that many bytes, at most
  // 1 GiB). Data starts on a page boundary of the file. An empty `runs` writes nothing.
  // The data is written with writev straight from `data`, never copied.
  void write_pages(int32_t pid, std::span<const PageRun> runs, const void* data, size_t len);
  // The same in two steps, so they can run on different threads: prepare_pages() builds the
  // section's headers and checksums the data (the costly part); write_prepared() only writes.
  // Batches must be written in the order they were prepared, each before the next non-page
  // section; `data` must stay untouched until its write returns.
  struct PreparedPages {
    std::vector<uint8_t> head;  // section header, batch header, runs, padding
    const void* data = nullptr;
    size_t len = 0;
  };
  PreparedPages prepare_pages(int32_t pid, std::span<const PageRun> runs, const void* data, size_t len);
  void write_prepared(const PreparedPages& b);
  // A section of a type this version does not define (for newer minors and for tests), after the
  // model and before finish(). Readers that do not know `type` skip it when `skippable`, and refuse
  // the bundle otherwise. `type` must not be one of the defined types (1-4).
  void write_extra_section(uint32_t type, bool skippable, std::span<const uint8_t> payload);
  // The END section; after this the bundle is complete.
  void finish();
  const Totals& totals() const { return totals_; }
  const std::string& name() const { return name_; }

 private:
  enum class Stage { start, header, model, done };
  void put(const void* p, size_t n);
  void putv(struct iovec* iov, int n);  // writev until everything is out
  void expect(Stage s, const char* what) const;
  int fd_;
  std::string name_;
  uint32_t page_size_ = 4096;
  uint64_t offset_ = 0;   // bytes written so far
  uint64_t planned_ = 0;  // where the next prepared section starts (offset_ plus prepared, unwritten bytes)
  Stage stage_ = Stage::start;
  bool pages_started_ = false;  // no content section may follow a page batch
  std::vector<uint8_t> scratch_;  // section header + batch header + runs + padding
  Totals totals_;
};

class BundleReader {
 public:
  // `fd` may be a pipe or a regular file; `name` is used in error messages.
  BundleReader(int fd, std::string name);
  // Reads and checks the header: magic, major version, arch, page size. Throws crbox::Error.
  const Header& read_header();
  // Reads the model section and checks its checksum.
  model::Image read_model();
  // After the model: the next content section (checksum and order verified), or nullopt once the
  // contents are over, having checked that every content of the model came whole. Its data stays
  // valid until the next call.
  std::optional<ContentChunk> next_content();
  // The next page batch (checksum verified), or nullopt once the END section was read and checked.
  // Content sections not read with next_content() are read, checked and dropped first.
  // Its data stays valid until the second call after this one (two buffers are used in turn).
  std::optional<PageBatch> next_pages();
  const std::string& name() const { return name_; }
  const Totals& totals() const { return totals_; }

 private:
  enum class Stage { start, header, model, done };
  struct Section {
    uint32_t type = 0, flags = 0;
    uint64_t length = 0, checksum = 0;
    uint64_t start = 0;  // stream offset of the section header
  };
  size_t get_upto(void* p, size_t n);  // reads until n bytes or EOF; returns the count
  void get(const Section& s, void* p, size_t n);  // exactly n bytes of s's payload, or "truncated"
  Section next_section();  // the next known section; skippable unknown ones are checked and skipped
  Section take_section();  // the section next_content() looked at and left, else next_section()
  void end_contents(uint64_t at);  // every expected content is complete, or "corrupt"
  void drain(const Section& s, uint64_t n, format::Hasher& h);  // reads and hashes n more payload bytes
  void check_checksum(const Section& s, uint64_t got) const;
  void expect(Stage s, const char* what) const;
  [[noreturn]] void corrupt(const std::string& what) const;
  int fd_;
  std::string name_;
  Header header_;
  uint64_t offset_ = 0;  // bytes read so far
  Stage stage_ = Stage::start;
  std::vector<uint8_t> buf_;    // the model payload; only ever grows
  std::vector<uint8_t> page_bufs_[2];  // page data, used in turn; each only ever grows
  int flip_ = 0;
  std::vector<uint8_t> small_;  // batch header, runs, padding
  std::vector<uint8_t> content_buf_;  // one content section's payload; only ever grows
  // The model's contents, which the content sections must bring whole: id -> how far they are.
  struct Expected {
    std::string path;
    uint64_t size = 0;
    uint64_t received = 0;
  };
  std::map<uint64_t, Expected> expected_;
  std::optional<Section> pending_;  // read by next_content() but not a content section
  bool contents_done_ = false;
  Totals totals_;
  bool done_ = false;
};

// Checksum used for every section (XXH3 64-bit).
uint64_t checksum(const void* p, size_t n);

}  // namespace crbox::image
