// cr_run's LD_PRELOAD for libcr (runtime/libcr_preload.h): appended after what the program would
// get, one libcr entry only, and the directory the libraries are taken from.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "runtime/libcr_preload.h"

namespace crbox::runtime {
namespace {

TEST(LibcrPreloadValue, AppendsAfterTheCurrentValue) {
  EXPECT_EQ(preload_with("", "/d/libcr_run.so.0"), "/d/libcr_run.so.0");
  EXPECT_EQ(preload_with("/a/x.so", "/d/libcr_run.so.0"), "/a/x.so:/d/libcr_run.so.0");
  // ld.so(8) separates entries with colons or spaces; empty ones are dropped.
  EXPECT_EQ(preload_with("/a/x.so /b/y.so::", "/d/libcr_run.so.0"), "/a/x.so:/b/y.so:/d/libcr_run.so.0");
}

TEST(LibcrPreloadValue, KeepsOneLibcrEntry) {
  // A cr_run under cr_run, or cr_run --omit under cr_run: the new one replaces the old one.
  EXPECT_EQ(preload_with("/old/libcr_run.so.0:/a/x.so", "/d/libcr_run.so.0"), "/a/x.so:/d/libcr_run.so.0");
  EXPECT_EQ(preload_with("/old/libcr_run.so.0 /a/x.so", "/d/libcr_omit.so.0"), "/a/x.so:/d/libcr_omit.so.0");
  EXPECT_EQ(preload_with("libcr_omit.so", "/d/libcr_run.so.0"), "/d/libcr_run.so.0");
  EXPECT_EQ(preload_with("/a/libcr.so.0", "/d/libcr_run.so.0"), "/a/libcr.so.0:/d/libcr_run.so.0")
      << "libcr.so itself is the program's business";
}

TEST(LibcrPreloadValue, FindsTheBuiltLibraries) {
  // This test binary is no installed tool: the libraries come from the build tree (or an install).
  std::string dir = libcr_dir();
  ASSERT_FALSE(dir.empty());
  auto v = libcr_preload(false, "/a/x.so");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, "/a/x.so:" + dir + "/libcr_run.so.0");
  v = libcr_preload(true, "");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, dir + "/libcr_omit.so.0");
  // A --rootfs that does not hold them: no preload (the loader would complain at every exec).
  EXPECT_FALSE(libcr_preload(false, "", "/nonexistent-rootfs"));
  // CRBOX_LIBCR_DIR overrides, when it holds them.
  setenv("CRBOX_LIBCR_DIR", dir.c_str(), 1);
  EXPECT_EQ(libcr_dir(), dir);
  setenv("CRBOX_LIBCR_DIR", "/nonexistent", 1);
  EXPECT_EQ(libcr_dir(), "");
  unsetenv("CRBOX_LIBCR_DIR");
}

}  // namespace
}  // namespace crbox::runtime
