// Reports what a process sees of its sandbox, one fact per subcommand, for cr_run's tests.
//   sb_probe pid | ps | hostname | caps | ids | rlimit NAME | clock | net | tmp | env NAME | cwd
//   sb_probe mount DIR        mounts a tmpfs on DIR (needs CAP_SYS_ADMIN and seccomp allowing it)
//   sb_probe denied           errno of syscalls the default seccomp policy denies, and of allowed ones
//   sb_probe socket FAMILY    errno of socket(FAMILY, SOCK_DGRAM, 0)
//   sb_probe mkdir PATH       errno of mkdir(PATH)
//   sb_probe exists PATH      "yes" or "no"
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int err_of(long rc) { return rc < 0 ? errno : 0; }

static void* thread_fn(void* arg) { return arg; }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* cmd = argv[1];
  if (!strcmp(cmd, "pid")) {
    printf("pid %d ppid %d\n", getpid(), getppid());
  } else if (!strcmp(cmd, "ps")) {
    DIR* d = opendir("/proc");
    struct dirent* e;
    while ((e = readdir(d))) {
      if (e->d_name[0] >= '0' && e->d_name[0] <= '9') printf("proc %s\n", e->d_name);
    }
    closedir(d);
  } else if (!strcmp(cmd, "hostname")) {
    struct utsname u;
    uname(&u);
    printf("hostname %s\n", u.nodename);
  } else if (!strcmp(cmd, "caps") || !strcmp(cmd, "status")) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    while (fgets(line, sizeof line, f)) {
      if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs", 10) || !strncmp(line, "Seccomp:", 8)) fputs(line, stdout);
    }
    fclose(f);
  } else if (!strcmp(cmd, "ids")) {
    printf("uid %d gid %d\n", getuid(), getgid());
  } else if (!strcmp(cmd, "rlimit") && argc > 2) {
    struct rlimit r;
    int res = !strcmp(argv[2], "nofile") ? RLIMIT_NOFILE : !strcmp(argv[2], "core") ? RLIMIT_CORE : RLIMIT_STACK;
    getrlimit(res, &r);
    printf("rlimit %s %llu %llu\n", argv[2], (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max);
  } else if (!strcmp(cmd, "clock")) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("monotonic %lld\n", (long long)ts.tv_sec);
  } else if (!strcmp(cmd, "net")) {
    struct if_nameindex* ifs = if_nameindex();
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    for (struct if_nameindex* i = ifs; i && i->if_index; i++) {
      struct ifreq req;
      memset(&req, 0, sizeof req);
      strncpy(req.ifr_name, i->if_name, IFNAMSIZ - 1);
      ioctl(s, SIOCGIFFLAGS, &req);
      printf("if %s %s\n", i->if_name, (req.ifr_flags & IFF_UP) ? "up" : "down");
    }
  } else if (!strcmp(cmd, "tmp")) {
    DIR* d = opendir("/tmp");
    struct dirent* e;
    int n = 0;
    while ((e = readdir(d))) {
      if (e->d_name[0] != '.') n++;
    }
    closedir(d);
    FILE* f = fopen("/tmp/sb_probe_marker", "w");
    printf("tmp entries %d write %s\n", n, f ? "ok" : strerror(errno));
    if (f) fclose(f);
  } else if (!strcmp(cmd, "env") && argc > 2) {
    const char* v = getenv(argv[2]);
    printf("env %s=%s\n", argv[2], v ? v : "(unset)");
  } else if (!strcmp(cmd, "cwd")) {
    char buf[4096];
    printf("cwd %s\n", getcwd(buf, sizeof buf) ? buf : strerror(errno));
  } else if (!strcmp(cmd, "mount") && argc > 2) {
    int rc = mount("tmpfs", argv[2], "tmpfs", 0, "size=1m");
    printf("mount %s\n", rc == 0 ? "ok" : strerror(errno));
    if (rc == 0) {
      FILE* f = fopen("/proc/self/mountinfo", "r");
      char line[1024];
      int seen = 0;
      while (fgets(line, sizeof line, f)) seen |= strstr(line, argv[2]) != NULL;
      fclose(f);
      printf("mounted-inside %s\n", seen ? "yes" : "no");
    }
  } else if (!strcmp(cmd, "denied")) {
    // add_key to the process keyring needs no privilege, so only seccomp can refuse it.
    printf("add_key %d\n", err_of(syscall(SYS_add_key, "user", "crbox-test", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */)));
    printf("unshare_user %d\n", err_of(unshare(CLONE_NEWUSER)));
    printf("keyctl %d\n", err_of(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 0)));
    struct utsname u;
    printf("uname %d\n", err_of(uname(&u)));
    char buf[256];
    printf("getcwd %d\n", getcwd(buf, sizeof buf) ? 0 : errno);
    pthread_t t;
    printf("pthread %d\n", pthread_create(&t, NULL, thread_fn, NULL));
    pthread_join(t, NULL);
    pid_t p = fork();
    if (p == 0) _exit(0);
    printf("fork %d\n", p > 0 ? 0 : errno);
    waitpid(p, NULL, 0);
  } else if (!strcmp(cmd, "socket") && argc > 2) {
    int s = socket(atoi(argv[2]), SOCK_DGRAM, 0);
    printf("socket %d\n", s < 0 ? errno : 0);
  } else if (!strcmp(cmd, "mkdir") && argc > 2) {
    printf("mkdir %d\n", err_of(mkdir(argv[2], 0755)));
  } else if (!strcmp(cmd, "exists") && argc > 2) {
    struct stat st;
    printf("exists %s\n", stat(argv[2], &st) == 0 ? "yes" : "no");
  } else {
    return 2;
  }
  return 0;
}
