#include "runtime/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cereal/archives/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "checkpoint/proc/stat.h"
#include "namespaces/pid.h"
#include "util/error.h"
#include "util/files.h"

namespace crbox::runtime {
namespace {

constexpr const char* kRecord = "sandbox.json";
constexpr const char* kLock = "lock";

void remove_tree(const std::string& dir) noexcept {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::optional<SandboxRecord> read_entry(const std::string& dir) {
  auto text = try_read_file(dir + "/" + kRecord);
  if (!text) return std::nullopt;  // still starting: the launcher has not published yet
  try {
    return record_from_json(*text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Whether the entry's owner is gone: its lock can be taken. Keeps no lock.
bool entry_abandoned(const std::string& dir) {
  UniqueFd fd(::open((dir + "/" + kLock).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errno == ENOENT;
  return ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0;
}

// Removes `dir` if its owner is gone; true if removed.
bool clean_if_stale(const std::string& dir) {
  UniqueFd fd(::open((dir + "/" + kLock).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno != ENOENT) return false;
    // A complete entry always has a lock; one without is debris from a crash mid-removal.
    remove_tree(dir);
    return true;
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return false;
  // The launcher died without tearing down: its init died with it (PR_SET_PDEATHSIG), but its
  // cgroups are still there.
  if (auto rec = read_entry(dir)) {
    CgroupPaths paths = rec->cgroups;
    for (auto it = paths.all.rbegin(); it != paths.all.rend(); ++it) ::rmdir(it->c_str());
  }
  remove_tree(dir);
  return true;
}

bool record_is_live(const SandboxRecord& r) {
  if (r.init_pid <= 0) return false;
  auto ticks = process_start_ticks(r.init_pid);
  return ticks && *ticks == r.init_start_ticks;
}

}  // namespace

std::string registry_root() {
  const char* env = std::getenv("CRBOX_RUN_DIR");
  return env && *env ? std::string(env) : std::string("/run/crbox");
}

bool valid_sandbox_id(const std::string& id) {
  if (id.empty() || id.size() > 64 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

std::string generate_sandbox_id() {
  unsigned char bytes[6];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) throw_errno("getrandom");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::optional<uint64_t> process_start_ticks(pid_t pid) {
  auto text = try_read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  try {
    auto st = proc::parse_stat(*text);
    if (st.state == 'Z' || st.state == 'X') return std::nullopt;
    return st.starttime;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string record_to_json(const SandboxRecord& rec) {
  std::ostringstream os;
  {
    cereal::JSONOutputArchive ar(os);
    ar(cereal::make_nvp("sandbox", rec));
  }
  return os.str() + "\n";
}

SandboxRecord record_from_json(const std::string& json) {
  SandboxRecord rec;
  try {
    std::istringstream is(json);
    cereal::JSONInputArchive ar(is);
    ar(cereal::make_nvp("sandbox", rec));
  } catch (const std::exception& e) {
    throw Error(std::string("unreadable sandbox record: ") + e.what());
  }
  return rec;
}

RegistryEntry::RegistryEntry(const std::string& id, const std::string& root) {
  if (!valid_sandbox_id(id)) throw Error("invalid sandbox id '" + id + "'");
  make_dirs(root, 0700);
  std::string final_dir = root + "/" + id;
  // Build the entry complete (with its lock held) under a hidden name, then rename(2) it into
  // place: renaming a directory onto a non-empty one fails, so two launchers cannot both win.
  std::string tmp = root + "/.new-" + generate_sandbox_id();
  if (::mkdir(tmp.c_str(), 0700) != 0) throw_errno("cannot create " + tmp);
  UniqueFd lock(::open((tmp + "/" + kLock).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0) {
    int err = errno;
    remove_tree(tmp);
    throw_errno("cannot lock the registry entry " + tmp, err);
  }
  for (int attempt = 0;; attempt++) {
    if (::rename(tmp.c_str(), final_dir.c_str()) == 0) break;
    int err = errno;
    if ((err == ENOTEMPTY || err == EEXIST) && attempt < 3 && clean_if_stale(final_dir)) continue;
    remove_tree(tmp);
    if (err == ENOTEMPTY || err == EEXIST) throw Error("a sandbox named '" + id + "' is already running");
    throw_errno("cannot register the sandbox in " + root, err);
  }
  dir_ = final_dir;
  lock_ = std::move(lock);
}

RegistryEntry::~RegistryEntry() { remove(); }

void RegistryEntry::publish(const SandboxRecord& rec) { write_file_atomic(dir_ + "/" + kRecord, record_to_json(rec), 0644); }

void RegistryEntry::remove() noexcept {
  if (dir_.empty()) return;
  // Remove while still holding the lock, so nobody sees an unlocked live entry.
  remove_tree(dir_);
  dir_.clear();
  lock_.reset();
}

std::vector<SandboxRecord> list_sandboxes(const std::string& root) {
  std::vector<SandboxRecord> out;
  DIR* d = ::opendir(root.c_str());
  if (!d) return out;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string dir = root + "/" + n;
    if (n[0] == '.') {
      // A half-built entry: debris once its builder is gone (its lock is free). Young ones are left
      // alone: their builder may be between creating the lock file and locking it.
      struct stat st;
      if (::stat(dir.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime > 60 && entry_abandoned(dir)) remove_tree(dir);
      continue;
    }
    if (clean_if_stale(dir)) continue;
    auto rec = read_entry(dir);
    if (!rec || !record_is_live(*rec)) continue;
    out.push_back(std::move(*rec));
  }
  std::sort(out.begin(), out.end(), [](const SandboxRecord& a, const SandboxRecord& b) { return a.id < b.id; });
  return out;
}

std::optional<SandboxRecord> find_sandbox(const std::string& id, const std::string& root) {
  for (auto& r : list_sandboxes(root)) {
    if (r.id == id) return r;
  }
  return std::nullopt;
}

std::optional<SandboxRecord> find_sandbox_of(pid_t host_pid, const std::string& root) {
  auto target = ns::namespace_of(host_pid, "pid");
  if (!target) return std::nullopt;
  for (auto& r : list_sandboxes(root)) {
    auto init_ns = ns::namespace_of(r.init_pid, "pid");
    if (init_ns && *init_ns == *target && record_is_live(r)) return r;
  }
  return std::nullopt;
}

}  // namespace crbox::runtime
