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
#include "checkpoint/proc/fdinfo.h"
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
// files.cc: the close-on-exec flag of each fd fdinfo shows as close-on-exec, asked of the process
// (F_GETFD), since fdinfo cannot always tell.
void confirm_cloexec(RemoteSession& rs, model::Process& p);
// files.cc: once every process is collected: which fds share one open file description
// (kcmp(2), KCMP_FILE), as Fd::desc_id.
void resolve_descriptions(std::vector<model::Process>& procs);
// contents.cc: what to keep of files' content in the bundle (BLCR's --save-* options).
struct SaveOptions {
  bool exe = false;      // the executable
  bool priv = false;     // files mapped MAP_PRIVATE (shared libraries among them)
  bool shared = false;   // files mapped MAP_SHARED
};
// contents.cc: which file contents go in the bundle — memfds, files deleted while open or mapped,
// the files `save` asks for: a model::FileContent each in Image::contents (id, path, mode, identity,
// size; no bytes), and where to read it; sets the content ids of fds, VMAs and executables.
struct ContentSource {
  uint64_t id = 0;
  std::string ref;   // /proc/PID/fd/N, /proc/PID/map_files/A-B or /proc/PID/exe
  std::string path;  // as the process saw it, for messages
  uint64_t dev = 0, ino = 0;
  uint64_t size = 0;  // FileContent::size: what the content sections will hold
};
std::vector<ContentSource> collect_contents(model::Image& img, const SaveOptions& save);
// contents.cc: after the model, each content's bytes, streamed from its source into content
// sections in bounded chunks (never a whole file in memory).
void dump_contents(const std::vector<ContentSource>& sources, image::BundleWriter& w);
// A content id placeholder set by the collectors: "this fd or VMA needs its file's content".
inline constexpr uint64_t kContentPending = ~0ull;
// locks.cc: the locks an fd holds, from its fdinfo "lock:" lines.
void collect_locks(pid_t pid, const proc::FdInfo& info, model::Fd& f);
// sockets.cc: a socket's family, type, addresses, state, options and queued data (through a copy
// of the descriptor, pidfd_getfd(2)). Throws an Error naming pid, fd and kind when unsupported.
void collect_socket(pid_t pid, int fd, model::Fd& f);
// sockets.cc: once every process is collected: a unix socket connected to one outside the image
// is refused (on fds 0-2 it becomes stdio, like a pipe).
void resolve_sockets(std::vector<model::Process>& procs);
// epoll.cc: an epoll set's entries, from fdinfo "tfd:" lines.
void collect_epoll(pid_t pid, const proc::FdInfo& info, model::Fd& f);
// inotify.cc: an inotify instance's watches, from fdinfo "inotify wd:" lines, with their paths.
void collect_inotify(pid_t pid, const proc::FdInfo& info, model::Fd& f);
// ipc.cc: is this descriptor (/proc/PID/fd/N) a POSIX message queue? If so, fills the fd (kind
// mqueue, name in Fd::path).
bool collect_mqueue(pid_t pid, int fd, model::Fd& f);
// ipc.cc: the System V segment id of a mapping (its file at `map_file`, /proc/PID/map_files/A-B)
// if it is a shmat(2) attachment; throws for what is unsupported (SHM_HUGETLB).
std::optional<int32_t> sysv_shm_id(pid_t pid, const proc::MapsEntry& m, const std::string& map_file);
// ipc.cc: the content of every POSIX message queue the processes hold, and, for a sandbox
// (`sandbox_pid`: any of its processes, 0 = none), the System V objects of its ipc namespace.
void collect_ipc(const std::vector<model::Process>& procs, pid_t sandbox_pid, model::Ipc& ipc);
// console.cc: is this descriptor (stat `st`) on the terminal of the sandbox `pid` lives in (the
// pty slave that is its init's controlling terminal, cr_run --tty)? If so, fills the fd (kind
// console).
bool collect_console(pid_t pid, int fd, const struct stat& st, model::Fd& f);
// console.cc: the state of the sandbox's terminal (termios, window size, foreground group as the
// sandbox numbers it), or nullopt when its init has no controlling terminal (no --tty).
std::optional<model::Console> collect_console_state(pid_t init_pid, const std::vector<model::Process>& procs);
// timers.cc: interval timers.
void collect_timers(RemoteSession& rs, model::Process& p);
// memory.cc: the VMAs and mm fields.
void collect_memory(pid_t pid, const std::vector<proc::MapsEntry>& maps, RemoteSession& rs, model::Process& p);
// pages.cc: the content of the private pages that exist, streamed as page batches. Returns the
// number of pages written.
uint64_t dump_pages(pid_t pid, model::Process& p, image::BundleWriter& w);

}  // namespace crbox::dump
