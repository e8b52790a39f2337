// Datagrams put back with their senders' addresses.
//
// Unix (unix(7)): a receiver learns a datagram's sender from the name the sending socket was bound
// to, the bytes given to bind(2) and nothing else. So each message is sent from a socket of our own
// bound to the same name, while the original name may be taken (by the restored sender itself):
//   - a path name is bound inside a root of our own, an empty tmpfs not mounted anywhere
//     (fsopen(2)/fsmount(2)) that a helper thread chroots into (after unshare(CLONE_FS), so only
//     it), so "/tmp/a.sock" there is the same name without touching the real /tmp/a.sock;
//   - an abstract name is bound in the socket's network namespace if free, else in a new network
//     namespace of the helper thread's (abstract names are per namespace), which can reach the
//     receiver only through a path name; failing both it arrives from an unnamed sender;
//   - an unnamed sender is any unnamed socket.
// The temporary senders are closed afterwards: the kernel keeps their names with the datagrams.
//
// UDP (udp(7), raw(7)): each datagram is built whole, IP header included (IP_HDRINCL for IPv4,
// an IPPROTO_RAW socket for IPv6), with its original source address and port whether or not that
// address is local or its port busy. It is sent only ever to an address of this network
// namespace's own interfaces (127/8 counts), so it goes through the loopback device, never out: a
// socket bound to such an address gets it there; one bound to every address at the address it
// was first sent to when that is local, else at loopback. A socket bound to any other address (a
// multicast group, a broadcast address, a non-local one through IP_FREEBIND) takes only datagrams
// sent to that address, which would leave the machine: the restore is refused (the checkpoint
// already refuses a multicast or broadcast one). Each datagram must then be found in the socket
// (its receive memory grew), not dropped or taken by another socket sharing the port
// (SO_REUSEADDR / SO_REUSEPORT), else the restore fails.
#include "checkpoint/restore/socket_queues.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/mount.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "util/error.h"
#include "util/fd.h"

namespace crbox::restore {

namespace {

// Runs `fn` on a short-lived thread (for unshare(2) and chroot(2), which then touch only that
// thread); an errno it leaves is thrown here with `what`.
void on_helper_thread(const std::function<int()>& fn, const std::string& what) {
  int err = 0;
  std::thread t([&] { err = fn(); });
  t.join();
  if (err) throw_errno(what, err);
}

// ---- unix ------------------------------------------------------------------------------------

bool named(const std::vector<uint8_t>& a) { return a.size() > offsetof(sockaddr_un, sun_path); }
bool abstract(const std::vector<uint8_t>& a) { return named(a) && a[offsetof(sockaddr_un, sun_path)] == 0; }

// An empty tmpfs mounted nowhere: the root the path names are bound under.
UniqueFd scratch_root(const std::string& what) {
  UniqueFd fs(static_cast<int>(syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
  if (!fs) throw_errno(what + "fsopen(tmpfs) for the senders of queued datagrams");
  if (syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    throw_errno(what + "fsconfig(FSCONFIG_CMD_CREATE) of a tmpfs");
  UniqueFd mnt(static_cast<int>(syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC, 0)));
  if (!mnt) throw_errno(what + "fsmount of a tmpfs");
  return mnt;
}

// Binds `s` to the path name `a` as seen from `root` (its parent folders made there first).
void bind_under(int s, int root, const std::vector<uint8_t>& a, const std::string& what) {
  on_helper_thread(
      [&]() -> int {
        if (unshare(CLONE_FS) != 0 || fchdir(root) != 0 || chroot(".") != 0 || chdir("/") != 0) return errno;
        const char* p = reinterpret_cast<const char*>(a.data()) + offsetof(sockaddr_un, sun_path);
        std::string path(p, strnlen(p, a.size() - offsetof(sockaddr_un, sun_path)));
        for (size_t i = path.find('/', 1); i != std::string::npos; i = path.find('/', i + 1))
          if (mkdir(path.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST) return errno;
        unlink(path.c_str());
        return bind(s, reinterpret_cast<const sockaddr*>(a.data()), static_cast<socklen_t>(a.size())) == 0 ? 0 : errno;
      },
      what + "binding a sender of queued datagrams to its original name");
}

// A unix socket made in a network namespace of its own.
UniqueFd socket_in_new_netns(int type, const std::string& what) {
  int fd = -1;
  on_helper_thread(
      [&]() -> int {
        if (unshare(CLONE_NEWNET) != 0) return errno;
        fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        return fd < 0 ? errno : 0;
      },
      what + "a socket in a new network namespace");
  return UniqueFd(fd);
}

UniqueFd unix_socket(int type, const std::string& what) {
  UniqueFd s(socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!s) throw_errno(what + "socket(AF_UNIX)");
  return s;
}

// ---- UDP -------------------------------------------------------------------------------------

// An IPv4 or IPv6 address (an IPv4 one as the last 4 bytes).
struct Ip {
  bool v4 = true;
  uint8_t a[16] = {};
  const uint8_t* bytes() const { return v4 ? a + 12 : a; }
};

// A sockaddr_in / sockaddr_in6 (an IPv4-mapped IPv6 address counts as IPv4); false if neither.
bool ip_of(const std::vector<uint8_t>& sa, Ip& ip, uint16_t* port = nullptr) {
  if (sa.size() >= sizeof(sockaddr_in) && reinterpret_cast<const sockaddr*>(sa.data())->sa_family == AF_INET) {
    sockaddr_in in;
    std::memcpy(&in, sa.data(), sizeof in);
    ip.v4 = true;
    std::memset(ip.a, 0, sizeof ip.a);
    std::memcpy(ip.a + 12, &in.sin_addr, 4);
    if (port) *port = in.sin_port;
    return true;
  }
  if (sa.size() >= sizeof(sockaddr_in6) && reinterpret_cast<const sockaddr*>(sa.data())->sa_family == AF_INET6) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa.data(), sizeof in6);
    ip.v4 = IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr);
    std::memcpy(ip.a, &in6.sin6_addr, 16);
    if (ip.v4) std::memset(ip.a, 0, 12);
    if (port) *port = in6.sin6_port;
    return true;
  }
  return false;
}

bool is_any(const Ip& ip) {
  static const uint8_t zero[16] = {};
  return std::memcmp(ip.bytes(), zero, ip.v4 ? 4 : 16) == 0;
}

Ip loopback(bool v4) {
  Ip ip;
  ip.v4 = v4;
  if (v4) {
    uint32_t lo = htonl(INADDR_LOOPBACK);
    std::memcpy(ip.a + 12, &lo, 4);
  } else {
    std::memcpy(ip.a, &in6addr_loopback, 16);
  }
  return ip;
}

// The addresses of this network namespace's interfaces (getifaddrs(3)): a destination must be one.
class LocalAddresses {
 public:
  LocalAddresses() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      Ip ip;
      if (i->ifa_addr->sa_family == AF_INET) {
        std::vector<uint8_t> sa(reinterpret_cast<uint8_t*>(i->ifa_addr), reinterpret_cast<uint8_t*>(i->ifa_addr) + sizeof(sockaddr_in));
        if (ip_of(sa, ip)) ips_.push_back(ip);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
        if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;  // would need its interface
        std::vector<uint8_t> sa(reinterpret_cast<uint8_t*>(in6), reinterpret_cast<uint8_t*>(in6) + sizeof(sockaddr_in6));
        if (ip_of(sa, ip)) ips_.push_back(ip);
      }
    }
    freeifaddrs(list);
  }
  bool has(const Ip& ip) const {
    if (is_any(ip)) return false;
    if (ip.v4 && ip.a[12] == 127) return true;  // 127.0.0.0/8 is all loopback's
    for (const auto& x : ips_)
      if (x.v4 == ip.v4 && std::memcmp(x.a, ip.a, 16) == 0) return true;
    return false;
  }

 private:
  std::vector<Ip> ips_;
};

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

// The UDP checksum over the pseudo-header and the datagram (udp header with a zero checksum
// included); 0 is sent as 0xffff (RFC 768).
uint16_t udp_checksum(const Ip& src, const Ip& dst, const uint8_t* udp, size_t len) {
  uint32_t acc = 0;
  size_t alen = src.v4 ? 4 : 16;
  acc = sum16(src.bytes(), alen, acc);
  acc = sum16(dst.bytes(), alen, acc);
  acc += IPPROTO_UDP;
  acc += static_cast<uint32_t>(len & 0xffff) + static_cast<uint32_t>(len >> 16);
  acc = sum16(udp, len, acc);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint16_t r = static_cast<uint16_t>(~acc);
  return r ? r : 0xffff;
}

// One datagram as an IP packet: header, UDP header, data.
std::vector<uint8_t> udp_packet(const Ip& src, uint16_t sport, const Ip& dst, uint16_t dport, const std::vector<uint8_t>& data,
                                const std::string& what) {
  size_t ulen = sizeof(udphdr) + data.size();
  size_t hlen = src.v4 ? sizeof(iphdr) : sizeof(ip6_hdr);
  if ((src.v4 ? hlen + ulen : ulen) > 0xffff)
    throw Error(what + "a datagram of " + std::to_string(data.size()) + " bytes queued in a UDP socket is too large to send again");
  std::vector<uint8_t> pkt(hlen + ulen);
  udphdr u{};
  u.source = sport;
  u.dest = dport;
  u.len = htons(static_cast<uint16_t>(ulen));
  std::memcpy(pkt.data() + hlen, &u, sizeof u);
  if (!data.empty()) std::memcpy(pkt.data() + hlen + sizeof u, data.data(), data.size());
  u.check = htons(udp_checksum(src, dst, pkt.data() + hlen, ulen));
  std::memcpy(pkt.data() + hlen, &u, sizeof u);
  if (src.v4) {
    // The kernel fills in the header checksum and the id (raw(7), IP_HDRINCL).
    iphdr h{};
    h.version = 4;
    h.ihl = 5;
    h.tot_len = htons(static_cast<uint16_t>(hlen + ulen));
    h.ttl = 64;
    h.protocol = IPPROTO_UDP;
    std::memcpy(&h.saddr, src.bytes(), 4);
    std::memcpy(&h.daddr, dst.bytes(), 4);
    std::memcpy(pkt.data(), &h, sizeof h);
  } else {
    ip6_hdr h{};
    h.ip6_flow = htonl(6u << 28);
    h.ip6_plen = htons(static_cast<uint16_t>(ulen));
    h.ip6_nxt = IPPROTO_UDP;
    h.ip6_hlim = 64;
    std::memcpy(&h.ip6_src, src.a, 16);
    std::memcpy(&h.ip6_dst, dst.a, 16);
    std::memcpy(pkt.data(), &h, sizeof h);
  }
  return pkt;
}

// Keeps the calling thread on the CPU it runs on while it lives. Loopback queues each packet on
// the sending CPU's backlog and hands it on from there in order (netif_rx; RPS is off on lo), so
// datagrams sent from one CPU arrive in the order they were sent, and a last packet through the
// same backlog arrives after all of them.
class OnOneCpu {
 public:
  OnOneCpu() {
    int cpu = sched_getcpu();
    if (cpu < 0 || sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned_ = sched_setaffinity(0, sizeof one, &one) == 0;
  }
  ~OnOneCpu() {
    if (pinned_) sched_setaffinity(0, sizeof saved_, &saved_);
  }
  OnOneCpu(const OnOneCpu&) = delete;
  OnOneCpu& operator=(const OnOneCpu&) = delete;

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

// Tells when every packet this thread sent through loopback before has been handed on: a datagram
// of its own, sent to itself after them on the same CPU, has arrived. (Counting the datagrams in
// the socket itself would take peeks at an offset, which mark a datagram of length 0 as peeked for
// good: every later such peek, a checkpoint's among them, would step over it.)
class LoopbackProbe {
 public:
  explicit LoopbackProbe(bool v4) : s_(socket(v4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    if (!s_) return;
    if (v4) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss_);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len_ = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss_);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len_ = sizeof *a;
    }
    ok_ = bind(s_.get(), reinterpret_cast<sockaddr*>(&ss_), len_) == 0 &&
          getsockname(s_.get(), reinterpret_cast<sockaddr*>(&ss_), &len_) == 0;
  }
  bool drained() {
    if (!ok_ || sendto(s_.get(), "", 0, 0, reinterpret_cast<sockaddr*>(&ss_), len_) != 0) return false;
    pollfd p{s_.get(), POLLIN, 0};
    for (;;) {
      int k = poll(&p, 1, 5000);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return false;
      char b;
      return recv(s_.get(), &b, 1, MSG_DONTWAIT) == 0;
    }
  }

 private:
  UniqueFd s_;
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
  bool ok_ = false;
};

// The memory taken by the datagrams queued in a socket (SK_MEMINFO_RMEM_ALLOC of SO_MEMINFO,
// socket(7), sock_diag(7)): each datagram that arrives adds its buffer's size, and nothing takes
// any away while no one reads.
uint32_t receive_memory(int s, const std::string& what) {
  uint32_t mem[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof mem;
  if (getsockopt(s, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0) throw_errno(what + "getsockopt SO_MEMINFO");
  return mem[SK_MEMINFO_RMEM_ALLOC];
}

std::string ip_text(const Ip& ip) {
  char b[INET6_ADDRSTRLEN] = "?";
  inet_ntop(ip.v4 ? AF_INET : AF_INET6, ip.bytes(), b, sizeof b);
  return b;
}

}  // namespace

void refill_unix_dgram(int s, const model::Socket& sk, const std::string& what, size_t first, size_t end, int via) {
  end = std::min(end, sk.queue.size());
  if (first >= end) return;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || len <= offsetof(sockaddr_un, sun_path))
    throw Error(what + "the messages queued in an unnamed unix datagram socket cannot be put back");
  bool receiver_by_path = reinterpret_cast<const sockaddr_un&>(ss).sun_path[0] != '\0';
  size_t total = 0;
  for (const auto& m : sk.queue) total += m.size() + 1024;
  int sndbuf = static_cast<int>(std::min<size_t>(total + 65536, 1u << 30));
  std::map<std::vector<uint8_t>, UniqueFd> senders;  // by name; the unnamed one under {}
  UniqueFd root;
  auto sender_for = [&](std::vector<uint8_t> from) -> int {
    if (!named(from)) from.clear();
    auto it = senders.find(from);
    if (it != senders.end()) return it->second.get();
    UniqueFd w;
    if (from.empty()) {
      w = unix_socket(sk.type, what);
    } else if (!abstract(from)) {
      w = unix_socket(sk.type, what);
      if (!root) root = scratch_root(what);
      bind_under(w.get(), root.get(), from, what);
    } else {
      w = unix_socket(sk.type, what);
      if (bind(w.get(), reinterpret_cast<const sockaddr*>(from.data()), static_cast<socklen_t>(from.size())) != 0) {
        if (errno != EADDRINUSE) throw_errno(what + "binding a sender of queued datagrams to its abstract name");
        // Taken here (by the restored sender itself, most likely): a namespace of its own, from
        // which only a receiver with a path name can be reached; else an unnamed sender.
        w = receiver_by_path ? socket_in_new_netns(sk.type, what) : unix_socket(sk.type, what);
        if (receiver_by_path &&
            bind(w.get(), reinterpret_cast<const sockaddr*>(from.data()), static_cast<socklen_t>(from.size())) != 0)
          throw_errno(what + "binding a sender of queued datagrams to its abstract name");
      }
    }
    if (setsockopt(w.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) throw_errno(what + "SO_SNDBUFFORCE");
    int fd = w.get();
    senders.emplace(std::move(from), std::move(w));
    return fd;
  };
  for (size_t i = first; i < end; i++) {
    const auto& m = sk.queue[i];
    int w = via >= 0 ? via : sender_for(i < sk.queue_from.size() ? sk.queue_from[i] : std::vector<uint8_t>{});
    for (;;) {
      ssize_t n = sendto(w, m.data(), m.size(), MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&ss), len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno(what + "putting back a message queued in a unix datagram socket");
      if (static_cast<size_t>(n) != m.size()) throw Error(what + "a message queued in a unix socket could not be put back whole");
      break;
    }
  }
}

void refill_udp(int s, const model::Socket& sk, const std::string& what) {
  if (sk.queue.empty()) return;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&ss), &len) != 0) throw_errno(what + "getsockname of a UDP socket");
  const auto* sp = reinterpret_cast<const uint8_t*>(&ss);
  Ip bound;
  uint16_t port = 0;
  if (!ip_of(std::vector<uint8_t>(sp, sp + len), bound, &port) || port == 0)
    throw Error(what + "the datagrams queued in a UDP socket without a port cannot be put back");
  // Room for all of them while they are sent (the receive buffer is put back after).
  int rcvbuf = 0;
  socklen_t olen = sizeof rcvbuf;
  getsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &olen);
  size_t total = 0;
  for (const auto& m : sk.queue) total += m.size() + 2048;
  int want = static_cast<int>(std::min<size_t>(total * 2 + 65536, 1u << 30));
  if (want > rcvbuf && setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) throw_errno(what + "SO_RCVBUFFORCE");

  LocalAddresses local;
  bool any = is_any(bound);
  if (!any && !local.has(bound))
    throw Error(what + "the datagrams queued in a UDP socket bound to " + ip_text(bound) +
                ", not an address of this network namespace's interfaces, cannot be put back without sending them off the machine");
  UniqueFd raw4, raw6;
  std::optional<LoopbackProbe> probe;
  OnOneCpu pin;
  for (size_t i = 0; i < sk.queue.size(); i++) {
    Ip src;
    uint16_t sport = 0;
    if (i >= sk.queue_from.size() || !ip_of(sk.queue_from[i], src, &sport))
      throw Error(what + "a datagram queued in a UDP socket has no sender's address in the image");
    // Where it goes: the socket's own address (local, checked above); for a socket bound to every
    // address, where it went if that address is ours, else loopback. Never anywhere else.
    Ip dst;
    if (!any)
      dst = bound.v4 == src.v4 ? bound : loopback(src.v4);  // another family cannot arrive: found below
    else if (!(i < sk.queue_to.size() && ip_of(sk.queue_to[i], dst) && dst.v4 == src.v4 && local.has(dst)))
      dst = loopback(src.v4);
    auto pkt = udp_packet(src, sport, dst, port, sk.queue[i], what);
    UniqueFd& raw = src.v4 ? raw4 : raw6;
    if (!raw) {
      // An IPv4 raw socket of protocol IPPROTO_RAW implies IP_HDRINCL (raw(7)); so does an IPv6 one
      // (ipv6(7), IPV6_HDRINCL, Linux 4.5).
      raw.reset(socket(src.v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW));
      if (!raw) throw_errno(what + "a raw socket to put back the datagrams queued in a UDP socket (it needs CAP_NET_RAW)");
    }
    sockaddr_storage to{};
    socklen_t tolen;
    if (src.v4) {
      auto* t = reinterpret_cast<sockaddr_in*>(&to);
      t->sin_family = AF_INET;
      std::memcpy(&t->sin_addr, dst.bytes(), 4);
      tolen = sizeof *t;
    } else {
      auto* t = reinterpret_cast<sockaddr_in6*>(&to);
      t->sin6_family = AF_INET6;
      std::memcpy(&t->sin6_addr, dst.a, 16);
      tolen = sizeof *t;
    }
    uint32_t before = receive_memory(s, what);
    for (;;) {
      ssize_t n = sendto(raw.get(), pkt.data(), pkt.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&to), tolen);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno(what + "putting back a datagram queued in a UDP socket");
      break;
    }
    // Loopback hands packets on through the network softirq, which may run a little later: wait
    // until it was handed on (so none arrives after the socket is connected, which would drop it,
    // or after the program runs), then check it is in this socket.
    if (!probe) probe.emplace(src.v4);
    if (!probe->drained()) throw Error(what + "the datagrams queued in a UDP socket did not all arrive again");
    if (receive_memory(s, what) <= before)
      throw Error(what + "a datagram put back into a UDP socket did not arrive in it (dropped, or taken by another socket on its port: " +
                  ip_text(dst) + " port " + std::to_string(ntohs(port)) + ")");
  }
  int half = rcvbuf / 2;  // getsockopt reports twice what was set (socket(7))
  if (want > rcvbuf && setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof half) != 0) throw_errno(what + "SO_RCVBUFFORCE");
}

}  // namespace crbox::restore
