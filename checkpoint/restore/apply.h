// The appliers: each puts one part of the model back. Plain state (files, cwd, limits) is set by
// the new process itself, in ordinary C++, before it becomes a puppet; the rest is injected into
// the puppet as syscalls once its address space is the image's. Each has its twin in
// checkpoint/dump/ under the same file name.
#pragma once

#include <sys/stat.h>
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
// Descriptors made before the processes and inherited by all of them.
struct FileTables {
  PipeTable pipes;
  // Open file descriptions made once for several fds of the image (Fd::desc_id shared), or made
  // in cr_restart because they lie outside a sandbox: desc_id -> fd. Each holder dups it.
  std::map<uint64_t, int> objects;
  // Content held in the bundle, as memfds: content id -> fd. Kept open in every new process until
  // its memory is rebuilt (mappings of that content are made from it).
  std::map<uint64_t, int> contents;
};
void apply_files_in_child(const model::Process& p, const FileTables& tables, const std::set<int>& keep);
// files.cc: a new descriptor for `f` (not yet at its number), opened, created or reopened from
// `contents`, at its offset, with its description's locks (flock, OFD). Throws.
int make_fd(const model::Fd& f, const std::map<uint64_t, int>& contents);
// locks.cc: the locks `f` holds that belong to its open file description (flock(2), OFD), taken
// on `fd` when the description is made; and those that belong to the process (fcntl record
// locks), taken by the new process once `f` is at its number.
void apply_description_locks(int fd, const model::Fd& f);
void apply_process_locks(const model::Fd& f);
// contents.cc, in cr_restart right after the model is read: the bundle's content sections, each
// written into its content's memfd as it is read (content id -> memfd, close-on-exec).
std::map<uint64_t, int> receive_contents(const model::Image& img, image::BundleReader& reader);
// contents.cc, before the processes are made: a memfd per content of the bundle, at fds >= min_fd:
// those `received` (moved there), and an empty one for each empty file.
std::map<uint64_t, int> make_contents(const std::vector<model::FileContent>& contents, std::map<uint64_t, int> received,
                                      int min_fd);
// sockets.cc, in the new process: a socket that is not connected to another one of the image
// (bound, listening, a TCP connection through TCP_REPAIR, ...). Throws.
int make_socket(const model::Fd& f);
// sockets.cc, before the processes are made (in cr_restart, or in a new sandbox's init): the unix
// sockets connected to one another inside the image, made together and refilled; fills
// `objects[desc_id]` for both ends, at fds >= min_fd.
void make_socket_pairs(const model::Image& img, std::map<uint64_t, int>& objects, int min_fd);
// epoll.cc: an empty epoll instance; fill_epolls, in the new process once every fd is at its
// number, adds each set's entries (those already there, from a shared set, are skipped).
int make_epoll(const model::Fd& f);
void fill_epolls(const model::Process& p);
// inotify.cc: an inotify instance with its watches at their descriptors.
int make_inotify(const model::Fd& f);
// ipc.cc: a POSIX message queue opened by name; restore_mqueues recreates the image's queues with
// their messages (in cr_restart, or in a new sandbox's init), restore_sysv_ipc the System V objects
// at their ids (in a new sandbox's init).
int open_mqueue(const model::Fd& f);
// Returns the names of the queues it made (a failed restart outside a sandbox unlinks them).
std::vector<std::string> restore_mqueues(const model::Ipc& ipc, bool fresh_namespace);
void restore_sysv_ipc(const model::Ipc& ipc);
// ipc.cc, in cr_restart once every process holds its objects, before any runs: what the image had
// removed while still in use goes now (segments marked SHM_DEST, unlinked POSIX queues), and a
// sandbox's kernel.shm_rmid_forced is set, in the ipc namespace of `ns_pid` (a sandbox's init) or,
// with 0, cr_restart's own.
void finish_ipc(const model::Ipc& ipc, pid_t ns_pid);
// ipc.cc, injected: a System V segment attached (shmat(2)) where the image had it, for the first
// VMA of each attachment (the others are parts of it); the parts the image had unmapped go again.
void attach_sysv_shm(Puppet& pp, const model::Process& p, const model::Vma& v);
// ipc.cc, injected: the final protection of a VMA of an attachment, where it differs from the
// attachment's own.
void protect_sysv_shm(Puppet& pp, const model::Process& p, const model::Vma& v);
// console.cc, for a sandbox started with --tty (its restart has a new pty: runtime/console.h):
// restore_console_state, in the new init before any process is made, sets the saved termios and
// window size on the new pty; open_console opens it again for an fd of kind console (in the init
// or a new process); take_console_foreground, in each new process once it has made its session or
// group, puts the saved foreground group back in the foreground (done by that group's leader).
void restore_console_state(const model::Console& c);
int open_console(const model::Fd& f);
void take_console_foreground(const model::Process& p);
// files.cc, before the processes are made: every pipe of the image, refilled, at fds >= min_fd that
// every new process inherits.
PipeTable make_pipe_table(const std::vector<model::Pipe>& pipes, int min_fd);
// task.cc: cwd (unless `cwd_done`: already entered through a directory cr_restart opened outside
// a sandbox), umask, rlimits, personality.
void apply_task_in_child(const model::Process& p, bool cwd_done = false);

// libcr.cc: copies (kept by cr_restart) of the memfds holding the image's libcr pages; then, just
// before the processes run, mark_restarted tells their waiting callbacks they were restarted from
// `source` (runtime/libcr/protocol.h).
std::vector<int> keep_libcr_pages(const model::Image& img, const std::map<uint64_t, int>& contents);
// `requester`: cr_restart's pid as the processes see it (0 in a sandbox).
void mark_restarted(const std::vector<int>& pages, const std::string& source, int32_t requester);
// libcr.cc: marks cr_restart itself as omitted from checkpoints (BLCR's cr_restart --omit-*): a
// checkpoint of the restored processes' group or session then leaves their cr_restart out.
void omit_self_from_checkpoints();

// --- Checks in cr_restart before anything is created ---
// `host_path` turns a path as the process saw it into one cr_restart can check ("" = cannot be
// seen from here, skip).
// `accept_changed` (--accept-changed-files): a file whose size or mtime changed is used as it is.
// memory.cc: every mapped file still exists and has not changed (unless its content is in the
// bundle); the vDSO matches ours.
void check_memory_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path,
                          bool accept_changed);
// files.cc: every file to reopen exists and has not changed.
void check_file_sources(const model::Process& p, const std::function<std::string(const std::string&)>& host_path,
                        bool accept_changed);
// files.cc: "" if `now` has the size and mtime `was` recorded, else what differs.
std::string describe_change(const model::FileId& was, const struct stat& now);
// relocate.cc: BLCR's --relocate OLD=NEW: every path of the image under OLD (files, mappings, the
// executable, working directories, watches) moves under NEW. Rules apply in order, first match.
void relocate_paths(model::Image& img, const std::vector<std::pair<std::string, std::string>>& rules);

// --- Injected into the puppet ---
// memory.cc: replaces the puppet's address space with the image's layout (pages not yet filled).
// `shared` records where each shared memory object was first recreated, so later VMAs of the same
// object (in this process or the next) map it again instead of making a new one.
struct SharedMapping {
  pid_t pid = 0;  // the image's pid of the process holding it
  uint64_t start = 0, end = 0, pgoff = 0;
};
using SharedMemory = std::map<uint64_t, SharedMapping>;
// `contents`: FileTables::contents, the memfds this process inherited (content id -> fd).
void replace_address_space(Puppet& pp, const model::Process& p, SharedMemory& shared,
                           const std::map<uint64_t, int>& contents);
// memory.cc: writes one page batch into the puppet's memory.
void fill_pages(Puppet& pp, const image::PageBatch& b);
// memory.cc: final protections and the mm fields (prctl PR_SET_MM_MAP); then closes `contents`.
void finish_address_space(Puppet& pp, const model::Process& p, const std::map<uint64_t, int>& contents);
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
