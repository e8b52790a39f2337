#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/user.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <sstream>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/inspect.h"
#include "checkpoint/image/json.h"
#include "image_test_util.h"
#include "util/error.h"
#include "util/fd.h"

using namespace crbox;
using namespace crbox::image;
using namespace crbox::image::testing;

namespace {

std::string inspect(const model::Image& img, const std::vector<Batch>& batches, InspectOptions opt = {},
                    const std::string& trailing = "") {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), img, batches);
  if (!trailing.empty()) {
    EXPECT_EQ(write(fd.get(), trailing.data(), trailing.size()), ssize_t(trailing.size()));
  }
  lseek(fd.get(), 0, SEEK_SET);
  std::ostringstream out;
  inspect_bundle(fd.get(), "b.img", opt, out);
  return out.str();
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST(ImageJson, QuotesStrings) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_quote("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(json_quote(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(json_quote(std::string("nul\0x", 5)), "\"nul\\u0000x\"");
  EXPECT_EQ(json_quote("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(json_quote("bad \xff byte"), "\"bad \\ufffd byte\"");
  EXPECT_EQ(json_quote("cut \xe2\x82"), "\"cut \\ufffd\\ufffd\"");
  EXPECT_EQ(json_quote("overlong \xc0\xaf"), "\"overlong \\ufffd\\ufffd\"");
  EXPECT_EQ(json_quote("surrogate \xed\xa0\x80"), "\"surrogate \\ufffd\\ufffd\\ufffd\"");
}

TEST(ImageJson, WritesNestedContainers) {
  std::ostringstream os;
  JsonWriter j(os);
  j.begin_object();
  j.field("a", 1);
  j.key("b");
  j.begin_array();
  j.value(true);
  j.value("x");
  j.begin_object();
  j.end_object();
  j.null();
  j.end_array();
  j.field("c", uint64_t{18446744073709551615ull});
  j.field("d", -5);
  j.key("e");
  j.begin_array();
  j.end_array();
  j.end_object();
  EXPECT_EQ(os.str(),
            "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    \"x\",\n    {},\n    null\n  ],\n"
            "  \"c\": 18446744073709551615,\n  \"d\": -5,\n  \"e\": []\n}\n");
}

TEST(ImageInspect, DescribesEveryPart) {
  model::Image img = make_image();
  // Registers as PTRACE_GETREGSET returns them.
  struct user_regs_struct r = {};
  r.rip = 0x401a2b;
  r.rsp = 0x7ffc0000fff0;
  r.rax = static_cast<unsigned long long>(-4);  // -EINTR
  r.orig_rax = 35;                              // nanosleep
  r.fs_base = 0x7f1234567740;
  img.processes[0].threads[0].regs.gp.assign(reinterpret_cast<uint8_t*>(&r), reinterpret_cast<uint8_t*>(&r + 1));
  img.processes[0].sigactions[14].handler = 1;  // SIGTERM ignored
  std::string j = inspect(img, make_batches());

  EXPECT_TRUE(has(j, "\"file\": \"b.img\"")) << j;
  EXPECT_TRUE(has(j, "\"format\": \"3.0\""));
  EXPECT_TRUE(has(j, "\"page_size\": " + std::to_string(kPs)));
  EXPECT_TRUE(has(j, "\"hostname\": \"host-1\""));
  EXPECT_TRUE(has(j, "\"created\": \"2023-11-14T22:13:20.123456789Z\""));
  EXPECT_TRUE(has(j, "\"id\": \"sb-42\""));
  EXPECT_TRUE(has(j, "\"argv\": [\n"));
  EXPECT_TRUE(has(j, "\"comm\": \"a) b (c\""));
  EXPECT_TRUE(has(j, "\"umask\": \"0027\""));
  EXPECT_TRUE(has(j, "\"cwd\": \"/home/u/dir with space\""));
  EXPECT_TRUE(has(j, "\"resource\": \"nofile\""));
  EXPECT_TRUE(has(j, "\"max\": \"unlimited\""));
  EXPECT_TRUE(has(j, "\"name\": \"SIGINT\""));
  EXPECT_TRUE(has(j, "\"handler\": \"0x401234\""));
  EXPECT_TRUE(has(j, "\"name\": \"SIGTERM\""));
  EXPECT_TRUE(has(j, "\"handler\": \"SIG_IGN\""));
  EXPECT_FALSE(has(j, "\"name\": \"SIGHUP\""));  // default handlers are left out
  EXPECT_TRUE(has(j, "\"which\": \"real\""));
  EXPECT_TRUE(has(j, "\"start\": \"0x7f0000000000\""));
  EXPECT_TRUE(has(j, "\"prot\": \"rw-\""));
  EXPECT_TRUE(has(j, "\"kind\": \"file_private\""));
  EXPECT_TRUE(has(j, "\"path\": \"/tmp/\\\"quoted\\\"\\n\""));
  EXPECT_TRUE(has(j, "\"access\": \"rdwr\""));
  EXPECT_TRUE(has(j, "\"rip\": \"0x401a2b\""));
  EXPECT_TRUE(has(j, "\"rsp\": \"0x7ffc0000fff0\""));
  EXPECT_TRUE(has(j, "\"rax\": \"0xfffffffffffffffc\""));
  EXPECT_TRUE(has(j, "\"orig_rax\": \"0x23\""));
  EXPECT_TRUE(has(j, "\"fs_base\": \"0x7f1234567740\""));
  EXPECT_TRUE(has(j, "\"xstate_size\": 2696"));
  EXPECT_TRUE(has(j, "\"sigmask\": \"0x10000\""));
  EXPECT_TRUE(has(j, "\"sig\": \"0x53053053\""));
  // Batches for pid 2: 5 + 1 pages, for pid 3: 22 pages; the heap VMA of pid 2 holds 5 of them.
  EXPECT_TRUE(has(j, "\"pid\": 2,\n        \"batches\": 2,\n        \"pages\": 6,")) << j;
  EXPECT_TRUE(has(j, "\"pid\": 3,\n        \"batches\": 1,\n        \"pages\": 22,"));
  EXPECT_TRUE(has(j, "\"stored_pages\": 5"));
  EXPECT_TRUE(has(j, "\"valid\": true"));
  // pid 3's batch has runs outside its VMAs.
  EXPECT_TRUE(has(j, "pid 3 has 6 stored pages outside its VMAs")) << j;
  // Raw byte vectors are never dumped.
  EXPECT_FALSE(has(j, "205, 205"));
  EXPECT_EQ(j.back(), '\n');
}

TEST(ImageInspect, SummaryAndNoPages) {
  std::string s = inspect(make_image(), make_batches(), {.pages = true, .summary = true});
  EXPECT_TRUE(has(s, "\"threads\": 2"));
  EXPECT_TRUE(has(s, "\"stored_pages\": 22"));
  EXPECT_FALSE(has(s, "\"vmas\": ["));
  EXPECT_FALSE(has(s, "\"spec\""));
  std::string n = inspect(make_image(), make_batches(), {.pages = false, .summary = false});
  EXPECT_FALSE(has(n, "\"by_pid\""));
  EXPECT_FALSE(has(n, "stored_pages"));
  EXPECT_TRUE(has(n, "\"vmas\": ["));
}

TEST(ImageInspect, WarnsAboutTrailingBytes) {
  std::string s = inspect(make_image(), {}, {}, "extra");
  EXPECT_TRUE(has(s, "5 bytes follow the end section")) << s;
}

TEST(ImageInspect, InvalidBundleThrowsAndPrintsNothing) {
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), make_image(), make_batches());
  off_t size = lseek(fd.get(), 0, SEEK_END);
  ASSERT_EQ(ftruncate(fd.get(), size - 100), 0);
  lseek(fd.get(), 0, SEEK_SET);
  std::ostringstream out;
  try {
    inspect_bundle(fd.get(), "b.img", {}, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(has(e.what(), "b.img is truncated: ")) << e.what();
  }
  EXPECT_EQ(out.str(), "");
}

TEST(ImageInspect, ListsContentSections) {
  model::Image img = make_image();
  model::FileContent c;
  c.id = 1;
  c.path = "/memfd:scratch";
  c.mode = 0100600;
  c.size = 2500;
  img.contents.push_back(c);
  ContentBytes bytes;
  bytes[1].assign(2500, 7);
  UniqueFd fd(memfd_create("bundle", MFD_CLOEXEC));
  write_bundle(fd.get(), img, make_batches(), {}, bytes, 1000);
  lseek(fd.get(), 0, SEEK_SET);
  std::ostringstream out;
  inspect_bundle(fd.get(), "b.img", {}, out);
  const std::string j = out.str();
  EXPECT_TRUE(has(j, "\"path\": \"/memfd:scratch\",\n        \"mode\": \"100600\",\n        \"bytes\": 2500,\n"
                     "        \"sections\": 3\n"))
      << j;
  EXPECT_TRUE(has(j, "\"content_sections\": {\n    \"sections\": 3,\n    \"bytes\": 2500\n  }")) << j;
}
