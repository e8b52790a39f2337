// The seed document's example, linked with -lcr_run (libcr_run.so) and run directly, without
// cr_run: it calls nothing in libcr, the library's constructor makes it checkpoint-aware.
//
//   cr_run_counter [interval_ms=2000] [max=100]
//
// Prints "pid=P libcr=1" first (libcr=1 when libcr's page, /memfd:crbox-libcr, is mapped), then
// "i = N" every interval_ms, as the seed's program does, and "done" after max lines. The sleep
// resumes with the time left after a signal or a checkpoint.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int libcr_page_mapped(void) {
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "/memfd:crbox-libcr")) found = 1;
  fclose(f);
  return found;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  long interval = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
  long max = argc > 2 ? strtol(argv[2], NULL, 10) : 100;
  printf("pid=%d libcr=%d\n", (int)getpid(), libcr_page_mapped());
  for (long i = 0; i < max; i++) {
    printf("i = %ld\n", i);
    struct timespec req = {interval / 1000, (interval % 1000) * 1000000L}, rem;
    while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  }
  printf("done\n");
  return EXIT_SUCCESS;
}
