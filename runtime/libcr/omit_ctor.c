/* libcr_omit.so: BLCR's mark for processes a checkpoint must leave out (launchers such as mpirun:
 * the processes they start are checkpointed, not them). Its constructor sets the page's `omit`.
 *
 * When it was preloaded (`cr_run --omit`), LD_PRELOAD would hand it to every program the launcher
 * starts, omitting them too; so the constructor puts libcr_run.so (from the same directory) in its
 * place in LD_PRELOAD: the launcher is left out, what it starts is checkpointed as under a plain
 * `cr_run`. */
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int cri_preload_init(int omit);

CRI_EXPORT int cri_libcr_omit_link_me;

static int is_me(const char *entry, size_t n, const char *me_base) {
  const char *base = entry;
  for (size_t i = 0; i < n; i++)
    if (entry[i] == '/') base = entry + i + 1;
  size_t bn = n - (size_t)(base - entry);
  return bn == strlen(me_base) && strncmp(base, me_base, bn) == 0;
}

static void swap_preload(void) {
  const char *pre = getenv("LD_PRELOAD");
  Dl_info info;
  if (!pre || !dladdr((void *)swap_preload, &info) || !info.dli_fname) return;
  const char *me = info.dli_fname;
  const char *me_base = strrchr(me, '/') ? strrchr(me, '/') + 1 : me;
  char run[PATH_MAX];
  size_t dirlen = (size_t)(me_base - me);
  if (dirlen + sizeof "libcr_run.so.0" > sizeof run) return;
  memcpy(run, me, dirlen);
  strcpy(run + dirlen, "libcr_run.so.0");
  int have_run = access(run, R_OK) == 0;
  size_t cap = strlen(pre) + strlen(run) + 2;
  char *out = malloc(cap);
  if (!out) return;
  out[0] = 0;
  int changed = 0;
  const char *p = pre;
  while (*p) {
    size_t n = strcspn(p, ": ");
    if (n > 0) {
      const char *add = p;
      size_t addn = n;
      if (is_me(p, n, me_base)) {
        changed = 1;
        add = have_run ? run : NULL;
        addn = have_run ? strlen(run) : 0;
      }
      if (add) {
        if (out[0]) strcat(out, ":");
        strncat(out, add, addn);
      }
    }
    p += n;
    if (*p) p++;
  }
  if (changed) {
    if (out[0]) setenv("LD_PRELOAD", out, 1);
    else unsetenv("LD_PRELOAD");
  }
  free(out);
}

__attribute__((constructor)) static void libcr_omit_init(void) {
  (void)cri_preload_init(1);
  swap_preload();
}
