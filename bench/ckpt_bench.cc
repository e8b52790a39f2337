// Checkpoint/restart speed (issue 4), with this machine's limits measured in the same run.
//
// For each size of touched anonymous memory (ckpt_memory) and each image directory, several
// runs of: cr_checkpoint -v --kill (wall time, GB/s, frozen time from its "frozen_ms=" line),
// then cr_restart --detach (wall time until the process runs again, GB/s), then an optional
// check, from inside the restored process, that its memory checksum is unchanged.
// The limits: writing a new file on /dev/shm (and, for reference, on the disk directory with
// fsync), filling freshly mmapped memory, memcpy between resident buffers.
// Output: one JSON object per line on stdout (kind: "limit", "checkpoint", "restart",
// "summary"); a readable table on stderr. Timing never makes it fail: the exit status is 1
// only when a tool failed or a restored process came back wrong, 2 for bad usage.
// See bench/README.md.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <tuple>
#include <string>
#include <vector>

#include "util/strings.h"

#include "bench_util.h"

namespace {

using namespace crbox::bench;

struct Options {
  std::vector<uint64_t> sizes_mib{64, 1024};
  std::vector<std::string> dirs{"/dev/shm", "/var/tmp"};
  int runs = 3;
  uint64_t limit_bytes = 1ull << 30;
  int limit_runs = 3;
  std::string launch = "direct";  // direct | cr_run | sandbox
  bool verify = true;
  bool drop_caches = false;
  std::string bin_dir = CRBOX_BIN_DIR;
  std::string programs_dir = CRBOX_PROGRAMS_DIR;
};

void usage() {
  std::fprintf(stderr,
               "usage: ckpt_bench [--sizes 64M,1G] [--with-4g] [--dirs /dev/shm,/var/tmp] [--runs N]\n"
               "                  [--limit-bytes 1G] [--limit-runs N] [--launch direct|cr_run|sandbox]\n"
               "                  [--no-verify] [--drop-caches] [--bin-dir DIR] [--programs-dir DIR]\n");
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (a == "--with-4g") {
      if (std::find(o.sizes_mib.begin(), o.sizes_mib.end(), 4096u) == o.sizes_mib.end()) o.sizes_mib.push_back(4096);
    } else if (a == "--no-verify") {
      o.verify = false;
    } else if (a == "--drop-caches") {
      o.drop_caches = true;
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      auto v = next();
      if (!v) return std::nullopt;
      if (a == "--sizes") {
        o.sizes_mib.clear();
        for (auto& s : split_list(*v)) {
          auto b = crbox::parse_size(s);
          if (!b || *b < (1u << 20)) return std::nullopt;
          o.sizes_mib.push_back(*b >> 20);
        }
      } else if (a == "--dirs") {
        o.dirs = split_list(*v);
      } else if (a == "--runs") {
        o.runs = std::max(1, std::atoi(v->c_str()));
      } else if (a == "--limit-bytes") {
        auto b = crbox::parse_size(*v);
        if (!b || *b < (1u << 20)) return std::nullopt;
        o.limit_bytes = *b;
      } else if (a == "--limit-runs") {
        o.limit_runs = std::max(1, std::atoi(v->c_str()));
      } else if (a == "--launch") {
        if (*v != "direct" && *v != "cr_run" && *v != "sandbox") return std::nullopt;
        o.launch = *v;
      } else if (a == "--bin-dir") {
        o.bin_dir = *v;
      } else if (a == "--programs-dir") {
        o.programs_dir = *v;
      } else {
        return std::nullopt;
      }
    }
  }
  return o;
}

// ---- machine limits --------------------------------------------------------------------------

constexpr size_t kChunk = 4u << 20;

// Writes `bytes` into a new file in `dir` (fsync when asked); GB/s.
std::optional<double> file_write_rate(const std::string& dir, uint64_t bytes, bool fsync_it) {
  static std::vector<char> buf;
  if (buf.empty()) {
    buf.resize(kChunk);
    for (size_t i = 0; i < buf.size(); i++) buf[i] = static_cast<char>(i * 131 + 7);
  }
  std::string path = dir + "/crbox-bench-write-" + std::to_string(getpid());
  unlink(path.c_str());
  auto t0 = Clock::now();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return std::nullopt;
  bool ok = true;
  for (uint64_t done = 0; done < bytes && ok;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - done));
    ssize_t w = write(fd, buf.data(), n);
    if (w <= 0) ok = false;
    else done += static_cast<uint64_t>(w);
  }
  if (fsync_it && fsync(fd) != 0) ok = false;
  close(fd);
  double s = seconds_since(t0);
  unlink(path.c_str());
  if (!ok) return std::nullopt;
  return bytes / s / 1e9;
}

// Maps fresh anonymous memory and fills every byte; GB/s, page faults included.
std::optional<double> fresh_fill_rate(uint64_t bytes) {
  auto t0 = Clock::now();
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return std::nullopt;
  std::memset(p, 0x5a, bytes);
  double s = seconds_since(t0);
  munmap(p, bytes);
  return bytes / s / 1e9;
}

// memcpy between two resident buffers; GB/s of bytes copied.
std::optional<double> memcpy_rate(uint64_t bytes) {
  bytes = std::min<uint64_t>(bytes, 256u << 20);
  std::vector<char> a(bytes, 1), b(bytes, 2);
  auto t0 = Clock::now();
  for (int k = 0; k < 4; k++) {
    std::memcpy(b.data(), a.data(), bytes);
    a[static_cast<size_t>(k)] = b[bytes - 1 - static_cast<size_t>(k)];
  }
  double s = seconds_since(t0);
  if (a[0] == 42) std::fprintf(stderr, " ");  // keep the copies
  return 4.0 * bytes / s / 1e9;
}

struct LimitStats {
  std::vector<double> v;
  double med() const { return median(v).value_or(0); }
};

void emit_limit(const std::string& what, const std::string& where, uint64_t bytes, int run, std::optional<double> g) {
  std::printf("{\"kind\":\"limit\",\"what\":%s,\"where\":%s,\"bytes\":%llu,\"run\":%d,\"gbps\":%s}\n",
              json_str(what).c_str(), json_str(where).c_str(), static_cast<unsigned long long>(bytes), run,
              num(g).c_str());
  std::fflush(stdout);
}

// ---- processes -------------------------------------------------------------------------------

// Proc and spawn(): bench_proc.h; waiting, finding and killing processes: bench_util.h.

// ---- one run -----------------------------------------------------------------------------------

struct RunResult {
  std::optional<double> ckpt_s, restart_s, frozen_ms;
  uint64_t image_bytes = 0;
  std::string verify = "skipped";
  std::string error;
};

RunResult one_run(const Options& o, uint64_t mib, const std::string& dir) {
  RunResult r;
  std::string prog = o.programs_dir + "/ckpt_memory";
  std::vector<std::string> argv;
  if (o.launch != "direct") {
    argv.push_back(o.bin_dir + "/cr_run");
    if (o.launch == "sandbox") argv.push_back("--sandbox");
  }
  argv.insert(argv.end(), {prog, std::to_string(mib), "11", "0"});
  Proc app = spawn(argv);
  auto pid_line = app.wait_for("pid=", 60);
  auto ready = pid_line ? app.wait_for("ready sum=", 600) : std::nullopt;
  if (!ready) {
    r.error = "ckpt_memory did not get ready: " + first_line(app.all);
    kill(-app.pid, SIGKILL);
    kill_and_reap_all();
    app.close_out();
    return r;
  }
  std::string sum = ready->substr(std::strlen("ready sum="));
  pid_t pid = o.launch == "sandbox" ? find_inner(app.pid, 2, 10) : static_cast<pid_t>(std::atol(pid_line->c_str() + 4));
  if (pid <= 0) {
    r.error = "cannot find the program's pid";
    kill_and_reap_all();
    app.close_out();
    return r;
  }

  std::string image = dir + "/crbox-bench-" + std::to_string(getpid()) + ".ctx";
  unlink(image.c_str());
  auto t0 = Clock::now();
  Proc ck = spawn({o.bin_dir + "/cr_checkpoint", "-v", "--pid", std::to_string(pid), "-f", image, "--kill"});
  while (ck.read_line(600)) {
  }
  auto ck_status = wait_child(ck.pid, 600);
  double ck_s = seconds_since(t0);
  ck.close_out();
  if (!ck_status || *ck_status != 0) kill(pid, SIGKILL);  // a failed checkpoint left it running
  wait_child(app.pid, 60);
  all_gone({pid}, 10);
  app.close_out();
  if (!ck_status || *ck_status != 0) {
    r.error = "cr_checkpoint failed: " + first_line(ck.all);
    kill_and_reap_all();
    unlink(image.c_str());
    return r;
  }
  r.ckpt_s = ck_s;
  r.frozen_ms = number_after(ck.all, "frozen_ms=");
  struct stat st;
  if (stat(image.c_str(), &st) == 0) r.image_bytes = static_cast<uint64_t>(st.st_size);

  if (o.drop_caches && dir != "/dev/shm") {
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (write(fd, "3", 1) != 1) {
      }
      close(fd);
    }
  }

  t0 = Clock::now();
  Proc rs = spawn({o.bin_dir + "/cr_restart", "--detach", image});
  auto rs_status = wait_child(rs.pid, 600);
  double rs_s = seconds_since(t0);
  if (!rs_status || *rs_status != 0) {
    rs.read_line(0.2);
    r.error = "cr_restart failed: " + first_line(rs.all + rs.buf);
    kill_and_reap_all();
    rs.close_out();
    unlink(image.c_str());
    return r;
  }
  r.restart_s = rs_s;
  pid_t rp = o.launch == "sandbox" ? find_inner(getpid(), 2, 10) : pid;
  if (o.verify) {
    if (rp > 0 && kill(rp, SIGUSR1) == 0) {
      auto line = rs.wait_for("sum=", 600);
      if (!line) r.verify = "no answer";
      else if (line->find("sum=" + sum + " ") != 0 || line->find("check=ok") == std::string::npos)
        r.verify = "bad: " + *line;
      else r.verify = "ok";
    } else {
      r.verify = "restored process not found";
    }
  }
  if (rp > 0) kill(rp, SIGKILL);
  kill_and_reap_all();
  if (rp > 0) all_gone({rp}, 10);
  rs.close_out();
  unlink(image.c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_args(argc, argv);
  if (!parsed) {
    usage();
    return 2;
  }
  const Options& o = *parsed;
  setvbuf(stdout, nullptr, _IOLBF, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);  // detached restored processes come back to us
  signal(SIGPIPE, SIG_IGN);

  std::map<std::string, LimitStats> limits;
  auto measure_limits = [&](int base) {
    for (int i = 0; i < o.limit_runs; i++) {
      int run = base + i;
      auto shm = file_write_rate("/dev/shm", o.limit_bytes, false);
      emit_limit("file_write", "/dev/shm", o.limit_bytes, run, shm);
      if (shm) limits["shm_write"].v.push_back(*shm);
      for (auto& d : o.dirs) {
        if (d == "/dev/shm") continue;
        auto w = file_write_rate(d, o.limit_bytes, true);
        emit_limit("file_write_fsync", d, o.limit_bytes, run, w);
        if (w) limits["write:" + d].v.push_back(*w);
      }
      auto fill = fresh_fill_rate(o.limit_bytes);
      emit_limit("fresh_fill", "anon", o.limit_bytes, run, fill);
      if (fill) limits["fresh_fill"].v.push_back(*fill);
      auto mc = memcpy_rate(o.limit_bytes);
      emit_limit("memcpy", "anon", std::min<uint64_t>(o.limit_bytes, 256u << 20), run, mc);
      if (mc) limits["memcpy"].v.push_back(*mc);
    }
  };
  measure_limits(0);

  struct Key {
    uint64_t mib;
    std::string dir;
    bool operator<(const Key& k) const { return std::tie(mib, dir) < std::tie(k.mib, k.dir); }
  };
  std::map<Key, std::vector<double>> ck_rates, rs_rates, frozen;
  int failures = 0;
  for (uint64_t mib : o.sizes_mib) {
    for (auto& dir : o.dirs) {
      for (int run = 0; run < o.runs; run++) {
        auto r = one_run(o, mib, dir);
        uint64_t bytes = mib << 20;
        std::optional<double> ck_g, rs_g;
        if (r.ckpt_s) ck_g = bytes / *r.ckpt_s / 1e9;
        if (r.restart_s) rs_g = bytes / *r.restart_s / 1e9;
        std::printf(
            "{\"kind\":\"checkpoint\",\"size_mib\":%llu,\"dir\":%s,\"run\":%d,\"touched_bytes\":%llu,"
            "\"image_bytes\":%llu,\"wall_s\":%s,\"gbps\":%s,\"frozen_ms\":%s,\"ok\":%s%s}\n",
            static_cast<unsigned long long>(mib), json_str(dir).c_str(), run, static_cast<unsigned long long>(bytes),
            static_cast<unsigned long long>(r.image_bytes), num(r.ckpt_s).c_str(), num(ck_g).c_str(),
            num(r.frozen_ms).c_str(), r.ckpt_s ? "true" : "false",
            (!r.ckpt_s ? ",\"error\":" + json_str(r.error) : std::string()).c_str());
        if (r.ckpt_s) {
          std::printf(
              "{\"kind\":\"restart\",\"size_mib\":%llu,\"dir\":%s,\"run\":%d,\"touched_bytes\":%llu,"
              "\"wall_s\":%s,\"gbps\":%s,\"verify\":%s,\"ok\":%s%s}\n",
              static_cast<unsigned long long>(mib), json_str(dir).c_str(), run,
              static_cast<unsigned long long>(bytes), num(r.restart_s).c_str(), num(rs_g).c_str(),
              json_str(r.verify).c_str(), r.restart_s ? "true" : "false",
              (!r.restart_s ? ",\"error\":" + json_str(r.error) : std::string()).c_str());
        }
        if (!r.error.empty() || (r.verify != "ok" && r.verify != "skipped")) failures++;
        Key k{mib, dir};
        if (ck_g) ck_rates[k].push_back(*ck_g);
        if (rs_g) rs_rates[k].push_back(*rs_g);
        if (r.frozen_ms) frozen[k].push_back(*r.frozen_ms);
        std::fflush(stdout);
      }
    }
  }
  measure_limits(o.limit_runs);  // the VM drifts: measure again and use all samples

  double shm = limits["shm_write"].med(), fill = limits["fresh_fill"].med();
  std::printf("{\"kind\":\"summary\",\"what\":\"limits\",\"shm_write_gbps\":%s,\"fresh_fill_gbps\":%s,\"memcpy_gbps\":%s",
              num(shm).c_str(), num(fill).c_str(), num(limits["memcpy"].med()).c_str());
  for (auto& d : o.dirs)
    if (d != "/dev/shm") std::printf(",%s:%s", json_str("write_fsync_gbps:" + d).c_str(), num(limits["write:" + d].med()).c_str());
  std::printf("}\n");
  std::fprintf(stderr, "\nlimits (median): /dev/shm new-file write %.2f GB/s, fresh-memory fill %.2f GB/s, memcpy %.2f GB/s\n",
               shm, fill, limits["memcpy"].med());
  std::fprintf(stderr, "%8s %-10s %11s %8s %8s %11s %8s %8s %10s\n", "size", "dir", "ckpt GB/s", "ratio", "target",
               "restart GB/s", "ratio", "target", "frozen ms");
  for (uint64_t mib : o.sizes_mib) {
    for (auto& dir : o.dirs) {
      Key k{mib, dir};
      std::optional<double> ck, rs, fz, ck_ratio, rs_ratio;
      if (!ck_rates[k].empty()) ck = median(ck_rates[k]);
      if (!rs_rates[k].empty()) rs = median(rs_rates[k]);
      if (!frozen[k].empty()) fz = median(frozen[k]);
      if (ck && shm > 0) ck_ratio = *ck / shm;
      if (rs && fill > 0) rs_ratio = *rs / fill;
      auto meets = [](std::optional<double> r) { return r ? (*r >= 0.70 ? "true" : "false") : "null"; };
      std::printf(
          "{\"kind\":\"summary\",\"size_mib\":%llu,\"dir\":%s,\"runs\":%d,\"checkpoint_gbps_median\":%s,"
          "\"checkpoint_vs_shm_write\":%s,\"checkpoint_target\":0.7,\"checkpoint_meets_target\":%s,"
          "\"restart_gbps_median\":%s,\"restart_vs_fresh_fill\":%s,\"restart_target\":0.7,"
          "\"restart_meets_target\":%s,\"frozen_ms_median\":%s}\n",
          static_cast<unsigned long long>(mib), json_str(dir).c_str(), o.runs, num(ck).c_str(),
          num(ck_ratio).c_str(), meets(ck_ratio), num(rs).c_str(), num(rs_ratio).c_str(),
          meets(rs_ratio), num(fz).c_str());
      auto f = [](std::optional<double> v) { return v ? num(*v) : std::string("n/a"); };
      std::fprintf(stderr, "%6lluMi %-10s %11s %8s %8s %11s %8s %8s %10s\n", static_cast<unsigned long long>(mib),
                   dir.c_str(), f(ck).c_str(), f(ck_ratio).c_str(), ck_ratio ? (*ck_ratio >= 0.7 ? "met" : "MISSED") : "n/a",
                   f(rs).c_str(), f(rs_ratio).c_str(), rs_ratio ? (*rs_ratio >= 0.7 ? "met" : "MISSED") : "n/a",
                   f(fz).c_str());
    }
  }
  if (failures) std::fprintf(stderr, "%d run(s) failed; see the JSON lines with \"ok\":false or a bad verify\n", failures);
  return failures ? 1 : 0;
}
