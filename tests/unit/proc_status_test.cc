#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/proc/status.h"
#include "util/error.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

static const char* kStatus =
    "Name:\tmy\\nprog\\\\x\n"
    "Umask:\t0027\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t3839\n"
    "Ngid:\t0\n"
    "Pid:\t3840\n"
    "PPid:\t3831\n"
    "TracerPid:\t77\n"
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t100\t101\t102\t103\n"
    "FDSize:\t256\n"
    "Groups:\t4 24 27 \n"
    "NStgid:\t3839\t2\n"
    "NSpid:\t3840\t3\n"
    "NSpgid:\t3831\t1\n"
    "NSsid:\t2822\t1\n"
    "VmPeak:\t    3840 kB\n"
    "Threads:\t2\n"
    "SigQ:\t0/96364\n"
    "SigPnd:\t0000000000000100\n"
    "ShdPnd:\t0000000000004000\n"
    "SigBlk:\t0000000000010000\n"
    "SigIgn:\t0000000000001000\n"
    "SigCgt:\t0000000180000002\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001fffeffffff\n"
    "CapEff:\t000001fffeffffff\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000001\n"
    "NoNewPrivs:\t1\n"
    "Seccomp:\t2\n"
    "Seccomp_filters:\t3\n"
    "Speculation_Store_Bypass:\tvulnerable\n"
    "Cpus_allowed_list:\t0-1\n";

TEST(ProcStatus, ParsesEveryField) {
  auto s = parse_status(kStatus);
  EXPECT_EQ(s.name, "my\nprog\\x");
  EXPECT_EQ(s.umask, 027u);
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.tgid, 3839);
  EXPECT_EQ(s.pid, 3840);
  EXPECT_EQ(s.ppid, 3831);
  EXPECT_EQ(s.tracer_pid, 77);
  EXPECT_EQ(s.uid[0], 1000u);
  EXPECT_EQ(s.uid[3], 1003u);
  EXPECT_EQ(s.gid[2], 102u);
  EXPECT_EQ(s.groups, (std::vector<uint32_t>{4, 24, 27}));
  EXPECT_EQ(s.nstgid, (std::vector<int32_t>{3839, 2}));
  EXPECT_EQ(s.nspid, (std::vector<int32_t>{3840, 3}));
  EXPECT_EQ(s.nspgid, (std::vector<int32_t>{3831, 1}));
  EXPECT_EQ(s.nssid, (std::vector<int32_t>{2822, 1}));
  EXPECT_EQ(s.threads, 2);
  EXPECT_EQ(s.sig_pnd, 0x100u);
  EXPECT_EQ(s.shd_pnd, 0x4000u);
  EXPECT_EQ(s.sig_blk, 0x10000u);
  EXPECT_EQ(s.sig_ign, 0x1000u);
  EXPECT_EQ(s.sig_cgt, 0x180000002u);
  EXPECT_EQ(s.cap_inh, 0u);
  EXPECT_EQ(s.cap_prm, 0x1fffeffffffu);
  EXPECT_EQ(s.cap_bnd, 0x1ffffffffffu);
  EXPECT_EQ(s.cap_amb, 1u);
  EXPECT_TRUE(s.no_new_privs);
  EXPECT_EQ(s.seccomp, 2);
  EXPECT_EQ(s.seccomp_filters, 3);
}

TEST(ProcStatus, NameWithSpacesEmptyGroupsAndMissingNewerFields) {
  auto s = parse_status("Name:\t a b \nState:\tR (running)\nPid:\t5\nGroups:\t\nUid:\t0\t0\t0\t0\n");
  EXPECT_EQ(s.name, " a b ");
  EXPECT_TRUE(s.groups.empty());
  EXPECT_EQ(s.umask, 0u);  // absent before 4.7
  EXPECT_FALSE(s.no_new_privs);
  EXPECT_EQ(s.seccomp_filters, 0);
  EXPECT_TRUE(s.nssid.empty());
}

TEST(ProcStatus, RejectsMalformed) {
  EXPECT_THROW(parse_status("Name:\tx\nPid:\tabc\n"), Error);
  EXPECT_THROW(parse_status("Name:\tx\nUid:\t1\t2\n"), Error);
  EXPECT_THROW(parse_status("Name:\tx\nSigBlk:\tzz\n"), Error);
  EXPECT_THROW(parse_status("Pid:\t1\n"), Error);
  EXPECT_THROW(parse_status("Name:\tx\nno colon here\n"), Error);
}

TEST(ProcStatus, ReadsOwnStatus) {
  mode_t old = umask(023);
  auto s = parse_status(read_file("/proc/self/status"));
  umask(old);
  EXPECT_EQ(s.umask, 023u);
  EXPECT_EQ(s.pid, getpid());
  EXPECT_EQ(s.tgid, getpid());
  EXPECT_EQ(s.ppid, getppid());
  EXPECT_EQ(s.uid[0], getuid());
  EXPECT_EQ(s.uid[1], geteuid());
  EXPECT_EQ(s.gid[0], getgid());
  ASSERT_FALSE(s.nspid.empty());
  EXPECT_EQ(s.nspid.back(), getpid());
  EXPECT_GE(s.threads, 1);
  EXPECT_FALSE(s.name.empty());
}
