// Makes N orphans (default 5): each child forks a grandchild and exits at once; the grandchild,
// re-parented to the pid namespace's init, exits 50 ms later. After a second, counts the
// processes in /proc in state Z (zombies) and prints "zombies Z", then exits.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 5;
  for (int i = 0; i < n; i++) {
    pid_t c = fork();
    if (c == 0) {
      if (fork() == 0) {
        usleep(50000);
        _exit(0);
      }
      _exit(0);
    }
    waitpid(c, NULL, 0);
  }
  usleep(1000000);
  int zombies = 0;
  DIR* d = opendir("/proc");
  struct dirent* e;
  while ((e = readdir(d))) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = fopen(path, "r");
    if (!f) continue;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[k] = 0;
    char* rp = strrchr(buf, ')');
    if (rp && rp[2] == 'Z') zombies++;
  }
  closedir(d);
  printf("zombies %d\n", zombies);
  return 0;
}
