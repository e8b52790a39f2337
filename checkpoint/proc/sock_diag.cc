#include "checkpoint/proc/sock_diag.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>

#include <cstring>

#include "util/error.h"

namespace crbox::proc {

namespace {

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[noreturn]] void malformed(const std::string& what) { throw Error("malformed unix_diag answer: " + what + "."); }

// The attributes (struct rtattr, each padded to 4 bytes) that follow a unix_diag_msg.
void parse_attributes(const uint8_t* p, size_t len, UnixDiag& d) {
  while (len >= sizeof(rtattr)) {
    auto a = load<rtattr>(p);
    if (a.rta_len < sizeof(rtattr) || a.rta_len > len) malformed("an attribute runs past its message");
    const uint8_t* v = p + RTA_LENGTH(0);
    size_t n = a.rta_len - RTA_LENGTH(0);
    switch (a.rta_type) {
      case UNIX_DIAG_NAME:
        d.has_name = true;
        d.name.assign(reinterpret_cast<const char*>(v), n);
        break;
      case UNIX_DIAG_VFS:
        if (n < sizeof(unix_diag_vfs)) malformed("a short UNIX_DIAG_VFS");
        d.has_vfs = true;
        d.vfs_ino = load<unix_diag_vfs>(v).udiag_vfs_ino;
        d.vfs_dev = load<unix_diag_vfs>(v).udiag_vfs_dev;
        break;
      case UNIX_DIAG_PEER:
        if (n < 4) malformed("a short UNIX_DIAG_PEER");
        d.has_peer = true;
        d.peer = load<uint32_t>(v);
        break;
      case UNIX_DIAG_ICONS:
        if (n % 4) malformed("a UNIX_DIAG_ICONS that is not a list of inodes");
        for (size_t i = 0; i < n; i += 4) d.icons.push_back(load<uint32_t>(v + i));
        break;
      case UNIX_DIAG_RQLEN:
        if (n < sizeof(unix_diag_rqlen)) malformed("a short UNIX_DIAG_RQLEN");
        d.has_rqlen = true;
        d.rqueue = load<unix_diag_rqlen>(v).udiag_rqueue;
        d.wqueue = load<unix_diag_rqlen>(v).udiag_wqueue;
        break;
      case UNIX_DIAG_SHUTDOWN:
        if (n < 1) malformed("a short UNIX_DIAG_SHUTDOWN");
        d.has_shutdown = true;
        d.shutdown = v[0];
        break;
      default:
        break;  // newer attributes (UNIX_DIAG_UID, ...) are skipped
    }
    size_t step = RTA_ALIGN(a.rta_len);
    if (step >= len) break;
    p += step;
    len -= step;
  }
}

}  // namespace

std::vector<uint8_t> unix_diag_request(uint32_t ino, uint32_t show, uint32_t seq) {
  struct {
    nlmsghdr nlh;
    unix_diag_req req;
  } msg;
  std::memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.nlh.nlmsg_seq = seq;
  msg.req.sdiag_family = AF_UNIX;
  msg.req.udiag_states = ~0u;
  msg.req.udiag_ino = ino;
  msg.req.udiag_show = show;
  // No cookie: a lookup by inode alone (sock_diag(7), INET_DIAG_NOCOOKIE).
  msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u;
  std::vector<uint8_t> out(sizeof msg);
  std::memcpy(out.data(), &msg, sizeof msg);
  return out;
}

UnixDiagReply parse_unix_diag(const uint8_t* data, size_t len) {
  UnixDiagReply r;
  while (len > 0) {
    if (len < sizeof(nlmsghdr)) malformed("a truncated netlink header");
    auto h = load<nlmsghdr>(data);
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > len) malformed("a netlink message longer than the buffer");
    const uint8_t* body = data + NLMSG_HDRLEN;
    size_t body_len = h.nlmsg_len - NLMSG_HDRLEN;
    if (h.nlmsg_type == NLMSG_DONE) {
      r.done = true;
    } else if (h.nlmsg_type == NLMSG_ERROR) {
      if (body_len < sizeof(int)) malformed("a truncated NLMSG_ERROR");
      int e = load<int>(body);
      r.error = e < 0 ? -e : e;
      r.done = true;
    } else if (h.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
      if (body_len < sizeof(unix_diag_msg)) malformed("a truncated unix_diag_msg");
      auto m = load<unix_diag_msg>(body);
      UnixDiag d;
      d.type = m.udiag_type;
      d.state = m.udiag_state;
      d.ino = m.udiag_ino;
      size_t off = NLMSG_ALIGN(sizeof(unix_diag_msg));
      if (off < body_len) parse_attributes(body + off, body_len - off, d);
      r.sockets.push_back(std::move(d));
      if (!(h.nlmsg_flags & NLM_F_MULTI)) r.done = true;
    }
    size_t step = NLMSG_ALIGN(h.nlmsg_len);
    if (step >= len) break;
    data += step;
    len -= step;
  }
  return r;
}

}  // namespace crbox::proc
