// Inter-process communication objects: the System V shared memory segments, semaphore sets and
// message queues of a sandbox's ipc namespace (sysvipc(7)), and the POSIX message queues the
// processes hold (mq_overview(7)). Everything is read without changing what the processes see:
// segments through a frozen process's own mapping where one covers them, SysV messages with
// msgrcv(2) MSG_COPY (a copy, left in the queue), POSIX messages taken out and put back in the same
// order while every holder is frozen.
#include <fcntl.h>
#include <linux/magic.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/sysvipc.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"
#include "util/remote_mem.h"
#include "util/strings.h"

namespace crbox::dump {

namespace {

constexpr long kMqueueMagic = 0x19800202;  // MQUEUE_MAGIC (ipc/mqueue.c; statfs(2) lists it)
#ifndef MSG_COPY
constexpr int MSG_COPY = 040000;  // msgop(2): needs CONFIG_CHECKPOINT_RESTORE
#endif

std::string pid_s(pid_t p) { return std::to_string(p); }

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  if (n < 0) throw_errno("readlink " + path);
  return std::string(buf, static_cast<size_t>(n));
}

// Runs `fn` on a short-lived thread that joined the ipc namespace of `pid`: setns(2) with
// CLONE_NEWIPC changes only the calling task's namespace, and /proc/sysvipc/*, /proc/sys/kernel's
// ipc files, shmat(2), semctl(2) and msgrcv(2) all act in the caller's (ipc_namespaces(7)).
template <class F>
void in_ipc_namespace(pid_t pid, F&& fn) {
  std::exception_ptr failed;
  std::thread t([&] {
    try {
      std::string path = "/proc/" + pid_s(pid) + "/ns/ipc";
      UniqueFd ns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns) throw_errno("opening " + path);
      if (setns(ns.get(), CLONE_NEWIPC) != 0) throw_errno("joining the ipc namespace of pid " + pid_s(pid));
      fn();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  t.join();
  if (failed) std::rethrow_exception(failed);
}

model::IpcPerm perm_of(const proc::SysvIpcEntry& e) {
  model::IpcPerm p;
  p.key = e.key;
  p.id = e.id;
  p.uid = e.uid;
  p.gid = e.gid;
  p.cuid = e.cuid;
  p.cgid = e.cgid;
  p.mode = e.mode;
  return p;
}

void trim_zeros(std::vector<uint8_t>& data) {
  size_t n = data.size();
  while (n > 0 && data[n - 1] == 0) n--;
  data.resize(n);
}

// One attachment of a segment in a process: its VMAs share shmid and base (start - pgoff).
struct Attachment {
  pid_t host_pid = 0;
  uint64_t base = 0, end = 0;
};

// A process of the image that has the whole segment mapped (the attachment starts at its base and
// is not cut): its memory can be read without attaching the segment again.
std::optional<Attachment> whole_attachment(const std::vector<model::Process>& procs, int32_t shmid, uint64_t size) {
  for (const auto& p : procs) {
    for (size_t i = 0; i < p.vmas.size(); i++) {
      const auto& v = p.vmas[i];
      if (v.kind != model::VmaKind::sysv_shm || v.shmid != shmid || v.pgoff != 0) continue;
      uint64_t end = v.end;
      for (size_t j = i + 1; j < p.vmas.size() && end < v.start + size; j++) {
        const auto& w = p.vmas[j];
        if (w.kind != model::VmaKind::sysv_shm || w.shmid != shmid || w.start != end || w.pgoff != end - v.start) break;
        end = w.end;
      }
      if (end >= v.start + size) return Attachment{p.host_pid, v.start, end};
    }
  }
  return std::nullopt;
}

void collect_shm(const std::vector<model::Process>& procs, model::Ipc& ipc) {
  for (const auto& e : proc::parse_sysvipc(read_file("/proc/sysvipc/shm"))) {
    model::SysvShm s;
    s.perm = perm_of(e);
    s.size = e.size;
    s.data.resize(s.size);
    if (auto a = whole_attachment(procs, e.id, s.size)) {
      // The frozen process's own mapping: attaching here would change the segment's attach time
      // and last pid (shmctl(2) shm_atime, shm_lpid), which the processes can read.
      remote_read(a->host_pid, a->base, s.data.data(), s.data.size());
    } else {
      // Attached by nobody (or in part only): read-only attachment here, on this thread, which is
      // in the namespace (shmat(2); Linux allows it on a segment marked SHM_DEST).
      void* at = shmat(e.id, nullptr, SHM_RDONLY);
      if (at == reinterpret_cast<void*>(-1)) throw_errno("reading System V shared memory segment " + std::to_string(e.id));
      std::memcpy(s.data.data(), at, s.data.size());
      shmdt(at);
    }
    trim_zeros(s.data);
    ipc.shm.push_back(std::move(s));
  }
}

void collect_sem(model::Ipc& ipc) {
  for (const auto& e : proc::parse_sysvipc(read_file("/proc/sysvipc/sem"))) {
    model::SysvSem s;
    s.perm = perm_of(e);
    s.values.resize(e.size);
    // semctl(2) GETALL changes nothing (not even sem_otime).
    if (!s.values.empty() && semctl(e.id, 0, GETALL, s.values.data()) != 0)
      throw_errno("reading System V semaphore set " + std::to_string(e.id));
    ipc.sem.push_back(std::move(s));
  }
}

void collect_msg(model::Ipc& ipc) {
  for (const auto& e : proc::parse_sysvipc(read_file("/proc/sysvipc/msg"))) {
    model::SysvMsg q;
    q.perm = perm_of(e);
    msqid_ds ds{};
    if (msgctl(e.id, IPC_STAT, &ds) != 0) throw_errno("reading System V message queue " + std::to_string(e.id));
    q.qbytes = ds.msg_qbytes;
    // MSG_COPY: msgtyp is the index of the message to copy; the queue, its times and pids stay as
    // they are (msgop(2)). Every message is at most the queue's byte count.
    std::vector<uint8_t> buf(sizeof(long) + e.size + 1);
    for (long i = 0;; i++) {
      ssize_t n = msgrcv(e.id, buf.data(), buf.size() - sizeof(long), i, IPC_NOWAIT | MSG_COPY);
      if (n < 0) {
        if (errno == ENOMSG) break;
        if (errno == ENOSYS) throw Error("this kernel cannot read System V messages in place (msgrcv MSG_COPY needs CONFIG_CHECKPOINT_RESTORE)", FailureKind::environment);
        throw_errno("reading message " + std::to_string(i) + " of System V message queue " + std::to_string(e.id));
      }
      model::Message m;
      std::memcpy(&m.type, buf.data(), sizeof(long));
      m.data.assign(buf.begin() + sizeof(long), buf.begin() + sizeof(long) + n);
      q.messages.push_back(std::move(m));
    }
    ipc.msg.push_back(std::move(q));
  }
}

// The namespace's own limits, which a fresh namespace resets to the defaults.
void collect_sysctls(model::Ipc& ipc) {
  for (const char* name : {"kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/shm_rmid_forced", "kernel/msgmax",
                           "kernel/msgmnb", "kernel/msgmni", "kernel/sem", "fs/mqueue/msg_max", "fs/mqueue/msgsize_max",
                           "fs/mqueue/queues_max", "fs/mqueue/msg_default", "fs/mqueue/msgsize_default"}) {
    if (auto v = try_read_file(std::string("/proc/sys/") + name)) ipc.sysctls[name] = std::string(trim(*v));
  }
}

// The segments processes have attached must be objects of the namespace just read, each
// attachment mapped from its start (the restore attaches whole segments again).
void check_attachments(const std::vector<model::Process>& procs, const model::Ipc& ipc) {
  std::set<int32_t> ids;
  for (const auto& s : ipc.shm) ids.insert(s.perm.id);
  for (const auto& p : procs) {
    std::set<std::pair<int32_t, uint64_t>> starts;
    for (const auto& v : p.vmas) {
      if (v.kind != model::VmaKind::sysv_shm) continue;
      std::string where = "pid " + pid_s(p.host_pid) + ": the System V shared memory segment " + std::to_string(v.shmid) +
                          " at " + hex(v.start);
      if (!ids.count(v.shmid)) throw Error(where + " is not one of its sandbox's ipc namespace; that is not supported");
      uint64_t base = v.start - v.pgoff;
      if (v.pgoff == 0) starts.insert({v.shmid, base});
      else if (!starts.count({v.shmid, base}))
        throw Error(where + " is attached with its first pages unmapped; that is not supported");
    }
  }
}

// A POSIX queue's "QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:..." line (mq_overview(7), reading
// the queue's file): the pid registered with mq_notify(3), or 0.
pid_t notify_pid(int fd) {
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* at = strstr(buf, "NOTIFY_PID:");
  return at ? static_cast<pid_t>(atoi(at + 11)) : 0;
}

// Takes every message out of the queue (in the order mq_receive(3) gives them: highest priority
// first, oldest first within one) and puts them all back in that order, so the queue ends as it
// began. Every holder in the image is frozen; a process outside it could see the queue empty for
// that moment.
void read_mqueue(int fd, model::PosixMqueue& q, const std::string& where) {
  std::vector<model::Message> taken;
  auto put_back = [&] {
    for (size_t i = 0; i < taken.size(); i++) {
      const auto& m = taken[i];
      if (mq_send(fd, reinterpret_cast<const char*>(m.data.data()), m.data.size(), static_cast<unsigned>(m.type)) != 0)
        return errno_message(where + ": putting back message " + std::to_string(i + 1) + " of " +
                                 std::to_string(taken.size()) + " (the rest are lost)",
                             errno);
    }
    return std::string();
  };
  std::string failure;
  std::vector<char> buf(static_cast<size_t>(q.msgsize) + 1);
  for (;;) {
    unsigned prio = 0;
    ssize_t n = mq_receive(fd, buf.data(), buf.size(), &prio);
    if (n < 0) {
      if (errno != EAGAIN) failure = errno_message(where + ": reading its messages", errno);
      break;
    }
    model::Message m;
    m.type = prio;
    m.data.assign(buf.begin(), buf.begin() + n);
    taken.push_back(std::move(m));
  }
  std::string lost = put_back();
  if (!lost.empty()) throw Error(lost);
  if (!failure.empty()) throw Error(failure);
  q.messages = std::move(taken);
}

void collect_mqueues(const std::vector<model::Process>& procs, model::Ipc& ipc) {
  std::set<pid_t> image_pids;
  for (const auto& p : procs) image_pids.insert(p.host_pid);
  std::map<std::pair<uint64_t, uint64_t>, std::string> seen;  // (dev, inode) -> name
  for (const auto& p : procs) {
    for (const auto& f : p.fds) {
      if (f.kind != model::FdKind::mqueue) continue;
      std::string where = "pid " + pid_s(p.host_pid) + " fd " + std::to_string(f.fd) + ": the POSIX message queue " + f.path;
      auto id = std::make_pair(f.file.dev, f.file.ino);
      if (seen.count(id)) continue;
      for (const auto& [other, name] : seen)
        if (name == f.path)
          throw Error(where + " has the name of another queue the processes hold (one of them was unlinked); that is not supported");
      seen[id] = f.path;
      // Our own open file description (through the /proc link, with our own O_NONBLOCK), not a
      // copy of the process's, which may be write-only or blocking.
      std::string link = "/proc/" + pid_s(p.host_pid) + "/fd/" + std::to_string(f.fd);
      UniqueFd fd(open(link.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
      if (!fd) throw_errno(where + ": opening it");
      struct stat st {};
      mq_attr attr{};
      if (fstat(fd.get(), &st) != 0 || mq_getattr(fd.get(), &attr) != 0) throw_errno(where + ": reading its attributes");
      model::PosixMqueue q;
      q.name = f.path;
      q.mode = st.st_mode & 07777;
      q.uid = st.st_uid;
      q.gid = st.st_gid;
      q.maxmsg = attr.mq_maxmsg;
      q.msgsize = attr.mq_msgsize;
      std::string link_name = read_link(link);
      q.deleted = link_name.size() > 10 && link_name.compare(link_name.size() - 10, 10, " (deleted)") == 0;
      // A registration fires when a message arrives in the empty queue (mq_notify(3)): emptying and
      // refilling it would fire it; and it cannot be made again for a restored process.
      if (pid_t n = notify_pid(fd.get())) {
        if (attr.mq_curmsgs > 0)
          throw Error(where + " has a notification registered (mq_notify) by pid " + pid_s(n) +
                      "; its messages cannot be read without firing it");
        if (image_pids.count(n))
          throw Error(where + " has a notification registered (mq_notify) by pid " + pid_s(n) + ", which is not supported");
      }
      if (attr.mq_curmsgs > 0) read_mqueue(fd.get(), q, where);
      ipc.mqueues.push_back(std::move(q));
    }
  }
}

}  // namespace

std::optional<int32_t> sysv_shm_id(pid_t pid, const proc::MapsEntry& m, const std::string& map_file) {
  // The kernel names a segment's file "SYSV" and its key in 8 hex digits, always unlinked, and
  // numbers its inode with the segment's id (ipc/shm.c, newseg).
  const std::string& s = m.path;
  if (!m.deleted || !m.shared || s.size() != 13 || s.compare(0, 5, "/SYSV") != 0) return std::nullopt;
  for (size_t i = 5; i < 13; i++)
    if (!isxdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  struct statfs sf {};
  struct stat st {};
  if (statfs(map_file.c_str(), &sf) != 0 || stat(map_file.c_str(), &st) != 0) throw_errno("stat " + map_file);
  if (static_cast<long>(sf.f_type) == HUGETLBFS_MAGIC)
    throw Error("pid " + pid_s(pid) + ": the System V shared memory segment at " + hex(m.start) +
                " uses huge pages (SHM_HUGETLB); that is not supported");
  if (static_cast<long>(sf.f_type) != TMPFS_MAGIC) return std::nullopt;  // a deleted file that has the name
  return static_cast<int32_t>(st.st_ino);
}

bool collect_mqueue(pid_t pid, int fd, model::Fd& f) {
  std::string link = "/proc/" + pid_s(pid) + "/fd/" + std::to_string(fd);
  struct statfs sf {};
  if (statfs(link.c_str(), &sf) != 0 || static_cast<long>(sf.f_type) != kMqueueMagic) return false;
  // The link reads "/name" (mq_overview(7)), with " (deleted)" once unlinked.
  std::string name = read_link(link);
  if (name.size() > 10 && name.compare(name.size() - 10, 10, " (deleted)") == 0) name.resize(name.size() - 10);
  f.kind = model::FdKind::mqueue;
  f.path = name;
  f.outside = false;  // a name in the ipc namespace's queue file system, not a path of the mount tree
  return true;
}

void collect_ipc(const std::vector<model::Process>& procs, pid_t sandbox_pid, model::Ipc& ipc) {
  if (sandbox_pid > 0) {
    in_ipc_namespace(sandbox_pid, [&] {
      collect_sysctls(ipc);
      collect_shm(procs, ipc);
      collect_sem(ipc);
      collect_msg(ipc);
    });
    check_attachments(procs, ipc);
  } else {
    // Outside a sandbox the objects live on in the host's namespace, shared with processes crbox
    // does not take: a segment cannot be saved or given back the same id there.
    for (const auto& p : procs)
      for (const auto& v : p.vmas)
        if (v.kind == model::VmaKind::sysv_shm)
          throw Error("pid " + pid_s(p.host_pid) +
                      ": System V shared memory outside a sandbox's ipc namespace is not supported (run it under cr_run --sandbox)");
  }
  collect_mqueues(procs, ipc);
}

}  // namespace crbox::dump
