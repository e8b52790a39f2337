// A program that checkpoints itself into its working directory (CR_DEST_CWD: context.<its pid>)
// every few iterations, with a thread-context callback that reports what libcr tells it.
//
//   libcr_cwd_request [every=5] [interval_ms=100] [count=-1 (no limit)] [scope=0 (CR_SCOPE_PROC)]
//
// Prints "ready pid=P" first, then "i=N" each iteration. Each checkpoint: the callback prints
// "callback self=P requester=R target=T scope=S" before its cr_checkpoint() and "callback rc=R"
// after (R > 0 in the copy restarted from the image); the request then prints "continued i=N",
// "restarted i=N" (CR_ERESTARTED) or "failed errno=E (TEXT)" with the request's messages. After
// `count` checkpoints it only counts. (The callback's lines and the request's come from two
// threads: their order varies.)
#include <errno.h>
#include <libcr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int callback(void* arg) {
  (void)arg;
  const struct cr_checkpoint_info* info = cr_get_checkpoint_info();
  if (info)
    printf("callback self=%d requester=%d target=%d scope=%d\n", (int)getpid(), (int)info->requester,
           (int)info->target, (int)info->scope);
  int rc = cr_checkpoint(CR_CHECKPOINT_READY);
  printf("callback rc=%d\n", rc);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long every = argc > 1 ? strtol(argv[1], NULL, 10) : 5;
  long interval = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
  long count = argc > 3 ? strtol(argv[3], NULL, 10) : -1;
  int scope = argc > 4 ? (int)strtol(argv[4], NULL, 10) : CR_SCOPE_PROC;
  if (every < 1) every = 1;
  if (cr_init() < 0) {
    printf("failed errno=%d (cr_init)\n", errno);
    return 1;
  }
  cr_register_callback(callback, NULL, CR_THREAD_CONTEXT);
  printf("ready pid=%d\n", (int)getpid());
  for (long i = 1;; i++) {
    printf("i=%ld\n", i);
    if (i % every == 0 && count != 0) {
      if (count > 0) count--;
      cr_checkpoint_args_t args;
      cr_checkpoint_handle_t handle;
      cr_initialize_checkpoint_args_t(&args);
      args.cr_scope = (cr_scope_t)scope; /* target 0: this process, its group or its session */
      args.cr_fd = CR_DEST_CWD;
      if (cr_request_checkpoint(&args, &handle) != 0) {
        int err = errno;
        printf("failed errno=%d (%s)\n", err, cr_strerror(err));
        return 1;
      }
      char* msgs = NULL;
      int rc;
      do rc = cr_poll_checkpoint_msg(&handle, NULL, &msgs);
      while (rc == CR_POLL_CHKPT_ERR_PRE && errno == EINTR);
      int err = errno;
      if (rc > 0) printf("continued i=%ld\n", i);
      else if (rc == CR_POLL_CHKPT_ERR_POST && err == CR_ERESTARTED) printf("restarted i=%ld\n", i);
      else {
        printf("failed errno=%d (%s)\n%s", err, cr_strerror(err), msgs ? msgs : "");
        free(msgs);
        return 1;
      }
      free(msgs);
    }
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
}
