// The appliers: each puts one part of the model back. Plain state (files, cwd, limits) is set by
// the new process itself, in ordinary C++, before it becomes a puppet; the rest is injected into
// the puppet as syscalls once its address space is the image's. Each has its twin in
// checkpoint/dump/ under the same file name.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "checkpoint/image/bundle.h"
#include "checkpoint/model/process.h"
#include "checkpoint/restore/puppet.h"

namespace crbox::restore {

// --- In the new process, before it stops (throwing crbox::Error on failure) ---
// files.cc: every fd at its number, flags and offset; stdio fds that were terminals, pipes or
// sockets stay the ones inherited from cr_restart; pipes inside the image are made anew and
// refilled. The fds in `keep` (the sync pipe) survive; the pipe table's fds are closed.
using PipeTable = std::map<uint64_t, std::pair<int, int>>;  // pipe id -> (read end, write end)
void apply_files_in_child(const model::Process& p, const PipeTable& pipes, const std::set<int>& keep,
                          const std::map<int, int>& preopened = {});
// files.cc, before the processes are made: every pipe of the image, refilled, at fds >= min_fd that
// every new process inherits.
PipeTable make_pipe_table(const std::vector<model::Pipe>& pipes, int min_fd);
// files.cc, in cr_restart before a sandbox is made: opens the files that lived outside the
// sandbox's mount namespace; returns image fd -> inherited fd, for apply_files_in_child.
std::map<int, int> open_outside_files(const model::Process& p, int min_fd);
// task.cc: cwd (unless `cwd_done`: already entered through a directory cr_restart opened outside
// a sandbox), umask, rlimits, personality.
void apply_task_in_child(const model::Process& p, bool cwd_done = false);

// --- Checks in cr_restart before anything is created ---
// `host_path` turns a path as the process saw it into one cr_restart can check ("" = cannot be
// seen from here, skip).
// memory.cc: every mapped file still exists and is the same file; the vDSO matches ours.
void check_memory_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path);
// files.cc: every file to reopen exists.
void check_file_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path);

// --- Injected into the puppet ---
// memory.cc: replaces the puppet's address space with the image's layout (pages not yet filled).
// `shared` records where each shared memory object was first recreated, so later VMAs of the same
// object (in this process or the next) map it again instead of making a new one.
struct SharedMapping {
  pid_t pid = 0;  // the image's pid of the process holding it
  uint64_t start = 0, end = 0, pgoff = 0;
};
using SharedMemory = std::map<uint64_t, SharedMapping>;
void replace_address_space(Puppet& pp, const model::Process& p, SharedMemory& shared);
// memory.cc: writes one page batch into the puppet's memory.
void fill_pages(Puppet& pp, const image::PageBatch& b);
// memory.cc: final protections and the mm fields (prctl PR_SET_MM_MAP).
void finish_address_space(Puppet& pp, const model::Process& p);
// signals.cc: every signal's disposition.
void apply_signals(Puppet& pp, const model::Process& p);
// threads.cc: one thread's altstack, rseq, robust list, clear_child_tid and name, injected through
// `inj` (the leader's or a created thread's); registers come last (Puppet::release).
void apply_thread_state(Puppet& pp, arch::Injector& inj, const model::Thread& t);
// timers.cc: interval timers.
void apply_timers(Puppet& pp, const model::Process& p);
// creds.cc: groups, uids, gids, capabilities, securebits, no_new_privs — all per task in the
// kernel, so applied to each thread through its injector.
void apply_creds(Puppet& pp, arch::Injector& inj, const model::Creds& c);
// creds.cc: the process's seccomp filters, to every thread.
void apply_seccomp_filters(Puppet& pp, const model::Process& p);

}  // namespace crbox::restore
