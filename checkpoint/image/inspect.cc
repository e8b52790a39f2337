// The JSON description of a bundle (docs/cli/cr_inspect.md). The whole bundle is read and checked
// before a byte is printed, so an invalid bundle never produces half a document.
#include "checkpoint/image/inspect.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <map>

#include "checkpoint/image/bundle.h"
#include "checkpoint/image/json.h"
#include "util/error.h"
#include "util/strings.h"

namespace crbox::image {

namespace {

std::string octal(uint64_t v, int width = 4) {
  char b[32];
  std::snprintf(b, sizeof b, "%0*llo", width, static_cast<unsigned long long>(v));
  return b;
}

std::string utc(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  long ns = static_cast<long>(unix_ns % 1000000000);
  if (ns < 0) {
    ns += 1000000000;
    --secs;
  }
  struct tm tm;
  if (!gmtime_r(&secs, &tm)) return "";
  char b[64];
  size_t n = std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(b + n, sizeof b - n, ".%09ldZ", ns);
  return b;
}

std::string signal_name(int sig) {
  if (sig < 32) {
    if (const char* a = sigabbrev_np(sig)) return std::string("SIG") + a;
  }
  return "SIG" + std::to_string(sig);  // real-time signals, numbered as the kernel does
}

const char* rlimit_name(int r) {
  static const char* const names[] = {"cpu",    "fsize", "data",       "stack",    "core", "rss",
                                      "nproc",  "nofile", "memlock",   "as",       "locks", "sigpending",
                                      "msgqueue", "nice", "rtprio",    "rttime"};
  return r >= 0 && r < 16 ? names[r] : "unknown";
}

const char* vma_kind(model::VmaKind k) {
  switch (k) {
    case model::VmaKind::anon_private: return "anon_private";
    case model::VmaKind::anon_shared: return "anon_shared";
    case model::VmaKind::file_private: return "file_private";
    case model::VmaKind::file_shared: return "file_shared";
    case model::VmaKind::vdso: return "vdso";
    case model::VmaKind::vvar: return "vvar";
    case model::VmaKind::vsyscall: return "vsyscall";
    case model::VmaKind::sysv_shm: return "sysv_shm";
  }
  return "unknown";
}

const char* fd_kind(model::FdKind k) {
  switch (k) {
    case model::FdKind::regular: return "regular";
    case model::FdKind::device: return "device";
    case model::FdKind::directory: return "directory";
    case model::FdKind::stdio: return "stdio";
    case model::FdKind::pipe: return "pipe";
    case model::FdKind::fifo: return "fifo";
    case model::FdKind::eventfd: return "eventfd";
    case model::FdKind::signalfd: return "signalfd";
    case model::FdKind::timerfd: return "timerfd";
    case model::FdKind::memfd: return "memfd";
    case model::FdKind::epoll: return "epoll";
    case model::FdKind::inotify: return "inotify";
    case model::FdKind::socket: return "socket";
    case model::FdKind::mqueue: return "mqueue";
    case model::FdKind::console: return "console";
  }
  return "unknown";
}

std::string prot_string(uint32_t prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

void write_file_id(JsonWriter& j, const model::FileId& f) {
  j.begin_object();
  j.field("dev", f.dev);
  j.field("ino", f.ino);
  j.field("size", f.size);
  j.field("mtime_ns", f.mtime_ns);
  j.end_object();
}

// Pages stored for one pid: its runs, sorted by address, and counts.
struct PidPages {
  uint64_t batches = 0, pages = 0;
  std::vector<PageRun> runs;
};

// Pages of `runs` (sorted, non-overlapping) inside [start, end).
uint64_t pages_in(const std::vector<PageRun>& runs, uint64_t start, uint64_t end, uint64_t ps) {
  auto it = std::partition_point(runs.begin(), runs.end(),
                                 [&](const PageRun& r) { return r.vaddr + r.npages * ps <= start; });
  uint64_t n = 0;
  for (; it != runs.end() && it->vaddr < end; ++it) {
    uint64_t a = std::max(it->vaddr, start), b = std::min(it->vaddr + it->npages * ps, end);
    if (b > a) n += (b - a) / ps;
  }
  return n;
}

struct Inspected {
  Header header;
  model::Image img;
  std::map<int32_t, PidPages> pages;
  // Per content id: bytes and number of its content sections.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> content;
  Totals totals;
  uint64_t trailing = 0;
  std::vector<std::string> warnings;
};

void write_sigaction_list(JsonWriter& j, const model::Process& p) {
  j.begin_array();
  for (size_t i = 0; i < p.sigactions.size(); ++i) {
    const auto& a = p.sigactions[i];
    if (a.handler == 0) continue;  // SIG_DFL
    j.begin_object();
    j.field("signal", static_cast<int>(i + 1));
    j.field("name", signal_name(static_cast<int>(i + 1)));
    j.field("handler", a.handler == 1 ? std::string("SIG_IGN") : hex(a.handler));
    j.field("flags", hex(a.flags));
    j.field("restorer", hex(a.restorer));
    j.field("mask", hex(a.mask));
    j.end_object();
  }
  j.end_array();
}

void write_thread(JsonWriter& j, const model::Thread& t) {
  j.begin_object();
  j.field("tid", t.tid);
  j.key("regs");
  j.begin_object();
  j.field("gp_size", t.regs.gp.size());
#if defined(__x86_64__)
  if (t.regs.gp.size() == sizeof(struct user_regs_struct)) {
    struct user_regs_struct r;
    std::memcpy(&r, t.regs.gp.data(), sizeof r);
    j.field("rip", hex(r.rip));
    j.field("rsp", hex(r.rsp));
    j.field("rax", hex(r.rax));
    j.field("orig_rax", hex(r.orig_rax));
    j.field("fs_base", hex(r.fs_base));
    j.field("gs_base", hex(r.gs_base));
  }
#endif
  j.field("xstate_size", t.regs.xstate.size());
  j.end_object();
  j.field("sigmask", hex(t.sigmask));
  j.field("pending_signals", t.pending.size());
  j.key("altstack");
  j.begin_object();
  j.field("sp", hex(t.altstack_sp));
  j.field("size", t.altstack_size);
  j.field("flags", t.altstack_flags);
  j.end_object();
  j.key("rseq");
  if (t.rseq_addr) {
    j.begin_object();
    j.field("addr", hex(t.rseq_addr));
    j.field("len", t.rseq_len);
    j.field("sig", hex(t.rseq_sig));
    j.end_object();
  } else {
    j.null();
  }
  j.key("robust_list");
  j.begin_object();
  j.field("head", hex(t.robust_list));
  j.field("len", t.robust_list_len);
  j.end_object();
  j.field("clear_child_tid", hex(t.clear_child_tid));
  j.end_object();
}

void write_process(JsonWriter& j, const model::Process& p, const PidPages* pp, const InspectOptions& opt,
                   uint64_t ps) {
  j.begin_object();
  j.field("pid", p.pid);
  j.field("ppid", p.ppid);
  j.field("pgid", p.pgid);
  j.field("sid", p.sid);
  j.field("host_pid", p.host_pid);
  j.field("comm", p.comm);
  if (opt.summary) {
    j.field("threads", p.threads.size());
    j.field("vmas", p.vmas.size());
    j.field("fds", p.fds.size());
    if (opt.pages) j.field("stored_pages", pp ? pp->pages : 0);
    j.end_object();
    return;
  }

  const auto& c = p.creds;
  j.key("creds");
  j.begin_object();
  j.key("uids");
  j.begin_array();
  for (auto u : c.uids) j.value(u);
  j.end_array();
  j.key("gids");
  j.begin_array();
  for (auto g : c.gids) j.value(g);
  j.end_array();
  j.key("groups");
  j.begin_array();
  for (auto g : c.groups) j.value(g);
  j.end_array();
  j.field("cap_inh", hex(c.cap_inh));
  j.field("cap_prm", hex(c.cap_prm));
  j.field("cap_eff", hex(c.cap_eff));
  j.field("cap_bnd", hex(c.cap_bnd));
  j.field("cap_amb", hex(c.cap_amb));
  j.field("securebits", hex(c.securebits));
  j.field("no_new_privs", c.no_new_privs);
  j.end_object();

  j.field("cwd", p.cwd);
  j.field("root", p.root);
  j.field("umask", octal(p.umask));
  j.field("personality", hex(p.personality));

  j.key("rlimits");
  j.begin_array();
  for (const auto& r : p.rlimits) {
    j.begin_object();
    j.field("resource", rlimit_name(r.resource));
    j.key("cur");
    if (r.cur == RLIM_INFINITY) j.value("unlimited"); else j.value(r.cur);
    j.key("max");
    if (r.max == RLIM_INFINITY) j.value("unlimited"); else j.value(r.max);
    j.end_object();
  }
  j.end_array();

  j.key("signals");
  j.begin_object();
  j.key("handlers");
  write_sigaction_list(j, p);
  j.field("shared_pending", p.shared_pending.size());
  j.end_object();

  j.key("itimers");
  j.begin_array();
  static const char* const which[] = {"real", "virtual", "prof"};
  for (const auto& t : p.itimers) {
    j.begin_object();
    j.field("which", t.which >= 0 && t.which < 3 ? which[t.which] : "unknown");
    j.field("interval_us", t.interval_us);
    j.field("value_us", t.value_us);
    j.end_object();
  }
  j.end_array();
  j.key("posix_timers");
  j.begin_array();
  for (const auto& t : p.posix_timers) {
    j.begin_object();
    j.field("id", t.id);
    j.field("clockid", t.clockid);
    j.field("notify", t.notify);
    j.field("signo", t.signo);
    j.field("sigval", hex(t.sigval));
    if (t.tid) j.field("tid", t.tid);
    j.field("value_ns", t.value_ns);
    j.field("interval_ns", t.interval_ns);
    j.end_object();
  }
  j.end_array();

  const auto& m = p.mm;
  j.key("mm");
  j.begin_object();
  j.field("start_code", hex(m.start_code));
  j.field("end_code", hex(m.end_code));
  j.field("start_data", hex(m.start_data));
  j.field("end_data", hex(m.end_data));
  j.field("start_brk", hex(m.start_brk));
  j.field("brk", hex(m.brk));
  j.field("start_stack", hex(m.start_stack));
  j.field("arg_start", hex(m.arg_start));
  j.field("arg_end", hex(m.arg_end));
  j.field("env_start", hex(m.env_start));
  j.field("env_end", hex(m.env_end));
  j.field("auxv_words", m.auxv.size());
  j.field("exe", m.exe);
  j.key("exe_id");
  write_file_id(j, m.exe_id);
  j.field("vdso_hash", hex(m.vdso_hash));
  if (m.exe_content_id) j.field("exe_content_id", m.exe_content_id);
  j.end_object();

  j.key("vmas");
  j.begin_array();
  uint64_t inside = 0;
  for (const auto& v : p.vmas) {
    j.begin_object();
    j.field("start", hex(v.start));
    j.field("end", hex(v.end));
    j.field("prot", prot_string(v.prot));
    j.key("flags");
    j.begin_array();
    j.value((v.flags & MAP_SHARED) ? "shared" : "private");
    if (v.flags & MAP_GROWSDOWN) j.value("growsdown");
    j.end_array();
    j.field("pgoff", hex(v.pgoff));
    j.field("kind", vma_kind(v.kind));
    j.field("name", v.name);
    if (v.kind == model::VmaKind::file_private || v.kind == model::VmaKind::file_shared) {
      j.key("file");
      write_file_id(j, v.file);
      if (v.content_id) j.field("content_id", v.content_id);
    }
    if (v.kind == model::VmaKind::sysv_shm) j.field("shmid", v.shmid);
    if (opt.pages) {
      uint64_t n = pp ? pages_in(pp->runs, v.start, v.end, ps) : 0;
      inside += n;
      j.field("stored_pages", n);
    }
    j.end_object();
  }
  j.end_array();

  j.key("fds");
  j.begin_array();
  for (const auto& f : p.fds) {
    j.begin_object();
    j.field("fd", f.fd);
    j.field("kind", fd_kind(f.kind));
    j.field("path", f.path);
    j.field("flags", "0" + octal(static_cast<uint32_t>(f.flags), 1));
    static const char* const acc[] = {"rdonly", "wronly", "rdwr", "?"};
    j.field("access", acc[f.flags & O_ACCMODE]);
    j.field("cloexec", f.cloexec);
    j.field("pos", f.pos);
    j.field("mode", octal(f.mode, 6));
    if (f.kind == model::FdKind::pipe || f.kind == model::FdKind::fifo) j.field("pipe_id", f.pipe_id);
    else if (f.kind != model::FdKind::stdio) {
      j.key("file");
      write_file_id(j, f.file);
    }
    if (f.desc_id) j.field("desc_id", f.desc_id);
    if (f.content_id) j.field("content_id", f.content_id);
    if (f.kind == model::FdKind::memfd) j.field("seals", hex(f.seals));
    if (!f.locks.empty()) {
      j.key("locks");
      j.begin_array();
      for (const auto& l : f.locks) {
        j.begin_object();
        j.field("kind", l.kind == model::LockKind::posix ? "posix" : l.kind == model::LockKind::ofd ? "ofd" : "flock");
        j.field("type", l.write ? "write" : "read");
        j.field("start", l.start);
        j.field("len", l.len);
        j.end_object();
      }
      j.end_array();
    }
    if (!f.epoll.empty()) {
      j.key("epoll");
      j.begin_array();
      for (const auto& e : f.epoll) {
        j.begin_object();
        j.field("fd", e.fd);
        j.field("events", hex(e.events));
        j.field("data", hex(e.data));
        j.end_object();
      }
      j.end_array();
    }
    if (!f.watches.empty()) {
      j.key("watches");
      j.begin_array();
      for (const auto& w : f.watches) {
        j.begin_object();
        j.field("wd", w.wd);
        j.field("mask", hex(w.mask));
        j.field("path", w.path);
        j.end_object();
      }
      j.end_array();
    }
    if (f.socket) {
      j.key("socket");
      j.begin_object();
      j.field("family", f.socket->family);
      j.field("type", f.socket->type);
      j.field("protocol", f.socket->protocol);
      j.field("state", f.socket->state == model::SocketState::listening   ? "listening"
                       : f.socket->state == model::SocketState::connected ? "connected"
                                                                          : "unconnected");
      j.field("ino", f.socket->ino);
      if (f.socket->peer_ino) j.field("peer_ino", f.socket->peer_ino);
      j.field("queued_messages", f.socket->queue.size());
      j.end_object();
    }
    j.end_object();
  }
  j.end_array();

  j.key("threads");
  j.begin_array();
  for (const auto& t : p.threads) write_thread(j, t);
  j.end_array();
  j.end_object();
}

void write_spec(JsonWriter& j, const model::SandboxSpec& s) {
  auto strings = [&](const char* k, const std::vector<std::string>& v) {
    j.key(k);
    j.begin_array();
    for (const auto& x : v) j.value(x);
    j.end_array();
  };
  j.begin_object();
  strings("argv", s.argv);
  strings("env", s.env);
  j.field("cwd", s.cwd);
  j.field("hostname", s.hostname);
  j.field("net", s.net == model::NetMode::none ? "none" : "host");
  j.field("rootfs", s.rootfs);
  j.field("read_only_root", s.read_only_root);
  j.key("binds");
  j.begin_array();
  for (const auto& b : s.binds) {
    j.begin_object();
    j.field("source", b.source);
    j.field("target", b.target);
    j.field("read_only", b.read_only);
    j.end_object();
  }
  j.end_array();
  j.key("uid");
  if (s.uid) j.value(*s.uid); else j.null();
  j.key("gid");
  if (s.gid) j.value(*s.gid); else j.null();
  strings("capabilities", s.capabilities);
  j.field("seccomp", s.seccomp == model::SeccompMode::none      ? "none"
                     : s.seccomp == model::SeccompMode::profile ? "profile"
                                                                : "default");
  if (s.seccomp == model::SeccompMode::profile) j.field("seccomp_profile_bytes", s.seccomp_profile.size());
  j.key("rlimits");
  j.begin_array();
  for (const auto& r : s.rlimits) {
    j.begin_object();
    j.field("name", r.name);
    j.field("soft", r.soft);
    j.field("hard", r.hard);
    j.end_object();
  }
  j.end_array();
  j.field("memory_limit", s.memory_limit);
  j.field("pids_limit", s.pids_limit);
  j.field("time_namespace", s.time_namespace);
  j.field("tty", s.tty);
  j.end_object();
}

Inspected read_everything(int fd, const std::string& name) {
  Inspected in;
  BundleReader r(fd, name);
  in.header = r.read_header();
  in.img = r.read_model();
  while (auto c = r.next_content()) {
    auto& [bytes, sections] = in.content[c->id];
    bytes += c->data.size();
    sections += 1;
  }
  while (auto b = r.next_pages()) {
    PidPages& pp = in.pages[b->pid];
    pp.batches += 1;
    for (const auto& run : b->runs) {
      pp.pages += run.npages;
      pp.runs.push_back(run);
    }
  }
  in.totals = r.totals();
  // Anything after the END section is not part of the bundle; count it (reading, so pipes work).
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("reading " + name);
    }
    if (n == 0) break;
    in.trailing += static_cast<uint64_t>(n);
  }

  // Consistency of the page data with the model: warnings, not errors — the bundle itself is sound.
  const uint64_t ps = in.header.page_size;
  for (auto& [pid, pp] : in.pages) {
    std::sort(pp.runs.begin(), pp.runs.end(), [](const PageRun& a, const PageRun& b) { return a.vaddr < b.vaddr; });
    for (size_t i = 1; i < pp.runs.size(); ++i)
      if (pp.runs[i - 1].vaddr + pp.runs[i - 1].npages * ps > pp.runs[i].vaddr) {
        in.warnings.push_back("pid " + std::to_string(pid) + " has page " + hex(pp.runs[i].vaddr) + " stored twice");
        break;
      }
    auto proc = std::find_if(in.img.processes.begin(), in.img.processes.end(),
                             [&](const model::Process& p) { return p.pid == pid; });
    if (proc == in.img.processes.end()) {
      in.warnings.push_back("page data for pid " + std::to_string(pid) + ", which the model does not hold");
      continue;
    }
    uint64_t inside = 0;
    for (const auto& v : proc->vmas) inside += pages_in(pp.runs, v.start, v.end, ps);
    if (inside < pp.pages)
      in.warnings.push_back("pid " + std::to_string(pid) + " has " + std::to_string(pp.pages - inside) +
                            " stored pages outside its VMAs");
  }
  if (in.trailing)
    in.warnings.push_back(std::to_string(in.trailing) + " bytes follow the end section and are not part of the bundle");
  return in;
}

}  // namespace

void inspect_bundle(int fd, const std::string& name, const InspectOptions& opt, std::ostream& out) {
  Inspected in = read_everything(fd, name);
  const uint64_t ps = in.header.page_size;
  JsonWriter j(out);
  j.begin_object();
  j.field("file", name);

  j.key("header");
  j.begin_object();
  j.field("format", std::to_string(in.header.major) + "." + std::to_string(in.header.minor));
  j.field("arch", in.header.arch);
  j.field("page_size", in.header.page_size);
  j.field("kernel_release", in.header.kernel_release);
  j.field("flags", hex(in.header.flags));
  j.end_object();

  const model::Image& img = in.img;
  j.key("image");
  j.begin_object();
  j.field("hostname", img.hostname);
  j.field("created_unix_ns", img.created_unix_ns);
  j.field("created", utc(img.created_unix_ns));
  j.field("root_pid", img.root_pid);
  j.key("sandbox");
  if (img.sandbox) {
    j.begin_object();
    j.field("id", img.sandbox->id);
    if (!opt.summary) {
      j.key("spec");
      write_spec(j, img.sandbox->spec);
      j.key("time");
      j.begin_object();
      j.field("monotonic_ns", img.sandbox->time.monotonic_ns);
      j.field("boottime_ns", img.sandbox->time.boottime_ns);
      j.end_object();
      if (const auto& c = img.sandbox->console) {
        j.key("console");
        j.begin_object();
        j.field("path", c->path);
        j.field("rows", c->rows);
        j.field("cols", c->cols);
        j.field("foreground_pgid", c->foreground);
        j.field("lflag", "0" + octal(c->lflag, 1));
        j.end_object();
      }
    }
    j.end_object();
  } else {
    j.null();
  }
  j.key("processes");
  j.begin_array();
  for (const auto& p : img.processes) {
    auto it = in.pages.find(p.pid);
    write_process(j, p, it == in.pages.end() ? nullptr : &it->second, opt, ps);
  }
  j.end_array();
  j.key("pipes");
  j.begin_array();
  for (const auto& pipe : img.pipes) {
    j.begin_object();
    j.field("id", pipe.id);
    j.field("capacity", pipe.capacity);
    j.field("buffered_bytes", pipe.data.size());
    j.end_object();
  }
  j.end_array();
  j.key("contents");
  j.begin_array();
  for (const auto& c : img.contents) {
    j.begin_object();
    j.field("id", c.id);
    j.field("path", c.path);
    j.field("mode", octal(c.mode, 6));
    // The bytes are in content sections (the reader checked they add up to the size).
    auto it = in.content.find(c.id);
    j.field("bytes", c.size);
    j.field("sections", it != in.content.end() ? it->second.second : 0);
    j.end_object();
  }
  j.end_array();
  j.key("ipc");
  j.begin_object();
  j.field("sysv_shm", img.ipc.shm.size());
  j.field("sysv_sem", img.ipc.sem.size());
  j.field("sysv_msg", img.ipc.msg.size());
  j.key("mqueues");
  j.begin_array();
  for (const auto& q : img.ipc.mqueues) j.value(q.name);
  j.end_array();
  j.end_object();
  j.end_object();

  if (opt.pages) {
    j.key("pages");
    j.begin_object();
    j.key("by_pid");
    j.begin_array();
    for (const auto& [pid, pp] : in.pages) {
      j.begin_object();
      j.field("pid", pid);
      j.field("batches", pp.batches);
      j.field("pages", pp.pages);
      j.field("bytes", pp.pages * ps);
      j.end_object();
    }
    j.end_array();
    j.field("batches", in.totals.batches);
    j.field("pages", in.totals.pages);
    j.field("bytes", in.totals.pages * ps);
    j.end_object();
  }

  j.key("content_sections");
  j.begin_object();
  j.field("sections", in.totals.content_sections);
  j.field("bytes", in.totals.content_bytes);
  j.end_object();

  j.key("verdict");
  j.begin_object();
  j.field("valid", true);
  j.field("checksums", "verified");
  j.field("bundle_bytes", in.totals.bytes);
  j.key("warnings");
  j.begin_array();
  for (const auto& w : in.warnings) j.value(w);
  j.end_array();
  j.end_object();
  j.end_object();
}

}  // namespace crbox::image
