// `cmake --install` into a fresh prefix gives what a BLCR user builds against: `gcc appli.c
// -lcr_run` and `gcc appli.c -lcr` (also through pkg-config) link and run, and the installed
// cr_run preloads the installed libcr_run.so.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

const char* kAppli = R"(#include <libcr.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef USE_API
static int cb(void* arg) { (void)arg; return cr_checkpoint(0) < 0; }
#endif

int main(void) {
  char line[256] = "";
  FILE* m = fopen("/proc/self/maps", "r");
  int page = 0;
  while (m && fgets(line, sizeof line, m)) page |= strstr(line, "crbox-libcr") != NULL;
  if (m) fclose(m);
#ifdef USE_API
  cr_client_id_t id = cr_init();
  if (id < 0 || cr_register_callback(cb, NULL, CR_THREAD_CONTEXT) < 0) return 1;
  printf("api ok %s\n", cr_strerror(CR_ETEMPFAIL));
#endif
  printf("page=%d\n", page);
  return 0;
}
)";

// The full path of a command found in PATH (run() does not search it).
std::string which(const std::string& name) {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/" + name;
    if (access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return name;
}

class Install : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix = dir / "prefix";
    // CRBOX_BIN_DIR is <build>/cli.
    std::string build = std::filesystem::path(CRBOX_BIN_DIR).parent_path();
    auto r = run({which("cmake"), "--install", build, "--prefix", prefix}, 120s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    spit(dir / "appli.c", kAppli);
    libdir = file_exists(prefix + "/lib64/libcr.so") ? prefix + "/lib64" : prefix + "/lib";
    for (auto sub : {"/lib/x86_64-linux-gnu"})
      if (file_exists(prefix + sub + "/libcr.so")) libdir = prefix + sub;
  }
  // Compiles appli.c with `flags` (library and include paths of the prefix added) and runs it.
  RunResult build_and_run(const std::vector<std::string>& flags, const std::string& out) {
    std::vector<std::string> cc{which("gcc"), "-o", dir / out, dir / "appli.c", "-I" + prefix + "/include", "-L" + libdir,
                                "-Wl,-rpath," + libdir};
    cc.insert(cc.end(), flags.begin(), flags.end());
    auto r = run(cc, 60s);
    if (r.status != 0) return r;
    return run({dir / out}, 30s);
  }

  ScratchDir dir;
  std::string prefix, libdir;
};

TEST_F(Install, LinkingWithCrRunMakesAProgramCheckpointAware) {
  auto r = build_and_run({"-Wl,--as-needed", "-lcr_run"}, "appli_run");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("page=1"), std::string::npos) << r.out;
}

TEST_F(Install, LinkingWithCrGivesTheApi) {
  auto r = build_and_run({"-DUSE_API", "-lcr"}, "appli_cr");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("api ok"), std::string::npos) << r.out;
}

TEST_F(Install, PkgConfigFindsLibcr) {
  setenv("PKG_CONFIG_PATH", (libdir + "/pkgconfig").c_str(), 1);
  auto cflags = run({which("pkg-config"), "--cflags", "--libs", "libcr"}, 30s);
  unsetenv("PKG_CONFIG_PATH");
  ASSERT_EQ(cflags.status, 0) << cflags.err;
  EXPECT_NE(cflags.out.find("-lcr"), std::string::npos) << cflags.out;
  EXPECT_NE(cflags.out.find(prefix), std::string::npos) << cflags.out;
}

TEST_F(Install, InstalledCrRunPreloadsTheInstalledLibrary) {
  auto r = build_and_run({}, "appli_plain");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("page=0"), std::string::npos) << r.out;
  auto under = run({prefix + "/bin/cr_run", dir / "appli_plain"}, 30s);
  ASSERT_EQ(under.status, 0) << under.out << under.err;
  EXPECT_NE(under.out.find("page=1"), std::string::npos) << under.out;
}

}  // namespace
