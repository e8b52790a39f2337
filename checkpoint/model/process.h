// The image model of a process tree: plain structs that dump fills from the kernel and restore
// applies to it. Every struct has a cereal serialize(); field order is part of the bundle format
// (docs/image-format.md), so append fields and bump the format's minor version.
#pragma once

#include <cereal/types/array.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/model/console.h"
#include "checkpoint/model/events.h"
#include "checkpoint/model/ipc.h"
#include "checkpoint/model/sandbox_spec.h"
#include "checkpoint/model/socket.h"

namespace crbox::model {

// Raw register sets as PTRACE_GETREGSET returns them (x86_64: NT_PRSTATUS, NT_X86_XSTATE).
struct Registers {
  std::vector<uint8_t> gp;      // struct user_regs_struct (216 bytes on x86_64)
  std::vector<uint8_t> xstate;  // XSAVE area; its size depends on the CPU

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(gp), CEREAL_NVP(xstate));
  }
};

// What a VMA is backed by, as /proc/PID/maps names it.
enum class VmaKind : uint8_t {
  anon_private = 0,  // MAP_PRIVATE|MAP_ANONYMOUS (includes [heap])
  anon_shared = 1,   // MAP_SHARED|MAP_ANONYMOUS (shmem behind /dev/zero)
  file_private = 2,  // MAP_PRIVATE of a file
  file_shared = 3,   // MAP_SHARED of a file
  vdso = 4,          // [vdso]: restored by moving the restorer's own vDSO
  vvar = 5,          // [vvar], [vvar_vclock]: move with [vdso], never dumped
  vsyscall = 6,      // [vsyscall]: fixed by the kernel, neither dumped nor restored
  sysv_shm = 7,      // shmat(2) of a System V segment (Vma::shmid), attached again on restore
};

struct FileId {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(dev), CEREAL_NVP(ino), CEREAL_NVP(size), CEREAL_NVP(mtime_ns));
  }
};

struct Vma {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t prot = 0;    // PROT_READ|PROT_WRITE|PROT_EXEC
  uint32_t flags = 0;   // MAP_PRIVATE or MAP_SHARED, plus MAP_GROWSDOWN for stacks
  uint64_t pgoff = 0;   // file offset in bytes
  VmaKind kind = VmaKind::anon_private;
  std::string name;     // path, or "[heap]", "[stack]", "[vdso]", ... ; "" for plain anonymous
  FileId file;          // identity of the mapped file when kind is file_*
  // kind == anon_shared: the shared memory object's inode. VMAs of the image with the same id (in
  // one process or several) map the same memory, and are restored mapping one object again.
  uint64_t shmem_id = 0;
  // kind == file_*: nonzero when the file's content is in the bundle (Image::contents): a deleted
  // file, a memfd, or a file saved by --save-*. The mapping is restored from that content.
  uint64_t content_id = 0;
  int32_t shmid = -1;  // kind == sysv_shm

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(start), CEREAL_NVP(end), CEREAL_NVP(prot), CEREAL_NVP(flags), CEREAL_NVP(pgoff),
      CEREAL_NVP(kind), CEREAL_NVP(name), CEREAL_NVP(file), CEREAL_NVP(shmem_id), CEREAL_NVP(content_id),
      CEREAL_NVP(shmid));
  }
};

// prctl(PR_SET_MM_MAP) fields (see prctl(2)); the values of /proc/PID/stat and brk(0).
struct MmFields {
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint64_t> auxv;  // /proc/PID/auxv as 64-bit words, AT_NULL included
  std::string exe;             // /proc/PID/exe
  FileId exe_id;
  uint64_t vdso_hash = 0;      // checksum of the [vdso] code: a restore needs the very same vDSO
  uint64_t exe_content_id = 0; // the executable's content is in the bundle (--save-exe, deleted)

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(start_code), CEREAL_NVP(end_code), CEREAL_NVP(start_data), CEREAL_NVP(end_data),
      CEREAL_NVP(start_brk), CEREAL_NVP(brk), CEREAL_NVP(start_stack), CEREAL_NVP(arg_start),
      CEREAL_NVP(arg_end), CEREAL_NVP(env_start), CEREAL_NVP(env_end), CEREAL_NVP(auxv), CEREAL_NVP(exe),
      CEREAL_NVP(exe_id), CEREAL_NVP(vdso_hash), CEREAL_NVP(exe_content_id));
  }
};

enum class FdKind : uint8_t {
  regular = 0,    // a file reopened by path at its offset
  device = 1,     // a character device reopened by path (/dev/null, /dev/zero, /dev/urandom, ...)
  directory = 2,  // an O_DIRECTORY/O_PATH open of a directory
  stdio = 3,      // a terminal, pipe or socket on fd 0-2: becomes cr_restart's own
  pipe = 4,       // one end of a pipe whose both ends are in the image (Fd::pipe_id names it)
  fifo = 5,       // a named pipe, reopened by path; Fd::pipe_id (its inode) keys its content
  eventfd = 6,    // eventfd(2): Fd::counter, Fd::semaphore
  signalfd = 7,   // signalfd(2): Fd::sigmask
  timerfd = 8,    // timerfd_create(2): Fd::clockid, Fd::value_ns, Fd::interval_ns, Fd::counter (ticks)
  memfd = 9,      // memfd_create(2): content in Image::contents (Fd::content_id), Fd::seals
  epoll = 10,     // epoll_create(2): Fd::epoll, its set
  inotify = 11,   // inotify_init(2): Fd::watches
  socket = 12,    // Fd::socket
  mqueue = 13,    // a POSIX message queue (mq_open(3)); Fd::path is its name, content in Image::ipc
  console = 14,   // the sandbox's terminal (cr_run --tty): becomes the restarted sandbox's
};

// A lock held through a file (fcntl(2) record locks, open file description locks, flock(2)), as
// /proc/PID/fdinfo lists it.
enum class LockKind : uint8_t { posix = 0, ofd = 1, flock = 2 };
struct FileLock {
  LockKind kind = LockKind::posix;
  bool write = false;  // F_WRLCK / LOCK_EX, else F_RDLCK / LOCK_SH
  uint64_t start = 0;
  uint64_t len = 0;    // 0: to the end of the file (and beyond)

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(kind), CEREAL_NVP(write), CEREAL_NVP(start), CEREAL_NVP(len));
  }
};

struct Fd {
  int32_t fd = -1;
  FdKind kind = FdKind::regular;
  std::string path;
  int32_t flags = 0;  // open flags from fdinfo (O_ACCMODE, O_APPEND, O_NONBLOCK, ...)
  bool cloexec = false;
  uint64_t pos = 0;
  uint32_t mode = 0;  // st_mode
  FileId file;
  uint64_t pipe_id = 0;  // kind == pipe: the pipe's inode, the key into Image::pipes
  // The file sits on a mount outside the process's mount namespace (a sandboxed program's
  // stdout redirected to a host file, say): cr_restart reopens it in its own namespace and hands
  // it down, since the path cannot be reached from inside the new sandbox.
  bool outside = false;
  // Kernel objects without a path (from /proc/PID/fdinfo, proc(5)).
  uint64_t counter = 0;    // eventfd: its count; timerfd: expirations not yet read
  bool semaphore = false;  // eventfd: EFD_SEMAPHORE
  uint64_t sigmask = 0;    // signalfd
  int32_t clockid = 0;     // timerfd
  uint64_t value_ns = 0, interval_ns = 0;  // timerfd: time left, period
  // The open file description: fds (in one process or several) with the same desc_id share one,
  // as dup(2) and fork(2) made them (one offset, one set of flags); restored as one again.
  uint64_t desc_id = 0;
  uint64_t content_id = 0;  // memfd, or a regular file deleted while open: Image::contents
  uint32_t seals = 0;       // memfd: F_GET_SEALS
  std::vector<FileLock> locks;
  std::vector<EpollTarget> epoll;
  std::vector<InotifyWatch> watches;
  std::optional<Socket> socket;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(fd), CEREAL_NVP(kind), CEREAL_NVP(path), CEREAL_NVP(flags), CEREAL_NVP(cloexec),
      CEREAL_NVP(pos), CEREAL_NVP(mode), CEREAL_NVP(file), CEREAL_NVP(pipe_id), CEREAL_NVP(outside),
      CEREAL_NVP(counter), CEREAL_NVP(semaphore), CEREAL_NVP(sigmask), CEREAL_NVP(clockid), CEREAL_NVP(value_ns),
      CEREAL_NVP(interval_ns), CEREAL_NVP(desc_id), CEREAL_NVP(content_id), CEREAL_NVP(seals), CEREAL_NVP(locks),
      CEREAL_NVP(epoll), CEREAL_NVP(watches), CEREAL_NVP(socket));
  }
};

// A pipe held inside the image, with the bytes that sat in it at the checkpoint.
struct Pipe {
  uint64_t id = 0;        // inode of the pipe at the checkpoint
  uint32_t capacity = 0;  // F_GETPIPE_SZ
  std::vector<uint8_t> data;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(id), CEREAL_NVP(capacity), CEREAL_NVP(data));
  }
};

// struct kernel_sigaction as rt_sigaction(2) sees it.
struct SigAction {
  uint64_t handler = 0;  // SIG_DFL = 0, SIG_IGN = 1
  uint64_t flags = 0;
  uint64_t restorer = 0;
  uint64_t mask = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(handler), CEREAL_NVP(flags), CEREAL_NVP(restorer), CEREAL_NVP(mask));
  }
};

// A queued signal as PTRACE_PEEKSIGINFO returns it (the raw 128-byte siginfo_t).
struct PendingSignal {
  std::vector<uint8_t> siginfo;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(siginfo));
  }
};

struct Thread {
  int32_t tid = 0;  // in the innermost pid namespace of the image
  Registers regs;
  uint64_t sigmask = 0;
  std::vector<PendingSignal> pending;  // private queue
  uint64_t altstack_sp = 0, altstack_size = 0;
  int32_t altstack_flags = 0;  // SS_DISABLE when none
  uint64_t rseq_addr = 0;      // 0 = not registered
  uint32_t rseq_len = 0, rseq_sig = 0;
  uint64_t robust_list = 0, robust_list_len = 0;
  uint64_t clear_child_tid = 0;
  std::string comm;  // /proc/PID/task/TID/comm

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(tid), CEREAL_NVP(regs), CEREAL_NVP(sigmask), CEREAL_NVP(pending), CEREAL_NVP(altstack_sp),
      CEREAL_NVP(altstack_size), CEREAL_NVP(altstack_flags), CEREAL_NVP(rseq_addr), CEREAL_NVP(rseq_len),
      CEREAL_NVP(rseq_sig), CEREAL_NVP(robust_list), CEREAL_NVP(robust_list_len), CEREAL_NVP(clear_child_tid),
      CEREAL_NVP(comm));
  }
};

struct Creds {
  std::array<uint32_t, 4> uids{};  // real, effective, saved, fs
  std::array<uint32_t, 4> gids{};
  std::vector<uint32_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  uint32_t securebits = 0;
  bool no_new_privs = false;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(uids), CEREAL_NVP(gids), CEREAL_NVP(groups), CEREAL_NVP(cap_inh), CEREAL_NVP(cap_prm),
      CEREAL_NVP(cap_eff), CEREAL_NVP(cap_bnd), CEREAL_NVP(cap_amb), CEREAL_NVP(securebits),
      CEREAL_NVP(no_new_privs));
  }
};

struct Rlimit {
  int32_t resource = 0;
  uint64_t cur = 0, max = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(resource), CEREAL_NVP(cur), CEREAL_NVP(max));
  }
};

// getitimer(2): ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF; times in microseconds.
struct Itimer {
  int32_t which = 0;
  uint64_t interval_us = 0, value_us = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(which), CEREAL_NVP(interval_us), CEREAL_NVP(value_us));
  }
};

struct Process {
  int32_t pid = 0, ppid = 0, pgid = 0, sid = 0;  // innermost namespace of the image
  int32_t host_pid = 0;                          // as seen by cr_checkpoint, for messages
  std::string comm;
  Creds creds;
  uint32_t umask = 022;
  std::string cwd;
  std::string root;
  uint32_t personality = 0;
  std::vector<Rlimit> rlimits;
  std::vector<SigAction> sigactions;             // index i is signal i+1, 64 entries
  std::vector<PendingSignal> shared_pending;     // process-wide queue
  std::vector<Itimer> itimers;
  MmFields mm;
  std::vector<Vma> vmas;
  std::vector<Fd> fds;
  std::vector<Thread> threads;                   // threads[0] is the leader
  bool cwd_outside = false;  // the cwd is on a mount outside the process's mount namespace (see Fd)
  // A zombie: it has exited and its parent has not reaped it yet. Only the ids, comm and
  // wait status are kept; it is recreated as a process that exits at once with that status.
  bool zombie = false;
  int32_t exit_status = 0;  // as wait(2) reports it
  // The seccomp filters in force (seccomp(2)), oldest first, each as its raw BPF instructions
  // (struct sock_filter, 8 bytes each): a sandbox's policy and any the program added itself.
  std::vector<std::vector<uint8_t>> seccomp_filters;
  std::vector<PosixTimer> posix_timers;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(pid), CEREAL_NVP(ppid), CEREAL_NVP(pgid), CEREAL_NVP(sid), CEREAL_NVP(host_pid),
      CEREAL_NVP(comm), CEREAL_NVP(creds), CEREAL_NVP(umask), CEREAL_NVP(cwd), CEREAL_NVP(root),
      CEREAL_NVP(personality), CEREAL_NVP(rlimits), CEREAL_NVP(sigactions), CEREAL_NVP(shared_pending),
      CEREAL_NVP(itimers), CEREAL_NVP(mm), CEREAL_NVP(vmas), CEREAL_NVP(fds), CEREAL_NVP(threads),
      CEREAL_NVP(cwd_outside), CEREAL_NVP(zombie), CEREAL_NVP(exit_status), CEREAL_NVP(seccomp_filters),
      CEREAL_NVP(posix_timers));
  }
};

// Clocks of the sandbox's time namespace at the checkpoint, so a restart continues them.
struct TimeState {
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC as the processes saw it
  int64_t boottime_ns = 0;   // CLOCK_BOOTTIME as the processes saw it

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(monotonic_ns), CEREAL_NVP(boottime_ns));
  }
};

// One entry of a sandbox's private /tmp (a tmpfs that lives and dies with the sandbox).
struct TmpEntry {
  std::string path;  // relative to /tmp; parents come before their entries
  uint32_t mode = 0;  // st_mode: type and permissions (directory, regular file, symlink, FIFO)
  uint32_t uid = 0, gid = 0;
  int64_t mtime_ns = 0;
  std::string link;           // a symlink's target
  std::vector<uint8_t> data;  // a regular file's content

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(path), CEREAL_NVP(mode), CEREAL_NVP(uid), CEREAL_NVP(gid), CEREAL_NVP(mtime_ns), CEREAL_NVP(link),
      CEREAL_NVP(data));
  }
};

struct Sandbox {
  std::string id;  // the registry id of the checkpointed sandbox
  SandboxSpec spec;
  TimeState time;
  std::vector<TmpEntry> tmp;  // the content of its private /tmp
  std::optional<Console> console;  // its terminal (spec.tty), as the processes saw it

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(id), CEREAL_NVP(spec), CEREAL_NVP(time), CEREAL_NVP(tmp), CEREAL_NVP(console));
  }
};

// A file whose content is kept in the bundle: a memfd, a file deleted while open, or a mapped file
// saved with --save-*. Restored as a memfd holding the same bytes. The bytes themselves are not in
// the model: they follow it in the bundle's content sections (docs/image-format.md), so the model
// stays small whatever the files weigh.
struct FileContent {
  uint64_t id = 0;    // Fd::content_id, Vma::content_id, MmFields::exe_content_id
  std::string path;   // as the process saw it (a memfd: "/memfd:NAME")
  uint32_t mode = 0;  // st_mode
  FileId file;
  uint64_t size = 0;  // bytes, all in the content sections

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(id), CEREAL_NVP(path), CEREAL_NVP(mode), CEREAL_NVP(file), CEREAL_NVP(size));
  }
};

// Everything in a bundle but the page data.
struct Image {
  std::string hostname;          // the machine it was taken on
  int64_t created_unix_ns = 0;
  int32_t root_pid = 0;          // the process the user named
  std::optional<Sandbox> sandbox;  // set when the processes lived in a crbox sandbox
  std::vector<Process> processes;  // parents before children
  std::vector<Pipe> pipes;
  std::vector<FileContent> contents;
  // SysV objects of a sandbox's ipc namespace, and the POSIX message queues the processes hold.
  Ipc ipc;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(hostname), CEREAL_NVP(created_unix_ns), CEREAL_NVP(root_pid), CEREAL_NVP(sandbox),
      CEREAL_NVP(processes), CEREAL_NVP(pipes), CEREAL_NVP(contents), CEREAL_NVP(ipc));
  }
};

}  // namespace crbox::model
