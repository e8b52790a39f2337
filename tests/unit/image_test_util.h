// Test helpers shared by the image_* unit tests: a model with two processes and page batches.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "checkpoint/image/bundle.h"

namespace crbox::image::testing {


inline const uint64_t kPs = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

inline model::Process make_process(int32_t pid, int32_t ppid) {
  model::Process p;
  p.pid = pid;
  p.ppid = ppid;
  p.pgid = ppid ? ppid : pid;
  p.sid = 1;
  p.host_pid = 4000 + pid;
  p.comm = "a) b (c";
  p.creds.uids = {1000, 1000, 1000, 1000};
  p.creds.groups = {4, 27};
  p.creds.cap_bnd = 0x1ffffffffffull;
  p.umask = 027;
  p.cwd = "/home/u/dir with space";
  p.root = "/";
  p.rlimits = {{7, 1024, 4096}, {3, 8 << 20, UINT64_MAX}};
  p.sigactions.resize(64);
  p.sigactions[1].handler = 0x401234;  // SIGINT
  p.sigactions[1].flags = 0x04000000;
  p.itimers = {{0, 1000, 500}};
  p.mm.start_code = 0x400000;
  p.mm.brk = 0x1234000;
  p.mm.auxv = {6, 4096, 0, 0};
  p.mm.exe = "/usr/bin/prog";
  model::Vma v;
  v.start = 0x7f0000000000;
  v.end = v.start + 16 * kPs;
  v.prot = 3;
  v.flags = 2;
  v.name = "[heap]";
  p.vmas.push_back(v);
  v.start = 0x400000;
  v.end = 0x401000;
  v.kind = model::VmaKind::file_private;
  v.name = "/usr/bin/prog (deleted)";
  v.file = {2049, 77, 8192, 123456789};
  p.vmas.push_back(v);
  model::Fd f0;
  f0.fd = 0;
  f0.kind = model::FdKind::stdio;
  f0.path = "/dev/pts/0";
  f0.flags = 2;
  f0.mode = 020620;
  p.fds.push_back(f0);
  model::Fd f3;
  f3.fd = 3;
  f3.path = "/tmp/\"quoted\"\n";
  f3.cloexec = true;
  f3.pos = 77;
  f3.mode = 0100644;
  f3.file = {1, 2, 3, 4};
  f3.locks.push_back({model::LockKind::flock, true, 0, 0});
  p.fds.push_back(f3);
  model::Thread t;
  t.tid = pid;
  t.regs.gp.assign(216, 0xab);
  t.regs.xstate.assign(2696, 0xcd);
  t.sigmask = 0x10000;
  t.pending.push_back({std::vector<uint8_t>(128, 1)});
  t.rseq_addr = 0x7fff0000;
  t.rseq_len = 32;
  t.rseq_sig = 0x53053053;
  p.threads.push_back(t);
  t.tid = pid + 1;
  p.threads.push_back(t);
  return p;
}

inline model::Image make_image() {
  model::Image img;
  img.hostname = "host-1";
  img.created_unix_ns = 1700000000123456789;
  img.root_pid = 2;
  model::Sandbox sb;
  sb.id = "sb-42";
  sb.spec.argv = {"/bin/counter", "--every", "1"};
  sb.spec.hostname = "inside";
  sb.spec.uid = 1000;
  sb.time.monotonic_ns = 555;
  img.sandbox = sb;
  img.processes.push_back(make_process(2, 1));
  img.processes.push_back(make_process(3, 2));
  return img;
}

inline std::string serialize(const model::Image& img) {
  std::ostringstream os;
  {
    cereal::PortableBinaryOutputArchive ar(os);
    ar(img);
  }
  return os.str();
}

struct Batch {
  int32_t pid;
  std::vector<PageRun> runs;
  std::vector<uint8_t> data;
};

inline std::vector<Batch> make_batches() {
  std::vector<Batch> out;
  auto fill = [](Batch& b, uint8_t seed) {
    uint64_t n = 0;
    for (auto& r : b.runs) n += r.npages;
    b.data.resize(n * kPs);
    for (size_t i = 0; i < b.data.size(); ++i) b.data[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 12));
  };
  Batch a{2, {{0x7f0000000000, 3}, {0x7f0000000000 + 5 * kPs, 2}}, {}};
  fill(a, 1);
  Batch b{2, {{0x400000, 1}}, {}};
  fill(b, 2);
  Batch c{3, {{0x7f0000000000, 17}, {0x7f0000100000, 1}, {0x7f0000200000, 4}}, {}};
  fill(c, 3);
  out.push_back(std::move(a));
  out.push_back(std::move(b));
  out.push_back(std::move(c));
  return out;
}

// File contents for content sections, by content id (the model lists them without their bytes).
using ContentBytes = std::map<uint64_t, std::vector<uint8_t>>;

// Each content in chunks of at most `chunk` bytes (an empty one has none).
inline void write_contents(BundleWriter& w, const ContentBytes& contents, size_t chunk) {
  for (const auto& [id, bytes] : contents)
    for (size_t off = 0; off < bytes.size(); off += chunk)
      w.write_content(id, off, std::span<const uint8_t>(bytes.data() + off, std::min(chunk, bytes.size() - off)));
}

// Writes a complete bundle to fd.
inline Totals write_bundle(int fd, const model::Image& img, const std::vector<Batch>& batches,
                           const std::function<void(BundleWriter&)>& before_end = {},
                           const ContentBytes& contents = {}, size_t chunk = 1000) {
  BundleWriter w(fd, "test.img");
  w.write_header(host_header());
  w.write_model(img);
  write_contents(w, contents, chunk);
  for (auto& b : batches) w.write_pages(b.pid, b.runs, b.data.data(), b.data.size());
  if (before_end) before_end(w);
  w.finish();
  return w.totals();
}

}  // namespace crbox::image::testing
