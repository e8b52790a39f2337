// The application side of a sandbox: what the process that becomes the user's program does to
// itself after the crbox init forked it and before it execs.
#pragma once

#include "checkpoint/model/sandbox_spec.h"

namespace crbox::runtime {

// In the calling process, in this order (each step needs privileges the next one drops):
//  1. rlimits (raising a hard limit needs CAP_SYS_RESOURCE);
//  2. with --uid/--gid: the bounding set reduced, then setgroups(2) to just the gid, setgid,
//     setuid; leaving uid 0 clears the permitted and effective sets (capabilities(7), "Effect of
//     user ID changes on capabilities"), so a non-root application has no capabilities, as in Docker;
//  3. capabilities (still uid 0): bounding, permitted and effective = spec.capabilities,
//     inheritable and ambient empty;
//  4. PR_SET_NO_NEW_PRIVS (prctl(2));
//  5. the seccomp filter (last: it may deny what the steps above use).
// Throws crbox::Error.
void apply_app_restrictions(const model::SandboxSpec& spec);

// spec.env (K=V, overriding the inherited environment) and spec.cwd. Throws crbox::Error.
void apply_app_environment(const model::SandboxSpec& spec);

// The default application start inside the sandbox: environment, restrictions, exec of spec.argv.
// Errors are printed as "<tool>: <sentence>" and end the process with 125 (set-up failed), 127 or
// 126 (exec failed, see exec.h). Never returns.
[[noreturn]] void exec_sandboxed_app(const model::SandboxSpec& spec);

}  // namespace crbox::runtime
