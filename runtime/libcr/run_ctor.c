/* libcr_run.so: BLCR's way to make an unmodified program checkpoint-aware, by linking it
 * (`-lcr_run`) or preloading it (cr_run does). Its constructor prepares libcr in the process: the
 * page the engine looks for and the CR_SIGNUM handler; libcr's thread starts only if the program
 * itself calls cr_init(). The library depends on libcr.so.0, whose API it thus brings along. */
#include "internal.h"

int cri_preload_init(int omit);

/* Referenced by the object the installed libcr_run.so linker script adds to the link, so that
 * `cc prog.c -lcr_run` keeps this library even with --as-needed (the program calls nothing in it). */
CRI_EXPORT int cri_libcr_run_link_me;

__attribute__((constructor)) static void libcr_run_init(void) { (void)cri_preload_init(0); }
