// String helpers for parsers and option handling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace crbox {

std::vector<std::string_view> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
// Parses a whole decimal (or, with base 16, hex) number; nullopt on junk or overflow.
std::optional<uint64_t> parse_u64(std::string_view s, int base = 10);
std::optional<int64_t> parse_i64(std::string_view s);
// Parses a byte size with an optional K/M/G/T suffix (powers of 1024): "64M", "1g", "4096".
std::optional<uint64_t> parse_size(std::string_view s);

// An address or mask as lowercase hexadecimal: "0x7f12" (or "7f12" without the prefix).
std::string hex(uint64_t v, bool prefix = true);

}  // namespace crbox
