// File contents of a few hundred MiB in a bundle: a file deleted while open and a memfd of 300 MiB
// each travel in content sections, not in the model (whose reader bound is 256 MiB), and come back
// byte for byte at their offsets. The restored program checks its contents from inside.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// The type and payload length of the bundle's first section (the model), from its raw bytes
// (docs/image-format.md: the section header at byte 4096, u32 type, u64 length at +8).
std::pair<uint32_t, uint64_t> first_section(const std::string& path) {
  uint8_t b[32] = {};
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {0, 0};
  ssize_t n = pread(fd, b, sizeof b, 4096);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof b)) return {0, 0};
  uint32_t type = 0;
  uint64_t len = 0;
  for (int i = 3; i >= 0; --i) type = (type << 8) | b[i];
  for (int i = 15; i >= 8; --i) len = (len << 8) | b[i];
  return {type, len};
}

class BigContents : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }
};

TEST_P(BigContents, ADeletedFileAndAMemfdOf300MiBComeBack) {
  ScratchDir dir;
  std::string why;
  auto orig = launch(GetParam(), "big_contents", {"300"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto ready = next_starting(*orig.child, "ready", 120s);
  ASSERT_TRUE(ready) << orig.child->output();
  const std::string sums = token_after(*ready, "sums=");
  ASSERT_EQ(sums.size(), 33u) << *ready;

  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path(), 300s);
  ASSERT_TRUE(succeeded(r));
  orig.child->wait(20s);
  ASSERT_TRUE(eventually([] { return live_children().empty(); }, 10s));

  // The 600 MiB of content are in the bundle, but not in its model section.
  EXPECT_GT(file_size(dir / "ctx"), static_cast<off_t>(600 * kMiB));
  auto [type, model_len] = first_section(dir / "ctx");
  EXPECT_EQ(type, 1u);
  EXPECT_LT(model_len, 4 * kMiB);
  auto info = ckpt::crbox("cr_inspect", {dir / "ctx"}, dir.path(), 300s);
  ASSERT_TRUE(succeeded(info));
  EXPECT_NE(info.out.find("\"bytes\": " + std::to_string(300 * kMiB)), std::string::npos) << info.out.substr(0, 4000);

  auto rs = start_restart(dir / "ctx", {}, dir.path());
  ASSERT_TRUE(next_starting(*rs, "tick", 300s)) << rs->output();
  pid_t rp = restored_pid(*rs, GetParam(), orig.pid, "big_contents");
  ASSERT_GT(rp, 0) << rs->output();
  ::kill(rp, SIGUSR1);
  auto line = next_starting(*rs, "big ", 120s);
  ASSERT_TRUE(line) << rs->output();
  EXPECT_EQ(*line, "big ok sums=" + sums);
}

INSTANTIATE_TEST_SUITE_P(, BigContents, ::testing::Values(Mode::Plain, Mode::Sandbox),
                         [](const auto& info) { return mode_name(info.param); });

}  // namespace
