// /proc/PID/status parser (proc(5)): "Key:\tvalue" lines. Fields this parser does not know are
// ignored; fields that newer kernels added (Umask 4.7, NoNewPrivs 4.10, Seccomp_filters 5.9,
// NSpgid/NSsid 4.1) keep their defaults when absent.
#include "checkpoint/proc/status.h"

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

[[noreturn]] void bad(std::string_view key, std::string_view value) {
  throw Error("malformed /proc/PID/status: bad value \"" + std::string(value) + "\" for " + std::string(key) + ".");
}

// The Name line is escaped by proc_task_name() (fs/proc/array.c): seq_escape_str() with
// ESCAPE_SPACE | ESCAPE_SPECIAL restricted to "\n\\", so a newline reads "\n" and a backslash "\\".
// Decode every C-style escape the kernel could produce.
std::string unescape_name(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'f': out += '\f'; break;
      case 'v': out += '\v'; break;
      case 'a': out += '\a'; break;
      case 'e': out += '\x1b'; break;
      default: out += c; break;  // "\\" and "\""
    }
  }
  return out;
}

// Whitespace-separated fields of a value (tabs between Uid fields, spaces between Groups).
std::vector<std::string_view> fields(std::string_view v) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t')) ++i;
    size_t j = i;
    while (j < v.size() && v[j] != ' ' && v[j] != '\t') ++j;
    if (j > i) out.push_back(v.substr(i, j - i));
    i = j;
  }
  return out;
}

uint64_t num(std::string_view key, std::string_view v, int base = 10) {
  auto r = parse_u64(trim(v), base);
  if (!r) bad(key, v);
  return *r;
}

int64_t snum(std::string_view key, std::string_view v) {
  auto r = parse_i64(trim(v));
  if (!r) bad(key, v);
  return *r;
}

template <class T>
std::vector<T> list(std::string_view key, std::string_view v) {
  std::vector<T> out;
  for (auto f : fields(v)) out.push_back(static_cast<T>(snum(key, f)));
  return out;
}

void four(std::string_view key, std::string_view v, uint32_t (&dst)[4]) {
  auto f = fields(v);
  if (f.size() != 4) bad(key, v);
  for (size_t i = 0; i < 4; ++i) dst[i] = static_cast<uint32_t>(num(key, f[i]));
}

}  // namespace

Status parse_status(std::string_view text) {
  Status s;
  bool have_name = false;
  for (std::string_view line : split(text, '\n')) {
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) throw Error("malformed /proc/PID/status: a line without ':'.");
    std::string_view key = line.substr(0, colon);
    std::string_view raw = line.substr(colon + 1);
    // Name keeps its own leading/trailing spaces: only the one tab after the colon is a separator.
    if (key == "Name") {
      if (!raw.empty() && raw.front() == '\t') raw.remove_prefix(1);
      s.name = unescape_name(raw);
      have_name = true;
      continue;
    }
    std::string_view v = trim(raw);
    if (key == "Umask") s.umask = static_cast<uint32_t>(num(key, v, 8));
    else if (key == "State") {
      if (v.empty()) bad(key, v);
      s.state = v[0];
    } else if (key == "Tgid") s.tgid = static_cast<int32_t>(snum(key, v));
    else if (key == "Pid") s.pid = static_cast<int32_t>(snum(key, v));
    else if (key == "PPid") s.ppid = static_cast<int32_t>(snum(key, v));
    else if (key == "TracerPid") s.tracer_pid = static_cast<int32_t>(snum(key, v));
    else if (key == "Uid") four(key, v, s.uid);
    else if (key == "Gid") four(key, v, s.gid);
    else if (key == "Groups") s.groups = list<uint32_t>(key, v);
    else if (key == "NStgid") s.nstgid = list<int32_t>(key, v);
    else if (key == "NSpid") s.nspid = list<int32_t>(key, v);
    else if (key == "NSpgid") s.nspgid = list<int32_t>(key, v);
    else if (key == "NSsid") s.nssid = list<int32_t>(key, v);
    else if (key == "Threads") s.threads = snum(key, v);
    else if (key == "SigPnd") s.sig_pnd = num(key, v, 16);
    else if (key == "ShdPnd") s.shd_pnd = num(key, v, 16);
    else if (key == "SigBlk") s.sig_blk = num(key, v, 16);
    else if (key == "SigIgn") s.sig_ign = num(key, v, 16);
    else if (key == "SigCgt") s.sig_cgt = num(key, v, 16);
    else if (key == "CapInh") s.cap_inh = num(key, v, 16);
    else if (key == "CapPrm") s.cap_prm = num(key, v, 16);
    else if (key == "CapEff") s.cap_eff = num(key, v, 16);
    else if (key == "CapBnd") s.cap_bnd = num(key, v, 16);
    else if (key == "CapAmb") s.cap_amb = num(key, v, 16);
    else if (key == "NoNewPrivs") s.no_new_privs = num(key, v) != 0;
    else if (key == "Seccomp") s.seccomp = static_cast<int32_t>(snum(key, v));
    else if (key == "Seccomp_filters") s.seccomp_filters = static_cast<int32_t>(snum(key, v));
  }
  if (!have_name) throw Error("malformed /proc/PID/status: no Name line.");
  return s;
}

}  // namespace crbox::proc
