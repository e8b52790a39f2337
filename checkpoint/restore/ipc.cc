// Inter-process communication objects made again: a sandbox's System V segments, semaphore sets
// and message queues at their saved ids (sysvipc(7): /proc/sys/kernel/{shm,sem,msg}_next_id picks
// the id the next *get(2) gives), with their owners, modes, content, values and messages; POSIX
// message queues with their attributes and messages (mq_overview(7)); and, injected into each
// puppet, the segments' attachments at their addresses.
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <thread>

#include "checkpoint/proc/maps.h"
#include "checkpoint/restore/apply.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/strings.h"

namespace crbox::restore {

namespace {

constexpr uint32_t kShmDest = 01000;    // SHM_DEST in a segment's mode: removed at the last detach
constexpr uint32_t kShmLocked = 02000;  // SHM_LOCKED: shmctl(2) SHM_LOCK

union semun {  // semctl(2): the caller defines it
  int val;
  semid_ds* buf;
  unsigned short* array;
};

void write_proc(const std::string& path, const std::string& value) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    throw_errno("writing " + value + " to " + path);
}

// With shm_rmid_forced set, a segment goes as soon as nobody has it attached (shmctl(2),
// proc(5)): the init's own shmat/shmdt while filling it would destroy it. Set last (finish_ipc).
constexpr char kRmidForced[] = "kernel/shm_rmid_forced";

// The namespace's limits as the image had them, before any object is made (a queue's size or a
// message may need them). Only what differs from the fresh namespace's defaults is written.
void apply_sysctls(const model::Ipc& ipc, bool last = false) {
  for (const auto& [name, value] : ipc.sysctls) {
    if ((name == kRmidForced) != last) continue;
    std::string path = "/proc/sys/" + name;
    auto now = try_read_file(path);
    if (!now) continue;  // not in this kernel
    // "kernel/sem" holds four numbers separated by tabs; compare them as words.
    auto norm = [](std::string s) {
      std::replace(s.begin(), s.end(), '\t', ' ');
      return std::string(trim(s));
    };
    if (norm(*now) == norm(value)) continue;
    write_proc(path, value);
  }
}

// Makes the next System V object of `kind` ("shm", "sem", "msg") get `id`.
void next_id(const char* kind, int32_t id) {
  write_proc(std::string("/proc/sys/kernel/") + kind + "_next_id", std::to_string(id));
}

// While alive, this process acts with the object's creator as effective ids, so the object's
// cuid and cgid come out as saved (they are the creating process's euid/egid, sysvipc(7)).
class AsCreator {
 public:
  AsCreator(uint32_t uid, uint32_t gid) : uid_(geteuid()), gid_(getegid()) {
    if (gid != gid_ && setegid(gid) != 0) throw_errno("setegid " + std::to_string(gid));
    if (uid != uid_ && seteuid(uid) != 0) {
      int e = errno;
      if (setegid(gid_) != 0) std::terminate();
      throw_errno("seteuid " + std::to_string(uid), e);
    }
  }
  ~AsCreator() {
    // Back to root (its capabilities return with euid 0, capabilities(7)); failing would leave the
    // init without the privileges the rest of the restore needs.
    if (seteuid(uid_) != 0 || setegid(gid_) != 0) std::terminate();
  }
  AsCreator(const AsCreator&) = delete;
  AsCreator& operator=(const AsCreator&) = delete;

 private:
  uid_t uid_;
  gid_t gid_;
};

// Creates an object with `get` (shmget/semget/msgget) at the saved id, as its creator.
template <class Get>
int create_at(const char* kind, const model::IpcPerm& perm, const std::string& what, Get get) {
  next_id(kind, perm.id);
  int id;
  {
    AsCreator as(perm.cuid, perm.cgid);
    // IPC_PRIVATE always makes a new object; any other key is one of a kind in the image.
    id = get(perm.key, IPC_CREAT | IPC_EXCL | static_cast<int>(perm.mode & 0777));
  }
  if (id < 0) throw_errno("recreating " + what);
  if (id != perm.id) throw Error("recreating " + what + ": the kernel gave it id " + std::to_string(id));
  return id;
}

template <class Perm>
void set_owner(Perm& p, const model::IpcPerm& saved) {
  p.uid = saved.uid;
  p.gid = saved.gid;
  p.mode = static_cast<unsigned short>(saved.mode & 0777);
}

void restore_shm(const model::SysvShm& s) {
  std::string what = "System V shared memory segment " + std::to_string(s.perm.id);
  int id = create_at("shm", s.perm, what, [&](key_t key, int flags) { return shmget(key, s.size, flags); });
  if (!s.data.empty()) {
    void* at = shmat(id, nullptr, 0);
    if (at == reinterpret_cast<void*>(-1)) throw_errno("filling " + what);
    std::memcpy(at, s.data.data(), std::min<size_t>(s.data.size(), s.size));
    shmdt(at);
  }
  shmid_ds ds{};
  if (shmctl(id, IPC_STAT, &ds) != 0) throw_errno(what);
  set_owner(ds.shm_perm, s.perm);
  if (shmctl(id, IPC_SET, &ds) != 0) throw_errno("setting the owner and mode of " + what);
  if ((s.perm.mode & kShmLocked) && shmctl(id, SHM_LOCK, nullptr) != 0) throw_errno("locking " + what + " (SHM_LOCK)");
  // SHM_DEST comes once the processes have attached it again (finish_ipc): marked now, it would
  // go at once, attached by nobody.
}

void restore_sem(const model::SysvSem& s) {
  std::string what = "System V semaphore set " + std::to_string(s.perm.id);
  int nsems = static_cast<int>(s.values.size());
  int id = create_at("sem", s.perm, what, [&](key_t key, int flags) { return semget(key, nsems, flags); });
  std::vector<unsigned short> values(s.values.begin(), s.values.end());
  semun arg{};
  arg.array = values.data();
  if (nsems > 0 && semctl(id, 0, SETALL, arg) != 0) throw_errno("setting the values of " + what);
  semid_ds ds{};
  arg.buf = &ds;
  if (semctl(id, 0, IPC_STAT, arg) != 0) throw_errno(what);
  set_owner(ds.sem_perm, s.perm);
  if (semctl(id, 0, IPC_SET, arg) != 0) throw_errno("setting the owner and mode of " + what);
}

void restore_msg(const model::SysvMsg& q) {
  std::string what = "System V message queue " + std::to_string(q.perm.id);
  int id = create_at("msg", q.perm, what, [](key_t key, int flags) { return msgget(key, flags); });
  msqid_ds ds{};
  if (msgctl(id, IPC_STAT, &ds) != 0) throw_errno(what);
  set_owner(ds.msg_perm, q.perm);
  // Raising msg_qbytes above the namespace's msgmnb needs CAP_SYS_RESOURCE (msgctl(2)); the
  // namespace's msgmnb is the image's already (apply_sysctls).
  ds.msg_qbytes = q.qbytes;
  if (msgctl(id, IPC_SET, &ds) != 0) throw_errno("setting the owner, mode and size (msg_qbytes " + std::to_string(q.qbytes) + ") of " + what);
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < q.messages.size(); i++) {
    const auto& m = q.messages[i];
    buf.resize(sizeof(long) + m.data.size());
    long type = static_cast<long>(m.type);
    std::memcpy(buf.data(), &type, sizeof type);
    if (!m.data.empty()) std::memcpy(buf.data() + sizeof type, m.data.data(), m.data.size());
    if (msgsnd(id, buf.data(), m.data.size(), IPC_NOWAIT) != 0)
      throw_errno("putting message " + std::to_string(i + 1) + " back into " + what);
  }
}

// Runs `fn` on a thread in the ipc namespace of `pid` (0: ours). setns(2) with CLONE_NEWIPC moves
// only the calling task.
template <class F>
void in_ipc_namespace(pid_t pid, F&& fn) {
  if (pid <= 0) return fn();
  std::exception_ptr failed;
  std::thread t([&] {
    try {
      std::string path = "/proc/" + std::to_string(pid) + "/ns/ipc";
      UniqueFd ns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns || setns(ns.get(), CLONE_NEWIPC) != 0) throw_errno("joining the ipc namespace of pid " + std::to_string(pid));
      fn();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  t.join();
  if (failed) std::rethrow_exception(failed);
}

// The VMAs of `p` that are one attachment with `v`: the same segment at the same base address
// (a VMA's offset is its distance from the attachment's start), in address order.
std::vector<const model::Vma*> attachment_of(const model::Process& p, const model::Vma& v) {
  std::vector<const model::Vma*> out;
  for (const auto& w : p.vmas)
    if (w.kind == model::VmaKind::sysv_shm && w.shmid == v.shmid && w.start - w.pgoff == v.start - v.pgoff)
      out.push_back(&w);
  return out;
}

// The protection the attachment is made with: what any of its parts had.
uint64_t attachment_prot(const std::vector<const model::Vma*>& parts) {
  uint64_t prot = 0;
  for (const auto* w : parts) prot |= w->prot;
  return prot | PROT_READ;
}

}  // namespace

int open_mqueue(const model::Fd& f) {
  // The access mode and O_NONBLOCK are the open file description's own (mq_open(3)).
  int fd = mq_open(f.path.c_str(), f.flags & (O_ACCMODE | O_NONBLOCK));
  if (fd < 0) throw_errno("fd " + std::to_string(f.fd) + ": opening the POSIX message queue " + f.path);
  return fd;
}

namespace {

void make_mqueues(const model::Ipc& ipc, bool fresh_namespace, std::vector<std::string>& made) {
  for (const auto& q : ipc.mqueues) {
    std::string what = "the POSIX message queue " + q.name;
    if (!fresh_namespace) {
      // Outside a sandbox the queue lives on in the host's namespace: a queue by that name is the
      // one the processes used (it may have changed since, like a file), and is kept as it is.
      int old = mq_open(q.name.c_str(), O_RDONLY | O_NONBLOCK);
      if (old >= 0) {
        close(old);
        if (q.deleted)
          throw Error(what + " had been unlinked when the checkpoint was taken, and another queue has that name now",
                      FailureKind::temporary);
        continue;
      }
      if (errno != ENOENT) throw_errno("opening " + what);
    }
    mq_attr attr{};
    attr.mq_maxmsg = q.maxmsg;
    attr.mq_msgsize = q.msgsize;
    UniqueFd fd(mq_open(q.name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, static_cast<mode_t>(q.mode), &attr));
    if (!fd) {
      int e = errno;
      if (e == EINVAL || e == EMFILE)
        throw_errno("recreating " + what + " (" + std::to_string(q.maxmsg) + " messages of " + std::to_string(q.msgsize) +
                        " bytes; see /proc/sys/fs/mqueue)",
                    e);
      throw_errno("recreating " + what, e);
    }
    made.push_back(q.name);
    // The mode without the umask, and the owner (the queue's file takes both, mq_overview(7)).
    if (fchmod(fd.get(), static_cast<mode_t>(q.mode)) != 0 || fchown(fd.get(), q.uid, q.gid) != 0)
      throw_errno("setting the owner and mode of " + what);
    // In the order they were received: highest priority first, oldest first within a priority;
    // sent back so, each priority's messages queue up in their old order.
    for (size_t i = 0; i < q.messages.size(); i++) {
      const auto& m = q.messages[i];
      if (mq_send(fd.get(), reinterpret_cast<const char*>(m.data.data()), m.data.size(), static_cast<unsigned>(m.type)) != 0)
        throw_errno("putting message " + std::to_string(i + 1) + " back into " + what);
    }
  }
}

}  // namespace

std::vector<std::string> restore_mqueues(const model::Ipc& ipc, bool fresh_namespace) {
  if (fresh_namespace) apply_sysctls(ipc);
  std::vector<std::string> made;
  try {
    make_mqueues(ipc, fresh_namespace, made);
  } catch (...) {
    for (const auto& name : made) mq_unlink(name.c_str());
    throw;
  }
  return made;
}


void restore_sysv_ipc(const model::Ipc& ipc) {
  apply_sysctls(ipc);
  for (const auto& s : ipc.shm) restore_shm(s);
  for (const auto& s : ipc.sem) restore_sem(s);
  for (const auto& q : ipc.msg) restore_msg(q);
}

void finish_ipc(const model::Ipc& ipc, pid_t ns_pid) {
  auto forced = ipc.sysctls.find(kRmidForced);
  bool work = forced != ipc.sysctls.end() && trim(forced->second) != "0";
  for (const auto& s : ipc.shm) work = work || (s.perm.mode & kShmDest);
  for (const auto& q : ipc.mqueues) work = work || q.deleted;
  if (!work) return;
  in_ipc_namespace(ns_pid, [&] {
    for (const auto& s : ipc.shm)
      if ((s.perm.mode & kShmDest) && shmctl(s.perm.id, IPC_RMID, nullptr) != 0)
        throw_errno("marking System V shared memory segment " + std::to_string(s.perm.id) + " for removal");
    for (const auto& q : ipc.mqueues)
      if (q.deleted && mq_unlink(q.name.c_str()) != 0) throw_errno("unlinking the POSIX message queue " + q.name);
    apply_sysctls(ipc, /*last=*/true);
  });
}

void attach_sysv_shm(Puppet& pp, const model::Process& p, const model::Vma& v) {
  auto parts = attachment_of(p, v);
  if (parts.front() != &v) return;  // made with the attachment's first part
  uint64_t base = v.start - v.pgoff;
  uint64_t prot = attachment_prot(parts);
  // shmat(2): SHM_RDONLY unless some part was writable, SHM_EXEC if some part was executable; an
  // attachment made writable could not be made read-only-for-good, nor the reverse, later.
  uint64_t flags = ((prot & PROT_WRITE) ? 0 : SHM_RDONLY) | ((prot & PROT_EXEC) ? SHM_EXEC : 0);
  std::string what = "attaching System V shared memory segment " + std::to_string(v.shmid) + " at " + hex(base);
  long at = pp.check(what, SYS_shmat, static_cast<uint64_t>(v.shmid), base, flags);
  if (static_cast<uint64_t>(at) != base) throw Error(what + ": the kernel put it at " + hex(static_cast<uint64_t>(at)));
  // It spans the whole segment; where the image had unmapped parts of it, unmap them again. (Later
  // VMAs of the image are mapped over it with MAP_FIXED in any case.)
  uint64_t end = base;
  for (const auto& m : proc::parse_maps(read_file("/proc/" + std::to_string(pp.pid()) + "/maps")))
    if (m.start == base) end = m.end;
  uint64_t cur = base;
  for (const auto* w : parts) {
    if (w->start > cur) pp.check("unmapping a part of " + what, SYS_munmap, cur, w->start - cur);
    cur = std::max(cur, w->end);
  }
  if (end > cur) pp.check("unmapping the end of " + what, SYS_munmap, cur, end - cur);
}

void protect_sysv_shm(Puppet& pp, const model::Process& p, const model::Vma& v) {
  if (v.prot == attachment_prot(attachment_of(p, v))) return;
  pp.check("protecting " + hex(v.start), SYS_mprotect, v.start, v.end - v.start, v.prot);
}

}  // namespace crbox::restore
