// A restored process with libcr loaded learns it was restarted: its callbacks wait inside
// cr_checkpoint() for the outcome (runtime/libcr/protocol.h), and the page they wait on is a memfd
// whose content came back from the bundle. Writing RESTART into that memfd before the process
// runs again makes their cr_checkpoint() return a positive value.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "checkpoint/restore/apply.h"
#include "runtime/libcr/protocol.h"
#include "util/error.h"

namespace crbox::restore {

std::vector<int> keep_libcr_pages(const model::Image& img, const std::map<uint64_t, int>& contents) {
  const std::string name = std::string("/memfd:") + CRBOX_LIBCR_MEMFD_NAME;
  std::vector<int> out;
  for (const auto& c : img.contents) {
    if (c.path != name) continue;
    auto it = contents.find(c.id);
    if (it == contents.end()) continue;
    // The memfd holds the content already (the bytes are not in the model).
    struct stat st {};
    if (fstat(it->second, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(crbox_libcr_page))) continue;
    int fd = fcntl(it->second, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw_errno("keeping the libcr page of the image");
    out.push_back(fd);
  }
  return out;
}

void mark_restarted(const std::vector<int>& pages, const std::string& source, int32_t requester) {
  for (int fd : pages) {
    crbox_libcr_page page;
    if (pread(fd, &page, sizeof page, 0) != static_cast<ssize_t>(sizeof page)) throw_errno("reading a libcr page");
    if (page.magic != CRBOX_LIBCR_MAGIC) continue;
    page.restarts++;
    page.info_requester = requester;
    std::snprintf(page.info_src, sizeof page.info_src, "%s", source.c_str());
    // The processes are not running yet: plain writes, the result last.
    if (pwrite(fd, &page.restarts, sizeof page.restarts, offsetof(crbox_libcr_page, restarts)) != sizeof page.restarts ||
        pwrite(fd, &page.info_requester, sizeof page.info_requester, offsetof(crbox_libcr_page, info_requester)) !=
            sizeof page.info_requester ||
        pwrite(fd, page.info_src, sizeof page.info_src, offsetof(crbox_libcr_page, info_src)) !=
            static_cast<ssize_t>(sizeof page.info_src))
      throw_errno("writing a libcr page");
    if (page.version >= 2) {
      // The saved page's engine mutex was held by the cr_checkpoint that took the image: free it,
      // or the next checkpoint of the restored process would find it taken (protocol.h).
      void* at = mmap(nullptr, sizeof page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (at == MAP_FAILED) throw_errno("mapping a libcr page");
      int rc = crbox_libcr_init_engine_lock(static_cast<crbox_libcr_page*>(at));
      munmap(at, sizeof page);
      if (rc != 0) throw_errno("resetting a libcr page", rc);
    }
    if (page.state == CRBOX_STATE_READY && page.result == CRBOX_RESULT_PENDING) {
      uint32_t r = CRBOX_RESULT_RESTART;
      if (pwrite(fd, &r, sizeof r, offsetof(crbox_libcr_page, result)) != sizeof r) throw_errno("writing a libcr page");
    }
  }
}

}  // namespace crbox::restore

namespace crbox::restore {

void omit_self_from_checkpoints() {
  // The same page libcr_omit.so makes (runtime/libcr/protocol.h): mapped, then the fd closed.
  int fd = memfd_create(CRBOX_LIBCR_MEMFD_NAME, MFD_CLOEXEC);
  if (fd < 0) throw_errno("memfd_create");
  if (ftruncate(fd, 4096) != 0) {
    close(fd);
    throw_errno("ftruncate");
  }
  void* at = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (at == MAP_FAILED) throw_errno("mmap");
  auto* page = static_cast<crbox_libcr_page*>(at);
  page->version = CRBOX_LIBCR_VERSION;
  page->omit = 1;
  page->magic = CRBOX_LIBCR_MAGIC;
}

}  // namespace crbox::restore
