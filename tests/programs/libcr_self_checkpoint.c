// A program that checkpoints itself every few iterations (cr_request_checkpoint), as BLCR's
// examples do, and says afterwards whether it went on or was restarted from that image.
//
//   libcr_self_checkpoint FILE [every=5] [max=-1 (no limit)] [interval_ms=100]
//
// Prints "i=N" each iteration. Every `every` iterations it writes a checkpoint of itself
// (CR_SCOPE_PROC, target 0) to FILE (truncated first), closing its own descriptor of FILE once
// the request is made (the image then does not hold it), waits with cr_poll_checkpoint(), and
// prints "continued i=N" (the request succeeded; this is the original) or "restarted i=N" (the
// poll failed with CR_ERESTARTED: this is the copy restarted from FILE), or
// "failed errno=E (TEXT)" followed by the request's messages. Exits after max iterations.
// Prints "ready pid=P" first.
#include <errno.h>
#include <fcntl.h>
#include <libcr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: libcr_self_checkpoint FILE [every] [max] [interval_ms]\n");
    return 2;
  }
  const char* file = argv[1];
  long every = argc > 2 ? strtol(argv[2], NULL, 10) : 5;
  long max = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
  long interval = argc > 4 ? strtol(argv[4], NULL, 10) : 100;
  if (every < 1) every = 1;
  printf("ready pid=%d\n", (int)getpid());
  for (long i = 1; max < 0 || i <= max; i++) {
    printf("i=%ld\n", i);
    if (i % every == 0) {
      int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) {
        printf("failed errno=%d (%s)\n", errno, strerror(errno));
        return 1;
      }
      cr_checkpoint_args_t args;
      cr_checkpoint_handle_t handle;
      cr_initialize_checkpoint_args_t(&args);
      args.cr_scope = CR_SCOPE_PROC;
      args.cr_target = 0;
      args.cr_fd = fd;
      int rc = cr_request_checkpoint(&args, &handle);
      int err = errno;
      close(fd);
      if (rc != 0) {
        printf("failed errno=%d (%s)\n", err, cr_strerror(err));
        return 1;
      }
      char* msgs = NULL;
      do rc = cr_poll_checkpoint_msg(&handle, NULL, &msgs);
      while (rc == CR_POLL_CHKPT_ERR_PRE && errno == EINTR);
      err = errno;
      if (rc > 0) {
        printf("continued i=%ld\n", i);
      } else if (rc == CR_POLL_CHKPT_ERR_POST && err == CR_ERESTARTED) {
        printf("restarted i=%ld\n", i);
      } else {
        printf("failed errno=%d (%s)\n%s", err, cr_strerror(err), msgs ? msgs : "");
        free(msgs);
        return 1;
      }
      free(msgs);
    }
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
  printf("done\n");
  return 0;
}
