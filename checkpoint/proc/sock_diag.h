// The unix_diag netlink interface (sock_diag(7)): the request for one unix socket, and the parsing
// of the kernel's answer. Pure functions over bytes; the netlink socket itself is the caller's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace crbox::proc {

// What UNIX_DIAG reports about one unix socket; each attribute only if the kernel sent it.
struct UnixDiag {
  uint8_t type = 0;   // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  uint8_t state = 0;  // TCP_ESTABLISHED, TCP_LISTEN, TCP_CLOSE (as in <netinet/tcp.h>)
  uint32_t ino = 0;
  bool has_name = false;
  std::string name;  // UNIX_DIAG_NAME: sun_path as bound (an abstract name starts with '\0')
  bool has_vfs = false;
  uint32_t vfs_ino = 0, vfs_dev = 0;  // UNIX_DIAG_VFS: the socket file (vfs_dev in the kernel's encoding)
  bool has_peer = false;
  uint32_t peer = 0;  // UNIX_DIAG_PEER: the peer's inode; 0 when the peer was closed
  std::vector<uint32_t> icons;  // UNIX_DIAG_ICONS: connections waiting for accept(2)
  bool has_rqlen = false;
  uint32_t rqueue = 0, wqueue = 0;  // UNIX_DIAG_RQLEN (listening: queued connections and backlog)
  bool has_shutdown = false;
  uint8_t shutdown = 0;  // UNIX_DIAG_SHUTDOWN: sk_shutdown (1 receive, 2 send)
};

struct UnixDiagReply {
  int error = 0;  // a positive errno from an NLMSG_ERROR message (ENOENT: no such socket)
  bool done = false;  // NLMSG_DONE, or the answer to a single (not NLM_F_DUMP) request
  std::vector<UnixDiag> sockets;
};

// A SOCK_DIAG_BY_FAMILY request for the unix socket with inode `ino` (no dump), showing `show`
// (UDIAG_SHOW_* bits), as the bytes of one netlink message.
std::vector<uint8_t> unix_diag_request(uint32_t ino, uint32_t show, uint32_t seq);

// Parses a buffer of netlink messages as received from a NETLINK_SOCK_DIAG socket. Throws Error
// on a malformed buffer.
UnixDiagReply parse_unix_diag(const uint8_t* data, size_t len);

}  // namespace crbox::proc
