#include <gtest/gtest.h>
#include <unistd.h>

#include "checkpoint/proc/stat.h"
#include "util/error.h"
#include "util/files.h"

using namespace crbox;
using namespace crbox::proc;

namespace {
// A real line from a 6.x kernel (52 fields) with the comm replaced.
std::string line_with_comm(const std::string& comm) {
  return "3835 (" + comm +
         ") S 3831 3831 2822 34817 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 40330 3133440 411 "
         "18446744073709551615 93984197857280 93984197877161 140731058487104 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 "
         "93984197893168 93984197894784 93984995254272 140731058489993 140731058490013 140731058490013 "
         "140731058491371 0\n";
}
}  // namespace

TEST(ProcStat, ParsesAllFields) {
  auto s = parse_stat(line_with_comm("cat"));
  EXPECT_EQ(s.pid, 3835);
  EXPECT_EQ(s.comm, "cat");
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.ppid, 3831);
  EXPECT_EQ(s.pgrp, 3831);
  EXPECT_EQ(s.session, 2822);
  EXPECT_EQ(s.tty_nr, 34817);
  EXPECT_EQ(s.flags, 4194304u);
  EXPECT_EQ(s.num_threads, 1);
  EXPECT_EQ(s.starttime, 40330u);
  EXPECT_EQ(s.startcode, 93984197857280u);
  EXPECT_EQ(s.endcode, 93984197877161u);
  EXPECT_EQ(s.startstack, 140731058487104u);
  EXPECT_EQ(s.start_data, 93984197893168u);
  EXPECT_EQ(s.end_data, 93984197894784u);
  EXPECT_EQ(s.start_brk, 93984995254272u);
  EXPECT_EQ(s.arg_start, 140731058489993u);
  EXPECT_EQ(s.arg_end, 140731058490013u);
  EXPECT_EQ(s.env_start, 140731058490013u);
  EXPECT_EQ(s.env_end, 140731058491371u);
  EXPECT_EQ(s.exit_code, 0);
}

TEST(ProcStat, CommWithSpacesAndParentheses) {
  auto s = parse_stat(line_with_comm("a) b (c"));
  EXPECT_EQ(s.comm, "a) b (c");
  EXPECT_EQ(s.state, 'S');
  EXPECT_EQ(s.ppid, 3831);
  EXPECT_EQ(s.env_end, 140731058491371u);
  EXPECT_EQ(parse_stat(line_with_comm(") ) S 1 2 (")).comm, ") ) S 1 2 (");
  EXPECT_EQ(parse_stat(line_with_comm("")).comm, "");
}

TEST(ProcStat, OldKernelWithoutLateFields) {
  // Ends at field 44 as before Linux 3.3.
  auto s = parse_stat(
      "12 (old) R 1 12 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 40330 3133440 411 "
      "18446744073709551615 4096 8192 12288 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0");
  EXPECT_EQ(s.startcode, 4096u);
  EXPECT_EQ(s.startstack, 12288u);
  EXPECT_EQ(s.start_brk, 0u);
  EXPECT_EQ(s.env_end, 0u);
}

TEST(ProcStat, RejectsMalformed) {
  EXPECT_THROW(parse_stat(""), Error);
  EXPECT_THROW(parse_stat("12 cat R 1"), Error);
  EXPECT_THROW(parse_stat("12 (cat) R 1 2 3"), Error);
  EXPECT_THROW(parse_stat("x (cat) R 1 12 12 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 40330 3133440 411 1 2 3 4"),
               Error);
}

TEST(ProcStat, ReadsOwnStat) {
  auto s = parse_stat(read_file("/proc/self/stat"));
  EXPECT_EQ(s.pid, getpid());
  EXPECT_EQ(s.ppid, getppid());
  EXPECT_EQ(s.pgrp, getpgrp());
  EXPECT_EQ(s.session, getsid(0));
  EXPECT_EQ(s.state, 'R');
  EXPECT_GE(s.num_threads, 1);
  EXPECT_NE(s.startcode, 0u);
  EXPECT_LT(s.arg_start, s.arg_end);
  EXPECT_LE(s.arg_end, s.env_start);
}
