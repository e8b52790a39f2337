// Inter-process communication objects in the image (model for checkpoint/{dump,restore}/ipc.cc):
// the System V shared memory segments, semaphore sets and message queues of a sandbox's ipc
// namespace (sysvipc(7)), and POSIX message queues (mq_overview(7)).
#pragma once

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace crbox::model {

struct IpcPerm {
  int32_t key = 0;  // IPC_PRIVATE (0) for a private object, and for a segment marked SHM_DEST
  int32_t id = 0;   // shmid/semid/msqid: restored at the same id
  // Owner and creator; `mode`: the permission bits, plus for shared memory SHM_DEST (01000: removed
  // once the last process detaches, shmctl(2) IPC_RMID) and SHM_LOCKED (02000, SHM_LOCK).
  uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0, mode = 0;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(key), CEREAL_NVP(id), CEREAL_NVP(uid), CEREAL_NVP(gid), CEREAL_NVP(cuid), CEREAL_NVP(cgid),
      CEREAL_NVP(mode));
  }
};

struct SysvShm {
  IpcPerm perm;
  uint64_t size = 0;
  std::vector<uint8_t> data;  // the content up to its last nonzero byte; the rest is zeros

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(perm), CEREAL_NVP(size), CEREAL_NVP(data));
  }
};

struct SysvSem {
  IpcPerm perm;
  std::vector<uint16_t> values;  // semctl(2) GETALL; SEM_UNDO adjustments are not kept

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(perm), CEREAL_NVP(values));
  }
};

struct Message {
  int64_t type = 0;  // SysV mtype, or a POSIX message's priority
  std::vector<uint8_t> data;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(type), CEREAL_NVP(data));
  }
};

struct SysvMsg {
  IpcPerm perm;
  uint64_t qbytes = 0;            // msg_qbytes: the queue's byte limit
  std::vector<Message> messages;  // in queue order (msgrcv(2) MSG_COPY reads them in place)

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(perm), CEREAL_NVP(qbytes), CEREAL_NVP(messages));
  }
};

struct PosixMqueue {
  std::string name;  // "/name"
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t maxmsg = 0, msgsize = 0;
  std::vector<Message> messages;  // highest priority first, as mq_receive(3) returns them
  bool deleted = false;           // unlinked (mq_unlink(3)) while processes still held it

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(name), CEREAL_NVP(mode), CEREAL_NVP(uid), CEREAL_NVP(gid), CEREAL_NVP(maxmsg), CEREAL_NVP(msgsize),
      CEREAL_NVP(messages), CEREAL_NVP(deleted));
  }
};

struct Ipc {
  std::vector<SysvShm> shm;
  std::vector<SysvSem> sem;
  std::vector<SysvMsg> msg;
  std::vector<PosixMqueue> mqueues;
  // A sandbox's ipc namespace's own limits (its /proc/sys/kernel/{shm*,msg*,sem} and
  // /proc/sys/fs/mqueue/* files, by path under /proc/sys), set again before its objects are made.
  std::map<std::string, std::string> sysctls;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(shm), CEREAL_NVP(sem), CEREAL_NVP(msg), CEREAL_NVP(mqueues), CEREAL_NVP(sysctls));
  }
};

}  // namespace crbox::model
