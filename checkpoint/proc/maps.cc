// /proc/PID/maps parser. Each line is (proc(5)):
//   address           perms offset  dev   inode       pathname
//   00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon
// The pathname is separated from the inode by padding spaces and may itself contain spaces, so
// everything after the inode (leading spaces removed) is the path. The kernel appends " (deleted)"
// to a mapped file that was unlinked, and escapes a newline inside a path as "\012" (seq_file_path
// with "\n" as the escape set); we keep that escape as is, since a literal backslash is not escaped
// and the text is therefore ambiguous — callers that need the exact path use /proc/PID/map_files.
#include "checkpoint/proc/maps.h"

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

constexpr std::string_view kDeleted = " (deleted)";

// Next whitespace-separated token of `s`, advancing `s` past it.
std::string_view next_token(std::string_view& s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find(' ');
  std::string_view tok = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return tok;
}

[[noreturn]] void bad(std::string_view line, const char* why) {
  throw Error("malformed /proc/PID/maps line \"" + std::string(line) + "\": " + why + ".");
}

MapsEntry parse_line(std::string_view line) {
  MapsEntry e;
  std::string_view rest = line;
  std::string_view range = next_token(rest), perms = next_token(rest), off = next_token(rest),
                   dev = next_token(rest), ino = next_token(rest);
  if (ino.empty()) bad(line, "fewer than five fields");

  size_t dash = range.find('-');
  if (dash == std::string_view::npos) bad(line, "no '-' in the address range");
  auto start = parse_u64(range.substr(0, dash), 16), end = parse_u64(range.substr(dash + 1), 16);
  if (!start || !end || *end < *start) bad(line, "bad address range");
  e.start = *start;
  e.end = *end;

  if (perms.size() != 4) bad(line, "permissions are not four characters");
  auto flag = [&](size_t i, char yes) {
    if (perms[i] == yes) return true;
    if (perms[i] != '-') bad(line, "bad permission character");
    return false;
  };
  e.read = flag(0, 'r');
  e.write = flag(1, 'w');
  e.exec = flag(2, 'x');
  if (perms[3] == 's')
    e.shared = true;
  else if (perms[3] != 'p')
    bad(line, "sharing is neither 's' nor 'p'");

  auto o = parse_u64(off, 16);
  if (!o) bad(line, "bad offset");
  e.offset = *o;

  size_t colon = dev.find(':');
  if (colon == std::string_view::npos) bad(line, "bad device");
  auto maj = parse_u64(dev.substr(0, colon), 16), min = parse_u64(dev.substr(colon + 1), 16);
  if (!maj || !min || *maj > UINT32_MAX || *min > UINT32_MAX) bad(line, "bad device");
  e.dev_major = static_cast<uint32_t>(*maj);
  e.dev_minor = static_cast<uint32_t>(*min);

  auto i = parse_u64(ino, 10);
  if (!i) bad(line, "bad inode");
  e.inode = *i;

  size_t p = rest.find_first_not_of(' ');
  std::string_view path = p == std::string_view::npos ? std::string_view{} : rest.substr(p);
  // A file unlinked while mapped shows as "<path> (deleted)" (d_path(), fs/d_path.c). A file
  // really named "x (deleted)" is indistinguishable; the caller can confirm with st_nlink.
  if (!path.empty() && path.front() == '/' && path.size() > kDeleted.size() &&
      path.substr(path.size() - kDeleted.size()) == kDeleted) {
    path.remove_suffix(kDeleted.size());
    e.deleted = true;
  }
  e.path = std::string(path);
  return e;
}

}  // namespace

std::vector<MapsEntry> parse_maps(std::string_view text) {
  std::vector<MapsEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    out.push_back(parse_line(line));
  }
  return out;
}

std::string map_files_path(int pid, uint64_t start, uint64_t end) {
  return "/proc/" + std::to_string(pid) + "/map_files/" + hex(start, false) + "-" + hex(end, false);
}

}  // namespace crbox::proc
