#include "runtime/exec.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/strings.h"

namespace crbox::runtime {
namespace {

// 0 when `path` is an executable regular file, else the errno execve(2) would give.
int check_executable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if (!S_ISREG(st.st_mode)) return EACCES;
  if (::access(path.c_str(), X_OK) != 0) return errno;
  return 0;
}

[[noreturn]] void fail(const std::string& name, int err) {
  throw ProgramError(name + ": " + std::strerror(err), (err == ENOENT || err == ENOTDIR) ? 127 : 126);
}

}  // namespace

std::string resolve_program(const std::string& name, const std::string& path_env) {
  if (name.empty()) fail(name, ENOENT);
  if (name.find('/') != std::string::npos) {
    int err = check_executable(name);
    if (err) fail(name, err);
    return name;
  }
  std::string path = path_env.empty() ? "/bin:/usr/bin" : path_env;
  int seen = ENOENT;
  for (auto dir : split(path, ':')) {
    std::string candidate = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + name;
    int err = check_executable(candidate);
    if (err == 0) return candidate;
    // execvp(3): a candidate that exists but cannot run is remembered (EACCES) while the search goes on.
    if (err != ENOENT && err != ENOTDIR) seen = err == EISDIR ? EACCES : err;
  }
  fail(name, seen);
}

void exec_or_exit(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  int err = errno;
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, argv[0].c_str(), std::strerror(err));
  std::fflush(stderr);
  ::_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

int exit_status_of(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 125;
}

}  // namespace crbox::runtime
