// The registry, in a private directory: records round-trip, liveness, stale entries, lookup by pid.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/registry.h"
#include "util/error.h"

namespace crbox::runtime {
namespace {

class RuntimeRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/crbox-registry-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  SandboxRecord self_record(const std::string& id) {
    SandboxRecord r;
    r.id = id;
    r.init_pid = getpid();  // this test process stands in for a live init
    r.app_pid = getpid();
    r.app_inner_pid = 2;
    r.init_start_ticks = process_start_ticks(getpid()).value();
    r.spec.argv = {"prog", "a b"};
    r.spec.memory_limit = 1 << 20;
    r.spec.rlimits.push_back({"nofile", 5, 6});
    r.spec.uid = 7;
    r.cgroups.freezer = "/sys/fs/cgroup/freezer/crbox/" + id;
    r.cgroups.all = {r.cgroups.freezer};
    return r;
  }

  std::string root_;
};

TEST_F(RuntimeRegistry, RecordRoundTripsThroughJson) {
  auto r = self_record("rt");
  auto back = record_from_json(record_to_json(r));
  EXPECT_EQ(back.id, "rt");
  EXPECT_EQ(back.init_pid, r.init_pid);
  EXPECT_EQ(back.init_start_ticks, r.init_start_ticks);
  EXPECT_EQ(back.spec.argv, r.spec.argv);
  EXPECT_EQ(back.spec.uid, 7u);
  EXPECT_FALSE(back.spec.gid);
  ASSERT_EQ(back.spec.rlimits.size(), 1u);
  EXPECT_EQ(back.spec.rlimits[0].hard, 6u);
  EXPECT_EQ(back.cgroups.freezer, r.cgroups.freezer);
  EXPECT_THROW(record_from_json("{"), Error);
}

TEST_F(RuntimeRegistry, EntryIsListedWhilePublishedAndGoneAfter) {
  {
    RegistryEntry e("one", root_);
    EXPECT_TRUE(list_sandboxes(root_).empty()) << "not listed before publish";
    e.publish(self_record("one"));
    auto all = list_sandboxes(root_);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, "one");
    EXPECT_TRUE(find_sandbox("one", root_));
    EXPECT_THROW(RegistryEntry("one", root_), Error) << "names are unique among live sandboxes";
    auto mine = find_sandbox_of(getpid(), root_);
    ASSERT_TRUE(mine);
    EXPECT_EQ(mine->id, "one");
  }
  EXPECT_TRUE(list_sandboxes(root_).empty());
  EXPECT_FALSE(std::filesystem::exists(root_ + "/one"));
}

TEST_F(RuntimeRegistry, DeadInitIsNotListed) {
  RegistryEntry e("dead", root_);
  auto r = self_record("dead");
  r.init_start_ticks += 1;  // as if our pid had been reused
  e.publish(r);
  EXPECT_TRUE(list_sandboxes(root_).empty());
  EXPECT_FALSE(find_sandbox_of(getpid(), root_));
}

TEST_F(RuntimeRegistry, UnlockedEntryIsStaleAndCleaned) {
  // What a launcher killed with SIGKILL leaves: a complete entry whose lock nobody holds.
  std::string dir = root_ + "/stale";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/lock");
  std::ofstream(dir + "/sandbox.json") << record_to_json(self_record("stale"));
  EXPECT_TRUE(list_sandboxes(root_).empty());
  EXPECT_FALSE(std::filesystem::exists(dir));
  // and a new sandbox may take the name
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/lock");
  RegistryEntry e("stale", root_);
  e.publish(self_record("stale"));
  EXPECT_EQ(list_sandboxes(root_).size(), 1u);
}

TEST_F(RuntimeRegistry, RejectsBadIds) {
  EXPECT_THROW(RegistryEntry("../escape", root_), Error);
  EXPECT_THROW(RegistryEntry("", root_), Error);
}

}  // namespace
}  // namespace crbox::runtime
