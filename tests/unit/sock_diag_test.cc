// The unix_diag request and answer parsing (checkpoint/proc/sock_diag): over hand-made byte
// buffers, and once against the kernel with a socketpair of our own.
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "checkpoint/proc/sock_diag.h"
#include "util/error.h"
#include "util/fd.h"

using namespace crbox;
using namespace crbox::proc;

namespace {

// Builds netlink messages attribute by attribute, with the kernel's alignment.
class Msg {
 public:
  explicit Msg(uint16_t type, uint16_t flags = 0) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    put(&h, sizeof h);
  }
  Msg& diag(uint8_t type, uint8_t state, uint32_t ino) {
    unix_diag_msg m{};
    m.udiag_family = AF_UNIX;
    m.udiag_type = type;
    m.udiag_state = state;
    m.udiag_ino = ino;
    put(&m, sizeof m);
    return *this;
  }
  Msg& attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
    put(&a, sizeof a);
    put(data, len);
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), 0);
    return *this;
  }
  Msg& raw(const void* data, size_t len) {
    put(data, len);
    return *this;
  }
  std::vector<uint8_t> done() {
    auto out = bytes_;
    uint32_t len = static_cast<uint32_t>(out.size());
    std::memcpy(out.data(), &len, sizeof len);  // nlmsg_len comes first
    out.resize(NLMSG_ALIGN(out.size()), 0);
    return out;
  }

 private:
  void put(const void* p, size_t n) {
    size_t at = bytes_.size();
    bytes_.resize(at + n);
    if (n) std::memcpy(bytes_.data() + at, p, n);
  }
  std::vector<uint8_t> bytes_;
};

TEST(SockDiag, RequestIsOneLookupByInode) {
  auto req = unix_diag_request(4242, UDIAG_SHOW_PEER | UDIAG_SHOW_NAME, 7);
  ASSERT_EQ(req.size(), sizeof(nlmsghdr) + sizeof(unix_diag_req));
  nlmsghdr h;
  std::memcpy(&h, req.data(), sizeof h);
  EXPECT_EQ(h.nlmsg_len, req.size());
  EXPECT_EQ(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST);  // not a dump
  EXPECT_EQ(h.nlmsg_seq, 7u);
  unix_diag_req r;
  std::memcpy(&r, req.data() + sizeof h, sizeof r);
  EXPECT_EQ(r.sdiag_family, AF_UNIX);
  EXPECT_EQ(r.udiag_ino, 4242u);
  EXPECT_EQ(r.udiag_show, static_cast<uint32_t>(UDIAG_SHOW_PEER | UDIAG_SHOW_NAME));
  EXPECT_EQ(r.udiag_cookie[0], ~0u);
  EXPECT_EQ(r.udiag_cookie[1], ~0u);
}

TEST(SockDiag, ParsesEveryAttribute) {
  const char name[] = "/run/x.sock";  // as the kernel sends it: sun_path bytes, no terminator
  unix_diag_vfs vfs{77, (8u << 20) | 3};
  uint32_t peer = 1001;
  uint32_t icons[2] = {0, 0};
  unix_diag_rqlen rq{12, 4096};
  uint8_t shut = 3;
  uint32_t uid = 0;  // an attribute the parser does not know is skipped
  auto buf = Msg(SOCK_DIAG_BY_FAMILY)
                 .diag(SOCK_STREAM, TCP_ESTABLISHED, 1000)
                 .attr(UNIX_DIAG_NAME, name, sizeof name - 1)
                 .attr(UNIX_DIAG_VFS, &vfs, sizeof vfs)
                 .attr(UNIX_DIAG_PEER, &peer, sizeof peer)
                 .attr(UNIX_DIAG_ICONS, icons, sizeof icons)
                 .attr(UNIX_DIAG_RQLEN, &rq, sizeof rq)
                 .attr(UNIX_DIAG_SHUTDOWN, &shut, 1)
                 .attr(UNIX_DIAG_UID, &uid, sizeof uid)
                 .done();
  auto r = parse_unix_diag(buf.data(), buf.size());
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.done);
  ASSERT_EQ(r.sockets.size(), 1u);
  const auto& d = r.sockets[0];
  EXPECT_EQ(d.type, SOCK_STREAM);
  EXPECT_EQ(d.state, TCP_ESTABLISHED);
  EXPECT_EQ(d.ino, 1000u);
  EXPECT_TRUE(d.has_name);
  EXPECT_EQ(d.name, "/run/x.sock");
  EXPECT_TRUE(d.has_vfs);
  EXPECT_EQ(d.vfs_ino, 77u);
  EXPECT_EQ(d.vfs_dev, (8u << 20) | 3);
  EXPECT_TRUE(d.has_peer);
  EXPECT_EQ(d.peer, 1001u);
  EXPECT_EQ(d.icons, (std::vector<uint32_t>{0, 0}));
  EXPECT_TRUE(d.has_rqlen);
  EXPECT_EQ(d.rqueue, 12u);
  EXPECT_EQ(d.wqueue, 4096u);
  EXPECT_TRUE(d.has_shutdown);
  EXPECT_EQ(d.shutdown, 3);
}

TEST(SockDiag, AbstractNameKeepsItsLeadingZero) {
  const char name[] = "\0abc";
  auto buf = Msg(SOCK_DIAG_BY_FAMILY).diag(SOCK_DGRAM, TCP_CLOSE, 5).attr(UNIX_DIAG_NAME, name, 4).done();
  auto r = parse_unix_diag(buf.data(), buf.size());
  ASSERT_EQ(r.sockets.size(), 1u);
  EXPECT_EQ(r.sockets[0].name, std::string("\0abc", 4));
  EXPECT_FALSE(r.sockets[0].has_peer);
  EXPECT_FALSE(r.sockets[0].has_vfs);
}

TEST(SockDiag, SeveralMessagesThenDone) {
  auto a = Msg(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI).diag(SOCK_STREAM, TCP_LISTEN, 1).done();
  auto b = Msg(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI).diag(SOCK_SEQPACKET, TCP_CLOSE, 2).done();
  int zero = 0;
  auto d = Msg(NLMSG_DONE, NLM_F_MULTI).raw(&zero, sizeof zero).done();
  auto join = [](std::vector<uint8_t> x, const std::vector<uint8_t>& y) {
    size_t at = x.size();
    x.resize(at + y.size());
    std::memcpy(x.data() + at, y.data(), y.size());
    return x;
  };
  std::vector<uint8_t> buf = join(a, b);
  auto first = parse_unix_diag(buf.data(), buf.size());
  EXPECT_FALSE(first.done);  // multi-part, no NLMSG_DONE yet
  ASSERT_EQ(first.sockets.size(), 2u);
  EXPECT_EQ(first.sockets[1].type, SOCK_SEQPACKET);
  buf = join(buf, d);
  EXPECT_TRUE(parse_unix_diag(buf.data(), buf.size()).done);
}

TEST(SockDiag, ErrorMessageGivesErrno) {
  nlmsgerr e{};
  e.error = -ENOENT;
  auto buf = Msg(NLMSG_ERROR).raw(&e, sizeof e).done();
  auto r = parse_unix_diag(buf.data(), buf.size());
  EXPECT_EQ(r.error, ENOENT);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.sockets.empty());
}

TEST(SockDiag, MalformedBuffersAreRefused) {
  auto good = Msg(SOCK_DIAG_BY_FAMILY).diag(SOCK_STREAM, TCP_ESTABLISHED, 1).attr(UNIX_DIAG_SHUTDOWN, "\1", 1).done();
  // Truncated header, message longer than the buffer, attribute longer than its message, a body
  // too short for unix_diag_msg.
  EXPECT_THROW(parse_unix_diag(good.data(), 8), Error);
  EXPECT_THROW(parse_unix_diag(good.data(), good.size() - 4), Error);
  auto bad_attr = good;
  uint16_t huge = 200;
  std::memcpy(bad_attr.data() + sizeof(nlmsghdr) + sizeof(unix_diag_msg), &huge, sizeof huge);
  EXPECT_THROW(parse_unix_diag(bad_attr.data(), bad_attr.size()), Error);
  auto short_body = Msg(SOCK_DIAG_BY_FAMILY).raw("abcd", 4).done();
  EXPECT_THROW(parse_unix_diag(short_body.data(), short_body.size()), Error);
  EXPECT_EQ(parse_unix_diag(good.data(), good.size()).sockets.at(0).shutdown, 1);
}

// The kernel's own answer about a socketpair of ours: each end names the other as its peer.
TEST(SockDiag, KernelAnswersForASocketpair) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_EQ(shutdown(a.get(), SHUT_WR), 0);
  struct stat sa {}, sb {};
  fstat(a.get(), &sa);
  fstat(b.get(), &sb);
  UniqueFd nl(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  ASSERT_TRUE(nl);
  auto req = unix_diag_request(static_cast<uint32_t>(sa.st_ino), UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN, 1);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ASSERT_GT(sendto(nl.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel), 0);
  std::vector<uint8_t> buf(65536);
  ssize_t n = recv(nl.get(), buf.data(), buf.size(), 0);
  ASSERT_GT(n, 0);
  auto r = parse_unix_diag(buf.data(), static_cast<size_t>(n));
  ASSERT_EQ(r.error, 0);
  ASSERT_EQ(r.sockets.size(), 1u);
  EXPECT_EQ(r.sockets[0].ino, sa.st_ino);
  EXPECT_EQ(r.sockets[0].peer, sb.st_ino);
  EXPECT_EQ(r.sockets[0].state, TCP_ESTABLISHED);
  EXPECT_TRUE(r.sockets[0].has_shutdown);
  EXPECT_EQ(r.sockets[0].shutdown, 2);  // SEND_SHUTDOWN
}

}  // namespace
