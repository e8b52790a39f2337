// Sockets: read through a copy of the target's descriptor (pidfd_getfd(2)), so every query goes to
// the very socket the target holds. Nothing is taken out of it: queued data is read with MSG_PEEK
// (the peek offset, SO_PEEK_OFF, is put back), a TCP connection leaves repair mode as it entered,
// and no receive call is made that would take a pending error (see error_pending).
//
//   unix (unix(7)): family, type, name, peer, shutdown state, queued data, pending connections,
//     from getsockopt/getsockname and the unix_diag netlink interface (sock_diag(7)), asked from
//     inside the socket's network namespace;
//   TCP and UDP (tcp(7), udp(7)): addresses, state, common options; the datagrams queued in a
//     UDP socket with their senders' and destination addresses; an established TCP connection
//     through TCP_REPAIR, only in a network namespace other than ours (a sandbox's).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "checkpoint/dump/collect.h"
#include "checkpoint/proc/sock_diag.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/files.h"

namespace crbox::dump {

namespace {

std::string where(pid_t pid, int fd) { return "pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": "; }

[[noreturn]] void unsupported(pid_t pid, int fd, const std::string& what) {
  throw Error(where(pid, fd) + what + " is not supported");
}

int get_int(int s, int level, int name, const std::string& what) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(s, level, name, &v, &len) != 0) throw_errno("getsockopt " + what);
  return v;
}

void set_int(int s, int level, int name, int v, const std::string& what) {
  if (setsockopt(s, level, name, &v, sizeof v) != 0) throw_errno("setsockopt " + what);
}

// getsockname(2) / getpeername(2) as raw bytes; empty when not connected.
std::vector<uint8_t> address(int s, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(s, reinterpret_cast<sockaddr*>(&ss), &len) : getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) return {};
  auto* p = reinterpret_cast<const uint8_t*>(&ss);
  return std::vector<uint8_t>(p, p + len);
}

std::string family_name(int family, int type, int protocol) {
  std::string kind = "(type " + std::to_string(type) + ", protocol " + std::to_string(protocol) + ")";
  switch (family) {
    case AF_NETLINK: return "a netlink socket";
    case AF_PACKET: return "a packet socket";
    case AF_INET: return type == SOCK_RAW ? "a raw IPv4 socket" : "an IPv4 socket " + kind;
    case AF_INET6: return type == SOCK_RAW ? "a raw IPv6 socket" : "an IPv6 socket " + kind;
    case AF_VSOCK: return "a vsock socket";
    case AF_ALG: return "an AF_ALG (kernel crypto) socket";
    case AF_BLUETOOTH: return "a bluetooth socket";
    case AF_XDP: return "an AF_XDP socket";
    default: return "a socket of family " + std::to_string(family);
  }
}

std::string tcp_state_name(int st) {
  static const char* names[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
                                "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"};
  return st >= 0 && st < 12 ? names[st] : std::to_string(st);
}

// The inode of a namespace file.
uint64_t ns_ino(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) throw_errno("fstat of a network namespace");
  return st.st_ino;
}

uint64_t own_netns() {
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) != 0) throw_errno("/proc/self/ns/net");
  return st.st_ino;
}

// A NETLINK_SOCK_DIAG socket in the network namespace `ns_fd` (unix_diag only sees the sockets of
// the namespace its netlink socket was made in): made by a short-lived thread that enters it
// (setns(2) moves only the calling thread).
UniqueFd diag_socket_in(int ns_fd, bool ours) {
  if (ours) {
    UniqueFd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
    if (!s) throw_errno("socket(NETLINK_SOCK_DIAG)");
    return s;
  }
  int fd = -1, err = 0;
  std::thread t([&] {
    if (setns(ns_fd, CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) err = errno;
  });
  t.join();
  if (fd < 0) throw_errno("a NETLINK_SOCK_DIAG socket in the socket's network namespace", err);
  return UniqueFd(fd);
}

constexpr uint32_t kShowAll = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS;

// One unix socket by inode; nullopt when the namespace has none with that inode.
std::optional<proc::UnixDiag> unix_diag(int nl, uint64_t ino) {
  static uint32_t seq = 1;
  auto req = proc::unix_diag_request(static_cast<uint32_t>(ino), kShowAll, seq++);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl, req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    throw_errno("sending a unix_diag request");
  std::vector<uint8_t> buf(65536);
  for (;;) {
    ssize_t n = recv(nl, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("reading a unix_diag answer");
    }
    auto r = proc::parse_unix_diag(buf.data(), static_cast<size_t>(n));
    if (r.error == ENOENT) return std::nullopt;
    if (r.error) throw_errno("unix_diag for socket inode " + std::to_string(ino), r.error);
    for (auto& d : r.sockets)
      if (d.ino == ino) return d;
    if (r.done) return std::nullopt;
  }
}

// ---- options ---------------------------------------------------------------------------------

struct OptionName {
  int level, name;
  const char* what;
};

// The options crbox carries, by family; each is kept only where it differs from a fresh socket's.
// Buffer sizes are left out for TCP, whose buffers the kernel sizes itself unless a program set
// them (tcp(7)); setting them on restore would stop that.
std::vector<OptionName> option_names(int family, int type, bool tcp) {
  std::vector<OptionName> v = {
      {SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR"}, {SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT"},
      {SOL_SOCKET, SO_KEEPALIVE, "SO_KEEPALIVE"}, {SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST"},
      {SOL_SOCKET, SO_LINGER, "SO_LINGER"},       {SOL_SOCKET, SO_OOBINLINE, "SO_OOBINLINE"},
      {SOL_SOCKET, SO_PASSCRED, "SO_PASSCRED"},   {SOL_SOCKET, SO_PRIORITY, "SO_PRIORITY"},
      {SOL_SOCKET, SO_RCVLOWAT, "SO_RCVLOWAT"},   {SOL_SOCKET, SO_RCVTIMEO, "SO_RCVTIMEO"},
      {SOL_SOCKET, SO_SNDTIMEO, "SO_SNDTIMEO"},   {SOL_SOCKET, SO_MARK, "SO_MARK"},
      {SOL_SOCKET, SO_TIMESTAMP, "SO_TIMESTAMP"}, {SOL_SOCKET, SO_TIMESTAMPNS, "SO_TIMESTAMPNS"},
      {SOL_SOCKET, SO_DONTROUTE, "SO_DONTROUTE"}, {SOL_SOCKET, SO_PEEK_OFF, "SO_PEEK_OFF"},
  };
  if (!tcp) {
    v.push_back({SOL_SOCKET, SO_SNDBUF, "SO_SNDBUF"});
    v.push_back({SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF"});
  }
  if (family == AF_INET) {
    v.insert(v.end(), {{IPPROTO_IP, IP_TOS, "IP_TOS"},
                       {IPPROTO_IP, IP_TTL, "IP_TTL"},
                       {IPPROTO_IP, IP_RECVTOS, "IP_RECVTOS"},
                       {IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO"},
                       {IPPROTO_IP, IP_RECVERR, "IP_RECVERR"},
                       {IPPROTO_IP, IP_FREEBIND, "IP_FREEBIND"},
                       {IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, "IP_BIND_ADDRESS_NO_PORT"}});
    if (type == SOCK_DGRAM)
      v.insert(v.end(), {{IPPROTO_IP, IP_MULTICAST_TTL, "IP_MULTICAST_TTL"}, {IPPROTO_IP, IP_MULTICAST_LOOP, "IP_MULTICAST_LOOP"}});
  }
  if (family == AF_INET6) {
    v.insert(v.end(), {{IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY"},
                       {IPPROTO_IPV6, IPV6_UNICAST_HOPS, "IPV6_UNICAST_HOPS"},
                       {IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO"},
                       {IPPROTO_IPV6, IPV6_TCLASS, "IPV6_TCLASS"},
                       {IPPROTO_IPV6, IPV6_RECVERR, "IPV6_RECVERR"}});
    if (type == SOCK_DGRAM)
      v.insert(v.end(), {{IPPROTO_IPV6, IPV6_MULTICAST_HOPS, "IPV6_MULTICAST_HOPS"},
                         {IPPROTO_IPV6, IPV6_MULTICAST_LOOP, "IPV6_MULTICAST_LOOP"}});
  }
  if (tcp) {
    v.insert(v.end(), {{IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY"},
                       {IPPROTO_TCP, TCP_CORK, "TCP_CORK"},
                       {IPPROTO_TCP, TCP_KEEPIDLE, "TCP_KEEPIDLE"},
                       {IPPROTO_TCP, TCP_KEEPINTVL, "TCP_KEEPINTVL"},
                       {IPPROTO_TCP, TCP_KEEPCNT, "TCP_KEEPCNT"},
                       {IPPROTO_TCP, TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT"},
                       {IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT"},
                       {IPPROTO_TCP, TCP_NOTSENT_LOWAT, "TCP_NOTSENT_LOWAT"},
                       {IPPROTO_TCP, TCP_SYNCNT, "TCP_SYNCNT"},
                       {IPPROTO_TCP, TCP_LINGER2, "TCP_LINGER2"},
                       {IPPROTO_TCP, TCP_FASTOPEN, "TCP_FASTOPEN"},
                       {IPPROTO_TCP, TCP_CONGESTION, "TCP_CONGESTION"}});
  }
  return v;
}

std::vector<model::SockOpt> collect_options(int s, const model::Socket& sk) {
  bool tcp = (sk.family == AF_INET || sk.family == AF_INET6) && sk.type == SOCK_STREAM;
  // A fresh socket of the same kind holds the defaults (those of our network namespace: the
  // per-namespace sysctls of a new sandbox start from the same defaults).
  UniqueFd fresh(socket(sk.family, sk.type | SOCK_CLOEXEC, sk.protocol));
  std::vector<model::SockOpt> out;
  for (const auto& o : option_names(sk.family, sk.type, tcp)) {
    uint8_t buf[64] = {};
    socklen_t len = sizeof buf;
    if (getsockopt(s, o.level, o.name, buf, &len) != 0) continue;
    if (fresh) {
      uint8_t def[64] = {};
      socklen_t dlen = sizeof def;
      if (getsockopt(fresh.get(), o.level, o.name, def, &dlen) == 0 && dlen == len && std::memcmp(buf, def, len) == 0)
        continue;
    }
    model::SockOpt so;
    so.level = o.level;
    so.name = o.name;
    so.value.assign(buf, buf + len);
    out.push_back(std::move(so));
  }
  return out;
}

// ---- unix ------------------------------------------------------------------------------------

// Whether an error waits on the socket. Every receive call, a peek too, first takes the pending
// error (sk_err) and returns it when a datagram socket has one whatever is queued, or a unix
// stream socket once past its data (sock_error() in __skb_try_recv_datagram and
// unix_stream_read_generic): the program would then never see the ECONNREFUSED of a connected
// UDP socket or the ECONNRESET of a unix socket whose peer closed with data unread. poll(2)
// reports it as POLLERR and clears nothing (socket(7), poll(2)). A message in the socket's error
// queue (IP_RECVERR, ip(7)) shows the same way and is treated the same.
short poll_now(int s) {
  pollfd p{s, POLLIN, 0};
  int k;
  do k = poll(&p, 1, 0);
  while (k < 0 && errno == EINTR);
  if (k < 0) throw_errno("poll of a socket");
  return k > 0 ? p.revents : 0;
}
bool error_pending(int s) { return poll_now(s) & POLLERR; }

// Puts SO_PEEK_OFF back as it was when it goes.
class PeekOffset {
 public:
  PeekOffset(int s, int start) : s_(s) {
    socklen_t len = sizeof saved_;
    if (getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &saved_, &len) != 0) throw_errno("getsockopt SO_PEEK_OFF");
    set_int(s, SOL_SOCKET, SO_PEEK_OFF, start, "SO_PEEK_OFF");
  }
  ~PeekOffset() { setsockopt(s_, SOL_SOCKET, SO_PEEK_OFF, &saved_, sizeof saved_); }
  PeekOffset(const PeekOffset&) = delete;
  PeekOffset& operator=(const PeekOffset&) = delete;

 private:
  int s_;
  int saved_ = -1;
};

// Closes the descriptors a peek brought along (SCM_RIGHTS), and says whether there were any.
bool drop_passed_fds(msghdr& msg) {
  bool any = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    any = true;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      close(fd);
    }
  }
  return any || (msg.msg_flags & MSG_CTRUNC);
}

// A datagram of length 0 is marked as peeked (skb->peeked) once any peek returns it, and every
// later peek at an offset steps over a marked one (__skb_try_recv_from_queue): an offset pass
// cannot see an empty datagram that the program (or an earlier checkpoint of this same running
// process) already peeked. A peek without an offset (SO_PEEK_OFF -1) still returns the head of
// the queue, so the head is looked at that way first: true if it is an empty datagram, `msg`
// (its name and control buffers set by the caller) then describing it. It is marked now, so the
// offset pass that follows steps over it. Marked empty datagrams further in stay unseen.
// Descriptors the head brings along (SCM_RIGHTS, installed here by the peek) are closed at once;
// `passed_fds` says whether there were any.
bool peek_empty_head(int s, msghdr& msg, bool& passed_fds) {
  int off = -1;
  if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off) != 0) throw_errno("setsockopt SO_PEEK_OFF");
  char b;
  iovec iov{&b, 1};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  do n = recvmsg(s, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  passed_fds = n >= 0 && drop_passed_fds(msg);
  msg.msg_iov = nullptr;
  msg.msg_iovlen = 0;
  off = 0;
  if (setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off) != 0) throw_errno("setsockopt SO_PEEK_OFF");
  return n == 0;
}

// The data queued for reading, without taking it: MSG_PEEK from a peek offset that moves on with
// each read (SO_PEEK_OFF, socket(7)); with MSG_TRUNC a datagram socket returns what is left of the
// current message, so a message larger than the buffer is read in pieces and its end is known.
// A stream's bytes become one message. Descriptors in flight (SCM_RIGHTS) are refused: peeking
// installs copies in this process, which are closed at once. A datagram socket's messages come
// with their senders' names (`from`, one per message; empty for an unnamed sender: unix(7)).
// Messages of length 0: see peek_empty_head.
// A pending error is never taken (error_pending): a stream is peeked no further than the `bytes`
// unix_diag counts in its queue (UDIAG_SHOW_RQLEN); a datagram or seqpacket socket with an error
// is not peeked at all: nothing is kept if its queue is empty (the error itself is not: the
// restored socket has none), else the checkpoint is refused.
std::vector<std::vector<uint8_t>> peek_unix_queue(pid_t pid, int fd, int s, int type, bool rcv_shutdown, uint32_t bytes,
                                                  std::vector<std::vector<uint8_t>>& from) {
  std::vector<std::vector<uint8_t>> queue;
  if (type != SOCK_STREAM) {
    short ev = poll_now(s);
    if (ev & POLLERR) {
      // unix_diag counts a datagram socket's first message only, which may be empty; POLLIN says
      // whether one waits, unless the socket is shut down for reading (then POLLIN always).
      bool queued = bytes > 0 || (type == SOCK_DGRAM && ((ev & POLLIN) || rcv_shutdown));
      if (queued)
        throw Error(where(pid, fd) + "a unix " + (type == SOCK_DGRAM ? "datagram" : "seqpacket") +
                    " socket with a pending error and queued messages cannot be read without clearing the error");
      return queue;
    }
  }
  PeekOffset off(s, 0);
  sockaddr_un name{};
  std::vector<uint8_t> current_from;
  std::vector<uint8_t> buf(256 * 1024);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(ucred)) + 256];
  bool stream = type == SOCK_STREAM;
  std::vector<uint8_t> current;
  uint64_t seen = 0;
  if (type == SOCK_DGRAM) {
    msghdr head{};
    head.msg_name = &name;
    head.msg_namelen = sizeof name;
    head.msg_control = control;
    head.msg_controllen = sizeof control;
    bool passed_fds = false;
    bool empty_head = peek_empty_head(s, head, passed_fds);
    if (passed_fds) unsupported(pid, fd, "a unix socket with file descriptors in flight (SCM_RIGHTS)");
    if (empty_head) {
      auto* a = reinterpret_cast<const uint8_t*>(&name);
      queue.emplace_back();
      from.emplace_back(a, a + std::min<size_t>(head.msg_namelen, sizeof name));
    }
  }
  for (;;) {
    // A stream ends where its queued bytes end: a peek past them would take a pending error.
    if (stream && seen >= bytes) break;
    iovec iov{buf.data(), stream ? std::min<size_t>(buf.size(), bytes - seen) : buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (type == SOCK_DGRAM) {
      msg.msg_name = &name;
      msg.msg_namelen = sizeof name;
    }
    ssize_t n = recvmsg(s, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (stream ? 0 : MSG_TRUNC));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      throw_errno(where(pid, fd) + "reading the queue of a unix socket");
    }
    if (drop_passed_fds(msg))
      unsupported(pid, fd, "a unix socket with file descriptors in flight (SCM_RIGHTS)");
    size_t copied = std::min(static_cast<size_t>(n), buf.size());
    if (stream) {
      if (n == 0) break;  // end of file: the peer shut down or went away
      current.insert(current.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(copied));
      seen += copied;
      continue;
    }
    // A seqpacket socket at end of file returns 0 forever, like a message of length 0: once every
    // queued byte was seen, a 0 there is taken as the end (trailing empty messages are lost).
    if (n == 0 && type == SOCK_SEQPACKET && rcv_shutdown && seen >= bytes) break;
    if (current.empty() && type == SOCK_DGRAM) {  // the first piece of a message names its sender
      auto* a = reinterpret_cast<const uint8_t*>(&name);
      current_from.assign(a, a + std::min<size_t>(msg.msg_namelen, sizeof name));
    }
    current.insert(current.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(copied));
    seen += copied;
    if (static_cast<size_t>(n) <= buf.size()) {  // this message ends here
      queue.push_back(std::move(current));
      current.clear();
      if (type == SOCK_DGRAM) from.push_back(std::move(current_from));
      current_from.clear();
    }
    if (queue.size() > 1000000) throw Error(where(pid, fd) + "a unix socket's queue does not end");
  }
  if (!current.empty()) {
    queue.push_back(std::move(current));
    if (type == SOCK_DGRAM) from.push_back(std::move(current_from));
  }
  return queue;
}

bool named(const std::vector<uint8_t>& addr) { return addr.size() > offsetof(sockaddr_un, sun_path); }

// The socket file a named unix socket is bound to, seen from the process (/proc/PID/root).
void locate_unix_name(pid_t pid, const proc::UnixDiag& d, model::Socket& sk) {
  if (!d.has_name || d.name.empty() || d.name[0] == '\0') return;  // unnamed or abstract
  std::string name = d.name.substr(0, d.name.find('\0'));
  std::string base = "/proc/" + std::to_string(pid);
  std::string abs = name;
  if (name[0] != '/') {
    char cwd[4096];
    ssize_t n = readlink((base + "/cwd").c_str(), cwd, sizeof cwd);
    if (n <= 0) throw_errno("readlink " + base + "/cwd");
    abs = std::string(cwd, static_cast<size_t>(n)) + "/" + name;
  }
  sk.bind_path = abs;
  sk.name_ino = d.vfs_ino;
  struct stat st {};
  bool here = stat((base + "/root" + abs).c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == d.vfs_ino &&
              // unix_diag gives the kernel's dev_t: major in the top 12 bits, minor in the low 20.
              st.st_dev == makedev(d.vfs_dev >> 20, d.vfs_dev & 0xfffff);
  sk.unlinked = !d.has_vfs || !here;
  if (here) {
    sk.file_mode = st.st_mode;
    sk.file_uid = st.st_uid;
    sk.file_gid = st.st_gid;
  }
}

void collect_unix(pid_t pid, int fd, int s, int nl, model::Socket& sk) {
  auto d = unix_diag(nl, sk.ino);
  if (!d) throw Error(where(pid, fd) + "the unix socket (inode " + std::to_string(sk.ino) + ") is not in its network namespace's socket table");
  sk.local = address(s, false);
  sk.peer = address(s, true);
  locate_unix_name(pid, *d, sk);
  sk.shutdown = d->shutdown & 3;
  if (d->state == TCP_LISTEN) {
    sk.state = model::SocketState::listening;
    sk.backlog = static_cast<int32_t>(d->wqueue);  // sk_max_ack_backlog
    // The connecting ends of the connections in its queue, oldest first: the kernel walks the
    // listener's queue to list them (unix_diag, UDIAG_SHOW_ICONS); nothing is taken.
    sk.pending_order.assign(d->icons.begin(), d->icons.end());
    return;
  }
  if (d->has_peer && d->peer != 0) {
    sk.state = model::SocketState::connected;
    sk.peer_ino = d->peer;
  } else if (d->has_peer || (sk.type != SOCK_DGRAM && d->state == TCP_ESTABLISHED)) {
    // A peer without an inode: either closed (an orphaned socket's inode reads 0), which shut
    // this end down both ways (unix(7)), or the server end of a connection its listener has not
    // accepted yet, which has no inode until accept(2) and is not listed by unix_diag at all.
    sk.state = model::SocketState::connected;
    sk.pending = sk.type != SOCK_DGRAM && (d->shutdown & 3) != 3 && named(sk.peer);
    sk.peer_gone = !sk.pending;
    // What a waiting client already sent sits in a socket no process holds (charged to the
    // client's send buffer, so its write queue is not empty); only accept(2) could reach it.
    if (sk.pending && d->wqueue > 0)
      unsupported(pid, fd, "a unix socket whose connection is not accepted yet and holds data sent through it");
  }
  sk.queue = peek_unix_queue(pid, fd, s, sk.type, (sk.shutdown & 1) != 0, d->rqueue, sk.queue_from);
}

// ---- TCP ---------------------------------------------------------------------------------------

// The state of an established connection, through TCP_REPAIR (tcp(7)): in repair mode the
// sequence numbers, both queues (MSG_PEEK with TCP_REPAIR_QUEUE) and the window can be read.
// Leaving with TCP_REPAIR_OFF_NO_WP sends nothing; it clears sk_reuse, so SO_REUSEADDR is put back.
void collect_tcp_repair(pid_t pid, int fd, int s, model::Socket& sk) {
  int reuse = get_int(s, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR");
  int peek_off = -1;
  socklen_t plen = sizeof peek_off;
  bool has_peek_off = getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &plen) == 0;
  int on = 1;
  if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0)
    throw_errno(where(pid, fd) + "TCP_REPAIR on an established TCP connection (it needs CAP_NET_ADMIN)");
  struct Leave {
    int s, reuse, peek_off;
    bool has_peek_off;
    ~Leave() {
      int q = TCP_NO_QUEUE;
      setsockopt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q);
      int off = TCP_REPAIR_OFF_NO_WP;
      setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off);
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
      if (has_peek_off) setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof peek_off);
    }
  } leave{s, reuse, peek_off, has_peek_off};
  // Peeks start at the head of the queue only with the peek offset off.
  if (has_peek_off && peek_off >= 0) set_int(s, SOL_SOCKET, SO_PEEK_OFF, -1, "SO_PEEK_OFF");

  auto peek = [&](int queue, uint32_t len, const char* what) {
    set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, "TCP_REPAIR_QUEUE");
    std::vector<uint8_t> data(len);
    size_t got = 0;
    if (len > 0) {
      ssize_t n = recv(s, data.data(), len, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0) throw_errno(where(pid, fd) + "reading the " + what + " queue of a TCP connection");
      got = static_cast<size_t>(n);
    }
    if (got != len)
      throw Error(where(pid, fd) + "the " + what + " queue of a TCP connection holds " + std::to_string(got) + " bytes, not " +
                  std::to_string(len));
    return data;
  };
  int inq = 0, outq = 0, notsent = 0;
  if (ioctl(s, SIOCINQ, &inq) != 0 || ioctl(s, SIOCOUTQ, &outq) != 0 || ioctl(s, SIOCOUTQNSD, &notsent) != 0)
    throw_errno(where(pid, fd) + "the queue sizes of a TCP connection");
  auto& t = sk.tcp;
  t.recv_queue = peek(TCP_RECV_QUEUE, static_cast<uint32_t>(inq), "receive");
  t.rcv_seq = static_cast<uint32_t>(get_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  t.send_queue = peek(TCP_SEND_QUEUE, static_cast<uint32_t>(outq), "send");
  t.snd_seq = static_cast<uint32_t>(get_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, "TCP_QUEUE_SEQ"));
  t.unsent = static_cast<uint32_t>(notsent);
  set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE");
  // In repair mode TCP_MAXSEG reads the negotiated mss_clamp.
  t.mss = static_cast<uint32_t>(get_int(s, IPPROTO_TCP, TCP_MAXSEG, "TCP_MAXSEG"));
  tcp_info ti{};
  socklen_t tlen = sizeof ti;
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tlen) != 0) throw_errno("getsockopt TCP_INFO");
  t.timestamps = ti.tcpi_options & TCPI_OPT_TIMESTAMPS;
  t.sack = ti.tcpi_options & TCPI_OPT_SACK;
  t.wscale_ok = ti.tcpi_options & TCPI_OPT_WSCALE;
  t.snd_wscale = ti.tcpi_snd_wscale;
  t.rcv_wscale = ti.tcpi_rcv_wscale;
  if (t.timestamps) t.ts_val = static_cast<uint32_t>(get_int(s, IPPROTO_TCP, TCP_TIMESTAMP, "TCP_TIMESTAMP"));
  tcp_repair_window w{};
  socklen_t wlen = sizeof w;
  if (getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &wlen) != 0) throw_errno("getsockopt TCP_REPAIR_WINDOW");
  t.snd_wl1 = w.snd_wl1;
  t.snd_wnd = w.snd_wnd;
  t.max_window = w.max_window;
  t.rcv_wnd = w.rcv_wnd;
  t.rcv_wup = w.rcv_wup;
}

// ---- UDP ---------------------------------------------------------------------------------------

// The memory the datagrams queued in a socket take (SK_MEMINFO_RMEM_ALLOC of SO_MEMINFO, socket(7)):
// 0 exactly when none waits, an empty one included, and read without side effects.
uint32_t receive_memory(int s) {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mem;
  if (getsockopt(s, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) throw_errno("getsockopt SO_MEMINFO");
  return mem[SK_MEMINFO_RMEM_ALLOC];
}

// Whether a socket address is an IPv4 or IPv6 multicast address or the IPv4 broadcast one.
bool group_address(const std::vector<uint8_t>& a) {
  if (a.size() >= sizeof(sockaddr_in) && reinterpret_cast<const sockaddr*>(a.data())->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, a.data(), sizeof in);
    uint32_t ip = ntohl(in.sin_addr.s_addr);
    return IN_MULTICAST(ip) || ip == INADDR_BROADCAST;
  }
  if (a.size() >= sizeof(sockaddr_in6) && reinterpret_cast<const sockaddr*>(a.data())->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, a.data(), sizeof in6);
    if (IN6_IS_ADDR_MULTICAST(&in6.sin6_addr)) return true;
    if (!IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return false;
    uint32_t ip;
    std::memcpy(&ip, &in6.sin6_addr.s6_addr[12], 4);
    ip = ntohl(ip);
    return IN_MULTICAST(ip) || ip == INADDR_BROADCAST;
  }
  return false;
}

// Sets an int option for as long as it lives, then puts the value it found back (or nothing, if
// the option could not be read).
class TempOption {
 public:
  TempOption(int s, int level, int name, int value) : s_(s), level_(level), name_(name) {
    socklen_t len = sizeof saved_;
    ok_ = getsockopt(s, level, name, &saved_, &len) == 0 && setsockopt(s, level, name, &value, sizeof value) == 0;
  }
  ~TempOption() {
    if (ok_) setsockopt(s_, level_, name_, &saved_, sizeof saved_);
  }
  TempOption(const TempOption&) = delete;
  TempOption& operator=(const TempOption&) = delete;

 private:
  int s_, level_, name_, saved_ = 0;
  bool ok_ = false;
};

// The datagrams waiting in a UDP socket, without taking them (udp(7)): MSG_PEEK from a peek
// offset that moves past each datagram peeked whole (SO_PEEK_OFF works for UDP since Linux 4.9,
// though socket(7) still names only unix sockets; checked on 6.18). Each comes with its sender's
// address and, through IP_PKTINFO / IPV6_RECVPKTINFO turned on for the while (ip(7), ipv6(7):
// the destination address is taken from the datagram's own header), the address it was sent to.
// The options and the peek offset are put back as they were; the target is stopped meanwhile.
// With an error pending (error_pending) nothing is peeked: nothing is kept if no datagram waits
// (the restored socket has no error), else the checkpoint is refused.
void peek_udp_queue(pid_t pid, int fd, int s, model::Socket& sk) {
  if (error_pending(s)) {
    if (receive_memory(s) > 0)
      throw Error(where(pid, fd) + "a UDP socket with a pending error and queued datagrams cannot be read without clearing the error");
    return;
  }
  PeekOffset off(s, 0);
  TempOption v4(s, IPPROTO_IP, IP_PKTINFO, 1);  // also for IPv4 datagrams on an IPv6 socket
  std::optional<TempOption> v6;
  if (sk.family == AF_INET6) v6.emplace(s, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
  // Larger than any datagram: 65535 bytes of IP packet, or what UDP_GRO glues together.
  std::vector<uint8_t> buf(256 * 1024);
  alignas(cmsghdr) char control[1024];
  // The address a datagram was sent to, from its IP_PKTINFO / IPV6_PKTINFO.
  auto destination = [](msghdr& msg) {
    std::vector<uint8_t> to;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
        in_pktinfo pi;
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr = pi.ipi_addr;
        auto* p = reinterpret_cast<const uint8_t*>(&a);
        to.assign(p, p + sizeof a);
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
        in6_pktinfo pi;
        std::memcpy(&pi, CMSG_DATA(c), sizeof pi);
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_addr = pi.ipi6_addr;
        auto* p = reinterpret_cast<const uint8_t*>(&a);
        to.assign(p, p + sizeof a);
      }
    }
    return to;
  };
  {
    sockaddr_storage from{};
    msghdr head{};
    head.msg_name = &from;
    head.msg_namelen = sizeof from;
    head.msg_control = control;
    head.msg_controllen = sizeof control;
    bool passed_fds = false;  // none come through UDP
    if (peek_empty_head(s, head, passed_fds)) {
      auto* f = reinterpret_cast<const uint8_t*>(&from);
      sk.queue.emplace_back();
      sk.queue_from.emplace_back(f, f + std::min<size_t>(head.msg_namelen, sizeof from));
      sk.queue_to.push_back(destination(head));
    }
  }
  for (;;) {
    sockaddr_storage from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    // Without MSG_TRUNC: with it UDP moves the peek offset by the datagram's whole length even
    // when a part was skipped (udp_recvmsg).
    ssize_t n = recvmsg(s, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      throw_errno(where(pid, fd) + "reading the datagrams queued in a UDP socket");
    }
    if (msg.msg_flags & MSG_TRUNC) throw Error(where(pid, fd) + "a datagram queued in a UDP socket is larger than 256 KiB");
    std::vector<uint8_t> to = destination(msg);
    sk.queue.emplace_back(buf.begin(), buf.begin() + n);
    auto* f = reinterpret_cast<const uint8_t*>(&from);
    sk.queue_from.emplace_back(f, f + std::min<size_t>(msg.msg_namelen, sizeof from));
    sk.queue_to.push_back(std::move(to));
    if (sk.queue.size() > 1000000) throw Error(where(pid, fd) + "a UDP socket's queue does not end");
  }
}

void collect_inet(pid_t pid, int fd, int s, model::Socket& sk) {
  sk.local = address(s, false);
  sk.peer = address(s, true);
  bool tcp = sk.type == SOCK_STREAM && (sk.protocol == IPPROTO_TCP || sk.protocol == 0);
  bool udp = sk.type == SOCK_DGRAM && (sk.protocol == IPPROTO_UDP || sk.protocol == 0);
  if (!tcp && !udp) unsupported(pid, fd, family_name(sk.family, sk.type, sk.protocol));
  if (udp) {
    sk.state = sk.peer.empty() ? model::SocketState::unconnected : model::SocketState::connected;
    peek_udp_queue(pid, fd, s, sk);
    // Such a socket takes only datagrams sent to its group, which the restart could only send
    // again off this machine, spoofed (restore/socket_queues.cc).
    if (!sk.queue.empty() && group_address(sk.local))
      unsupported(pid, fd, "a UDP socket bound to a multicast or broadcast address with datagrams queued in it");
    return;
  }
  tcp_info ti{};
  socklen_t tlen = sizeof ti;
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &tlen) != 0) throw_errno(where(pid, fd) + "TCP_INFO");
  switch (ti.tcpi_state) {
    case TCP_CLOSE:
      sk.state = model::SocketState::unconnected;
      return;
    case TCP_LISTEN:
      sk.state = model::SocketState::listening;
      sk.backlog = static_cast<int32_t>(ti.tcpi_sacked);  // a listener's sk_max_ack_backlog (tcp_get_info)
      return;
    case TCP_ESTABLISHED:
      break;
    default:
      unsupported(pid, fd, "a TCP connection in state " + tcp_state_name(ti.tcpi_state));
  }
  sk.state = model::SocketState::connected;
  if (sk.netns == own_netns())
    throw Error(where(pid, fd) + "an established TCP connection outside a sandbox's network namespace is not supported");
  collect_tcp_repair(pid, fd, s, sk);
}

void collect_socket_state(pid_t pid, int fd, model::Fd& f) {
  f.kind = model::FdKind::socket;
  UniqueFd s(copy_remote_fd(pid, fd));
  model::Socket sk;
  sk.family = get_int(s.get(), SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  sk.type = get_int(s.get(), SOL_SOCKET, SO_TYPE, "SO_TYPE");
  sk.protocol = get_int(s.get(), SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
  struct stat st {};
  if (fstat(s.get(), &st) != 0) throw_errno("fstat of a socket");
  sk.ino = st.st_ino;
  if (sk.family != AF_UNIX && sk.family != AF_INET && sk.family != AF_INET6)
    unsupported(pid, fd, family_name(sk.family, sk.type, sk.protocol));
  // The socket's own network namespace (SIOCGSKNS, sock(7)): not necessarily the process's.
  UniqueFd ns(ioctl(s.get(), SIOCGSKNS));
  if (!ns) throw_errno(where(pid, fd) + "the network namespace of a socket (SIOCGSKNS)");
  sk.netns = ns_ino(ns.get());
  if (sk.family == AF_UNIX) {
    if (sk.type != SOCK_STREAM && sk.type != SOCK_DGRAM && sk.type != SOCK_SEQPACKET)
      unsupported(pid, fd, "a unix socket of type " + std::to_string(sk.type));
    UniqueFd nl = diag_socket_in(ns.get(), sk.netns == own_netns());
    collect_unix(pid, fd, s.get(), nl.get(), sk);
  } else {
    collect_inet(pid, fd, s.get(), sk);
  }
  sk.options = collect_options(s.get(), sk);
  f.socket = std::move(sk);
}

}  // namespace

void collect_socket(pid_t pid, int fd, model::Fd& f) {
  try {
    collect_socket_state(pid, fd, f);
  } catch (const Error&) {
    if (fd > 2) throw;
    // On stdin/stdout/stderr a socket crbox cannot take is the restarted program's cr_restart's
    // (as a terminal or a pipe from outside would be).
    f.kind = model::FdKind::stdio;
    f.socket.reset();
  }
}

namespace {

bool is_unix_stream(const model::Socket& s) { return s.family == AF_UNIX && s.type != SOCK_DGRAM; }
bool is_tcp_conn(const model::Socket& s) {
  return (s.family == AF_INET || s.family == AF_INET6) && s.type == SOCK_STREAM && s.state == model::SocketState::connected;
}

std::string unix_path_of(const std::vector<uint8_t>& addr) {
  if (addr.size() <= offsetof(sockaddr_un, sun_path)) return "an unnamed socket";
  std::string p(addr.begin() + offsetof(sockaddr_un, sun_path), addr.end());
  if (p[0] == '\0') return "@" + p.substr(1);
  return p.substr(0, p.find('\0'));
}

}  // namespace

void resolve_sockets(std::vector<model::Process>& procs) {
  // Every socket of the image by inode (unix) and by address pair (TCP), and the connections
  // waiting in listeners' queues.
  std::set<std::pair<uint64_t, uint64_t>> inodes;  // (netns, inode)
  std::set<std::tuple<uint64_t, int, std::vector<uint8_t>>> listeners;  // unix: (netns, type, name)
  std::set<std::tuple<uint64_t, std::vector<uint8_t>, std::vector<uint8_t>>> tcp_ends;
  for (const auto& p : procs)
    for (const auto& f : p.fds) {
      if (f.kind != model::FdKind::socket || !f.socket) continue;
      const auto& s = *f.socket;
      inodes.insert({s.netns, s.ino});
      if (s.family == AF_UNIX && s.state == model::SocketState::listening) listeners.insert({s.netns, s.type, s.local});
      if (is_tcp_conn(s)) tcp_ends.insert({s.netns, s.local, s.peer});
    }
  for (auto& p : procs)
    for (auto& f : p.fds) {
      if (f.kind != model::FdKind::socket || !f.socket) continue;
      auto& s = *f.socket;
      if (s.family == AF_UNIX && s.state == model::SocketState::connected && !s.peer_gone) {
        bool inside = s.pending ? listeners.count({s.netns, s.type, s.peer}) > 0 : inodes.count({s.netns, s.peer_ino}) > 0;
        if (inside) continue;
        if (f.fd <= 2) {
          // On stdin/stdout/stderr it is the restarted program's cr_restart's, like a pipe.
          f.kind = model::FdKind::stdio;
          f.socket.reset();
          continue;
        }
        if (is_unix_stream(s))
          throw Error(where(p.host_pid, f.fd) + "a unix " + (s.type == SOCK_STREAM ? "stream" : "seqpacket") +
                      " socket connected to a socket outside the checkpointed processes (" + unix_path_of(s.peer) +
                      ") is not supported");
        // A datagram socket connected to a named socket outside: connected again by name.
        if (s.peer.size() <= offsetof(sockaddr_un, sun_path))
          throw Error(where(p.host_pid, f.fd) +
                      "a unix datagram socket connected to an unnamed socket outside the checkpointed processes is not supported");
        s.peer_ino = 0;
      } else if (is_tcp_conn(s)) {
        if (tcp_ends.count({s.netns, s.peer, s.local})) continue;
        if (f.fd <= 2) {
          f.kind = model::FdKind::stdio;
          f.socket.reset();
          continue;
        }
        throw Error(where(p.host_pid, f.fd) +
                    "an established TCP connection whose other end is not among the checkpointed processes (not yet "
                    "accepted, or outside the sandbox) is not supported");
      }
    }
}

}  // namespace crbox::dump
