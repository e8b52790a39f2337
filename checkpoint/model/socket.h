// Sockets in the image (model for checkpoint/{dump,restore}/sockets.cc): unix sockets (pairs,
// named, with the bytes queued in them), listening and bound TCP/UDP sockets, and established TCP
// connections taken through TCP_REPAIR (tcp(7)).
#pragma once

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace crbox::model {

enum class SocketState : uint8_t {
  unconnected = 0,  // created, maybe bound
  listening = 1,
  connected = 2,    // a connected unix socket, or an established TCP connection
};

// One socket option as getsockopt(2) returns it, put back with setsockopt(2).
struct SockOpt {
  int32_t level = 0, name = 0;
  std::vector<uint8_t> value;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(level), CEREAL_NVP(name), CEREAL_NVP(value));
  }
};

// TCP_REPAIR state of an established connection.
struct TcpRepair {
  uint32_t snd_seq = 0, rcv_seq = 0;  // TCP_QUEUE_SEQ of the send and receive queues
  uint32_t mss = 0;
  uint8_t snd_wscale = 0, rcv_wscale = 0;
  bool timestamps = false, sack = false, wscale_ok = false;
  uint32_t ts_val = 0;                // TCP_TIMESTAMP
  std::vector<uint8_t> send_queue;    // sent but not acknowledged, and not yet sent
  uint32_t unsent = 0;                // the tail of send_queue not yet sent (TIOCOUTQ - SIOCOUTQNSD)
  std::vector<uint8_t> recv_queue;    // received, not yet read by the program
  uint32_t snd_wnd = 0, rcv_wnd = 0, snd_wl1 = 0, max_window = 0, rcv_wup = 0;  // TCP_REPAIR_WINDOW

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(snd_seq), CEREAL_NVP(rcv_seq), CEREAL_NVP(mss), CEREAL_NVP(snd_wscale), CEREAL_NVP(rcv_wscale),
      CEREAL_NVP(timestamps), CEREAL_NVP(sack), CEREAL_NVP(wscale_ok), CEREAL_NVP(ts_val), CEREAL_NVP(send_queue),
      CEREAL_NVP(unsent), CEREAL_NVP(recv_queue), CEREAL_NVP(snd_wnd), CEREAL_NVP(rcv_wnd), CEREAL_NVP(snd_wl1),
      CEREAL_NVP(max_window), CEREAL_NVP(rcv_wup));
  }
};

struct Socket {
  int32_t family = 0, type = 0, protocol = 0;  // socket(2)'s arguments (type without flags)
  SocketState state = SocketState::unconnected;
  uint64_t ino = 0;                  // the socket's inode (sockfs), its identity in the image
  std::vector<uint8_t> local, peer;  // getsockname/getpeername as raw sockaddr bytes
  uint64_t peer_ino = 0;             // unix: the inode of the socket it is connected to (0: none)
  int32_t backlog = 0;               // listening
  uint8_t shutdown = 0;              // bit 0: no more receiving, bit 1: no more sending
  // Unix and UDP sockets: the messages queued for reading, oldest first (a stream socket's bytes
  // are one message).
  std::vector<std::vector<uint8_t>> queue;
  // Options that differ from a fresh socket's (SO_PEEK_OFF among them, put back last).
  std::vector<SockOpt> options;
  TcpRepair tcp;                      // family AF_INET/AF_INET6, type SOCK_STREAM, state connected
  // Unix sockets bound to a path: the path as an absolute one in the process's view of the file
  // system ("" when unnamed or abstract); whether it no longer leads to this socket (unlinked or
  // replaced); the socket file's inode (UNIX_DIAG_VFS: a listener and the connections it accepted
  // share it), mode and owner.
  std::string bind_path;
  bool unlinked = false;
  uint64_t name_ino = 0;
  uint32_t file_mode = 0, file_uid = 0, file_gid = 0;
  // Unix, connected, stream or seqpacket: the connection waits in its listener's queue for
  // accept(2) (`peer` is the listener's name); made again by connecting to that listener.
  bool pending = false;
  // Unix, connected: the other end was closed (its data, if any, is still to be read).
  bool peer_gone = false;
  uint64_t netns = 0;                 // the inode of the socket's network namespace (SIOCGSKNS)
  // Datagram sockets (unix SOCK_DGRAM, UDP): for each message of `queue`, its sender's address as
  // recvmsg(2) reports it (raw sockaddr bytes; empty: an unnamed unix sender).
  std::vector<std::vector<uint8_t>> queue_from;
  // UDP: for each message of `queue`, the address it was sent to (IP_PKTINFO / IPV6_PKTINFO, ip(7),
  // ipv6(7)) as a sockaddr_in / sockaddr_in6 with port 0; empty: not known.
  std::vector<std::vector<uint8_t>> queue_to;
  // Unix listeners: the inodes of the connecting ends of the connections waiting for accept(2),
  // oldest first (UNIX_DIAG_ICONS, sock_diag(7)).
  std::vector<uint64_t> pending_order;

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(family), CEREAL_NVP(type), CEREAL_NVP(protocol), CEREAL_NVP(state), CEREAL_NVP(ino),
      CEREAL_NVP(local), CEREAL_NVP(peer), CEREAL_NVP(peer_ino), CEREAL_NVP(backlog), CEREAL_NVP(shutdown),
      CEREAL_NVP(queue), CEREAL_NVP(options), CEREAL_NVP(tcp), CEREAL_NVP(bind_path), CEREAL_NVP(unlinked),
      CEREAL_NVP(name_ino), CEREAL_NVP(file_mode), CEREAL_NVP(file_uid), CEREAL_NVP(file_gid), CEREAL_NVP(pending),
      CEREAL_NVP(peer_gone), CEREAL_NVP(netns), CEREAL_NVP(queue_from), CEREAL_NVP(queue_to), CEREAL_NVP(pending_order));
  }
};

}  // namespace crbox::model
