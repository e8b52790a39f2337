#include "runtime/app.h"

#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "runtime/caps.h"
#include "runtime/exec.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "util/error.h"

namespace crbox::runtime {

void apply_app_restrictions(const model::SandboxSpec& spec) {
  apply_rlimits(spec.rlimits);
  if (spec.gid || spec.uid) {
    drop_bounding_set(spec.capabilities);
    if (spec.gid) {
      gid_t g = *spec.gid;
      if (::setgroups(1, &g) != 0) throw_errno("cannot set the supplementary groups");
      if (::setresgid(g, g, g) != 0) throw_errno("cannot change to gid " + std::to_string(g));
    }
    if (spec.uid) {
      uid_t u = *spec.uid;
      if (::setresuid(u, u, u) != 0) throw_errno("cannot change to uid " + std::to_string(u));
    }
  }
  if (::geteuid() == 0) {
    apply_capabilities(spec.capabilities);
  } else if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    throw_errno("cannot clear the ambient capabilities");
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("cannot set no_new_privs");
  apply_seccomp(spec);
}

void apply_app_environment(const model::SandboxSpec& spec) {
  for (const auto& kv : spec.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw Error("bad environment setting '" + kv + "'");
    if (::setenv(kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str(), 1) != 0) throw_errno("setenv");
  }
  if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) throw_errno("cannot change to the directory " + spec.cwd);
}

void exec_sandboxed_app(const model::SandboxSpec& spec) {
  try {
    apply_app_environment(spec);
    apply_app_restrictions(spec);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, e.what());
    std::fflush(stderr);
    ::_exit(125);
  }
  exec_or_exit(spec.argv);
}

}  // namespace crbox::runtime
