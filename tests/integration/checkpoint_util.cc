#include "checkpoint_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace crbox::test::ckpt {

using namespace std::chrono;

static std::string read_small(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string s;
  char buf[4096];
  ssize_t k;
  while ((k = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(k));
  close(fd);
  return s;
}

// The fields of /proc/PID/stat after the ")" that ends comm: [0] is the state.
static std::vector<std::string> stat_fields(pid_t pid) {
  std::string s = read_small("/proc/" + std::to_string(pid) + "/stat");
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return {};
  std::istringstream in(s.substr(rp + 1));
  std::vector<std::string> f;
  std::string w;
  while (in >> w) f.push_back(w);
  return f;
}

bool pid_exists(pid_t pid) {
  struct stat st;
  return pid > 0 && stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

char proc_state(pid_t pid) {
  auto f = stat_fields(pid);
  return f.empty() ? 0 : f[0][0];
}

pid_t parent_of(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() < 2 ? -1 : static_cast<pid_t>(std::stol(f[1]));
}

std::string comm_of(pid_t pid) {
  std::string s = read_small("/proc/" + std::to_string(pid) + "/comm");
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::optional<std::string> status_field(pid_t pid, const std::string& key) {
  std::istringstream in(read_small("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      auto b = v.find_first_not_of(" \t");
      return b == std::string::npos ? "" : v.substr(b);
    }
  }
  return std::nullopt;
}

pid_t tracer_of(pid_t pid) {
  auto v = status_field(pid, "TracerPid");
  return v ? static_cast<pid_t>(std::stol(*v)) : -1;
}

std::vector<pid_t> ns_pids(pid_t pid) {
  std::vector<pid_t> r;
  auto v = status_field(pid, "NSpid");
  if (!v) return r;
  std::istringstream in(*v);
  long x;
  while (in >> x) r.push_back(static_cast<pid_t>(x));
  return r;
}

std::optional<long> syscall_nr(pid_t pid) {
  std::string s = read_small("/proc/" + std::to_string(pid) + "/syscall");
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return std::nullopt;  // "running" or "-1 ..."
  return std::stol(s);
}

static std::vector<std::pair<pid_t, pid_t>> all_pids_with_parent() {
  std::vector<std::pair<pid_t, pid_t>> r;
  DIR* d = opendir("/proc");
  if (!d) return r;
  while (auto* e = readdir(d)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    pid_t p = static_cast<pid_t>(std::atol(e->d_name));
    pid_t pp = parent_of(p);
    if (pp >= 0) r.emplace_back(p, pp);
  }
  closedir(d);
  return r;
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> r;
  for (auto [p, pp] : all_pids_with_parent())
    if (pp == pid) r.push_back(p);
  return r;
}

std::vector<pid_t> descendants_of(pid_t pid) {
  auto all = all_pids_with_parent();
  std::vector<pid_t> out, frontier{pid};
  while (!frontier.empty()) {
    std::vector<pid_t> next;
    for (pid_t f : frontier)
      for (auto [p, pp] : all)
        if (pp == f && p != pid && std::find(out.begin(), out.end(), p) == out.end()) next.push_back(p);
    out.insert(out.end(), next.begin(), next.end());
    frontier = next;
  }
  return out;
}

pid_t find_by_comm(pid_t root, const std::string& comm, milliseconds timeout) {
  std::string want = comm.substr(0, 15);
  pid_t found = -1;
  eventually(
      [&] {
        std::vector<pid_t> cand{root};
        auto d = descendants_of(root);
        cand.insert(cand.end(), d.begin(), d.end());
        for (auto it = cand.rbegin(); it != cand.rend(); ++it)
          if (comm_of(*it) == want && process_alive(*it)) return found = *it, true;
        return false;
      },
      timeout);
  return found;
}

pid_t find_by_inner_pid(pid_t root, pid_t inner, milliseconds timeout) {
  pid_t found = -1;
  eventually(
      [&] {
        for (pid_t p : descendants_of(root)) {
          auto ns = ns_pids(p);
          if (ns.size() >= 2 && ns.back() == inner && process_alive(p)) return found = p, true;
        }
        return false;
      },
      timeout);
  return found;
}

pid_t deepest_descendant(pid_t root, std::chrono::milliseconds timeout) {
  pid_t found = -1;
  eventually(
      [&] {
        auto d = descendants_of(root);
        for (auto it = d.rbegin(); it != d.rend(); ++it)
          if (process_alive(*it)) return found = *it, true;
        return false;
      },
      timeout);
  return found;
}

pid_t unused_pid() {
  long max = std::atol(read_small("/proc/sys/kernel/pid_max").c_str());
  if (max <= 300) max = 32768;
  for (pid_t p = static_cast<pid_t>(max - 1); p > 300; p--)
    if (!pid_exists(p) && ::kill(p, 0) != 0 && errno == ESRCH) return p;
  throw std::runtime_error("no unused pid");
}

bool is_kernel_thread(pid_t pid) {
  auto f = stat_fields(pid);
  if (f.size() < 7) return false;
  unsigned long flags = std::stoul(f[6]);  // field 9 of stat
  return flags & 0x00200000;               // PF_KTHREAD
}

pid_t kernel_thread() {
  if (is_kernel_thread(2)) return 2;
  for (auto [p, pp] : all_pids_with_parent())
    if (is_kernel_thread(p)) return p;
  return -1;
}

// ---- cleanup -------------------------------------------------------------------------------

void become_subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

void kill_tree(pid_t pid) {
  if (pid <= 0) return;
  // Stop the tree first so nobody forks while we walk it, then kill deepest first.
  auto d = descendants_of(pid);
  ::kill(pid, SIGSTOP);
  for (pid_t p : d) ::kill(p, SIGSTOP);
  d = descendants_of(pid);
  for (auto it = d.rbegin(); it != d.rend(); ++it) ::kill(*it, SIGKILL);
  ::kill(pid, SIGKILL);
}

void kill_all_descendants() {
  pid_t self = getpid();
  for (int round = 0; round < 5; round++) {
    auto d = descendants_of(self);
    if (d.empty()) break;
    for (auto it = d.rbegin(); it != d.rend(); ++it) ::kill(*it, SIGKILL);
    std::this_thread::sleep_for(50ms);
    for (pid_t c : children_of(self)) waitpid(c, nullptr, WNOHANG | __WALL);
  }
  for (pid_t c : children_of(self)) waitpid(c, nullptr, WNOHANG | __WALL);
}

bool wait_gone(pid_t pid, milliseconds timeout) {
  return eventually(
      [&] {
        if (parent_of(pid) == getpid()) waitpid(pid, nullptr, WNOHANG | __WALL);
        return !pid_exists(pid);
      },
      timeout);
}

std::vector<pid_t> live_children(const std::vector<pid_t>& except) {
  std::vector<pid_t> r;
  for (pid_t c : children_of(getpid())) {
    if (std::find(except.begin(), except.end(), c) != except.end()) continue;
    if (!process_alive(c)) {
      waitpid(c, nullptr, WNOHANG | __WALL);
      continue;
    }
    r.push_back(c);
  }
  return r;
}

PidGuard::~PidGuard() {
  for (pid_t p : pids_) {
    if (p > 0 && pid_exists(p)) {
      kill_tree(p);
      wait_gone(p, 2s);
    }
  }
}

ScratchDir::ScratchDir() {
  char tmpl[] = "/var/tmp/crbox-ckpt-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> ScratchDir::entries() const {
  std::vector<std::string> r;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(path_, ec)) r.push_back(e.path().filename().string());
  return r;
}

void CkptTest::SetUp() { become_subreaper(); }
void CkptTest::TearDown() { kill_all_descendants(); }

// ---- files ---------------------------------------------------------------------------------

bool file_exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

off_t file_size(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

unsigned file_mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

std::string slurp(const std::string& path) { return read_small(path); }

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void flip_bit(const std::string& path, off_t offset) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path);
  unsigned char c = 0;
  if (pread(fd, &c, 1, offset) != 1) throw std::runtime_error("cannot read " + path);
  c ^= 0x10;
  if (pwrite(fd, &c, 1, offset) != 1) throw std::runtime_error("cannot write " + path);
  close(fd);
}

void write_known_file(const std::string& path, size_t size) {
  std::string s(size, 0);
  for (size_t n = 0; n < size; n++) s[n] = static_cast<char>('A' + (n * 7) % 26);
  spit(path, s);
}

// ---- tools ---------------------------------------------------------------------------------

std::string mode_name(Mode m) { return m == Mode::Plain ? "Plain" : "Sandbox"; }

std::vector<std::string> cr_run_argv(Mode m, const std::string& prog, const std::vector<std::string>& args) {
  std::vector<std::string> v{tool("cr_run")};
  if (m == Mode::Sandbox) v.push_back("--sandbox");
  v.push_back(program(prog));
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

RunResult crbox(const std::string& tool_name, const std::vector<std::string>& args, const std::string& cwd,
                milliseconds timeout) {
  std::vector<std::string> v{tool(tool_name)};
  v.insert(v.end(), args.begin(), args.end());
  return run(v, timeout, cwd);
}

::testing::AssertionResult succeeded(const RunResult& r) {
  if (r.status == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "exit status " << r.status << ", stderr: " << r.err << "stdout: " << r.out;
}

::testing::AssertionResult failed_with_one_line(const RunResult& r, const std::string& tool_name) {
  if (r.status == 0) return ::testing::AssertionFailure() << tool_name << " succeeded; stdout: " << r.out;
  if (r.status >= 128) return ::testing::AssertionFailure() << tool_name << " died (status " << r.status << "): " << r.err;
  std::string e = r.err;
  if (!e.empty() && e.back() == '\n') e.pop_back();
  if (e.empty()) return ::testing::AssertionFailure() << tool_name << " failed silently (status " << r.status << ")";
  if (e.find('\n') != std::string::npos)
    return ::testing::AssertionFailure() << tool_name << " printed more than one line on stderr:\n" << r.err;
  if (e.rfind(tool_name + ": ", 0) != 0)
    return ::testing::AssertionFailure() << "stderr does not start with \"" << tool_name << ": \": " << r.err;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult released(pid_t pid) {
  if (!process_alive(pid)) return ::testing::AssertionFailure() << "process " << pid << " is gone";
  pid_t t = tracer_of(pid);
  if (t != 0) return ::testing::AssertionFailure() << "process " << pid << " is traced by " << t;
  char s = proc_state(pid);
  if (s == 'T' || s == 't') return ::testing::AssertionFailure() << "process " << pid << " is stopped (" << s << ")";
  return ::testing::AssertionSuccess();
}

bool contains_ci(const std::string& hay, const std::string& needle) {
  auto low = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  return low(hay).find(low(needle)) != std::string::npos;
}

Launched launch(Mode m, const std::string& prog, const std::vector<std::string>& args, const std::string& cwd,
                std::string* why) {
  Launched l;
  l.child = std::make_unique<Child>(cr_run_argv(m, prog, args), cwd);
  auto line = l.child->wait_for("pid=", 30s);
  if (!line) {
    if (why) *why = "no pid= line from " + prog + " under cr_run; output: " + l.child->output();
    return l;
  }
  l.pid_line = *line;
  if (m == Mode::Plain) {
    auto v = number_after(*line, "pid=");
    pid_t p = v ? static_cast<pid_t>(*v) : -1;
    if (p > 0 && comm_of(p) == prog.substr(0, 15)) l.pid = p;
    else if (why) *why = "pid " + std::to_string(p) + " printed by " + prog + " is not a process named so";
  } else {
    l.pid = find_by_comm(l.child->pid(), prog, 10s);
    if (l.pid < 0 && why) *why = "no process named " + prog + " under cr_run --sandbox";
  }
  return l;
}

std::unique_ptr<Child> start_restart(const std::string& file, const std::vector<std::string>& extra,
                                     const std::string& cwd) {
  std::vector<std::string> v{tool("cr_restart")};
  v.insert(v.end(), extra.begin(), extra.end());
  v.push_back(file);
  return std::make_unique<Child>(v, cwd);
}

pid_t restored_pid(const Child& restart, Mode m, pid_t original, const std::string& prog) {
  (void)prog;  // the name is checked by the tests themselves, not used to find the process
  if (m == Mode::Plain) {
    bool ok = eventually(
        [&] {
          auto d = descendants_of(restart.pid());
          return process_alive(original) && std::find(d.begin(), d.end(), original) != d.end();
        },
        10s);
    return ok ? original : -1;
  }
  return find_by_inner_pid(restart.pid(), 2, 10s);
}

::testing::AssertionResult kill_original(Launched& l) {
  if (l.pid > 0) ::kill(l.pid, SIGKILL);
  if (!l.child->wait(20s)) return ::testing::AssertionFailure() << "cr_run did not exit after its program was killed";
  if (l.pid > 0 && !wait_gone(l.pid, 10s))
    return ::testing::AssertionFailure() << "pid " << l.pid << " still exists after the kill";
  return ::testing::AssertionSuccess();
}

std::string token_after(const std::string& line, const std::string& key) {
  auto p = line.find(key);
  if (p == std::string::npos) return "";
  p += key.size();
  auto e = line.find(' ', p);
  return line.substr(p, e == std::string::npos ? std::string::npos : e - p);
}

// ---- output parsing ------------------------------------------------------------------------

std::optional<long> counter_value(const std::string& line) {
  if (line.rfind("i = ", 0) != 0) return std::nullopt;
  char* end = nullptr;
  long v = std::strtol(line.c_str() + 4, &end, 10);
  if (end == line.c_str() + 4) return std::nullopt;
  return v;
}

std::optional<long long> number_after(const std::string& line, const std::string& key) {
  auto p = line.find(key);
  if (p == std::string::npos) return std::nullopt;
  const char* s = line.c_str() + p + key.size();
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (end == s) return std::nullopt;
  return v;
}

}  // namespace crbox::test::ckpt
