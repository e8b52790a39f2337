/* crbox's libcr: the constants and types BLCR 0.8.x shares between its library and its tools
 * (release numbers, error codes, scopes, request flags, hold flags). Included by libcr.h; a
 * program may include it alone for the constants. See docs/libcr.md. */
#ifndef _BLCR_COMMON_H
#define _BLCR_COMMON_H 1

#include <features.h>
#include <sys/types.h>

__BEGIN_DECLS

#if defined(__GNUC__)
#define _CR_DEPRECATED __attribute__((__deprecated__))
#else
#define _CR_DEPRECATED
#endif

/* The BLCR release whose application interface this library provides, and that interface's
 * version. */
#define CR_RELEASE_MAJOR 0
#define CR_RELEASE_MINOR 8
#define CR_RELEASE_PATCH 5
#define CR_RELEASE_VERSION "0.8.5"
#define LIBCR_MAJOR 0
#define LIBCR_MINOR 5
#define LIBCR_PATCH 5
#define LIBCR_VERSION "0.5.5"

/* Set by crbox's header only: lets a program tell crbox's libcr from BLCR's. */
#define CRBOX_LIBCR 1

/* The real-time signal libcr reserves in every process it is loaded in (SIGRTMAX - 2 with glibc).
 * BLCR reserved 64; crbox reserves 62. A program must neither handle nor block it for good. */
#define CR_SIGNUM 62

/* BLCR's error codes: above every errno value, numbered in blcr_errcodes.h's order from
 * CR_MIN_ERRCODE + 1 (CR_ETEMPFAIL is 2354). cr_strerror() describes them. */
#define CR_ERROR_DEF(name, desc) name,
enum {
  CR_MIN_ERRCODE = 2353,
#include <blcr_errcodes.h>
  CR_MAX_ERRCODE
};
#undef CR_ERROR_DEF

typedef long cr_bool_t;

/* Formats of a context file; crbox writes its own bundle whatever is asked. */
typedef enum {
  cr_format_vmadump = 0,
} cr_format_t;

/* What a checkpoint request's target names. */
typedef enum {
  CR_SCOPE_PROC, /* one process, all its threads */
  CR_SCOPE_PGRP, /* every process of a process group */
  CR_SCOPE_SESS, /* every process of a session */
  CR_SCOPE_TREE, /* a process and all its descendants */
} cr_scope_t;

/* The argument of cr_checkpoint() in a callback. The failure codes may carry a user value in
 * their upper 16 bits (the _CODE forms), returned negated in place of CR_ETEMPFAIL/CR_EPERMFAIL. */
enum {
  CR_CHECKPOINT_READY = 0,        /* take the checkpoint */
  CR_CHECKPOINT_TEMP_FAILURE = 1, /* cancel it; every process goes on */
  CR_CHECKPOINT_PERM_FAILURE = 2, /* cancel it and kill this process */
  CR_CHECKPOINT_OMIT = 4,         /* go on without this process */
  _CR_CHECKPOINT_STUB = 0x4000,   /* reserved */
};
#define CR_CHECKPOINT_TEMP_FAILURE_CODE(_v) (CR_CHECKPOINT_TEMP_FAILURE | ((_v) << 16))
#define CR_CHECKPOINT_PERM_FAILURE_CODE(_v) (CR_CHECKPOINT_PERM_FAILURE | ((_v) << 16))
#define CR_CHECKPOINT_ABORT_MASK (CR_CHECKPOINT_TEMP_FAILURE | CR_CHECKPOINT_PERM_FAILURE | CR_CHECKPOINT_OMIT)

/* cr_checkpoint_args_t.cr_fd: write context.PID in the requester's working directory. */
#define CR_DEST_CWD (-4096)

/* cr_checkpoint_args_t.cr_flags. */
#define CR_CHKPT_PROHIBIT_SELF 0x00000001 /* fail with EDEADLK if the requester is in the scope */
#define CR_CHKPT_PTRACED_ALLOW 0x00000002 /* take traced processes anyway */
#define CR_CHKPT_PTRACED_SKIP 0x00000004  /* leave traced processes out */
#define CR_CHKPT_PTRACER_SKIP 0x00000008  /* leave tracing processes out */
#define CR_CHKPT_ASYNC_ERR 0x00000010     /* report request errors at reap time */
#define CR_CHKPT_DUMP_EXEC 0x0200         /* keep the executable's content */
#define CR_CHKPT_DUMP_PRIVATE 0x0400      /* keep privately mapped files' content */
#define CR_CHKPT_DUMP_SHARED 0x0800       /* keep shared mapped files' content */
#define CR_CHKPT_DUMP_ALL (CR_CHKPT_DUMP_EXEC | CR_CHKPT_DUMP_PRIVATE | CR_CHKPT_DUMP_SHARED)

/* Path relocations for a restart request (cr_restart --relocate OLD=NEW). */
struct cr_rstrt_relocate_pair {
  const char *oldpath;
  const char *newpath;
};
struct cr_rstrt_relocate {
  unsigned int count;
  struct cr_rstrt_relocate_pair path[]; /* flexible: CR_RSTRT_RELOCATE_SIZE(n) bytes for n pairs */
};
#define CR_RSTRT_RELOCATE_SIZE(_cnt) \
  (sizeof(struct cr_rstrt_relocate) + (_cnt) * sizeof(struct cr_rstrt_relocate_pair))
#define CR_MAX_RSTRT_RELOC 16

/* cr_restart_args_t.cr_flags. */
#define CR_RSTRT_ASYNC_ERR 0x00000001
#define CR_RSTRT_RESTORE_PID 0x00000002
#define CR_RSTRT_RESTORE_PGID 0x00000004
#define CR_RSTRT_RESTORE_SID 0x00000008

/* cr_hold_ctrl() values. */
#define CR_HOLD_READ -1
#define CR_HOLD_NONE 0
#define CR_HOLD_CONT 1
#define CR_HOLD_RSTRT 2
#define CR_HOLD_BOTH (CR_HOLD_CONT | CR_HOLD_RSTRT)
#define CR_HOLD_DFLT 4

__END_DECLS

#endif
