#include <gtest/gtest.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "checkpoint/proc/sysvipc.h"
#include "util/error.h"

using namespace crbox;
using namespace crbox::proc;

TEST(ProcSysvipc, ParsesShm) {
  const char* text =
      "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n"
      "      4660     163847   600                 10000  1245  1245      1  1000   100     0     0 1795591480          0 1795591480                  4096                     0\n"
      "         0         12  1640                  4096  1245  1245      2     0     0     0     0 1795591480          0 1795591480                     0                     0\n";
  auto v = parse_sysvipc(text);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].key, 0x1234);
  EXPECT_EQ(v[0].id, 163847);
  EXPECT_EQ(v[0].mode, 0600u);
  EXPECT_EQ(v[0].size, 10000u);
  EXPECT_EQ(v[0].count, 1u);
  EXPECT_EQ(v[0].uid, 1000u);
  EXPECT_EQ(v[0].gid, 100u);
  EXPECT_EQ(v[1].key, 0);
  EXPECT_EQ(v[1].mode, 01640u);  // SHM_DEST kept in the mode
  EXPECT_EQ(v[1].count, 2u);
}

TEST(ProcSysvipc, ParsesSemAndMsgAndNegativeKeys) {
  auto sem = parse_sysvipc(
      "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
      "-559038737      32768   666          3     0     0    10    20          0 1795591480\n");
  ASSERT_EQ(sem.size(), 1u);
  EXPECT_EQ(sem[0].key, static_cast<int32_t>(0xdeadbeef));
  EXPECT_EQ(sem[0].id, 32768);
  EXPECT_EQ(sem[0].size, 3u);
  EXPECT_EQ(sem[0].cuid, 10u);
  EXPECT_EQ(sem[0].cgid, 20u);
  auto msg = parse_sysvipc(
      "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n"
      "         0          0   600           7          2  1245     0     0     0     0     0 1795591480          0 1795591480\n");
  ASSERT_EQ(msg.size(), 1u);
  EXPECT_EQ(msg[0].size, 7u);
  EXPECT_EQ(msg[0].count, 2u);
}

TEST(ProcSysvipc, EmptyAndBad) {
  EXPECT_TRUE(parse_sysvipc("").empty());
  EXPECT_TRUE(parse_sysvipc("       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n").empty());
  EXPECT_THROW(parse_sysvipc("key semid perms uid gid cuid cgid\n1 2 9x9 0 0 0 0\n"), Error);
  EXPECT_THROW(parse_sysvipc("key semid perms uid gid cuid cgid\n1 2 600 0\n"), Error);
  EXPECT_THROW(parse_sysvipc("key perms uid gid\n"), Error);
}

// The real file: a private segment made (no privilege needed) and removed again.
TEST(ProcSysvipc, ReadsTheRealFile) {
  int id = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0640);
  ASSERT_GE(id, 0);
  std::string text;
  {
    FILE* f = fopen("/proc/sysvipc/shm", "r");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    fclose(f);
  }
  shmctl(id, IPC_RMID, nullptr);
  bool found = false;
  for (const auto& e : parse_sysvipc(text))
    if (e.id == id) {
      found = true;
      EXPECT_EQ(e.size, 8192u);
      EXPECT_EQ(e.mode & 0777, 0640u);
    }
  EXPECT_TRUE(found);
}
