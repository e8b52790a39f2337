// Datagrams waiting unread at the checkpoint, from several senders.
//
//   sock_dgram_queue udp4|udp6|udp46
//   sock_dgram_queue unix DIR
//
// udp4/udp6: a receiver R bound to 127.0.0.1 / ::1 holds 5 datagrams of different sizes (the
// first and the last empty; the program peeked at the first, as one learning sizes would) from
// two senders S1 and S2 bound there too; a second receiver R2 holds one datagram from S2 sent
// before R2 was connected to S1, and one from S1 after.
// udp46: R is an IPv6 socket bound to [::] (both families); S1 is IPv4 on 127.0.0.1, S2 IPv6 on
// ::1, and the fourth datagram comes from 192.0.2.7:4444, an address no interface has (built by
// hand on a raw socket); R sees the IPv4 senders as ::ffff:a.b.c.d.
// unix: a datagram socket R bound to DIR/r.sock holds 5 messages as above from a sender bound to
// DIR/a.sock, one bound to an abstract name, and an unnamed one (the fourth); the senders are
// made before R (lower descriptors), so a restart makes them before refilling R. A second
// receiver R2 at DIR/r2.sock holds one message from the unnamed sender, sent before R2 was
// connected (one way) to the sender at DIR/a.sock, then 12 from that one (more than the 10 of
// net.unix.max_dgram_qlen, to which a connected peer is not held).
//
// Prints "pid=<pid>", "ready", then "tick <n>" every 200 ms. On SIGUSR1 it reads R (and R2)
// dry: the same datagrams in the same order with the same sender addresses, none twice, nothing
// more; then S1 sends one more that must arrive from S1's address. Prints "dgq ok" or
// "dgq BAD <what>".
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check_signal.h"


struct addr {
  struct sockaddr_storage ss;
  socklen_t len;
};

#define NQ 5    // datagrams queued in R
#define NQ2 12  // unix: messages from R2's peer, more than net.unix.max_dgram_qlen (10)

struct expect {
  size_t len;
  int seed;
  int sender;  // index into senders[]
};

static unsigned char pat(int seed, size_t k) { return (unsigned char)(seed * 31 + k * 7 + (k >> 8)); }

static unsigned char buf[70000];

static int send_pat(int s, const struct addr* to, size_t len, int seed) {
  for (size_t k = 0; k < len; k++) buf[k] = pat(seed, k);
  ssize_t n = to ? sendto(s, buf, len, 0, (const struct sockaddr*)&to->ss, to->len) : send(s, buf, len, 0);
  return n == (ssize_t)len ? 0 : -1;
}

static int same_addr(const struct addr* a, const struct sockaddr_storage* ss, socklen_t len) {
  return a->len == len && memcmp(&a->ss, ss, len) == 0;
}

// Reads `n` datagrams from `s` and checks each against `want`, then that nothing more waits.
static const char* drain(int s, const struct expect* want, int n, struct addr* senders, int family) {
  for (int i = 0; i < n; i++) {
    struct pollfd pf = {s, POLLIN, 0};
    int k;
    while ((k = poll(&pf, 1, 5000)) < 0 && errno == EINTR) {
    }
    if (k <= 0) return "a datagram is missing";
    struct sockaddr_storage from;
    memset(&from, 0, sizeof from);
    socklen_t flen = sizeof from;
    ssize_t got = recvfrom(s, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr*)&from, &flen);
    if (got < 0) return "recvfrom failed";
    if ((size_t)got != want[i].len) {
      static char m[96];
      snprintf(m, sizeof m, "datagram %d has %zd bytes, not %zu", i, got, want[i].len);
      return m;
    }
    for (size_t j = 0; j < want[i].len; j++)
      if (buf[j] != pat(want[i].seed, j)) return "a datagram's content differs";
    const struct addr* a = &senders[want[i].sender];
    if (family == AF_UNIX ? !(a->len == flen && memcmp(&a->ss, &from, flen) == 0) : !same_addr(a, &from, flen)) {
      static char m[96];
      snprintf(m, sizeof m, "datagram %d comes from another address (length %u, not %u)", i, (unsigned)flen, (unsigned)a->len);
      return m;
    }
  }
  ssize_t more = recv(s, buf, sizeof buf, MSG_DONTWAIT);
  if (more >= 0) return "a datagram more than was sent";
  if (errno != EAGAIN) return "recv failed";
  return NULL;
}

// An IPv4 address and port as an IPv6 socket reports it (::ffff:a.b.c.d).
static void mapped(struct addr* a, uint32_t ip, uint16_t port) {
  memset(a, 0, sizeof *a);
  struct sockaddr_in6* in6 = (struct sockaddr_in6*)&a->ss;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = port;
  in6->sin6_addr.s6_addr[10] = in6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&in6->sin6_addr.s6_addr[12], &ip, 4);
  a->len = sizeof *in6;
}

// A datagram from `src`:`sport` to 127.0.0.1:`dport`, IP header and all (raw(7); UDP checksum 0:
// none, which IPv4 allows).
static int send_spoofed(uint32_t src, uint16_t sport, uint16_t dport, size_t len, int seed) {
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (raw < 0) return -1;
  static unsigned char pkt[2048];
  struct iphdr ip;
  struct udphdr u;
  memset(&ip, 0, sizeof ip);
  memset(&u, 0, sizeof u);
  ip.version = 4;
  ip.ihl = 5;
  ip.ttl = 64;
  ip.protocol = IPPROTO_UDP;
  ip.tot_len = htons((uint16_t)(sizeof ip + sizeof u + len));
  ip.saddr = src;
  ip.daddr = htonl(INADDR_LOOPBACK);
  u.source = sport;
  u.dest = dport;
  u.len = htons((uint16_t)(sizeof u + len));
  memcpy(pkt, &ip, sizeof ip);
  memcpy(pkt + sizeof ip, &u, sizeof u);
  for (size_t k = 0; k < len; k++) pkt[sizeof ip + sizeof u + k] = pat(seed, k);
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip.daddr;
  ssize_t n = sendto(raw, pkt, sizeof ip + sizeof u + len, 0, (struct sockaddr*)&to, sizeof to);
  close(raw);
  return n == (ssize_t)(sizeof ip + sizeof u + len) ? 0 : -1;
}

static int name_of(int s, struct addr* a) {
  a->len = sizeof a->ss;
  memset(&a->ss, 0, sizeof a->ss);
  return getsockname(s, (struct sockaddr*)&a->ss, &a->len);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char* kind = argv[1];
  handle_check_signal();

  int family = !strcmp(kind, "udp4") ? AF_INET : !strcmp(kind, "udp6") || !strcmp(kind, "udp46") ? AF_INET6 : AF_UNIX;
  struct addr senders[3], r_addr, r2_addr, s0_to;
  int S[3] = {-1, -1, -1}, R = -1, R2 = -1;
  // Sizes differ; the first and the last are empty. The third sender (the unnamed unix one, the
  // far UDP one) sends the fourth.
  struct expect want[NQ] = {{0, 0, 1}, {1200, 1, 0}, {33000, 2, 1}, {7, 3, 0}, {0, 4, 1}};
  struct expect want2[2 + NQ2] = {{11, 5, 1}, {222, 6, 0}};
  int n2 = 2;
  if (!strcmp(kind, "udp46")) {
    struct sockaddr_in lo4;
    memset(&lo4, 0, sizeof lo4);
    lo4.sin_family = AF_INET;
    lo4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in6 lo6, any6;
    memset(&lo6, 0, sizeof lo6);
    lo6.sin6_family = AF_INET6;
    lo6.sin6_addr = in6addr_loopback;
    memset(&any6, 0, sizeof any6);
    any6.sin6_family = AF_INET6;
    struct addr a;
    S[0] = socket(AF_INET, SOCK_DGRAM, 0);
    S[1] = socket(AF_INET6, SOCK_DGRAM, 0);
    R = socket(AF_INET6, SOCK_DGRAM, 0);
    int off = 0;
    if (bind(S[0], (struct sockaddr*)&lo4, sizeof lo4) != 0 || name_of(S[0], &a) != 0 ||
        bind(S[1], (struct sockaddr*)&lo6, sizeof lo6) != 0 || name_of(S[1], &senders[1]) != 0 ||
        setsockopt(R, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0 || bind(R, (struct sockaddr*)&any6, sizeof any6) != 0 ||
        name_of(R, &r_addr) != 0) {
      printf("dgq BAD setup %s\n", strerror(errno));
      return 1;
    }
    struct sockaddr_in* s0 = (struct sockaddr_in*)&a.ss;
    mapped(&senders[0], s0->sin_addr.s_addr, s0->sin_port);
    uint32_t far = htonl(0xc0000207);  // 192.0.2.7
    mapped(&senders[2], far, htons(4444));
    uint16_t port = ((struct sockaddr_in6*)&r_addr.ss)->sin6_port;
    struct addr to6 = r_addr;
    ((struct sockaddr_in6*)&to6.ss)->sin6_addr = in6addr_loopback;
    memset(&s0_to, 0, sizeof s0_to);
    lo4.sin_port = port;
    memcpy(&s0_to.ss, &lo4, sizeof lo4);
    s0_to.len = sizeof lo4;
    want[3].sender = 2;
    for (int i = 0; i < NQ; i++) {
      int k = want[i].sender;
      int r = k == 0   ? send_pat(S[0], &s0_to, want[i].len, want[i].seed)
              : k == 1 ? send_pat(S[1], &to6, want[i].len, want[i].seed)
                       : send_spoofed(far, htons(4444), port, want[i].len, want[i].seed);
      if (r != 0) {
        printf("dgq BAD send %s\n", strerror(errno));
        return 1;
      }
    }
  } else if (family != AF_UNIX) {
    struct addr lo;
    memset(&lo, 0, sizeof lo);
    if (family == AF_INET) {
      struct sockaddr_in* in = (struct sockaddr_in*)&lo.ss;
      in->sin_family = AF_INET;
      in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      lo.len = sizeof *in;
    } else {
      struct sockaddr_in6* in6 = (struct sockaddr_in6*)&lo.ss;
      in6->sin6_family = AF_INET6;
      in6->sin6_addr = in6addr_loopback;
      lo.len = sizeof *in6;
    }
    for (int i = 0; i < 2; i++) {
      S[i] = socket(family, SOCK_DGRAM, 0);
      if (bind(S[i], (struct sockaddr*)&lo.ss, lo.len) != 0 || name_of(S[i], &senders[i]) != 0) {
        printf("dgq BAD sender setup %s\n", strerror(errno));
        return 1;
      }
    }
    R = socket(family, SOCK_DGRAM, 0);
    R2 = socket(family, SOCK_DGRAM, 0);
    if (bind(R, (struct sockaddr*)&lo.ss, lo.len) != 0 || name_of(R, &r_addr) != 0 ||
        bind(R2, (struct sockaddr*)&lo.ss, lo.len) != 0 || name_of(R2, &r2_addr) != 0) {
      printf("dgq BAD receiver setup %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < NQ; i++)
      if (send_pat(S[want[i].sender], &r_addr, want[i].len, want[i].seed) != 0) {
        printf("dgq BAD send %s\n", strerror(errno));
        return 1;
      }
    // R2: one datagram from S2 while unconnected, then connected to S1, one from S1.
    if (send_pat(S[1], &r2_addr, want2[0].len, want2[0].seed) != 0 ||
        connect(R2, (struct sockaddr*)&senders[0].ss, senders[0].len) != 0 ||
        send_pat(S[0], &r2_addr, want2[1].len, want2[1].seed) != 0) {
      printf("dgq BAD R2 setup %s\n", strerror(errno));
      return 1;
    }
  } else {
    if (argc < 3) return 2;
    const char* dir = argv[2];
    struct sockaddr_un un;
    // Sender 0: a path name; sender 1: an abstract name; sender 2: unnamed.
    S[0] = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s/a.sock", dir);
    unlink(un.sun_path);
    if (bind(S[0], (struct sockaddr*)&un, sizeof un) != 0 || name_of(S[0], &senders[0]) != 0) {
      printf("dgq BAD sender a %s\n", strerror(errno));
      return 1;
    }
    S[1] = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    int n = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "crbox-dgq-%d", getpid());
    if (bind(S[1], (struct sockaddr*)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) != 0 ||
        name_of(S[1], &senders[1]) != 0) {
      printf("dgq BAD sender @ %s\n", strerror(errno));
      return 1;
    }
    S[2] = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&senders[2], 0, sizeof senders[2]);  // recvfrom reports no address for it
    R = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s/r.sock", dir);
    unlink(un.sun_path);
    if (bind(R, (struct sockaddr*)&un, sizeof un) != 0 || name_of(R, &r_addr) != 0) {
      printf("dgq BAD receiver %s\n", strerror(errno));
      return 1;
    }
    want[3].sender = 2;
    for (int i = 0; i < NQ; i++)
      if (send_pat(S[want[i].sender], &r_addr, want[i].len, want[i].seed) != 0) {
        printf("dgq BAD send %s\n", strerror(errno));
        return 1;
      }
    // R2 at DIR/r2.sock: one message from the unnamed sender, then connected (one way) to the
    // sender at DIR/a.sock, which sends NQ2 more (a peer is not held to max_dgram_qlen).
    R2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s/r2.sock", dir);
    unlink(un.sun_path);
    want2[0].sender = 2;
    n2 = 1;
    if (bind(R2, (struct sockaddr*)&un, sizeof un) != 0 || name_of(R2, &r2_addr) != 0 ||
        send_pat(S[2], &r2_addr, want2[0].len, want2[0].seed) != 0 ||
        connect(R2, (struct sockaddr*)&senders[0].ss, senders[0].len) != 0) {
      printf("dgq BAD R2 setup %s\n", strerror(errno));
      return 1;
    }
    for (int k = 0; k < NQ2; k++, n2++) {
      want2[n2].len = (size_t)(100 + k);
      want2[n2].seed = 10 + k;
      want2[n2].sender = 0;
      if (send_pat(S[0], &r2_addr, want2[n2].len, want2[n2].seed) != 0) {
        printf("dgq BAD R2 send %s\n", strerror(errno));
        return 1;
      }
    }
  }
  if (strcmp(kind, "udp46") != 0) s0_to = r_addr;
  // The program itself peeks at the empty datagram at the head, as one learning sizes would
  // (which marks it as peeked in the kernel).
  {
    struct pollfd pf = {R, POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1 || recv(R, buf, 1, MSG_PEEK) != 0) {
      printf("dgq BAD the empty datagram at the head %s\n", strerror(errno));
      return 1;
    }
  }
  printf("pid=%d\nready\n", getpid());
  for (long n = 0;; n++) {
    struct timespec ts = {0, 200000000L};
    nanosleep(&ts, NULL);
    if (!check_asked) {
      printf("tick %ld\n", n);
      continue;
    }
    // The checkpoint put back the options it used to peek.
    int v = 0;
    socklen_t vl = sizeof v;
    const char* bad = NULL;
    if (getsockopt(R, SOL_SOCKET, SO_PEEK_OFF, &v, &vl) != 0 || v != -1) bad = "SO_PEEK_OFF changed";
    vl = sizeof v;
    if (!bad && family != AF_UNIX && (getsockopt(R, IPPROTO_IP, IP_PKTINFO, &v, &vl) != 0 || v != 0)) bad = "IP_PKTINFO changed";
    vl = sizeof v;
    if (!bad && family == AF_INET6 && (getsockopt(R, IPPROTO_IPV6, IPV6_RECVPKTINFO, &v, &vl) != 0 || v != 0))
      bad = "IPV6_RECVPKTINFO changed";
    if (!bad) bad = drain(R, want, NQ, senders, family);
    if (!bad && R2 >= 0) bad = drain(R2, want2, n2, senders, family);
    // The exchange goes on: one more from S1 arrives from S1's address.
    struct expect last = {99, 9, 0};
    if (!bad && send_pat(S[0], &s0_to, last.len, last.seed) != 0) bad = "sending after the check";
    if (!bad) bad = drain(R, &last, 1, senders, family);
    if (bad) printf("dgq BAD %s\n", bad);
    else printf("dgq ok\n");
    return 0;
  }
}
