// System V objects and POSIX message queues saved from one private ipc namespace and made again
// in a fresh one come back equal: ids, keys, owners, creators, modes, content, values, messages,
// the namespace's limits; the saved queue keeps its messages. Runs in a forked child (it unshares
// its ipc namespace twice and changes its effective ids); needs root, as crbox does.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <mqueue.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "checkpoint/dump/collect.h"
#include "checkpoint/restore/apply.h"
#include "util/files.h"

using namespace crbox;

namespace {

std::string describe(const model::IpcPerm& p) {
  std::ostringstream o;
  o << "key " << p.key << " id " << p.id << " uid " << p.uid << " gid " << p.gid << " cuid " << p.cuid << " cgid "
    << p.cgid << " mode " << std::oct << p.mode;
  return o.str();
}

std::string describe(const std::vector<model::Message>& ms) {
  std::ostringstream o;
  for (const auto& m : ms) o << m.type << ":" << std::string(m.data.begin(), m.data.end()) << " ";
  return o.str();
}

// Everything the model holds, as text, so two models compare with one EXPECT_EQ.
std::string describe(const model::Ipc& ipc) {
  std::ostringstream o;
  for (const auto& s : ipc.shm) o << "shm " << describe(s.perm) << " size " << s.size << " data " << s.data.size() << "/" << std::hash<std::string>{}(std::string(s.data.begin(), s.data.end())) << "\n";
  for (const auto& s : ipc.sem) {
    o << "sem " << describe(s.perm) << " values";
    for (auto v : s.values) o << " " << v;
    o << "\n";
  }
  for (const auto& q : ipc.msg) o << "msg " << describe(q.perm) << " qbytes " << q.qbytes << " " << describe(q.messages) << "\n";
  for (const auto& q : ipc.mqueues)
    o << "mq " << q.name << " mode " << std::oct << q.mode << std::dec << " uid " << q.uid << " gid " << q.gid << " max " << q.maxmsg
      << " size " << q.msgsize << " deleted " << q.deleted << " " << describe(q.messages) << "\n";
  for (const auto& [k, v] : ipc.sysctls) o << k << "=" << v << "\n";
  return o.str();
}

void write_sysctl(const char* name, const char* value) {
  int fd = open((std::string("/proc/sys/") + name).c_str(), O_WRONLY);
  if (fd < 0 || write(fd, value, strlen(value)) < 0) throw std::runtime_error(std::string("writing ") + name);
  close(fd);
}

// A process (this one) holding a queue at `fd`, as the collectors see it.
model::Process holder(int fd, const std::string& name) {
  model::Process p;
  p.host_pid = p.pid = getpid();
  model::Fd f;
  f.fd = fd;
  struct stat st {};
  fstat(fd, &st);
  f.file.dev = st.st_dev;
  f.file.ino = st.st_ino;
  if (!dump::collect_mqueue(getpid(), fd, f) || f.path != name) throw std::runtime_error("collect_mqueue: " + f.path);
  p.fds.push_back(f);
  return p;
}

// The child's work; returns "" or what went wrong.
std::string roundtrip() {
  if (unshare(CLONE_NEWIPC) != 0) return "unshare";
  write_sysctl("kernel/msgmax", "4000");
  write_sysctl("fs/mqueue/msg_max", "20");
  // Segments go at their last detach: the restore must not detach one before it is set.
  write_sysctl("kernel/shm_rmid_forced", "1");
  // Ids that a fresh namespace would not give first.
  for (int i = 0; i < 2; i++) shmctl(shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600), IPC_RMID, nullptr);
  int shm = shmget(0x1234, 10000, IPC_CREAT | 0640);
  auto* a = static_cast<char*>(shmat(shm, nullptr, 0));
  strcpy(a + 5000, "middle");
  int gone = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  auto* g = static_cast<char*>(shmat(gone, nullptr, 0));
  strcpy(g, "gone");
  shmctl(gone, IPC_RMID, nullptr);  // SHM_DEST, still attached here
  // A semaphore set made by uid 1000 (its creator), owned by 2000.
  if (setegid(1000) != 0 || seteuid(1000) != 0) return "seteuid";
  int sem = semget(0x5678, 3, IPC_CREAT | 0666);
  if (seteuid(0) != 0 || setegid(0) != 0) return "seteuid back";
  unsigned short vals[3] = {1, 0, 32767};  // SEMVMX is the largest
  if (semctl(sem, 0, SETALL, vals) != 0) return "SETALL";
  semid_ds sds{};
  semctl(sem, 0, IPC_STAT, &sds);
  sds.sem_perm.uid = 2000;
  semctl(sem, 0, IPC_SET, &sds);
  int msg = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  msqid_ds mds{};
  msgctl(msg, IPC_STAT, &mds);
  mds.msg_qbytes = 4096;
  msgctl(msg, IPC_SET, &mds);
  struct {
    long type;
    char text[8];
  } m1 = {5, "five"}, m2 = {2, "two"};
  msgsnd(msg, &m1, 5, 0);
  msgsnd(msg, &m2, 4, 0);
  mq_attr attr{};
  attr.mq_maxmsg = 15;  // above the default limit of 10: needs the saved msg_max
  attr.mq_msgsize = 32;
  int mq = mq_open("/rt", O_CREAT | O_RDWR | O_NONBLOCK, 0604, &attr);
  if (shm < 0 || gone < 0 || sem < 0 || msg < 0 || mq < 0) return std::string("setup: ") + strerror(errno);
  fchown(mq, 3, 4);
  mq_send(mq, "b", 1, 1);
  mq_send(mq, "a", 1, 7);
  mq_send(mq, "c", 1, 1);

  model::Ipc saved;
  dump::collect_ipc({holder(mq, "/rt")}, getpid(), saved);
  if (saved.shm.size() != 2 || saved.sem.size() != 1 || saved.msg.size() != 1 || saved.mqueues.size() != 1)
    return "collected: " + describe(saved);
  if (describe(saved.mqueues[0].messages) != "7:a 1:b 1:c ") return "queue order: " + describe(saved.mqueues[0].messages);
  // The queue was left as it was.
  char buf[32];
  unsigned prio = 0;
  std::string left;
  for (int i = 0; i < 4; i++) {
    ssize_t n = mq_receive(mq, buf, sizeof buf, &prio);
    if (n > 0) left += std::to_string(prio) + ":" + std::string(buf, n) + " ";
  }
  if (left != "7:a 1:b 1:c ") return "the saved queue now holds " + left;

  // A fresh namespace, made again from the model.
  if (unshare(CLONE_NEWIPC) != 0) return "unshare 2";
  restore::restore_sysv_ipc(saved);
  restore::restore_mqueues(saved, true);
  // The processes attach their segments before the removal marks are set again.
  if (shmat(gone, nullptr, SHM_RDONLY) == reinterpret_cast<void*>(-1)) return "the removed segment is not there";
  restore::finish_ipc(saved, 0);
  int again = mq_open("/rt", O_RDWR | O_NONBLOCK);
  if (again < 0) return "reopening the queue";
  model::Ipc now;
  dump::collect_ipc({holder(again, "/rt")}, getpid(), now);
  if (describe(now) != describe(saved)) return "saved:\n" + describe(saved) + "restored:\n" + describe(now);
  return "";
}

TEST(IpcRoundTrip, ObjectsComeBackEqualInAFreshNamespace) {
  ASSERT_EQ(geteuid(), 0u) << "this test needs root (unshare(CLONE_NEWIPC), *_next_id), as crbox does";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t c = fork();
  if (c == 0) {
    close(fds[0]);
    std::string r;
    try {
      r = roundtrip();
    } catch (const std::exception& e) {
      r = std::string("exception: ") + e.what();
    }
    if (r.empty()) r = "ok";
    write_all(fds[1], r.data(), r.size(), "report");
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) report.append(buf, n);
  close(fds[0]);
  int st = 0;
  waitpid(c, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_EQ(report, "ok");
}

}  // namespace
