// BLCR's walk-through with stdout redirected to a file (`cr_run ./appli > out.txt`): the original
// runs on and writes more after the checkpoint, so the file has grown by the time of the restart.
// A descriptor the process only writes to does not depend on the file's content: the restart goes
// ahead (no --accept-changed-files) and the restored program writes on at its offset. A file the
// process reads from is still checked (files_test.cc).
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "checkpoint_util.h"
#include "harness.h"

namespace crbox::test::ckpt {
namespace {

class RestartOutputFile : public CkptTest {};

// The last "i = N" line of the file, or -1.
long last_counter_in(const std::string& path) {
  std::string text = slurp(path);
  long last = -1;
  size_t at = 0;
  while ((at = text.find("i = ", at)) != std::string::npos) {
    last = std::strtol(text.c_str() + at + 4, nullptr, 10);
    at += 4;
  }
  return last;
}

TEST_F(RestartOutputFile, StdoutToAFileThatGrewSinceTheCheckpoint) {
  ScratchDir dir;
  std::string out = dir / "out.txt";
  Child orig({"/bin/sh", "-c", "exec " + tool("cr_run") + " " + program("ckpt_counter") + " 300 > " + out + " 2>&1"},
             dir.path());
  ASSERT_TRUE(eventually([&] { return last_counter_in(out) >= 2; }, 20s)) << slurp(out);
  pid_t pid = static_cast<pid_t>(number_after(slurp(out), "pid=").value_or(-1));
  ASSERT_GT(pid, 0) << slurp(out);
  ASSERT_TRUE(succeeded(crbox("cr_checkpoint", {"--pid", std::to_string(pid), "-f", dir / "ctx"}, dir.path())));
  long at_checkpoint = last_counter_in(out);
  // The original writes on, then goes.
  ASSERT_TRUE(eventually([&] { return last_counter_in(out) >= at_checkpoint + 2; }, 20s)) << slurp(out);
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(orig.wait(20s));
  ASSERT_TRUE(wait_gone(pid));
  long before_restart = last_counter_in(out);

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  // It writes on at its offset: the lines after the checkpoint are written again, then further.
  EXPECT_TRUE(eventually([&] { return last_counter_in(out) > before_restart; }, 20s))
      << "cr_restart: " << rs->output() << "\nfile: " << slurp(out);
  EXPECT_FALSE(rs->wait(100ms)) << "cr_restart ended: " << rs->output();
}

}  // namespace
}  // namespace crbox::test::ckpt
