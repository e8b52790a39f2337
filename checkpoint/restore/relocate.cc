// BLCR's --relocate OLD=NEW (cr_restart(1) of BLCR): the files a process had open or mapped, its
// executable and its working directory are looked for under NEW where they were under OLD.
// A rule matches a whole leading part of a path: /data=/mnt/data moves /data/x, not /database.
#include "checkpoint/restore/apply.h"

namespace crbox::restore {

namespace {

void move(std::string& path, const std::vector<std::pair<std::string, std::string>>& rules) {
  for (const auto& [from, to] : rules) {
    if (path.compare(0, from.size(), from) != 0) continue;
    if (path.size() != from.size() && path[from.size()] != '/' && from.back() != '/') continue;
    path = to + path.substr(from.size());
    return;
  }
}

}  // namespace

void relocate_paths(model::Image& img, const std::vector<std::pair<std::string, std::string>>& rules) {
  if (rules.empty()) return;
  for (auto& p : img.processes) {
    move(p.cwd, rules);
    if (!p.mm.exe_content_id) move(p.mm.exe, rules);
    for (auto& v : p.vmas)
      if ((v.kind == model::VmaKind::file_private || v.kind == model::VmaKind::file_shared) && !v.content_id)
        move(v.name, rules);
    for (auto& f : p.fds) {
      bool by_path = f.kind == model::FdKind::regular || f.kind == model::FdKind::device ||
                     f.kind == model::FdKind::directory || f.kind == model::FdKind::fifo;
      if (by_path && !f.content_id) move(f.path, rules);
      for (auto& w : f.watches) move(w.path, rules);
    }
  }
}

}  // namespace crbox::restore
