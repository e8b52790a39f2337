#include "runtime/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <optional>
#include <thread>

#include "checkpoint/proc/mountinfo.h"
#include "util/error.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::runtime {
namespace {

struct Mounts {
  // v1: controller -> directory of the launcher's own group in that hierarchy.
  std::optional<std::string> v1_freezer, v1_memory, v1_pids;
  std::optional<std::string> v2_root;
};

// proc(5) /proc/self/cgroup: "hierarchy-ID:controller-list:cgroup-path"; cgroup2 has ID 0 and an
// empty controller list.
std::optional<std::string> own_group(const std::string& controller) {
  auto text = read_file("/proc/self/cgroup");
  for (auto line : split(text, '\n')) {
    auto f1 = line.find(':');
    if (f1 == std::string_view::npos) continue;
    auto f2 = line.find(':', f1 + 1);
    if (f2 == std::string_view::npos) continue;
    for (auto c : split(line.substr(f1 + 1, f2 - f1 - 1), ',')) {
      if (c == controller) return std::string(line.substr(f2 + 1));
    }
  }
  return std::nullopt;
}

Mounts find_mounts() {
  Mounts m;
  for (const auto& mi : proc::parse_mountinfo(read_file("/proc/self/mountinfo"))) {
    if (mi.fs_type == "cgroup2") {
      if (!m.v2_root && mi.root == "/") m.v2_root = mi.mount_point;
      continue;
    }
    if (mi.fs_type != "cgroup") continue;
    for (auto opt : split(mi.super_options, ',')) {
      std::optional<std::string>* slot = nullptr;
      if (opt == "freezer") slot = &m.v1_freezer;
      else if (opt == "memory") slot = &m.v1_memory;
      else if (opt == "pids") slot = &m.v1_pids;
      if (!slot || *slot) continue;
      auto own = own_group(std::string(opt));
      if (!own) continue;
      // The mount shows the hierarchy from mi.root down; the launcher's group must be below it.
      std::string rel = *own;
      if (mi.root != "/") {
        if (!starts_with(rel, mi.root)) continue;
        rel.erase(0, mi.root.size());
      }
      if (rel == "/") rel.clear();
      *slot = mi.mount_point + rel;
    }
  }
  return m;
}

bool controller_available_v2(const std::string& root, const std::string& c) {
  auto text = try_read_file(root + "/cgroup.controllers");
  if (!text) return false;
  for (auto w : split(trim(*text), ' ')) {
    if (w == c) return true;
  }
  return false;
}

void write_text(const std::string& path, const std::string& value) {
  const std::string& v = value;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open " + path);
  ssize_t n = ::write(fd, v.data(), v.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(v.size())) throw_errno("cannot write '" + value + "' to " + path, err);
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

std::vector<pid_t> cgroup_pids(const std::string& dir);

namespace {

// Removes empty crbox/<id> groups older than a minute below `parent`: a live sandbox's groups
// always hold at least its init, and set-up takes far less than a minute, so these are what
// a launcher killed with SIGKILL left behind. rmdir(2) of a group fails while it has tasks.
void sweep_debris(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (!d) return;
  std::vector<std::string> dirs;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') dirs.push_back(parent + "/" + e->d_name);
  }
  ::closedir(d);
  time_t now = ::time(nullptr);
  for (const auto& dir : dirs) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || now - st.st_mtime < 60) continue;
    if (cgroup_pids(dir).empty()) ::rmdir(dir.c_str());
  }
}

void make_group(const std::string& dir, std::vector<std::string>& created) {
  auto slash = dir.rfind('/');
  std::string parent = dir.substr(0, slash);
  make_dirs(parent);
  sweep_debris(parent);
  if (::mkdir(dir.c_str(), 0755) != 0) throw_errno("cannot create the cgroup " + dir);
  created.push_back(dir);
}

}  // namespace

std::vector<pid_t> cgroup_pids(const std::string& dir) {
  std::vector<pid_t> out;
  auto text = try_read_file(dir + "/cgroup.procs");
  if (!text) return out;
  for (auto w : split(*text, '\n')) {
    if (auto v = parse_u64(trim(w))) out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

SandboxCgroup SandboxCgroup::create(const std::string& id, uint64_t memory_limit, uint64_t pids_limit) {
  Mounts m = find_mounts();
  SandboxCgroup cg;
  CgroupPaths& p = cg.paths_;
  try {
    if (m.v1_freezer) {
      p.version = 1;
      p.freezer = *m.v1_freezer + "/crbox/" + id;
      make_group(p.freezer, p.all);
      if (memory_limit) {
        if (!m.v1_memory) throw Error("--memory needs the cgroup v1 memory controller, which is not mounted");
        p.memory = *m.v1_memory + "/crbox/" + id;
        make_group(p.memory, p.all);
        write_text(p.memory + "/memory.limit_in_bytes", std::to_string(memory_limit));
        // Without a swap limit the application would swap instead of hitting the limit
        // (memory.memsw.* exists only when swap accounting is on).
        if (file_exists(p.memory + "/memory.memsw.limit_in_bytes")) {
          write_text(p.memory + "/memory.memsw.limit_in_bytes", std::to_string(memory_limit));
        }
      }
      if (pids_limit) {
        if (!m.v1_pids) throw Error("--pids-limit needs the cgroup v1 pids controller, which is not mounted");
        p.pids = *m.v1_pids + "/crbox/" + id;
        make_group(p.pids, p.all);
        write_text(p.pids + "/pids.max", std::to_string(pids_limit + 1));
      }
    } else if (m.v2_root) {
      p.version = 2;
      const std::string root = *m.v2_root;
      std::string parent = root + "/crbox";
      std::string controllers;
      for (auto [need, name] : {std::pair{memory_limit != 0, "memory"}, std::pair{pids_limit != 0, "pids"}}) {
        if (!need) continue;
        if (!controller_available_v2(root, name)) {
          throw Error(std::string("--") + (std::string(name) == "memory" ? "memory" : "pids-limit") + " needs the cgroup2 " +
                      name + " controller, which " + root + " does not offer");
        }
        controllers += std::string(controllers.empty() ? "" : " ") + "+" + name;
      }
      make_dirs(parent);
      if (!controllers.empty()) {
        write_text(root + "/cgroup.subtree_control", controllers);
        write_text(parent + "/cgroup.subtree_control", controllers);
      }
      std::string dir = parent + "/" + id;
      make_group(dir, p.all);
      p.freezer = dir;
      if (memory_limit) {
        p.memory = dir;
        write_text(dir + "/memory.max", std::to_string(memory_limit));
        if (file_exists(dir + "/memory.swap.max")) write_text(dir + "/memory.swap.max", "0");
      }
      if (pids_limit) {
        p.pids = dir;
        write_text(dir + "/pids.max", std::to_string(pids_limit + 1));
      }
    } else {
      throw Error("no cgroup hierarchy with a freezer is mounted (need cgroup v1 freezer or cgroup2)");
    }
  } catch (...) {
    cg.destroy();
    throw;
  }
  return cg;
}

SandboxCgroup::SandboxCgroup(SandboxCgroup&& o) noexcept : paths_(std::move(o.paths_)) { o.paths_ = CgroupPaths{}; }

SandboxCgroup& SandboxCgroup::operator=(SandboxCgroup&& o) noexcept {
  if (this != &o) {
    destroy();
    paths_ = std::move(o.paths_);
    o.paths_ = CgroupPaths{};
  }
  return *this;
}

SandboxCgroup::~SandboxCgroup() { destroy(); }

void SandboxCgroup::add(pid_t pid) const {
  for (const auto& dir : paths_.all) write_text(dir + "/cgroup.procs", std::to_string(pid));
}

void SandboxCgroup::destroy() noexcept {
  if (paths_.all.empty()) return;
  try {
    if (!paths_.freezer.empty()) set_frozen(paths_, false);
  } catch (...) {
  }
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(5);
  // Children first: the list is in creation order, and nothing nests within one sandbox's list.
  for (auto it = paths_.all.rbegin(); it != paths_.all.rend(); ++it) {
    for (;;) {
      for (pid_t pid : cgroup_pids(*it)) ::kill(pid, SIGKILL);
      if (::rmdir(it->c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  paths_ = CgroupPaths{};
}

void set_frozen(const CgroupPaths& paths, bool frozen) {
  if (paths.freezer.empty()) throw Error("this sandbox has no freezer cgroup");
  std::string file = paths.version == 1 ? paths.freezer + "/freezer.state" : paths.freezer + "/cgroup.freeze";
  std::string want = paths.version == 1 ? (frozen ? "FROZEN" : "THAWED") : (frozen ? "1" : "0");
  write_text(file, want);
  using namespace std::chrono;
  auto deadline = steady_clock::now() + seconds(10);
  for (;;) {
    bool done;
    if (paths.version == 1) {
      done = std::string(trim(read_file(file))) == want;
    } else {
      // cgroup.events' "frozen 1" says every task has stopped (cgroup-v2.rst, "Freezer").
      auto events = read_file(paths.freezer + "/cgroup.events");
      done = events.find(std::string("frozen ") + want) != std::string::npos;
    }
    if (done) return;
    if (steady_clock::now() > deadline) throw Error("the sandbox's cgroup did not reach " + want + " in time");
    if (paths.version == 1) write_text(file, want);  // v1: rewriting retries a FREEZING group
    std::this_thread::sleep_for(milliseconds(1));
  }
}

}  // namespace crbox::runtime
