// IPC objects: a sandbox's System V segments, semaphores and message queues come back at their ids
// with their content; POSIX message queues come back with their messages, in priority order,
// exactly once, and a checkpoint leaves them as they were; System V shared memory outside a
// sandbox is refused, the process untouched.
#include <gtest/gtest.h>
#include <mqueue.h>
#include <signal.h>
#include <unistd.h>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

class IpcSysv : public CkptTest {};

TEST_F(IpcSysv, SandboxObjectsComeBackAtTheirIdsWithTheirContent) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Sandbox, "ipc_sysv", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto ids = orig.child->wait_for("ids ", 10s);
  ASSERT_TRUE(ids) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();

  // The checkpoint reads everything in place: the original still finds all of it afterwards.
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto before = next_starting(*orig.child, "sysv ", 10s);
  ASSERT_TRUE(before) << orig.child->output();
  EXPECT_EQ(*before, "sysv ok " + *ids);
  ASSERT_TRUE(kill_original(orig));

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, Mode::Sandbox, orig.pid, "ipc_sysv");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto after = next_starting(*rs, "sysv ", 10s);
  ASSERT_TRUE(after) << rs->output();
  EXPECT_EQ(*after, "sysv ok " + *ids);
}

class IpcShmHost : public CkptTest {};

TEST_F(IpcShmHost, RefusedOutsideASandboxAndTheProcessGoesOn) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ipc_shm_host", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "pid " + std::to_string(orig.pid) +
                                     ": System V shared memory outside a sandbox's ipc namespace is not supported"))
      << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  EXPECT_TRUE(released(orig.pid));
  ASSERT_TRUE(next_starting(*orig.child, "tick", 10s)) << orig.child->output();
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "shmhost ", 10s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "shmhost ok");
}

class IpcMqueue : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    become_subreaper();
    name_ = "/crbox-test-mq-" + std::to_string(getpid()) + "-" + mode_name(GetParam());
    mq_unlink(name_.c_str());
  }
  void TearDown() override {
    kill_all_descendants();
    mq_unlink(name_.c_str());  // a plain run's queue lives on in our namespace
    mq_unlink((name_ + "-gone").c_str());
  }
  std::string name_;
};

// The checkpoint takes the messages out and puts them back while the process is frozen: the
// original still receives all of them, in order. The restart (in a new sandbox, or, outside one,
// after the queue was removed) makes the queue again with the saved messages.
TEST_P(IpcMqueue, CheckpointLeavesTheQueueAndRestartMakesItAgain) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ipc_mqueue", {name_}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto before = next_starting(*orig.child, "mqueue ", 10s);
  ASSERT_TRUE(before) << orig.child->output();
  EXPECT_EQ(*before, "mqueue ok");
  ASSERT_TRUE(kill_original(orig));
  mq_unlink(name_.c_str());  // (plain: the emptied queue; a sandbox's went with its namespace)

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ipc_mqueue");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto after = next_starting(*rs, "mqueue ", 10s);
  ASSERT_TRUE(after) << rs->output();
  EXPECT_EQ(*after, "mqueue ok");
}

class IpcMqueuePlain : public ::testing::Test {
 protected:
  void SetUp() override {
    become_subreaper();
    name_ = "/crbox-test-mqfail-" + std::to_string(getpid());
    mq_unlink(name_.c_str());
  }
  void TearDown() override {
    kill_all_descendants();
    mq_unlink(name_.c_str());
  }
  std::string name_;
};

// A plain restart that fails (here: the pid is still in use) leaves no queue it made behind.
TEST_F(IpcMqueuePlain, AFailedRestartRemovesTheQueuesItMade) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(Mode::Plain, "ipc_mqueue", {name_}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  mq_unlink(name_.c_str());  // the original keeps its (now nameless) queue and its pid
  auto r = run({tool("cr_restart"), dir / "ctx"}, 30s, dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  mqd_t q = mq_open(name_.c_str(), O_RDONLY);
  EXPECT_EQ(q, static_cast<mqd_t>(-1)) << "the failed restart left " << name_ << " behind";
  if (q != static_cast<mqd_t>(-1)) mq_close(q);
}

// Outside a sandbox a queue that still exists at restart is the one the process used: kept as it
// is (here, with the messages the checkpoint put back), not filled a second time.
TEST_P(IpcMqueue, KilledAtCheckpointRestartsWithEveryMessageOnce) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ipc_mqueue", {name_}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path())));
  orig.child->wait(20s);

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  pid_t rp = restored_pid(*rs, mode, orig.pid, "ipc_mqueue");
  ASSERT_GT(rp, 0) << rs->output();
  ASSERT_TRUE(next_starting(*rs, "tick", 10s)) << rs->output();
  ::kill(rp, SIGUSR1);
  auto after = next_starting(*rs, "mqueue ", 10s);
  ASSERT_TRUE(after) << rs->output();
  EXPECT_EQ(*after, "mqueue ok");
}

// A notification registration cannot be kept, and the queue cannot be read without firing it: the
// checkpoint is refused, and the queue and the process are as they were.
TEST_P(IpcMqueue, NotificationRegisteredIsRefusedAndTheQueueUntouched) {
  Mode mode = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = launch(mode, "ipc_mqueue", {name_, "notify"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 10s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "the POSIX message queue " + name_ + " has a notification registered (mq_notify)")) << r.err;
  EXPECT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "mqueue ", 10s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "mqueue ok");
}

INSTANTIATE_TEST_SUITE_P(, IpcMqueue, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
