// /proc/PID/mountinfo parser (proc(5)):
//   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//   (1)(2) (3)  (4)   (5)      (6)     (7)   (8) (9)    (10)         (11)
// Field 7 is zero or more optional fields ("shared:N", "master:N", "propagate_from:N",
// "unbindable") ended by the single "-" of field 8. The kernel escapes space, tab, newline and
// backslash in root, mount point, fs type and source as three-digit octal ("\040" for a space;
// mangle()/seq_escape() in fs/proc_namespace.c); we decode them. The super options are left as
// printed: filesystems escape ',' inside option values there, and decoding would make the list
// impossible to split.
#include "checkpoint/proc/mountinfo.h"

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

[[noreturn]] void bad(std::string_view line, const char* why) {
  throw Error("malformed /proc/PID/mountinfo line \"" + std::string(line) + "\": " + why + ".");
}

bool is_octal(char c) { return c >= '0' && c <= '7'; }

std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && is_octal(s[i + 1]) && is_octal(s[i + 2]) && is_octal(s[i + 3])) {
      out += static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

MountInfo parse_line(std::string_view line) {
  // The kernel separates fields with exactly one space, so an empty source (possible for some
  // pseudo filesystems) shows as an empty field; split without merging separators.
  std::vector<std::string_view> f = split(line, ' ');
  if (f.size() < 7) bad(line, "fewer than seven fields before the separator");

  MountInfo m;
  auto id = parse_u64(f[0]), parent = parse_u64(f[1]);
  if (!id || !parent) bad(line, "bad mount id");
  m.mount_id = *id;
  m.parent_id = *parent;
  size_t colon = f[2].find(':');
  if (colon == std::string_view::npos) bad(line, "bad major:minor");
  auto maj = parse_u64(f[2].substr(0, colon)), min = parse_u64(f[2].substr(colon + 1));
  if (!maj || !min || *maj > UINT32_MAX || *min > UINT32_MAX) bad(line, "bad major:minor");
  m.major = static_cast<uint32_t>(*maj);
  m.minor = static_cast<uint32_t>(*min);
  m.root = unescape(f[3]);
  m.mount_point = unescape(f[4]);
  m.mount_options = unescape(f[5]);

  size_t i = 6;
  while (i < f.size() && f[i] != "-") m.optional_fields.emplace_back(f[i++]);
  if (i == f.size()) bad(line, "no \"-\" separator");
  ++i;
  if (f.size() - i < 2) bad(line, "no filesystem type or source after the separator");
  m.fs_type = unescape(f[i]);
  m.source = unescape(f[i + 1]);
  if (f.size() - i >= 3) m.super_options = std::string(f[i + 2]);
  return m;
}

}  // namespace

std::vector<MountInfo> parse_mountinfo(std::string_view text) {
  std::vector<MountInfo> out;
  for (std::string_view line : split(text, '\n')) {
    if (line.empty()) continue;
    out.push_back(parse_line(line));
  }
  return out;
}

}  // namespace crbox::proc
