// Allocates and touches MB megabytes, 1 MB at a time, then prints "survived". Under a smaller
// cgroup memory limit it is killed before that.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char** argv) {
  long mb = argc > 1 ? atol(argv[1]) : 256;
  for (long i = 0; i < mb; i++) {
    char* p = malloc(1 << 20);
    if (!p) {
      printf("malloc failed at %ld\n", i);
      return 1;
    }
    memset(p, 1, 1 << 20);
  }
  printf("survived\n");
  return 0;
}
