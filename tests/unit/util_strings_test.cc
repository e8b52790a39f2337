#include <gtest/gtest.h>

#include "util/strings.h"

using namespace crbox;

TEST(Strings, SplitKeepsEmptyFields) {
  auto v = split("a::b", ':');
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], "a");
  EXPECT_EQ(v[1], "");
  EXPECT_EQ(v[2], "b");
}

TEST(Strings, ParseSizeSuffixes) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("64M"), 64ull << 20);
  EXPECT_EQ(parse_size("1g"), 1ull << 30);
  EXPECT_FALSE(parse_size("12Q"));
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("99999999999999999999"));
}

TEST(Strings, ParseNumbers) {
  EXPECT_EQ(parse_u64("ff", 16), 255u);
  EXPECT_FALSE(parse_u64("12x"));
  EXPECT_EQ(parse_i64("-5"), -5);
}
