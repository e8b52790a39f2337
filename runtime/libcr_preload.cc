#include "runtime/libcr_preload.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string_view>

#include "runtime/libcr/paths.h"

namespace crbox::runtime {
namespace {

constexpr const char* kRun = "libcr_run.so.0";
constexpr const char* kOmit = "libcr_omit.so.0";

bool is_file(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string real(const std::string& p) {
  char buf[PATH_MAX];
  return (!p.empty() && realpath(p.c_str(), buf)) ? std::string(buf) : std::string();
}

bool has_libs(const std::string& dir) { return !dir.empty() && is_file(dir + "/" + kRun) && is_file(dir + "/" + kOmit); }

std::string basename_of(std::string_view p) {
  auto slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

bool is_preload_lib(std::string_view entry) {
  std::string b = basename_of(entry);
  return b.rfind("libcr_run.so", 0) == 0 || b.rfind("libcr_omit.so", 0) == 0;
}

}  // namespace

std::string libcr_dir() {
  if (const char* env = getenv("CRBOX_LIBCR_DIR"); env && *env) return has_libs(env) ? std::string(env) : std::string();
  std::string exe = real("/proc/self/exe");
  std::string bindir = exe.substr(0, exe.rfind('/'));
  std::string installed = CRBOX_LIBCR_INSTALL_LIBDIR, built = CRBOX_LIBCR_BUILD_DIR;
  if (!bindir.empty() && bindir == real(CRBOX_INSTALL_BINDIR) && has_libs(installed)) return installed;
  if (!bindir.empty() && bindir == real(CRBOX_BUILD_BINDIR) && has_libs(built)) return built;
  for (const char* lib : {"lib", "lib64", "lib/x86_64-linux-gnu"}) {
    std::string d = real(bindir + "/../" + lib);
    if (has_libs(d)) return d;
  }
  if (has_libs(installed)) return installed;
  if (has_libs(built)) return built;
  return "";
}

std::string preload_with(const std::string& current, const std::string& lib) {
  std::string out;
  size_t i = 0;
  while (i <= current.size()) {
    size_t j = current.find_first_of(": ", i);
    if (j == std::string::npos) j = current.size();
    std::string_view entry(current.data() + i, j - i);
    if (!entry.empty() && !is_preload_lib(entry)) {
      if (!out.empty()) out += ':';
      out += entry;
    }
    i = j + 1;
  }
  if (!out.empty()) out += ':';
  return out + lib;
}

std::optional<std::string> libcr_preload(bool omit, const std::string& current, const std::string& rootfs) {
  std::string dir = libcr_dir();
  if (dir.empty()) return std::nullopt;
  std::string lib = dir + "/" + (omit ? kOmit : kRun);
  if (!rootfs.empty() && !is_file(rootfs + lib)) return std::nullopt;
  return preload_with(current, lib);
}

}  // namespace crbox::runtime
