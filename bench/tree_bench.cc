// Checkpoint/restart of many tasks (issue 5): a process with 100 threads (mt_threads 100) and a
// sandbox of 200 small processes (cr_run --sandbox tree_fanout 200), several runs each.
//
// One run: start the program and wait until every thread/child runs; `cr_checkpoint -v PID -f
// IMAGE --kill` (wall time, and the frozen_ms/total_ms it prints with -v); wait until every
// task is gone; `cr_restart --detach IMAGE` (wall time until it returns, i.e. until the tasks
// run again); then, from inside, SIGUSR1 makes the restored program check every thread's tid
// ("threads ok N") or every child's pid and parent ("tree ok N ..."). Everything is killed and
// the image removed.
// Output: one JSON object per line on stdout (kind "checkpoint", "restart", "summary"), a table
// on stderr. Timing never makes it fail: exit 1 only when a tool failed or a restored program
// answered wrong, 2 for bad usage. See bench/README.md.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"

namespace {

using namespace crbox::bench;

struct Options {
  int runs = 3;
  int threads = 100;
  int procs = 200;
  std::string dir = "/dev/shm";
  std::vector<std::string> cases{"threads", "sandbox_tree"};
  std::string bin_dir = CRBOX_BIN_DIR;
  std::string programs_dir = CRBOX_PROGRAMS_DIR;
};

void usage() {
  std::fprintf(stderr,
               "usage: tree_bench [--runs N] [--threads N] [--procs N] [--dir DIR] [--cases threads,sandbox_tree]\n"
               "                  [--bin-dir DIR] [--programs-dir DIR]\n");
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    }
    if (i + 1 >= argc) return std::nullopt;
    std::string v = argv[++i];
    if (a == "--runs") o.runs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--threads") o.threads = std::atoi(v.c_str());
    else if (a == "--procs") o.procs = std::atoi(v.c_str());
    else if (a == "--dir") o.dir = v;
    else if (a == "--bin-dir") o.bin_dir = v;
    else if (a == "--programs-dir") o.programs_dir = v;
    else if (a == "--cases") {
      o.cases = split_list(v);
      for (auto& c : o.cases)
        if (c != "threads" && c != "sandbox_tree") return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  if (o.threads < 1 || o.threads > 256 || o.procs < 1 || o.procs > 4096) return std::nullopt;
  return o;
}

// ---- one run -----------------------------------------------------------------------------------

struct RunResult {
  int tasks = 0;  // threads or processes checkpointed
  std::optional<double> ckpt_s, frozen_ms, total_ms, restart_s;
  unsigned long long image_bytes = 0;
  std::string verify = "skipped";
  std::string error;
};

RunResult one_run(const Options& o, const std::string& which) {
  RunResult r;
  bool sandbox = which == "sandbox_tree";
  int n = sandbox ? o.procs : o.threads;
  r.tasks = n + 1;  // children + parent, or threads + main thread
  std::vector<std::string> argv;
  if (sandbox) argv = {o.bin_dir + "/cr_run", "--sandbox", o.programs_dir + "/tree_fanout", std::to_string(n), "200"};
  else argv = {o.programs_dir + "/mt_threads", std::to_string(n), "200"};
  std::string ready = "started " + std::to_string(n);
  std::string answer = sandbox ? "tree ok " + std::to_string(n) + " " : "threads ok " + std::to_string(n);
  std::string answer_prefix = sandbox ? "tree " : "threads ";

  Proc app = spawn(argv);
  if (!app.wait_for(ready, 120)) {
    r.error = which + " did not start: " + first_line(app.all);
    kill_and_reap_all();
    app.close_out();
    return r;
  }
  pid_t pid = sandbox ? find_inner(app.pid, 2, 10) : app.pid;
  std::vector<pid_t> tasks{pid};
  for (pid_t d : descendants(pid)) tasks.push_back(d);
  if (pid <= 0) {
    r.error = "cannot find the program's pid";
    kill_and_reap_all();
    app.close_out();
    return r;
  }

  std::string image = o.dir + "/crbox-tree-bench-" + std::to_string(getpid()) + ".ctx";
  unlink(image.c_str());
  auto t0 = Clock::now();
  Proc ck = spawn({o.bin_dir + "/cr_checkpoint", "-v", std::to_string(pid), "-f", image, "--kill"});
  while (ck.read_line(600)) {
  }
  auto ck_status = wait_child(ck.pid, 600);
  double ck_s = seconds_since(t0);
  ck.close_out();
  if (!ck_status || *ck_status != 0) {
    r.error = "cr_checkpoint failed: " + first_line(ck.all);
    kill_and_reap_all();
    app.close_out();
    unlink(image.c_str());
    return r;
  }
  r.ckpt_s = ck_s;
  r.frozen_ms = number_after(ck.all, "frozen_ms=");
  r.total_ms = number_after(ck.all, "total_ms=");
  struct stat st;
  if (stat(image.c_str(), &st) == 0) r.image_bytes = static_cast<unsigned long long>(st.st_size);
  if (sandbox) wait_child(app.pid, 60);
  if (!all_gone(tasks, 30)) {
    r.error = "--kill left processes behind";
    kill_and_reap_all();
    app.close_out();
    unlink(image.c_str());
    return r;
  }
  app.close_out();

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
  pid_t rp = sandbox ? find_inner(getpid(), 2, 10) : pid;  // detached: reparented to us (subreaper)
  if (rp > 0 && kill(rp, SIGUSR1) == 0) {
    auto line = rs.wait_for(answer_prefix, 60);
    if (!line) r.verify = "no answer";
    else if (line->rfind(answer, 0) != 0) r.verify = "bad: " + *line;
    else r.verify = "ok";
  } else {
    r.verify = "restored process not found";
  }
  kill_and_reap_all();
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
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);

  int failures = 0;
  struct Summary {
    std::string which;
    int tasks = 0;
    std::vector<double> ck, frozen, total, rs;
  };
  std::vector<Summary> sums;
  for (auto& which : o.cases) {
    Summary s;
    s.which = which;
    for (int run = 0; run < o.runs; run++) {
      auto r = one_run(o, which);
      s.tasks = r.tasks;
      std::printf(
          "{\"kind\":\"checkpoint\",\"case\":%s,\"tasks\":%d,\"run\":%d,\"wall_s\":%s,\"frozen_ms\":%s,"
          "\"total_ms\":%s,\"image_bytes\":%llu,\"ok\":%s%s}\n",
          json_str(which).c_str(), r.tasks, run, num(r.ckpt_s).c_str(), num(r.frozen_ms).c_str(),
          num(r.total_ms).c_str(), r.image_bytes, r.ckpt_s ? "true" : "false",
          !r.ckpt_s ? (",\"error\":" + json_str(r.error)).c_str() : "");
      if (r.ckpt_s)
        std::printf("{\"kind\":\"restart\",\"case\":%s,\"tasks\":%d,\"run\":%d,\"wall_s\":%s,\"verify\":%s,\"ok\":%s%s}\n",
                    json_str(which).c_str(), r.tasks, run, num(r.restart_s).c_str(), json_str(r.verify).c_str(),
                    r.restart_s ? "true" : "false",
                    !r.restart_s ? (",\"error\":" + json_str(r.error)).c_str() : "");
      if (!r.error.empty() || (r.verify != "ok" && r.verify != "skipped")) {
        failures++;
        std::fprintf(stderr, "%s run %d: %s\n", which.c_str(), run, !r.error.empty() ? r.error.c_str() : r.verify.c_str());
      }
      if (r.ckpt_s) s.ck.push_back(*r.ckpt_s * 1000);
      if (r.frozen_ms) s.frozen.push_back(*r.frozen_ms);
      if (r.total_ms) s.total.push_back(*r.total_ms);
      if (r.restart_s) s.rs.push_back(*r.restart_s * 1000);
    }
    std::printf(
        "{\"kind\":\"summary\",\"case\":%s,\"tasks\":%d,\"runs\":%d,\"checkpoint_wall_ms_median\":%s,"
        "\"frozen_ms_median\":%s,\"checkpoint_total_ms_median\":%s,\"restart_wall_ms_median\":%s}\n",
        json_str(which).c_str(), s.tasks, o.runs, num(median(s.ck)).c_str(), num(median(s.frozen)).c_str(),
        num(median(s.total)).c_str(), num(median(s.rs)).c_str());
    sums.push_back(s);
  }
  std::fprintf(stderr, "\n%-14s %6s %5s %14s %11s %14s %15s\n", "case", "tasks", "runs", "ckpt wall ms", "frozen ms",
               "ckpt total ms", "restart wall ms");
  for (auto& s : sums) {
    auto f = [](std::optional<double> v) { return v ? num(v) : std::string("n/a"); };
    std::fprintf(stderr, "%-14s %6d %5d %14s %11s %14s %15s\n", s.which.c_str(), s.tasks, o.runs,
                 f(median(s.ck)).c_str(), f(median(s.frozen)).c_str(), f(median(s.total)).c_str(),
                 f(median(s.rs)).c_str());
  }
  if (failures) std::fprintf(stderr, "%d run(s) failed; see the JSON lines with \"ok\":false or a bad verify\n", failures);
  return failures ? 1 : 0;
}
