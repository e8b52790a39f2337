// Recreating an image's processes as the tree they were: each new process, still running
// cr_restart's code, sets itself up (session, group, files, cwd, limits), creates its own children
// at their pids (so parents, sessions and inherited pipes come out right), maps its trampoline,
// reports on the shared sync pipe and waits to be driven as a puppet. Zombies are recreated as
// children that exit at once with their saved status and are not reaped.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "checkpoint/image/bundle.h"
#include "checkpoint/model/process.h"
#include "checkpoint/restore/apply.h"
#include "checkpoint/restore/restorer.h"

namespace crbox::restore {

struct TreePlan {
  const model::Image* img = nullptr;
  RestoreOptions opt;
  bool sandboxed = false;
  uint64_t trampoline = 0;  // the same address in every process: all start as copies of cr_restart
  int sync_fd = -1;         // write end of the report pipe, inherited by every new process
  FileTables files;
  std::vector<int> libcr_pages;  // kept by cr_restart: libcr.cc         // pipes, shared descriptions, contents: inherited by every new process
  std::map<int32_t, int> cwd_fds;                    // pid -> directory opened by cr_restart
  std::map<int32_t, std::vector<size_t>> children;   // ppid -> indexes into img->processes
  // Orphans (parent: the sandbox's init) in a session led by another process of the image, by that
  // leader's pid: the leader makes them through a short-lived helper (at the pid of their group's
  // dead leader, if it is gone) that exits at once, so they end up in the right session and group
  // with the init as parent, as they were.
  std::map<int32_t, std::vector<size_t>> orphans_by_session;
  std::set<int32_t> shared_groups;  // process groups other processes of the image belong to
  std::map<std::string, int> fifo_holders;           // named pipe -> an O_RDWR descriptor on it
  int fd_base = 100;                                 // our descriptors sit at or above this

  // Everything above that cr_restart opened for the new processes (closed once they exist).
  std::set<int> inherited_fds() const;
};

// Prepares the plan in cr_restart: trampoline address, report pipe, pipe table, files outside a
// sandbox. Returns the read end of the report pipe.
int prepare_tree(TreePlan& plan);

// Makes what the new processes inherit and must be made where their paths and namespaces are:
// opens every named pipe the image's processes hold, read-write, so none of their own opens
// blocks (fifo(7)), refilled with the bytes it held; the unix socket pairs of the image; and each
// open file description several fds share, once. Runs in cr_restart, or inside a new sandbox's
// init (after its /tmp and ipc objects are back).
void open_shared_objects(TreePlan& plan);

// Creates image process `idx` as a child of the caller, at its pid, running the set-up above.
// Returns its pid as the caller sees it.
// `orphan`: the process will lose its maker at once, so it gets no parent-death signal.
pid_t spawn_process(const TreePlan& plan, size_t idx, bool orphan = false);

// In cr_restart: waits for every new process to report, seizes them all, rebuilds each from the
// bundle in image order, fixes process groups, and lets them all go together. `host_pid_of` maps
// an image pid to the pid cr_restart sees. All or nothing: on failure every new process is killed.
// `root_is_child`: the root process is cr_restart's own child (unsandboxed).
void restore_tree(const TreePlan& plan, int sync_read, image::BundleReader& reader, bool root_is_child,
                  pid_t (*host_pid_of)(const TreePlan&, int32_t, pid_t), pid_t anchor, int stop_signal);

// Inner pid -> host pid by walking the descendants of `anchor` (the sandbox's init) and reading
// their NSpid; identity outside a sandbox.
pid_t host_pid_in_tree(const TreePlan& plan, int32_t inner, pid_t anchor);

}  // namespace crbox::restore
