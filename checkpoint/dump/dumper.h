// cr_checkpoint's engine: decide what to dump, check it may be touched, freeze it, collect the
// model, stream the bundle, and release the processes as asked.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "checkpoint/dump/freeze.h"

namespace crbox::dump {

enum class Scope { tree, pid, pgid, sid };
enum class TracedPolicy { error, skip, allow };

struct DumpOptions {
  pid_t id = 0;  // a pid, or a pgid/sid with those scopes
  Scope scope = Scope::tree;
  int after_signal = 0;  // sent as the process is released (--stop, --kill, ...); 0: it runs on
  TracedPolicy ptraced = TracedPolicy::error;
  TracedPolicy ptracer = TracedPolicy::error;
  bool verbose = false;
  // BLCR's --save-exe/--save-private/--save-shared/--save-all: which files' content goes into the
  // bundle besides what must (memfds, deleted files).
  bool save_exe = false, save_private = false, save_shared = false;
};

struct DumpStats {
  int32_t processes = 0;
  uint64_t pages = 0;
  uint64_t bytes = 0;
  uint64_t frozen_us = 0;
  uint64_t total_us = 0;
};

// Everything that must be true before a process is touched: it exists, it is not a kernel thread,
// the system's init, ourselves, a zombie, or traced by someone else. Throws crbox::Error.
void check_dumpable(pid_t pid, const DumpOptions& opt);

// Dumps into `out_fd` (a file or pipe) named `out_name` in messages. `before_release` runs after the
// bundle is complete and before the processes are released (the caller makes the file durable and
// gives it its final name there, so --kill only kills once the image is safe). On any failure the
// processes are released as they were and the exception propagates.
DumpStats checkpoint(const DumpOptions& opt, int out_fd, const std::string& out_name,
                     const std::function<void()>& before_release);

}  // namespace crbox::dump
