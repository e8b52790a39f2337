// How programs get libcr without calling it: cr_run preloads libcr_run.so (plain and sandboxed),
// after any LD_PRELOAD they already had; cr_run --omit preloads libcr_omit.so, which marks the
// program left out and hands libcr_run.so to what it starts; a program linked with -lcr_run or
// -lcr_omit carries it itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "checkpoint_util.h"
#include "libcr_util.h"

namespace crbox::test {
namespace {

using namespace std::chrono_literals;
using namespace crbox::test::ckpt;
using libcr::env_var;
using libcr::maps_of;
using libcr::RemotePage;

class LibcrPreload : public CkptTest {};

size_t task_count(pid_t pid) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    (void)e;
    n++;
  }
  return n;
}

// The program runs with libcr_run.so.0 preloaded: the library, the page (omit 0, no callbacks),
// and no extra thread (libcr's thread starts only for a program that calls cr_init()).
void expect_libcr_run(pid_t pid) {
  std::string preload = env_var(pid, "LD_PRELOAD");
  EXPECT_NE(preload.find("/libcr_run.so.0"), std::string::npos) << preload;
  std::string maps = maps_of(pid);
  EXPECT_NE(maps.find("libcr_run.so"), std::string::npos) << maps;
  EXPECT_NE(maps.find("libcr.so"), std::string::npos) << maps;
  RemotePage page(pid);
  ASSERT_TRUE(page.ok()) << maps;
  EXPECT_EQ(page->magic, CRBOX_LIBCR_MAGIC);
  EXPECT_EQ(page->omit, 0u);
  EXPECT_EQ(page->callbacks, 0u);
  EXPECT_EQ(task_count(pid), 1u);
}

TEST_F(LibcrPreload, PlainCrRunPreloadsLibcrRun) {
  std::string why;
  Launched l = launch(Mode::Plain, "ckpt_counter", {"100"}, "", &why);
  ASSERT_GT(l.pid, 0) << why;
  expect_libcr_run(l.pid);
}

TEST_F(LibcrPreload, SandboxedProgramToo) {
  std::string why;
  Launched l = launch(Mode::Sandbox, "ckpt_counter", {"100"}, "", &why);
  ASSERT_GT(l.pid, 0) << why;
  expect_libcr_run(l.pid);
}

TEST_F(LibcrPreload, AfterAnLdPreloadTheProgramHad) {
  const std::string libm = "/lib/x86_64-linux-gnu/libm.so.6";
  ASSERT_TRUE(file_exists(libm));
  // Inherited by a plain program...
  setenv("LD_PRELOAD", libm.c_str(), 1);
  std::string why;
  Launched plain = launch(Mode::Plain, "ckpt_counter", {"100"}, "", &why);
  unsetenv("LD_PRELOAD");
  ASSERT_GT(plain.pid, 0) << why;
  std::string v = env_var(plain.pid, "LD_PRELOAD");
  EXPECT_EQ(v.rfind(libm + ":", 0), 0u) << v;
  EXPECT_NE(v.find("/libcr_run.so.0"), std::string::npos) << v;
  // ... or given with --env to a sandboxed one.
  Child c({tool("cr_run"), "--sandbox", "--env", "LD_PRELOAD=" + libm, program("ckpt_counter"), "100"});
  ASSERT_TRUE(c.wait_for("pid=")) << c.output();
  pid_t pid = find_by_comm(c.pid(), "ckpt_counter");
  ASSERT_GT(pid, 0);
  v = env_var(pid, "LD_PRELOAD");
  EXPECT_EQ(v.rfind(libm + ":", 0), 0u) << v;
  EXPECT_NE(v.find("/libcr_run.so.0"), std::string::npos) << v;
}

TEST_F(LibcrPreload, OmitMarksTheProgramNotWhatItStarts) {
  // sh is left out; the counter it starts (a child: the command is not its last) is not.
  Child c({tool("cr_run"), "--omit", "/bin/sh", "-c", program("ckpt_counter") + " 100; true"});
  ASSERT_TRUE(c.wait_for("pid=")) << c.output();
  pid_t counter = find_by_comm(c.pid(), "ckpt_counter");
  ASSERT_GT(counter, 0);
  pid_t sh = parent_of(counter);
  ASSERT_EQ(comm_of(sh), "sh");
  RemotePage shp(sh);
  ASSERT_TRUE(shp.ok()) << maps_of(sh);
  EXPECT_EQ(shp->omit, 1u);
  EXPECT_NE(maps_of(sh).find("libcr_omit.so"), std::string::npos);
  RemotePage cp(counter);
  ASSERT_TRUE(cp.ok()) << maps_of(counter);
  EXPECT_EQ(cp->omit, 0u);
  std::string maps = maps_of(counter);
  EXPECT_NE(maps.find("libcr_run.so"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libcr_omit.so"), std::string::npos) << maps;
}

TEST_F(LibcrPreload, OmitInASandbox) {
  Child c({tool("cr_run"), "--sandbox", "--omit", program("ckpt_counter"), "100"});
  ASSERT_TRUE(c.wait_for("pid=")) << c.output();
  pid_t pid = find_by_comm(c.pid(), "ckpt_counter");
  ASSERT_GT(pid, 0);
  RemotePage p(pid);
  ASSERT_TRUE(p.ok()) << maps_of(pid);
  EXPECT_EQ(p->omit, 1u);
}

TEST_F(LibcrPreload, TheSeedExampleLinkedWithCrRun) {
  // gcc -o appli appli.c -lcr_run, run directly.
  Child c({program("cr_run_counter"), "100", "1000"});
  auto line = c.wait_for("pid=");
  ASSERT_TRUE(line) << c.output();
  EXPECT_NE(line->find("libcr=1"), std::string::npos) << *line;
  EXPECT_TRUE(c.wait_for("i = 1")) << c.output();
}

TEST_F(LibcrPreload, AWrapperLinkedWithCrOmit) {
  Child c({program("cr_omit_wrapper"), program("ckpt_counter"), "100"});
  auto line = c.wait_for("wrapper pid=");
  ASSERT_TRUE(line) << c.output();
  EXPECT_NE(line->find("omit=1"), std::string::npos) << *line;
  auto w = c.wait_for("worker pid=");
  ASSERT_TRUE(w) << c.output();
  pid_t worker = std::stoi(w->substr(w->find("pid=") + 4));
  ASSERT_TRUE(c.wait_for("i = 0")) << c.output();
  EXPECT_EQ(maps_of(worker).find("/memfd:crbox-libcr"), std::string::npos) << "an ordinary program";
}

}  // namespace
}  // namespace crbox::test
