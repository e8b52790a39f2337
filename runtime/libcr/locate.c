/* crbox's libcr: finding crbox's tools (cr_checkpoint for cr_request_checkpoint, cr_restart for
 * cr_request_restart). The build passes where the tools and this library are installed and where
 * they are built (CMakeLists.txt); the library knows where it was loaded from (dladdr(3)). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#include "paths.h"

static int executable(const char *path) { return path[0] && access(path, X_OK) == 0; }

static int try_dir(const char *dir, const char *name, char *out, size_t n) {
  if (!dir[0]) return -1;
  size_t need = strlen(dir) + 1 + strlen(name) + 1;
  if (need > n) return -1;
  strcpy(out, dir);
  strcat(out, "/");
  strcat(out, name);
  return executable(out) ? 0 : -1;
}

/* The real directory of the file this code was loaded from, or "". */
static void own_dir(char *dir, size_t n) {
  dir[0] = 0;
  Dl_info info;
  if (!dladdr((void *)own_dir, &info) || !info.dli_fname) return;
  char real[PATH_MAX];
  if (!realpath(info.dli_fname, real)) return;
  char *slash = strrchr(real, '/');
  if (!slash) return;
  *slash = 0;
  if (strlen(real) + 1 > n) return;
  strcpy(dir, real);
}

static int same_dir(const char *a, const char *b) {
  if (!a[0] || !b[0]) return 0;
  char ra[PATH_MAX], rb[PATH_MAX];
  if (!realpath(a, ra) || !realpath(b, rb)) return 0;
  return strcmp(ra, rb) == 0;
}

int cri_find_tool(const char *name, const char *env_override, char *out, size_t n) {
  const char *env = env_override ? getenv(env_override) : NULL;
  if (env && env[0] && strlen(env) < n && executable(env)) {
    strcpy(out, env);
    return 0;
  }
  char dir[PATH_MAX];
  own_dir(dir, sizeof dir);
  if (dir[0]) {
    if (same_dir(dir, CRBOX_LIBCR_INSTALL_LIBDIR) && try_dir(CRBOX_INSTALL_BINDIR, name, out, n) == 0) return 0;
    if (same_dir(dir, CRBOX_LIBCR_BUILD_DIR) && try_dir(CRBOX_BUILD_BINDIR, name, out, n) == 0) return 0;
    /* An install moved elsewhere: PREFIX/lib*./libcr.so.0 next to PREFIX/bin. */
    char bin[PATH_MAX];
    if (strlen(dir) + 8 < sizeof bin) {
      strcpy(bin, dir);
      strcat(bin, "/../bin");
      if (try_dir(bin, name, out, n) == 0) return 0;
    }
  }
  const char *path = getenv("PATH");
  if (!path || !path[0]) path = "/bin:/usr/bin";
  while (*path) {
    const char *end = strchr(path, ':');
    size_t len = end ? (size_t)(end - path) : strlen(path);
    char d[PATH_MAX];
    if (len == 0) strcpy(d, ".");
    else if (len < sizeof d) {
      memcpy(d, path, len);
      d[len] = 0;
    } else d[0] = 0;
    if (d[0] && try_dir(d, name, out, n) == 0) return 0;
    if (!end) break;
    path = end + 1;
  }
  /* Last resort: where the build said the tools are. */
  if (try_dir(CRBOX_INSTALL_BINDIR, name, out, n) == 0) return 0;
  if (try_dir(CRBOX_BUILD_BINDIR, name, out, n) == 0) return 0;
  errno = ENOENT;
  return -1;
}
