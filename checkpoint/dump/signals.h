#pragma once

#include <sys/types.h>

#include <vector>

#include "checkpoint/model/process.h"

namespace crbox::dump {

// The queued signals of a ptrace-stopped task: its own queue, or with `shared` its process's.
std::vector<model::PendingSignal> peek_pending(pid_t tid, bool shared);

}  // namespace crbox::dump
