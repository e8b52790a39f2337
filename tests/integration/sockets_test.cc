// Sockets a checkpoint must bring back, each checkpointed while in use, killed, restarted and
// verified from inside the restored program: unix socketpairs with data queued both ways, a named
// unix listener with an accepted and a waiting connection, unix sockets in less common states,
// TCP listeners, UDP sockets, and an established TCP connection inside a sandbox's own network
// namespace (TCP_REPAIR), datagrams waiting in UDP and unix datagram sockets (with their senders'
// addresses, and untouched by the checkpoint), errors pending on sockets (left pending by the
// checkpoint). What crbox cannot take (a netlink socket, a descriptor in flight, an established
// connection on the host's network, datagrams queued behind a pending error or in a multicast
// receiver) is refused in one sentence and the program runs on untouched; datagrams put back that
// another socket takes fail the restart.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <memory>
#include <string>
#include <tuple>

#include "checkpoint_util.h"
#include "harness.h"

using namespace crbox::test;
using namespace crbox::test::ckpt;
using namespace std::chrono_literals;

namespace {

// Where a test program runs: plain, a sandbox on the host's network, or a sandbox with its own
// network namespace (--net=none: loopback only).
enum class Where { Plain, Sandbox, NetNone };

std::string where_name(Where w) {
  return w == Where::Plain ? "Plain" : w == Where::Sandbox ? "Sandbox" : "SandboxNetNone";
}
Mode mode_of(Where w) { return w == Where::Plain ? Mode::Plain : Mode::Sandbox; }

// Starts `prog args` under cr_run as `w` asks (see launch in checkpoint_util.h).
Launched start(Where w, const std::string& prog, const std::vector<std::string>& args, const std::string& dir,
               std::string* why) {
  if (w != Where::NetNone) return launch(mode_of(w), prog, args, dir, why);
  Launched l;
  std::vector<std::string> argv{tool("cr_run"), "--sandbox", "--net=none", program(prog)};
  argv.insert(argv.end(), args.begin(), args.end());
  l.child = std::make_unique<Child>(argv, dir);
  auto line = l.child->wait_for("pid=", 30s);
  if (!line) {
    *why = "no pid= line from " + prog + " under cr_run --sandbox --net=none; output: " + l.child->output();
    return l;
  }
  l.pid_line = *line;
  l.pid = find_by_comm(l.child->pid(), prog, 10s);
  if (l.pid < 0) *why = "no process named " + prog + " under cr_run --sandbox --net=none";
  return l;
}

class SocketTest : public ::testing::Test {
 protected:
  void SetUp() override { become_subreaper(); }
  void TearDown() override { kill_all_descendants(); }

  // Runs `prog args` as `w` asks, waits for "ready", checkpoints it with --kill, restarts it,
  // asks it (SIGUSR1) to check itself and returns the line it answers that starts with `verdict`.
  std::string round_trip(Where w, const std::string& prog, const std::vector<std::string>& args,
                         const std::string& verdict) {
    ScratchDir dir;
    std::string why;
    auto orig = start(w, prog, args, dir.path(), &why);
    if (orig.pid <= 0) return "launch failed: " + why;
    if (!orig.child->wait_for("ready", 20s)) return "not ready: " + orig.child->output();
    auto family = descendants_of(orig.pid);
    auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
    if (r.status != 0) return "cr_checkpoint failed: " + r.err;
    orig.child->wait(20s);
    // The killed children come to us (a subreaper) as zombies: reaped, so their pids are free.
    for (pid_t p : family)
      if (!wait_gone(p, 10s)) return "pid " + std::to_string(p) + " did not go";
    auto rs = start_restart(dir / "ctx", {}, dir.path());
    pid_t rp = restored_pid(*rs, mode_of(w), orig.pid, prog);
    if (rp <= 0) return "not restored: " + rs->output();
    if (!next_starting(*rs, "tick", 20s)) return "no tick after the restart: " + rs->output();
    ::kill(rp, SIGUSR1);
    auto line = next_starting(*rs, verdict, 30s);
    return line ? *line : "no verdict: " + rs->output();
  }
};

// ---- unix socketpairs ----------------------------------------------------------------------

class SocketPair : public SocketTest, public ::testing::WithParamInterface<std::tuple<Where, std::string>> {};

TEST_P(SocketPair, QueuedDataReadOnceThenExchangeGoesOn) {
  auto [w, type] = GetParam();
  EXPECT_EQ(round_trip(w, "sock_pair", {type}, "sockpair "), "sockpair ok");
}

INSTANTIATE_TEST_SUITE_P(, SocketPair,
                         ::testing::Combine(::testing::Values(Where::Plain, Where::Sandbox),
                                            ::testing::Values("stream", "dgram", "seqpacket")),
                         [](const auto& info) {
                           return where_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

// ---- named unix sockets, TCP listeners, UDP ------------------------------------------------

class SocketWhere : public SocketTest, public ::testing::WithParamInterface<Where> {};

TEST_P(SocketWhere, UnixListenerAcceptsAgainAndOldConnectionsWork) {
  Where w = GetParam();
  ScratchDir names;  // plain: the socket file lives in a scratch folder; sandbox: in its /tmp
  std::string path = w == Where::Plain ? names / "listen.sock" : "/tmp/listen.sock";
  EXPECT_EQ(round_trip(w, "sock_unix_listen", {path}, "unixlisten "), "unixlisten ok");
}

// An abstract-name listener, a pair end whose peer was closed, a bound datagram socket with
// messages queued and one connected to it, SO_PEEK_OFF, O_NONBLOCK and SO_RCVBUF.
TEST_P(SocketWhere, UnixSocketsInLessCommonStates) {
  Where w = GetParam();
  ScratchDir names;
  std::string path = w == Where::Plain ? names / "dgram.sock" : "/tmp/dgram.sock";
  EXPECT_EQ(round_trip(w, "sock_unix_misc", {path}, "unixmisc "), "unixmisc ok");
}

TEST_P(SocketWhere, TcpListenerTakesNewConnections) {
  EXPECT_EQ(round_trip(GetParam(), "sock_tcp_listen", {}, "tcplisten "), "tcplisten ok");
}

TEST_P(SocketWhere, UdpBoundAndConnectedSocketsWork) {
  EXPECT_EQ(round_trip(GetParam(), "sock_udp", {}, "udp "), "udp ok");
}

// Three connections waiting for accept(2) come back in the order they waited in, not in the
// order of their descriptors.
TEST_P(SocketWhere, UnixWaitingConnectionsKeepTheirOrder) {
  Where w = GetParam();
  ScratchDir names;
  std::string path = w == Where::Plain ? names / "order.sock" : "/tmp/order.sock";
  EXPECT_EQ(round_trip(w, "sock_unix_order", {path}, "unixorder "), "unixorder ok");
}

INSTANTIATE_TEST_SUITE_P(, SocketWhere, ::testing::Values(Where::Plain, Where::Sandbox, Where::NetNone),
                         [](const auto& info) { return where_name(info.param); });

// ---- datagrams waiting unread ----------------------------------------------------------------

// sock_dgram_queue's arguments: the kind, and for unix a folder for the socket files.
std::vector<std::string> dgram_args(Where w, const std::string& kind, const ScratchDir& names) {
  if (kind != "unix") return {kind};
  return {kind, w == Where::Plain ? names.path() : "/tmp"};
}

class SocketQueued : public SocketTest, public ::testing::WithParamInterface<std::tuple<Where, std::string>> {};

// UDP (IPv4, IPv6, an IPv6 socket taking both, one sender not local) and named unix datagram
// sockets holding datagrams of several sizes from several senders: after the restart each
// arrives once, in order, from its sender's address.
TEST_P(SocketQueued, DatagramsArriveOnceInOrderFromTheirSenders) {
  auto [w, kind] = GetParam();
  ScratchDir names;
  EXPECT_EQ(round_trip(w, "sock_dgram_queue", dgram_args(w, kind, names), "dgq "), "dgq ok");
}

// The checkpoint only peeks: the original, left running, reads every datagram once.
TEST_P(SocketQueued, OriginalStillReadsEveryDatagramOnce) {
  auto [w, kind] = GetParam();
  ScratchDir dir, names;
  std::string why;
  auto orig = start(w, "sock_dgram_queue", dgram_args(w, kind, names), dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "dgq ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "dgq ok");
}

INSTANTIATE_TEST_SUITE_P(, SocketQueued,
                         ::testing::Combine(::testing::Values(Where::Plain, Where::Sandbox, Where::NetNone),
                                            ::testing::Values("udp4", "udp6", "udp46", "unix")),
                         [](const auto& info) {
                           return where_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

// ---- errors pending -----------------------------------------------------------------------------

// A connected UDP socket holding ECONNREFUSED and a unix stream socket holding data then
// ECONNRESET: the checkpoint takes neither error (a receive call, a peek too, would); the
// original, left running, still gets both.
TEST_P(SocketWhere, PendingErrorsStayWithTheOriginal) {
  ScratchDir dir;
  std::string why;
  auto orig = start(GetParam(), "sock_err", {"keep"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "sockerr ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "sockerr udp=ECONNREFUSED unix=hello,ECONNRESET");
}

// The same process restarts: the unix data is back; the errors themselves are not (the restored
// UDP socket has none, the unix one reads end of file: documented limits).
TEST_P(SocketWhere, PendingErrorsDoNotStopACheckpoint) {
  EXPECT_EQ(round_trip(GetParam(), "sock_err", {"keep"}, "sockerr "), "sockerr udp=EAGAIN unix=hello,EOF");
}

// Datagrams queued behind a pending error cannot be peeked without taking the error: the
// checkpoint is refused, and the program gets the error and then its datagram.
class SocketErrorRefused : public SocketTest, public ::testing::WithParamInterface<std::tuple<Where, std::string>> {};

TEST_P(SocketErrorRefused, QueuedMessagesBehindAnErrorRefusedAndLeftInPlace) {
  auto [w, kind] = GetParam();
  ScratchDir dir;
  std::string why;
  auto orig = start(w, "sock_err", {kind}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto fd_line = orig.child->wait_for("fd=", 20s);
  ASSERT_TRUE(fd_line) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("pid " + std::to_string(orig.pid) + " fd " + token_after(*fd_line, "fd=") + ": "), std::string::npos)
      << r.err;
  EXPECT_TRUE(contains_ci(r.err, "pending error")) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "sockerr ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, kind == "udpq" ? "sockerr udpq=ECONNREFUSED,data" : "sockerr seqpacket=ECONNRESET,hello");
}

INSTANTIATE_TEST_SUITE_P(, SocketErrorRefused,
                         ::testing::Combine(::testing::Values(Where::Plain, Where::Sandbox), ::testing::Values("udpq", "seqpacket")),
                         [](const auto& info) {
                           return where_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
                         });

// ---- datagrams that could only be sent again off the machine, or to another socket ---------------

// A receiver bound to a multicast group takes only datagrams sent to the group, which a restart
// would have to send out of the machine: the checkpoint is refused (in a sandbox on loopback only,
// so nothing could leave anyway) and the program reads its datagrams.
TEST_F(SocketTest, MulticastReceiverWithQueuedDatagramsRefused) {
  ScratchDir dir;
  std::string why;
  auto orig = start(Where::NetNone, "sock_mcast", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto fd_line = orig.child->wait_for("fd=", 20s);
  ASSERT_TRUE(fd_line) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("pid " + std::to_string(orig.pid) + " fd " + token_after(*fd_line, "fd=") + ": "), std::string::npos)
      << r.err;
  EXPECT_TRUE(contains_ci(r.err, "multicast")) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "mcast ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "mcast ok");
}

// Another socket on the receiver's port (SO_REUSEADDR on both), connected to the datagrams'
// sender and so preferred by the kernel, takes the datagrams put back: the restart fails saying
// so instead of starting the program with its queue lost.
TEST_F(SocketTest, DatagramsTakenByAnotherSocketOnThePortFailTheRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = start(Where::Plain, "sock_udp_share", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto ports = orig.child->wait_for("ports=", 20s);
  ASSERT_TRUE(ports) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  int rport = std::stoi(token_after(*ports, "ports="));
  int sport = std::stoi(token_after(*ports, "from="));
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx", "--kill"}, dir.path());
  ASSERT_TRUE(succeeded(r));
  orig.child->wait(20s);
  ASSERT_TRUE(wait_gone(orig.pid, 10s));
  // The squatter: 127.0.0.1:rport, connected to 127.0.0.1:sport.
  struct Fd {
    int fd;
    ~Fd() { if (fd >= 0) ::close(fd); }
    int get() const { return fd; }
  } q{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  ASSERT_GE(q.get(), 0);
  int on = 1;
  ASSERT_EQ(::setsockopt(q.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(rport));
  ASSERT_EQ(::bind(q.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  a.sin_port = htons(static_cast<uint16_t>(sport));
  ASSERT_EQ(::connect(q.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  auto rr = ckpt::crbox("cr_restart", {dir / "ctx"}, dir.path(), 60s);
  ASSERT_TRUE(failed_with_one_line(rr, "cr_restart"));
  EXPECT_TRUE(contains_ci(rr.err, "did not arrive in it")) << rr.err;
  EXPECT_TRUE(contains_ci(rr.err, "another socket")) << rr.err;
}

// A restart while the original still holds the listener's name fails, saying the name is in use.
TEST_F(SocketTest, UnixListenerNameInUseRefusesRestart) {
  ScratchDir dir;
  std::string why;
  auto orig = start(Where::Plain, "sock_unix_listen", {dir / "busy.sock"}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  auto r = ckpt::crbox("cr_restart", {dir / "ctx"}, dir.path(), 60s);
  ASSERT_TRUE(failed_with_one_line(r, "cr_restart"));
  EXPECT_TRUE(contains_ci(r.err, "in use")) << r.err;
  EXPECT_TRUE(released(orig.pid));
}

// ---- established TCP -----------------------------------------------------------------------

TEST_F(SocketTest, EstablishedTcpInSandboxContinuesWithoutLossOrDuplicate) {
  auto line = round_trip(Where::NetNone, "sock_tcp_conn", {}, "tcpconn ");
  EXPECT_EQ(line.substr(0, 11), "tcpconn ok ") << line;
}

// Taking the connection's state through TCP_REPAIR changes nothing the program can see.
TEST_F(SocketTest, EstablishedTcpUntouchedByACheckpoint) {
  ScratchDir dir;
  std::string why;
  auto orig = start(Where::NetNone, "sock_tcp_conn", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  ASSERT_TRUE(succeeded(ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path())));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "tcpconn ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(line->substr(0, 11), "tcpconn ok ") << *line;
}

TEST_F(SocketTest, EstablishedTcpOnTheHostNetworkRefused) {
  ScratchDir dir;
  std::string why;
  auto orig = start(Where::Plain, "sock_tcp_conn", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_TRUE(contains_ci(r.err, "pid " + std::to_string(orig.pid) + " fd ")) << r.err;
  EXPECT_TRUE(contains_ci(r.err, "established TCP connection")) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "tcpconn ", 30s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(line->substr(0, 11), "tcpconn ok ") << *line;
}

// ---- unsupported ---------------------------------------------------------------------------

class SocketUnsupported : public SocketTest, public ::testing::WithParamInterface<Where> {};

TEST_P(SocketUnsupported, NetlinkSocketRefusedAndProgramUntouched) {
  ScratchDir dir;
  std::string why;
  auto orig = start(GetParam(), "sock_netlink", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto fd_line = orig.child->wait_for("fd=", 20s);
  ASSERT_TRUE(fd_line) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("pid " + std::to_string(orig.pid) + " fd " + token_after(*fd_line, "fd=") + ": a netlink socket"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  EXPECT_TRUE(released(orig.pid));
  // It goes on, and its socket still answers.
  for (int i = 0; i < 3; i++) {
    auto tick = next_starting(*orig.child, "tick", 10s);
    ASSERT_TRUE(tick) << orig.child->output();
    EXPECT_EQ(tick->find("BAD"), std::string::npos) << *tick;
  }
}

// A descriptor in flight is refused, and stays in flight: the program receives it afterwards.
TEST_P(SocketUnsupported, DescriptorInFlightRefusedAndLeftInPlace) {
  ScratchDir dir;
  std::string why;
  auto orig = start(GetParam(), "sock_rights", {}, dir.path(), &why);
  ASSERT_GT(orig.pid, 0) << why;
  auto fd_line = orig.child->wait_for("fd=", 20s);
  ASSERT_TRUE(fd_line) << orig.child->output();
  ASSERT_TRUE(orig.child->wait_for("ready", 20s)) << orig.child->output();
  auto r = ckpt::crbox("cr_checkpoint", {std::to_string(orig.pid), "-f", dir / "ctx"}, dir.path());
  ASSERT_TRUE(failed_with_one_line(r, "cr_checkpoint"));
  EXPECT_NE(r.err.find("pid " + std::to_string(orig.pid) + " fd " + token_after(*fd_line, "fd=") + ": "), std::string::npos)
      << r.err;
  EXPECT_TRUE(contains_ci(r.err, "SCM_RIGHTS")) << r.err;
  EXPECT_FALSE(file_exists(dir / "ctx"));
  ASSERT_TRUE(released(orig.pid));
  ::kill(orig.pid, SIGUSR1);
  auto line = next_starting(*orig.child, "rights ", 10s);
  ASSERT_TRUE(line) << orig.child->output();
  EXPECT_EQ(*line, "rights ok");
}

INSTANTIATE_TEST_SUITE_P(, SocketUnsupported, ::testing::Values(Where::Plain, Where::Sandbox),
                         [](const auto& info) { return where_name(info.param); });

}  // namespace
