#include "checkpoint/proc/sysvipc.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "util/error.h"
#include "util/strings.h"

namespace crbox::proc {

namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) i++;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') j++;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

std::vector<SysvIpcEntry> parse_sysvipc(std::string_view text) {
  std::vector<SysvIpcEntry> out;
  std::map<std::string, size_t> col;
  bool header = true;
  for (auto line : split(text, '\n')) {
    auto w = words(line);
    if (w.empty()) continue;
    if (header) {
      for (size_t i = 0; i < w.size(); i++) col[std::string(w[i])] = i;
      // The id column is named after the kind: shmid, semid or msqid.
      for (const char* id : {"shmid", "semid", "msqid"})
        if (col.count(id)) col["id"] = col[id];
      for (const char* need : {"key", "id", "perms", "uid", "gid", "cuid", "cgid"})
        if (!col.count(need)) throw Error("/proc/sysvipc: the header lacks '" + std::string(need) + "': " + std::string(line));
      header = false;
      continue;
    }
    auto bad = [&] { return Error("/proc/sysvipc: bad line: " + std::string(line)); };
    auto get = [&](const std::string& name, int base = 10) -> std::optional<uint64_t> {
      auto it = col.find(name);
      if (it == col.end()) return std::nullopt;
      if (it->second >= w.size()) throw bad();
      auto v = parse_u64(w[it->second], base);
      if (!v) throw bad();
      return v;
    };
    auto signed_field = [&](const std::string& name) {
      auto v = parse_i64(w.at(col.at(name)));
      if (!v || *v < INT32_MIN || *v > INT32_MAX) throw bad();
      return static_cast<int32_t>(*v);
    };
    if (w.size() < col.size() - 1) throw bad();  // "id" is an alias, not a column
    SysvIpcEntry e;
    e.key = signed_field("key");
    e.id = signed_field("id");
    e.mode = static_cast<uint32_t>(*get("perms", 8));
    e.uid = static_cast<uint32_t>(*get("uid"));
    e.gid = static_cast<uint32_t>(*get("gid"));
    e.cuid = static_cast<uint32_t>(*get("cuid"));
    e.cgid = static_cast<uint32_t>(*get("cgid"));
    for (const char* s : {"size", "nsems", "cbytes"})
      if (auto v = get(s)) e.size = *v;
    for (const char* s : {"nattch", "qnum"})
      if (auto v = get(s)) e.count = *v;
    out.push_back(e);
  }
  return out;
}

}  // namespace crbox::proc
