/* crbox's libcr: checkpoint requests from inside a sandbox. C, shared by libcr (request.c, the
 * client) and the launcher (runtime/request_server.cc, the server). Not installed.
 *
 * A process in a sandbox cannot checkpoint itself by running cr_checkpoint as its child: that
 * child would live in the sandbox's namespaces, under its seccomp policy and reduced capabilities,
 * and a sandbox is checkpointed from outside. So the launcher that stays outside (cr_run, or
 * cr_restart after restarting a sandbox) serves a unix socket (unix(7), SOCK_SEQPACKET) that the
 * sandbox's init binds at CRBOX_LIBCR_SOCKET_PATH in the sandbox's private /tmp; the launcher
 * holds the listening socket, the sandbox holds nothing.
 *
 * 1. libcr connects and sends one crbox_req_msg with three descriptors (SCM_RIGHTS), in order:
 *    the status memfd (one page, crbox_req_status, sealed at that size with F_SEAL_SHRINK,
 *    F_SEAL_GROW and F_SEAL_SEAL: the server writes it through a mapping and refuses with EINVAL
 *    one without F_SEAL_SHRINK or shorter than a crbox_req_status), the log memfd (cr_checkpoint's stdout and
 *    stderr: the request's messages), and the destination: the writable fd the caller gave, or,
 *    for CR_DEST_CWD, its working directory (O_PATH) with dest_name "context.<target>".
 * 2. The server takes the requester's pid from SO_PEERCRED (translated into its own pid namespace
 *    by the kernel: unix(7)), refuses a requester or target outside its sandbox, and a requester
 *    that could not ptrace every process of the sandbox (EPERM; runtime/request_server.cc,
 *    may_take_sandbox), translates the target to a host pid (/proc/PID/status NSpid), holds it
 *    by a pidfd, and answers one crbox_req_ack. For a dest_name it creates the temporary file in
 *    the directory as the requester (EACCES and the like are answered).
 * 3. libcr closes its end of the connection (and the directory); the server starts cr_checkpoint
 *    only then, so the requester holds no socket to the outside when it is checkpointed.
 * 4. When cr_checkpoint ends, the server stores its status in the status page (ended last) and
 *    wakes it (futex(2), shared). A request it accepted but drops (no hang-up within 10 s, the
 *    launcher ending, the target gone before the start) is ended too, with exit status 1 (3:
 *    target gone, 4: the rule failed at the start) and a message in the log memfd. A copy restarted from the image holds a copy of the page that
 *    nobody will end: libcr sees its restart counter move instead (CR_ERESTARTED). */
#ifndef CRBOX_LIBCR_REQUEST_PROTOCOL_H
#define CRBOX_LIBCR_REQUEST_PROTOCOL_H

#include <stdint.h>

/* Where the sandbox's programs find the server; $CRBOX_LIBCR_SOCKET overrides it. */
#define CRBOX_LIBCR_SOCKET_PATH "/tmp/.crbox-libcr.sock"
#define CRBOX_LIBCR_SOCKET_ENV "CRBOX_LIBCR_SOCKET"

#define CRBOX_REQ_MAGIC 0x43525251u /* "CRRQ" */
#define CRBOX_REQ_VERSION 1u

/* crbox_req_msg.flags: BLCR's CR_CHKPT_* values (blcr_common.h), those the server passes on. */
#define CRBOX_REQ_PTRACED_ALLOW 0x00000002u
#define CRBOX_REQ_PTRACED_SKIP 0x00000004u
#define CRBOX_REQ_PTRACER_SKIP 0x00000008u
#define CRBOX_REQ_DUMP_EXEC 0x0200u
#define CRBOX_REQ_DUMP_PRIVATE 0x0400u
#define CRBOX_REQ_DUMP_SHARED 0x0800u

struct crbox_req_msg {
  uint32_t magic;   /* CRBOX_REQ_MAGIC */
  uint32_t version; /* CRBOX_REQ_VERSION */
  int32_t scope;    /* CR_SCOPE_PROC, _PGRP, _SESS, _TREE (0..3) */
  int32_t target;   /* pid, pgid or sid as the sandbox sees it */
  int32_t signal;   /* cr_checkpoint --signal; 0: none */
  int32_t time_s;   /* cr_checkpoint --time; 0: none */
  uint32_t flags;   /* CRBOX_REQ_* */
  char dest_name[32]; /* "" (the third fd is the destination) or "context.N" (it is the directory) */
};

struct crbox_req_ack {
  uint32_t magic; /* CRBOX_REQ_MAGIC */
  int32_t err;    /* 0: accepted; else the errno the request fails with */
};

#define CRBOX_REQ_PENDING 0u
#define CRBOX_REQ_ENDED 1u

/* The status page. */
struct crbox_req_status {
  uint32_t state;    /* CRBOX_REQ_PENDING, then CRBOX_REQ_ENDED (stored last, then woken) */
  int32_t exited;    /* 1: cr_checkpoint exited with `code`; 0: it was killed by signal `code` */
  int32_t code;
};

#endif
