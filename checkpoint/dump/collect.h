// The collectors: each fills one part of the model from a frozen process. Each has its twin in
// checkpoint/restore/ under the same file name.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <vector>

#include "checkpoint/dump/freeze.h"
#include "checkpoint/dump/remote_session.h"
#include "checkpoint/image/bundle.h"
#include "checkpoint/model/process.h"
#include "checkpoint/proc/maps.h"

namespace crbox::dump {

// task.cc: pids, comm, credentials, cwd, root, umask, personality, rlimits.
void collect_task(pid_t pid, model::Process& p);
// creds.cc: securebits (asked of the task itself), and the seccomp filters (through ptrace).
void collect_securebits(RemoteSession& rs, model::Process& p);
void collect_seccomp(pid_t pid, model::Process& p);
// signals.cc: handlers and the process-wide pending queue.
void collect_signals(pid_t pid, RemoteSession& rs, model::Process& p);
// threads.cc: every thread's registers, mask, private pending signals, rseq and robust list
// (before anything is injected), then what only the thread can tell: altstack, clear_child_tid.
void collect_thread_registers(const FrozenProcess& fp, model::Process& p);
void collect_thread_injected(const FrozenProcess& fp, RemoteSession& rs, model::Process& p);
// files.cc: the identity a restore checks a file against (device, inode, size, mtime).
model::FileId file_id(const struct stat& st);
// files.cc: open file descriptors, and the content of pipes held inside the image.
void collect_files(pid_t pid, model::Process& p);
void collect_pipes(pid_t pid, const model::Process& p, std::vector<model::Pipe>& pipes);
// files.cc: once every process is collected: pipes with both ends in the image stay pipes; one
// with an end outside becomes stdio on fds 0-2 and is refused elsewhere.
void resolve_pipes(std::vector<model::Process>& procs);
// timers.cc: interval timers.
void collect_timers(RemoteSession& rs, model::Process& p);
// memory.cc: the VMAs and mm fields.
void collect_memory(pid_t pid, const std::vector<proc::MapsEntry>& maps, RemoteSession& rs, model::Process& p);
// pages.cc: the content of the private pages that exist, streamed as page batches. Returns the
// number of pages written.
uint64_t dump_pages(pid_t pid, model::Process& p, image::BundleWriter& w);

}  // namespace crbox::dump
