// Sockets, made anew from the image.
//
// Sockets that belong together are made together, before any process exists (make_socket_pairs,
// in cr_restart or in a new sandbox's init, inside its namespaces), and inherited: unix sockets
// connected to each other (socketpair(2), or connect(2) + accept(2) through their listener so the
// accepted end keeps the listener's name), connections still waiting in a listener's queue,
// datagram sockets connected to a named one of the image, listeners (unix and TCP), and
// established TCP connections, both ends at once through TCP_REPAIR (tcp(7)). Everything else is
// standalone and made by its own process (make_socket): bound, listening, UDP bound or connected.
// Queued datagrams come back from their senders' addresses (socket_queues.cc); connections waiting
// for accept(2) queue up again in the order they waited in.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <set>

#include "checkpoint/restore/apply.h"
#include "checkpoint/restore/socket_queues.h"
#include "util/error.h"
#include "util/fd.h"

namespace crbox::restore {

namespace {

std::string fd_s(const model::Fd& f) { return "fd " + std::to_string(f.fd) + ": "; }

const model::Socket& sock(const model::Fd& f) {
  if (!f.socket) throw Error(fd_s(f) + "the image holds no state for this socket");
  return *f.socket;
}

bool is_unix(const model::Socket& s) { return s.family == AF_UNIX; }
bool is_tcp(const model::Socket& s) { return (s.family == AF_INET || s.family == AF_INET6) && s.type == SOCK_STREAM; }
bool listening(const model::Socket& s) { return s.state == model::SocketState::listening; }
bool connected(const model::Socket& s) { return s.state == model::SocketState::connected; }
bool named(const std::vector<uint8_t>& addr) { return addr.size() > offsetof(sockaddr_un, sun_path); }
bool abstract(const std::vector<uint8_t>& addr) { return named(addr) && addr[offsetof(sockaddr_un, sun_path)] == 0; }

bool is_option(const model::SockOpt& o, int level, int name) { return o.level == level && o.name == name; }

void set_int(int s, int level, int name, int v, const std::string& what) {
  if (setsockopt(s, level, name, &v, sizeof v) != 0) throw_errno("setsockopt " + what);
}

void set_option(int s, const model::SockOpt& o, const model::Fd& f) {
  int level = o.level, name = o.name;
  std::vector<uint8_t> v = o.value;
  if (level == SOL_SOCKET && (name == SO_SNDBUF || name == SO_RCVBUF) && v.size() == sizeof(int)) {
    // getsockopt reports twice what was asked (socket(7)); root may exceed the sysctl maximum.
    int n;
    std::memcpy(&n, v.data(), sizeof n);
    n /= 2;
    std::memcpy(v.data(), &n, sizeof n);
    name = name == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
  }
  if (setsockopt(s, level, name, v.data(), static_cast<socklen_t>(v.size())) != 0)
    throw_errno(fd_s(f) + "setting socket option " + std::to_string(o.level) + "/" + std::to_string(o.name));
}

// The saved options; SO_PEEK_OFF only `late` (after the queue is back), and `skip` left out.
void apply_options(int s, const model::Fd& f, bool late, int skip_level = -1, int skip_name = -1) {
  for (const auto& o : sock(f).options) {
    bool peek = is_option(o, SOL_SOCKET, SO_PEEK_OFF);
    if (peek != late || is_option(o, skip_level, skip_name)) continue;
    set_option(s, o, f);
  }
}

// A saved sockaddr as bytes, checked for size.
void to_sockaddr(const std::vector<uint8_t>& a, sockaddr_storage& ss, socklen_t& len) {
  if (a.size() > sizeof ss) throw Error("a socket address in the image is too long");
  std::memset(&ss, 0, sizeof ss);
  std::memcpy(&ss, a.data(), a.size());
  len = static_cast<socklen_t>(a.size());
}

// The address to bind or connect a named unix socket to: its absolute path (the name may have
// been relative to a working directory) or its abstract name.
std::vector<uint8_t> unix_address(const std::vector<uint8_t>& saved, const std::string& path) {
  if (!named(saved) || abstract(saved) || path.empty()) return saved;
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.size() >= sizeof un.sun_path) return saved;  // too long as absolute: the name as it was
  std::memcpy(un.sun_path, path.data(), path.size());
  auto* p = reinterpret_cast<const uint8_t*>(&un);
  return std::vector<uint8_t>(p, p + offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

std::string printable(const std::vector<uint8_t>& addr) {
  if (!named(addr)) return "(unnamed)";
  std::string p(addr.begin() + offsetof(sockaddr_un, sun_path), addr.end());
  if (p[0] == '\0') return "@" + p.substr(1);
  return p.substr(0, p.find('\0'));
}

// A socket file left at `path` by a socket that is gone (connect(2) gives ECONNREFUSED) is
// removed; one a live socket is bound to is an error. A probe of another type never makes a
// connection: a live socket answers EPROTOTYPE (unix(7)).
void clear_stale_path(const std::string& path, int type, const model::Fd& f) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode))
    throw Error(fd_s(f) + "cannot bind the unix socket to " + path + ": it exists and is not a socket", FailureKind::environment);
  UniqueFd probe(socket(AF_UNIX, (type == SOCK_DGRAM ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (!probe) throw_errno("socket");
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strncpy(un.sun_path, path.c_str(), sizeof un.sun_path - 1);
  if (connect(probe.get(), reinterpret_cast<sockaddr*>(&un), sizeof un) != 0 && errno == ECONNREFUSED) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(fd_s(f) + "removing the stale socket file " + path);
    return;
  }
  throw Error(fd_s(f) + "the unix socket path " + path + " is in use", FailureKind::temporary);
}

// Binds a unix socket to its saved name, with the socket file's mode and owner. `taken`: names
// already bound in this restore (an accepted connection's name is its listener's, never bound
// twice). Returns the path to unlink once everything is connected (the name was unlinked at the
// checkpoint), or "".
std::string bind_unix(int s, const model::Fd& f, std::set<std::vector<uint8_t>>* taken) {
  const auto& sk = sock(f);
  if (!named(sk.local)) return "";
  auto addr = unix_address(sk.local, sk.bind_path);
  if (taken && !taken->insert(addr).second) return "";
  bool path = !abstract(addr);
  if (path && sk.unlinked) {
    // The name was unlinked (or replaced) after bind: bound again only where nothing is, and
    // unlinked again at the end, so getsockname(2) still reports it.
    struct stat st {};
    if (lstat(sk.bind_path.c_str(), &st) == 0) return "";
  } else if (path) {
    clear_stale_path(printable(addr), sk.type, f);
  }
  sockaddr_storage ss;
  socklen_t len;
  to_sockaddr(addr, ss, len);
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno == EADDRINUSE) throw Error(fd_s(f) + "the unix socket name " + printable(addr) + " is in use", FailureKind::temporary);
    throw_errno(fd_s(f) + "binding a unix socket to " + printable(addr));
  }
  if (path && sk.file_mode) {
    std::string p = printable(addr);
    if (chmod(p.c_str(), sk.file_mode & 07777) != 0 || chown(p.c_str(), sk.file_uid, sk.file_gid) != 0)
      throw_errno(fd_s(f) + "setting the mode and owner of " + p);
  }
  return path && sk.unlinked ? printable(addr) : "";
}

// TCP/UDP: bound when the saved address has a port.
void bind_inet(int s, const model::Fd& f) {
  const auto& sk = sock(f);
  sockaddr_storage ss;
  socklen_t len;
  to_sockaddr(sk.local, ss, len);
  uint16_t port = 0;
  if (sk.family == AF_INET && len >= sizeof(sockaddr_in)) port = reinterpret_cast<sockaddr_in*>(&ss)->sin_port;
  if (sk.family == AF_INET6 && len >= sizeof(sockaddr_in6)) port = reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port;
  if (!port) return;
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno == EADDRINUSE)
      throw Error(fd_s(f) + "the address of a " + (sk.type == SOCK_STREAM ? "TCP" : "UDP") + " socket (port " +
                      std::to_string(ntohs(port)) + ") is in use",
                  FailureKind::temporary);
    throw_errno(fd_s(f) + "binding a socket to port " + std::to_string(ntohs(port)));
  }
}

void connect_to(int s, const std::vector<uint8_t>& addr, const model::Fd& f) {
  sockaddr_storage ss;
  socklen_t len;
  to_sockaddr(addr, ss, len);
  if (connect(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) throw_errno(fd_s(f) + "connecting a socket again");
}

UniqueFd new_socket(const model::Fd& f) {
  const auto& sk = sock(f);
  UniqueFd s(socket(sk.family, sk.type | SOCK_CLOEXEC, sk.protocol));
  if (!s) throw_errno(fd_s(f) + "socket(" + std::to_string(sk.family) + ", " + std::to_string(sk.type) + ")");
  return s;
}

// Writes the messages through `writer` into its peer's queue, nonblocking (the data fitted before,
// so it fits again; the writer's send buffer is raised while it is written and put back after).
void refill(int writer, const std::vector<std::vector<uint8_t>>& queue, int type, const model::Fd& f) {
  if (queue.empty()) return;
  size_t total = 0;
  for (const auto& m : queue) total += m.size() + 512;
  int saved = 0;
  socklen_t len = sizeof saved;
  getsockopt(writer, SOL_SOCKET, SO_SNDBUF, &saved, &len);
  int want = static_cast<int>(std::min<size_t>(total * 2 + 65536, 1u << 30));
  if (want > saved) set_int(writer, SOL_SOCKET, SO_SNDBUFFORCE, want, "SO_SNDBUFFORCE");
  for (const auto& m : queue) {
    size_t off = 0;
    do {
      ssize_t n = send(writer, m.data() + off, m.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno(fd_s(f) + "putting back the data queued in a unix socket");
      }
      if (type != SOCK_STREAM && static_cast<size_t>(n) != m.size())
        throw Error(fd_s(f) + "a message queued in a unix socket could not be put back whole");
      off += static_cast<size_t>(n);
    } while (off < m.size());
  }
  if (want > saved) set_int(writer, SOL_SOCKET, SO_SNDBUFFORCE, saved / 2, "SO_SNDBUFFORCE");
}

void apply_shutdown(int s, const model::Socket& sk) {
  // shutdown(2) of one end marks the other too (unix(7)), so each end's bits come out right.
  if (sk.shutdown & 2) shutdown(s, SHUT_WR);
  if (sk.shutdown & 1) shutdown(s, SHUT_RD);
}

// A standalone socket (see the top of the file), in the state the image gives, without its
// descriptor flags. `taken`/`unlink_later` as for bind_unix.
UniqueFd make_standalone(const model::Fd& f, std::set<std::vector<uint8_t>>* taken, std::vector<std::string>& unlink_later) {
  const auto& sk = sock(f);
  UniqueFd s = new_socket(f);
  apply_options(s.get(), f, false);
  if (is_unix(sk)) {
    std::string later = bind_unix(s.get(), f, taken);
    // A datagram socket's messages come back from their senders' names, before it is connected
    // (a connected one takes datagrams from its peer only, unix(7)).
    if (sk.type == SOCK_DGRAM) refill_unix_dgram(s.get(), sk, fd_s(f));
    if (listening(sk)) {
      if (listen(s.get(), sk.backlog) != 0) throw_errno(fd_s(f) + "listen");
    } else if (connected(sk)) {
      // A datagram socket connected to a named socket outside the image: by name again.
      if (sk.type != SOCK_DGRAM || !named(sk.peer))
        throw Error(fd_s(f) + "a connected unix socket must be made with its peer");
      connect_to(s.get(), sk.peer, f);
    }
    if (!later.empty()) unlink_later.push_back(later);
  } else if (is_tcp(sk) || sk.type == SOCK_DGRAM) {
    if (is_tcp(sk) && connected(sk)) throw Error(fd_s(f) + "an established TCP connection must be made with its peer");
    bind_inet(s.get(), f);
    // Queued datagrams before connect(2): a connected UDP socket drops those from elsewhere.
    if (sk.type == SOCK_DGRAM) refill_udp(s.get(), sk, fd_s(f));
    if (listening(sk) && listen(s.get(), sk.backlog) != 0) throw_errno(fd_s(f) + "listen");
    if (connected(sk)) connect_to(s.get(), sk.peer, f);
  } else {
    throw Error(fd_s(f) + "a socket of family " + std::to_string(sk.family) + " cannot be restored");
  }
  apply_options(s.get(), f, true);
  return s;
}

void set_flags(int s, const model::Fd& f) {
  if (fcntl(s, F_SETFL, f.flags & O_NONBLOCK) != 0) throw_errno(fd_s(f) + "F_SETFL");
}

// ---- TCP_REPAIR ----------------------------------------------------------------------------

void send_all(int s, const uint8_t* data, size_t len, const model::Fd& f, const char* what) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = send(s, data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{s, POLLOUT, 0};
      if (poll(&p, 1, 5000) <= 0) throw Error(fd_s(f) + "the " + std::string(what) + " of a TCP connection does not fit back");
      continue;
    }
    if (n < 0) throw_errno(fd_s(f) + "putting back the " + what + " of a TCP connection");
    off += static_cast<size_t>(n);
  }
}

// Raises a buffer so `bytes` of queued data fit (only when needed: a size set by hand stops the
// kernel from sizing it, tcp(7)).
void make_room(int s, int opt, int force, size_t bytes) {
  if (bytes == 0) return;
  int cur = 0;
  socklen_t len = sizeof cur;
  getsockopt(s, SOL_SOCKET, opt, &cur, &len);
  size_t need = bytes * 2 + 131072;
  if (static_cast<size_t>(cur) >= need) return;
  set_int(s, SOL_SOCKET, force, static_cast<int>(std::min<size_t>(need, 1u << 30) / 2 + 1), "a TCP buffer size");
}

// An established connection in repair mode (tcp(7)): sequence numbers first (only a closed socket
// takes them), bind and connect (no handshake in repair mode), the negotiated options, the
// queues (sent in repair mode, data goes straight into them: the send queue as sent but not yet
// acknowledged, the receive queue as received), then the window. finish_tcp leaves repair mode.
UniqueFd make_tcp_repair(const model::Fd& f) {
  const auto& sk = sock(f);
  const auto& t = sk.tcp;
  UniqueFd s(socket(sk.family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!s) throw_errno("socket");
  int on = TCP_REPAIR_ON;
  if (setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0)
    throw_errno(fd_s(f) + "TCP_REPAIR (it needs CAP_NET_ADMIN)");
  // Repair mode binds over anything (SK_FORCE_REUSE): SO_REUSEADDR only after it.
  apply_options(s.get(), f, false, SOL_SOCKET, SO_REUSEADDR);
  set_int(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
  set_int(s.get(), IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(t.snd_seq - static_cast<uint32_t>(t.send_queue.size())),
          "TCP_QUEUE_SEQ");
  set_int(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE");
  set_int(s.get(), IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(t.rcv_seq - static_cast<uint32_t>(t.recv_queue.size())),
          "TCP_QUEUE_SEQ");
  sockaddr_storage ss;
  socklen_t len;
  to_sockaddr(sk.local, ss, len);
  if (bind(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) throw_errno(fd_s(f) + "binding a TCP connection");
  to_sockaddr(sk.peer, ss, len);
  if (connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) throw_errno(fd_s(f) + "connecting a TCP connection in repair mode");
  std::vector<tcp_repair_opt> opts;
  opts.push_back({TCPOPT_MAXSEG, t.mss});
  if (t.wscale_ok) opts.push_back({TCPOPT_WINDOW, static_cast<uint32_t>(t.snd_wscale) | (static_cast<uint32_t>(t.rcv_wscale) << 16)});
  if (t.sack) opts.push_back({TCPOPT_SACK_PERMITTED, 0});
  if (t.timestamps) opts.push_back({TCPOPT_TIMESTAMP, 0});
  if (setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(), static_cast<socklen_t>(opts.size() * sizeof opts[0])) != 0)
    throw_errno(fd_s(f) + "TCP_REPAIR_OPTIONS");
  if (t.timestamps) set_int(s.get(), IPPROTO_TCP, TCP_TIMESTAMP, static_cast<int>(t.ts_val), "TCP_TIMESTAMP");
  size_t sent = t.send_queue.size() - std::min<size_t>(t.unsent, t.send_queue.size());
  make_room(s.get(), SO_SNDBUF, SO_SNDBUFFORCE, t.send_queue.size());
  make_room(s.get(), SO_RCVBUF, SO_RCVBUFFORCE, t.recv_queue.size());
  set_int(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
  send_all(s.get(), t.send_queue.data(), sent, f, "send queue");
  set_int(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE");
  send_all(s.get(), t.recv_queue.data(), t.recv_queue.size(), f, "receive queue");
  set_int(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE");
  tcp_repair_window w{};
  w.snd_wl1 = t.snd_wl1;
  w.snd_wnd = t.snd_wnd;
  w.max_window = t.max_window;
  w.rcv_wnd = t.rcv_wnd;
  w.rcv_wup = t.rcv_wup;
  if (setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) != 0) throw_errno(fd_s(f) + "TCP_REPAIR_WINDOW");
  return s;
}

// Out of repair mode (a window probe tells the peer where we are), SO_REUSEADDR as saved (leaving
// repair mode clears it), then the bytes that were never sent go out as ordinary writes.
void finish_tcp(int s, const model::Fd& f) {
  const auto& sk = sock(f);
  int off = TCP_REPAIR_OFF;
  if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) != 0) throw_errno(fd_s(f) + "leaving TCP_REPAIR");
  for (const auto& o : sk.options)
    if (is_option(o, SOL_SOCKET, SO_REUSEADDR)) set_option(s, o, f);
  const auto& t = sk.tcp;
  size_t unsent = std::min<size_t>(t.unsent, t.send_queue.size());
  send_all(s, t.send_queue.data() + (t.send_queue.size() - unsent), unsent, f, "unsent data");
  apply_options(s, f, true);
}

}  // namespace

int make_socket(const model::Fd& f) {
  std::vector<std::string> unlink_later;
  UniqueFd s = make_standalone(f, nullptr, unlink_later);
  for (const auto& p : unlink_later) unlink(p.c_str());
  set_flags(s.get(), f);
  return s.release();
}

void make_socket_pairs(const model::Image& img, std::map<uint64_t, int>& objects, int min_fd) {
  // One entry per socket (an open file description may be held by several fds and processes).
  struct Entry {
    const model::Fd* f;
    const model::Socket* s;
    UniqueFd fd;
  };
  std::vector<Entry> all;
  std::set<uint64_t> seen;
  for (const auto& p : img.processes) {
    if (p.zombie) continue;
    for (const auto& f : p.fds)
      if (f.kind == model::FdKind::socket && f.socket && seen.insert(f.desc_id).second) all.push_back({&f, &*f.socket, {}});
  }
  if (all.empty()) return;
  using Key = std::pair<uint64_t, uint64_t>;  // (netns, inode)
  std::map<Key, size_t> by_ino;
  for (size_t i = 0; i < all.size(); i++) by_ino[{all[i].s->netns, all[i].s->ino}] = i;
  auto peer_of = [&](const Entry& e) -> Entry* {
    auto it = by_ino.find({e.s->netns, e.s->peer_ino});
    return e.s->peer_ino && it != by_ino.end() ? &all[it->second] : nullptr;
  };
  // Who connected to whom without being connected back (datagram sockets to a named one).
  std::set<size_t> targets;
  for (auto& e : all)
    if (is_unix(*e.s) && connected(*e.s))
      if (Entry* p = peer_of(e); p && p->s->peer_ino != e.s->ino) targets.insert(by_ino[{p->s->netns, p->s->ino}]);
  std::set<std::vector<uint8_t>> taken;
  std::vector<std::string> unlink_later;

  // 1. Listeners, and the named sockets others connected to.
  for (size_t i = 0; i < all.size(); i++) {
    auto& e = all[i];
    if (listening(*e.s) || targets.count(i)) e.fd = make_standalone(*e.f, &taken, unlink_later);
  }
  auto listener_of = [&](const Entry& e) -> Entry* {
    // An accepted connection: the same type, bound to its listener's name (the same socket file).
    if (!is_unix(*e.s) || !named(e.s->local)) return nullptr;
    for (auto& l : all)
      if (is_unix(*l.s) && listening(*l.s) && l.s->netns == e.s->netns && l.s->type == e.s->type && l.s->local == e.s->local &&
          l.s->name_ino == e.s->name_ino)
        return &l;
    return nullptr;
  };
  auto new_unix = [&](Entry& e) {
    e.fd = new_socket(*e.f);
    apply_options(e.fd.get(), *e.f, false);
    std::string later = bind_unix(e.fd.get(), *e.f, &taken);
    if (!later.empty()) unlink_later.push_back(later);
  };
  // Connects `client` to listener `l` (by the name it was bound to); false if it cannot be reached.
  auto connect_listener = [&](Entry& client, Entry& l) {
    new_unix(client);
    auto addr = unix_address(l.s->local, l.s->bind_path);
    sockaddr_storage ss;
    socklen_t len;
    to_sockaddr(addr, ss, len);
    return connect(client.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
  };

  // 2. Unix sockets connected to each other.
  for (auto& e : all) {
    if (!is_unix(*e.s) || !connected(*e.s) || e.fd || e.s->pending) continue;
    if (e.s->peer_gone) {
      // Its peer was closed: a pair whose other end is closed once the data is back.
      int sv[2];
      if (socketpair(AF_UNIX, e.s->type | SOCK_CLOEXEC, 0, sv) != 0) throw_errno(fd_s(*e.f) + "socketpair");
      e.fd.reset(sv[0]);
      UniqueFd other(sv[1]);
      apply_options(e.fd.get(), *e.f, false);
      refill(other.get(), e.s->queue, e.s->type, *e.f);
      continue;
    }
    Entry* p = peer_of(e);
    if (!p || p->s->peer_ino != e.s->ino || p->fd) continue;  // one-sided or pending: below
    Entry* server = &e;
    Entry* client = p;
    Entry* l = listener_of(e);
    if (!l) {
      l = listener_of(*p);
      std::swap(server, client);
    }
    if (l && connect_listener(*client, *l)) {
      // accept(2) takes the oldest connection: this one, as no other was made yet.
      int a = accept4(l->fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (a < 0) throw_errno(fd_s(*server->f) + "accepting a connection again");
      server->fd.reset(a);
      apply_options(a, *server->f, false);
      continue;
    }
    // A socketpair(2). If one end was accepted from a listener that is gone, its name (the
    // listener's) is bound to it where free, so getsockname(2) still reports it. (Names of a pair
    // made through a listener that could not be reached are lost.)
    if (client->fd) client->fd.reset();
    int sv[2];
    if (socketpair(AF_UNIX, e.s->type | SOCK_CLOEXEC, 0, sv) != 0) throw_errno(fd_s(*e.f) + "socketpair");
    e.fd.reset(sv[0]);
    p->fd.reset(sv[1]);
    for (Entry* x : {&e, p}) {
      apply_options(x->fd.get(), *x->f, false);
      std::string later = bind_unix(x->fd.get(), *x->f, &taken);
      if (!later.empty()) unlink_later.push_back(later);
    }
  }
  // 3. Datagram sockets connected to a named socket of the image, and connections not yet
  // accepted.
  for (auto& e : all) {
    if (!is_unix(*e.s) || !connected(*e.s) || e.fd || e.s->pending) continue;
    Entry* p = peer_of(e);
    if (!p || p->s->peer_ino == e.s->ino) continue;
    new_unix(e);
    // Its queue: what came from elsewhere can only have come before it was connected, so those
    // messages go first, from their senders' names; the tail that came from its peer is sent by
    // the peer itself once connected (a peer is not held to the receiver's max_dgram_qlen,
    // unix(7)).
    size_t tail = e.s->queue.size();
    if (e.s->type == SOCK_DGRAM)
      while (tail > 0 && tail - 1 < e.s->queue_from.size() && e.s->queue_from[tail - 1] == p->s->local) tail--;
    if (e.s->type == SOCK_DGRAM) refill_unix_dgram(e.fd.get(), *e.s, fd_s(*e.f), 0, tail);
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(p->fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0 || len <= offsetof(sockaddr_un, sun_path))
      throw Error(fd_s(*e.f) + "a unix socket connected to an unnamed one cannot be connected again");
    if (connect(e.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) throw_errno(fd_s(*e.f) + "connecting a unix socket again");
    if (e.s->type == SOCK_DGRAM) refill_unix_dgram(e.fd.get(), *e.s, fd_s(*e.f), tail, SIZE_MAX, p->fd.get());
  }
  // Connections not yet accepted queue up again in the order they waited in (the listener's
  // pending_order, from UNIX_DIAG_ICONS); any it does not list come after, in the image's order.
  std::vector<std::pair<Entry*, Entry*>> waiting;  // (connection, listener)
  for (auto& e : all) {
    if (e.fd || !is_unix(*e.s) || !connected(*e.s) || !e.s->pending) continue;
    Entry* l = nullptr;
    for (auto& c : all)
      if (is_unix(*c.s) && listening(*c.s) && c.s->netns == e.s->netns && c.s->type == e.s->type && c.s->local == e.s->peer)
        l = &c;
    if (!l) throw Error(fd_s(*e.f) + "the listener of a connection not yet accepted is not in the image");
    waiting.push_back({&e, l});
  }
  auto rank = [](const std::pair<Entry*, Entry*>& w) {
    const auto& order = w.second->s->pending_order;
    return std::find(order.begin(), order.end(), w.first->s->ino) - order.begin();
  };
  std::stable_sort(waiting.begin(), waiting.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  for (auto [e, l] : waiting)
    if (!connect_listener(*e, *l))
      throw_errno(fd_s(*e->f) + "connecting again to " + printable(l->s->local) + " (a connection not yet accepted)");
  // 4. The queued data of everything made so far, then shutdown states.
  for (auto& e : all) {
    if (!e.fd || !is_unix(*e.s) || !connected(*e.s) || e.s->peer_gone) continue;
    Entry* p = peer_of(e);
    if (!p || !p->fd || p->s->peer_ino != e.s->ino) continue;
    refill(p->fd.get(), e.s->queue, e.s->type, *e.f);
  }
  for (auto& e : all)
    if (e.fd && is_unix(*e.s) && connected(*e.s) && !e.s->peer_gone) apply_shutdown(e.fd.get(), *e.s);

  // 5. Established TCP connections, both ends in repair mode first, then let go together: a
  // segment from an end out of repair to one not made yet would be answered with a reset.
  std::vector<Entry*> repaired;
  for (auto& e : all) {
    if (!is_tcp(*e.s) || !connected(*e.s) || e.fd) continue;
    e.fd = make_tcp_repair(*e.f);
    repaired.push_back(&e);
  }
  for (Entry* e : repaired) finish_tcp(e->fd.get(), *e->f);

  for (const auto& p : unlink_later) unlink(p.c_str());
  // 6. Late options, flags; each at a number >= min_fd, not close-on-exec: every new process
  // inherits it and takes its own.
  for (auto& e : all) {
    if (!e.fd) continue;
    if (!is_tcp(*e.s) && !listening(*e.s) && !targets.count(static_cast<size_t>(&e - all.data())))
      apply_options(e.fd.get(), *e.f, true);
    set_flags(e.fd.get(), *e.f);
    int high = fcntl(e.fd.get(), F_DUPFD, min_fd);
    if (high < 0) throw_errno("fcntl F_DUPFD");
    objects[e.f->desc_id] = high;
  }
}

}  // namespace crbox::restore
