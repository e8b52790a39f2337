#include "tree_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace crbox::test::tree {

using namespace std::chrono;

namespace {

std::string read_small(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s;
  char buf[4096];
  ssize_t k;
  while ((k = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(k));
  close(fd);
  return s;
}

std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> r;
  DIR* d = opendir(dir.c_str());
  if (!d) return r;
  while (auto* e = readdir(d))
    if (std::isdigit(static_cast<unsigned char>(e->d_name[0]))) r.push_back(static_cast<pid_t>(std::atol(e->d_name)));
  closedir(d);
  std::sort(r.begin(), r.end());
  return r;
}

// Fills state, ppid, pgid, sid and comm from a /proc/<pid>/stat text; false if unreadable.
bool parse_stat(const std::string& s, InnerProc& p) {
  auto lp = s.find('('), rp = s.rfind(')');
  if (lp == std::string::npos || rp == std::string::npos || rp < lp) return false;
  p.comm = s.substr(lp + 1, rp - lp - 1);
  std::istringstream in(s.substr(rp + 1));
  std::string state;
  long ppid, pgid, sid;
  if (!(in >> state >> ppid >> pgid >> sid)) return false;
  p.state = state[0];
  p.ppid = static_cast<pid_t>(ppid);
  p.pgid = static_cast<pid_t>(pgid);
  p.sid = static_cast<pid_t>(sid);
  return true;
}

std::string line_of(const InnerProc& p) {
  std::ostringstream o;
  o << "  pid " << p.inner << " (host " << p.host << ") ppid " << p.ppid << " pgid " << p.pgid << " sid " << p.sid
    << " state " << (p.state ? p.state : '?') << " comm " << p.comm << " tids";
  for (pid_t t : p.tids) o << " " << t;
  return o.str();
}

bool zombie(const InnerProc& p) { return p.state == 'Z' || p.state == 'X'; }

pid_t tracer_in(const std::string& status_path) {
  std::string s = read_small(status_path);
  auto p = s.find("TracerPid:");
  return p == std::string::npos ? -1 : static_cast<pid_t>(std::atol(s.c_str() + p + 10));
}

bool settled(const View& v, size_t n) {
  if (v.size() != n) return false;
  for (auto& [pid, p] : v)
    if (!zombie(p) && (p.tracer != 0 || p.state == 't' || p.state == 'T')) return false;
  return true;
}

}  // namespace

// ---- launching -------------------------------------------------------------------------------

Launched launch_argv(Mode m, const std::vector<std::string>& argv, const std::string& needle, const std::string& cwd,
                     std::string* why) {
  Launched l;
  std::vector<std::string> v{tool("cr_run")};
  if (m == Mode::Sandbox) v.push_back("--sandbox");
  v.insert(v.end(), argv.begin(), argv.end());
  l.child = std::make_unique<Child>(v, cwd);
  auto line = l.child->wait_for(needle, 30s);
  if (!line) {
    if (why) *why = "no \"" + needle + "\" line from " + argv[0] + " under cr_run; output: " + l.child->output();
    return l;
  }
  l.pid_line = *line;
  if (m == Mode::Plain) {
    auto p = number_after(*line, "pid=");
    if (p && pid_exists(static_cast<pid_t>(*p))) l.pid = static_cast<pid_t>(*p);
    else if (why) *why = "the pid in \"" + *line + "\" is not a process";
  } else {
    l.pid = inner_host_pid(l.child->pid(), 2);
    if (l.pid < 0 && why) *why = "no process at inner pid 2 under cr_run --sandbox";
  }
  return l;
}

Launched launch_tree(Mode m, const std::string& prog, const std::vector<std::string>& args, const std::string& cwd,
                     std::string* why) {
  std::vector<std::string> argv{program(prog)};
  argv.insert(argv.end(), args.begin(), args.end());
  return launch_argv(m, argv, "pid=", cwd, why);
}

pid_t inner_host_pid(pid_t launcher, pid_t inner, milliseconds timeout) {
  return find_by_inner_pid(launcher, inner, timeout);
}

// ---- views -----------------------------------------------------------------------------------

View sandbox_view(pid_t init_host) {
  View v;
  std::map<pid_t, pid_t> host_of;  // inner -> host
  for (pid_t h : descendants_of(init_host)) {
    auto ns = ns_pids(h);
    if (ns.size() >= 2) host_of[ns.back()] = h;
  }
  std::string root = "/proc/" + std::to_string(init_host) + "/root/proc";
  for (pid_t inner : numeric_entries(root)) {
    if (inner == 1) continue;
    InnerProc p;
    p.inner = inner;
    if (!parse_stat(read_small(root + "/" + std::to_string(inner) + "/stat"), p)) continue;
    p.tids = numeric_entries(root + "/" + std::to_string(inner) + "/task");
    p.tracer = tracer_in(root + "/" + std::to_string(inner) + "/status");
    auto h = host_of.find(inner);
    if (h != host_of.end()) p.host = h->second;
    v[inner] = p;
  }
  return v;
}

View wait_view(pid_t init_host, size_t n, milliseconds timeout) {
  View v;
  eventually(
      [&] {
        v = sandbox_view(init_host);
        return settled(v, n);
      },
      timeout);
  return v;
}

std::string describe(const View& v) {
  std::string s;
  for (auto& [pid, p] : v) s += line_of(p) + "\n";
  return s.empty() ? "  (no process)\n" : s;
}

::testing::AssertionResult same_view(const View& want, const View& got) {
  std::string diffs;
  for (auto& [pid, w] : want) {
    auto it = got.find(pid);
    if (it == got.end()) {
      diffs += "  missing pid " + std::to_string(pid) + "\n";
      continue;
    }
    const InnerProc& g = it->second;
    if (g.ppid != w.ppid || g.pgid != w.pgid || g.sid != w.sid || g.comm != w.comm || g.tids != w.tids ||
        zombie(g) != zombie(w))
      diffs += "  differs: want" + line_of(w) + "\n          got " + line_of(g) + "\n";
  }
  for (auto& [pid, g] : got)
    if (!want.count(pid)) diffs += "  extra" + line_of(g) + "\n";
  if (diffs.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the processes differ:\n"
                                       << diffs << "want:\n"
                                       << describe(want) << "got:\n"
                                       << describe(got);
}

::testing::AssertionResult all_released(const View& v) {
  for (auto& [pid, p] : v) {
    if (zombie(p)) continue;
    if (p.host <= 0) return ::testing::AssertionFailure() << "no host pid for inner pid " << pid;
    auto r = released(p.host);
    if (!r) return r << " (inner pid " << pid << ", " << p.comm << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult threads_released(pid_t pid) {
  std::string task = "/proc/" + std::to_string(pid) + "/task/";
  for (pid_t t : numeric_entries(task)) {
    InnerProc p;
    parse_stat(read_small(task + std::to_string(t) + "/stat"), p);
    pid_t tr = tracer_in(task + std::to_string(t) + "/status");
    if (tr != 0 || p.state == 't' || p.state == 'T')
      return ::testing::AssertionFailure() << "thread " << t << " of " << pid << " is traced by " << tr << ", state "
                                           << p.state;
  }
  return ::testing::AssertionSuccess();
}

View host_tree(pid_t root) {
  View v;
  std::vector<pid_t> all{root};
  auto d = descendants_of(root);
  all.insert(all.end(), d.begin(), d.end());
  for (pid_t pid : all) {
    InnerProc p;
    p.inner = p.host = pid;
    if (!parse_stat(read_small("/proc/" + std::to_string(pid) + "/stat"), p)) continue;
    p.tids = numeric_entries("/proc/" + std::to_string(pid) + "/task");
    p.tracer = tracer_in("/proc/" + std::to_string(pid) + "/status");
    v[pid] = p;
  }
  return v;
}

View wait_tree(pid_t root, size_t n, milliseconds timeout) {
  View v;
  eventually(
      [&] {
        v = host_tree(root);
        return settled(v, n);
      },
      timeout);
  return v;
}

::testing::AssertionResult same_tree(const View& want, const View& got, pid_t root) {
  View w = want, g = got;
  for (auto* v : {&w, &g})
    for (auto& [pid, p] : *v) {
      p.pgid = p.sid = 0;  // not restored by default outside a sandbox
      if (pid == root) p.ppid = 0;
    }
  return same_view(w, g);
}

::testing::AssertionResult all_gone(const View& v, milliseconds timeout) {
  for (auto& [pid, p] : v)
    if (!wait_gone(p.host, timeout))
      return ::testing::AssertionFailure() << "pid " << p.host << " (" << p.comm << ") still exists, state "
                                           << proc_state(p.host);
  return ::testing::AssertionSuccess();
}

// ---- tools -----------------------------------------------------------------------------------

RunResult checkpoint(pid_t pid, const std::string& file, const std::vector<std::string>& extra, const std::string& cwd) {
  std::vector<std::string> args{std::to_string(pid), "-f", file};
  args.insert(args.end(), extra.begin(), extra.end());
  return crbox("cr_checkpoint", args, cwd);
}

Restored restart(const std::string& file, Mode m, pid_t plain_root, const std::string& cwd, std::string* why) {
  Restored r;
  r.child = start_restart(file, {}, cwd);
  if (m == Mode::Sandbox) {
    r.root = inner_host_pid(r.child->pid(), 2, 30s);
    r.init = inner_host_pid(r.child->pid(), 1, 5s);
  } else {
    r.root = restored_pid(*r.child, m, plain_root, "");
  }
  if (r.root < 0 && why) {
    r.child->read_line(300ms);
    *why = "no restored process under cr_restart; its output: " + r.child->output();
  }
  return r;
}

void stop_launcher(Child& c) {
  pid_t init = -1;
  for (pid_t p : descendants_of(c.pid())) {
    auto ns = ns_pids(p);
    if (ns.size() >= 2 && ns.back() == 1) init = p;
  }
  if (init > 0) ::kill(init, SIGKILL);  // the whole pid namespace goes with it
  kill_tree(c.pid());
  ::kill(-c.pid(), SIGKILL);
  c.wait(10s);
}

std::string python3() {
  for (const char* p : {"/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"})
    if (access(p, X_OK) == 0) return p;
  return "python3";
}

// ---- output ----------------------------------------------------------------------------------

std::optional<std::string> next_with(Child& c, const std::string& prefix, const std::string& needle,
                                     milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  for (;;) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto line = next_starting(c, prefix, left);
    if (!line) return std::nullopt;
    if (line->find(needle) != std::string::npos) return line;
  }
}

std::optional<std::string> ask(Child& c, pid_t pid, const std::string& prefix, milliseconds timeout) {
  ::kill(pid, SIGUSR1);
  return next_starting(c, prefix, timeout);
}

std::vector<std::string> ask_lines(Child& c, pid_t pid, const std::string& prefix, size_t n, milliseconds timeout) {
  ::kill(pid, SIGUSR1);
  std::vector<std::string> r;
  auto deadline = steady_clock::now() + timeout;
  while (r.size() < n) {
    auto left = duration_cast<milliseconds>(deadline - steady_clock::now());
    if (left.count() <= 0) break;
    auto line = next_starting(c, prefix, left);
    if (!line) break;
    r.push_back(*line);
  }
  return r;
}

}  // namespace crbox::test::tree
