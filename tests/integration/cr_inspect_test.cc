// cr_inspect on files that are not valid bundles, on its command line, and on a real checkpoint.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "harness.h"

using namespace crbox::test;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f << bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The first 12 bytes of a header: magic, major, minor (little-endian).
std::string header_start(uint16_t major, uint16_t minor) {
  std::string s = "CRBOXIMG";
  s += static_cast<char>(major & 0xff);
  s += static_cast<char>(major >> 8);
  s += static_cast<char>(minor & 0xff);
  s += static_cast<char>(minor >> 8);
  return s;
}

}  // namespace

TEST(CrInspect, MissingFile) {
  TempDir d;
  auto r = run({tool("cr_inspect"), d / "nope.img"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "cr_inspect: cannot open " + (d / "nope.img") + ": No such file or directory.\n");
}

TEST(CrInspect, EmptyFile) {
  TempDir d;
  write_bytes(d / "empty.img", "");
  auto r = run({tool("cr_inspect"), d / "empty.img"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "cr_inspect: " + (d / "empty.img") + " is empty; it is not a crbox bundle.\n");
}

TEST(CrInspect, NotABundle) {
  TempDir d;
  write_bytes(d / "notes.txt", "hello, world\n");
  auto r = run({tool("cr_inspect"), d / "notes.txt"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "cr_inspect: " + (d / "notes.txt") + " is not a crbox bundle (it does not start with \"CRBOXIMG\").\n");

  // An executable is not a bundle either.
  auto e = run({tool("cr_inspect"), tool("cr_inspect")});
  EXPECT_EQ(e.status, 1);
  EXPECT_NE(e.err.find("is not a crbox bundle"), std::string::npos) << e.err;
}

TEST(CrInspect, TruncatedHeader) {
  TempDir d;
  write_bytes(d / "short.img", header_start(3, 0) + std::string(100, '\0'));
  auto r = run({tool("cr_inspect"), d / "short.img"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "cr_inspect: " + (d / "short.img") + " is truncated: the header ends at byte 112 of 4096.\n");
}

TEST(CrInspect, NewerFormat) {
  TempDir d;
  write_bytes(d / "new.img", header_start(4, 3) + std::string(5000, '\0'));
  auto r = run({tool("cr_inspect"), d / "new.img"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "cr_inspect: " + (d / "new.img") +
                       " was written by a newer crbox (format 4.3); this crbox reads format 3.x.\n");
}

TEST(CrInspect, DirectoryAndStandardInput) {
  TempDir d;
  auto r = run({tool("cr_inspect"), d.path()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "cr_inspect: " + d.path() + " is a directory, not a crbox bundle.\n");
  // The harness gives the tool /dev/null as standard input.
  auto s = run({tool("cr_inspect"), "-"});
  EXPECT_EQ(s.status, 1);
  EXPECT_EQ(s.err, "cr_inspect: standard input is empty; it is not a crbox bundle.\n");
}

TEST(CrInspect, UsageErrors) {
  auto none = run({tool("cr_inspect")});
  EXPECT_EQ(none.status, 2);
  EXPECT_EQ(none.err.rfind("cr_inspect: ", 0), 0u) << none.err;
  EXPECT_EQ(run({tool("cr_inspect"), "--bogus", "x"}).status, 2);
  EXPECT_EQ(run({tool("cr_inspect"), "a", "b"}).status, 2);
  auto help = run({tool("cr_inspect"), "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--summary"), std::string::npos);
}

// A real checkpoint of a running program, inspected whole, then damaged.
TEST(CrInspect, RealCheckpoint) {
  ASSERT_EQ(access(tool("cr_checkpoint").c_str(), X_OK), 0);
  ASSERT_EQ(access(program("ckpt_counter").c_str(), X_OK), 0);
  TempDir d;
  // Through bash, which closes every fd above 2 first: the harness lets the test's inherited fds
  // (e.g. a CI runner's pipe) leak into the child, and cr_checkpoint refuses such pipes.
  Child c({"/bin/bash", "-c",
           "for f in /proc/$$/fd/*; do n=${f##*/}; if [ \"$n\" -gt 2 ]; then eval \"exec $n>&-\"; fi; done; "
           "exec \"$0\" \"$@\"",
           program("ckpt_counter"), "100"});
  ASSERT_TRUE(c.wait_for("i = 2"));
  auto ck = run({tool("cr_checkpoint"), "--pid", "-f", d / "c.img", std::to_string(c.pid())});
  ASSERT_EQ(ck.status, 0) << ck.err;

  auto r = run({tool("cr_inspect"), d / "c.img"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("\"comm\": \"ckpt_counter\""), std::string::npos);
  EXPECT_NE(r.out.find("\"pid\": " + std::to_string(c.pid())), std::string::npos);
  EXPECT_NE(r.out.find("\"name\": \"[stack]\""), std::string::npos);
  EXPECT_NE(r.out.find("\"rip\": \"0x"), std::string::npos);
  EXPECT_NE(r.out.find("\"valid\": true"), std::string::npos);
  EXPECT_NE(r.out.find("\"warnings\": []"), std::string::npos) << r.out;

  auto s = run({tool("cr_inspect"), "--summary", "--no-pages", d / "c.img"});
  EXPECT_EQ(s.status, 0);
  EXPECT_EQ(s.out.find("\"vmas\": ["), std::string::npos);
  EXPECT_EQ(s.out.find("\"by_pid\""), std::string::npos);

  // The last page of page data, one bit flipped: the end section is 72 bytes, the data before it.
  std::string bytes = read_bytes(d / "c.img");
  ASSERT_GT(bytes.size(), 8192u);
  std::string flipped = bytes;
  flipped[bytes.size() - 72 - 100] ^= 0x10;
  write_bytes(d / "flipped.img", flipped);
  auto f = run({tool("cr_inspect"), d / "flipped.img"});
  EXPECT_EQ(f.status, 1);
  EXPECT_EQ(f.out, "");
  EXPECT_NE(f.err.find("is corrupt: checksum mismatch in section 'pages' at byte "), std::string::npos) << f.err;

  write_bytes(d / "cut.img", bytes.substr(0, bytes.size() - 72));
  auto t = run({tool("cr_inspect"), d / "cut.img"});
  EXPECT_EQ(t.status, 1);
  EXPECT_EQ(t.err, "cr_inspect: " + (d / "cut.img") + " is truncated: it ends at byte " +
                       std::to_string(bytes.size() - 72) + " without an end section.\n");
}
