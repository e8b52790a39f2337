#include "util/strings.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace crbox {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::optional<uint64_t> parse_u64(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<int64_t> parse_i64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_size(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  uint64_t mult = 1;
  switch (std::tolower(static_cast<unsigned char>(s.back()))) {
    case 'k': mult = 1ull << 10; break;
    case 'm': mult = 1ull << 20; break;
    case 'g': mult = 1ull << 30; break;
    case 't': mult = 1ull << 40; break;
    default: break;
  }
  if (mult != 1) s.remove_suffix(1);
  auto v = parse_u64(s);
  if (!v || *v > UINT64_MAX / mult) return std::nullopt;
  return *v * mult;
}

std::string hex(uint64_t v, bool prefix) {
  char b[24];
  std::snprintf(b, sizeof b, prefix ? "0x%llx" : "%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace crbox
