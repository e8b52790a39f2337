// Checkpoint/restart of a process holding many descriptors (issue 6): N regular files at their
// offsets, every 4th dup'ed (a shared open file description), N/4 unix socketpairs with data
// queued both ways and N/4 eventfds (tests/programs/fd_many.c), several runs per N.
//
// One run: start `fd_many N DIR`, which reports how long making its descriptors took (the
// machine's own cost of creating them, the reference the restart is compared with); then
// `cr_checkpoint -v --pid PID -f IMAGE --kill` (wall time, and the frozen_ms it prints);
// `cr_restart --detach IMAGE` (wall time until the process runs again); then SIGUSR1 makes the
// restored program check every descriptor from inside ("fds ok COUNT").
// Output: one JSON object per line on stdout, a table on stderr. Timing never makes it fail: exit 1
// only when a tool failed or the restored program answered wrong, 2 for bad usage.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using namespace crbox::bench;

struct Options {
  int runs = 3;
  std::vector<int> counts{250, 1000};
  std::string dir = "/dev/shm";
  std::string bin_dir = CRBOX_BIN_DIR;
  std::string programs_dir = CRBOX_PROGRAMS_DIR;
};

int usage() {
  std::fprintf(stderr, "usage: fd_bench [--runs N] [--counts 250,1000] [--dir DIR] [--bin-dir DIR] [--programs-dir DIR]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") return usage(), 0;
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--runs") o.runs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--dir") o.dir = v;
    else if (a == "--bin-dir") o.bin_dir = v;
    else if (a == "--programs-dir") o.programs_dir = v;
    else if (a == "--counts") {
      o.counts.clear();
      for (auto& c : split_list(v)) o.counts.push_back(std::max(4, std::atoi(c.c_str())));
    } else return usage();
  }
  char tmpl[] = "/var/tmp/crbox-fd-bench.XXXXXX";  // the files the program opens
  if (!mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  std::string files_dir = tmpl;
  int failures = 0;
  std::fprintf(stderr, "%8s %6s %12s %14s %12s %12s\n", "N", "fds", "setup_ms", "checkpoint_ms", "frozen_ms", "restart_ms");
  for (int n : o.counts) {
    std::vector<double> setups, ckpts, frozens, restarts;
    int fds = 0;
    for (int r = 0; r < o.runs; r++) {
      std::string image = o.dir + "/crbox-fd-bench-" + std::to_string(getpid()) + ".ctx";
      Proc prog = spawn({o.programs_dir + "/fd_many", std::to_string(n), files_dir});
      auto ready = prog.wait_for("ready", 60);
      if (!ready) {
        std::fprintf(stderr, "fd_many did not start: %s\n", prog.all.c_str());
        return 1;
      }
      fds = static_cast<int>(number_after(*ready, "fds=").value_or(0));
      double setup_ms = number_after(*ready, "setup_us=").value_or(0) / 1000.0;

      auto t0 = Clock::now();
      Proc ck = spawn({o.bin_dir + "/cr_checkpoint", "-v", "--pid", std::to_string(prog.pid), "-f", image, "--kill"});
      std::string ck_out;
      while (auto l = ck.read_line(120)) ck_out += *l + "\n";
      int ck_status = wait_child(ck.pid, 600).value_or(-1);
      double ckpt_ms = seconds_since(t0) * 1000;
      wait_child(prog.pid, 60);
      prog.close_out();
      if (ck_status != 0) {
        std::fprintf(stderr, "cr_checkpoint failed: %s\n", ck_out.c_str());
        failures++;
        continue;
      }
      double frozen = number_after(ck_out, "frozen_ms=").value_or(0);

      t0 = Clock::now();
      Proc rs = spawn({o.bin_dir + "/cr_restart", "--detach", image});
      // --detach returns once the process runs; its background copy keeps our pipe for output.
      int rs_status = wait_child(rs.pid, 600).value_or(-1);
      double restart_ms = seconds_since(t0) * 1000;
      bool ok = false;
      if (rs_status == 0) {
        kill(prog.pid, SIGUSR1);  // the restored process has the original's pid
        auto answer = rs.wait_for("fds ", 30);
        ok = answer && answer->rfind("fds ok", 0) == 0;
        if (!ok) std::fprintf(stderr, "restored program: %s\n", answer ? answer->c_str() : rs.all.c_str());
      } else {
        std::fprintf(stderr, "cr_restart failed: %s\n", rs.all.c_str());
      }
      kill(prog.pid, SIGKILL);
      rs.close_out();
      unlink(image.c_str());
      if (!ok) {
        failures++;
        continue;
      }
      setups.push_back(setup_ms);
      ckpts.push_back(ckpt_ms);
      frozens.push_back(frozen);
      restarts.push_back(restart_ms);
      std::printf(
          "{\"kind\":\"run\",\"n\":%d,\"fds\":%d,\"setup_ms\":%.3f,\"checkpoint_ms\":%.3f,\"frozen_ms\":%.3f,\"restart_ms\":%.3f}\n",
          n, fds, setup_ms, ckpt_ms, frozen, restart_ms);
      std::fflush(stdout);
    }
    if (ckpts.empty()) continue;
    double s = *median(setups), c = *median(ckpts), f = *median(frozens), rt = *median(restarts);
    std::printf(
        "{\"kind\":\"summary\",\"n\":%d,\"fds\":%d,\"runs\":%zu,\"setup_ms\":%.3f,\"checkpoint_ms\":%.3f,\"frozen_ms\":%.3f,"
        "\"restart_ms\":%.3f,\"checkpoint_us_per_fd\":%.2f,\"restart_us_per_fd\":%.2f}\n",
        n, fds, ckpts.size(), s, c, f, rt, c * 1000 / fds, rt * 1000 / fds);
    std::fprintf(stderr, "%8d %6d %12.2f %14.2f %12.1f %12.2f\n", n, fds, s, c, f, rt);
  }
  std::string rm = "rm -rf '" + files_dir + "'";
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", files_dir.c_str());
  return failures ? 1 : 0;
}
