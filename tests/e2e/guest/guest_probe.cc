// guest_probe: a trivial static guest payload for harness tests. Prints its
// arguments, selected environment variables and files, and exits with a
// chosen status.
//
//   guest_probe [--exit=N] [--cat=PATH]... [--env=NAME]... [--sleep=SECONDS]
//               [--print=TEXT]... [other args are just echoed]
//
// Output lines: "argv[i]=<arg>", "env NAME=<value>", "--- PATH ---" + file,
// "<TEXT>" for --print. --sleep sleeps after printing (for kill tests).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  int exit_code = 0;
  unsigned sleep_s = 0;
  for (int i = 0; i < argc; ++i) printf("argv[%d]=%s\n", i, argv[i]);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--exit=", 0) == 0) {
      exit_code = atoi(a.c_str() + 7);
    } else if (a.rfind("--sleep=", 0) == 0) {
      sleep_s = static_cast<unsigned>(atoi(a.c_str() + 8));
    } else if (a.rfind("--print=", 0) == 0) {
      printf("%s\n", a.c_str() + 8);
    } else if (a.rfind("--env=", 0) == 0) {
      const char* v = getenv(a.c_str() + 6);
      printf("env %s=%s\n", a.c_str() + 6, v != nullptr ? v : "(unset)");
    } else if (a.rfind("--cat=", 0) == 0) {
      const char* path = a.c_str() + 6;
      printf("--- %s ---\n", path);
      FILE* f = fopen(path, "r");
      if (f == nullptr) {
        printf("(cannot open: %s)\n", strerror(errno));
        continue;
      }
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), f)) > 0) fwrite(buf, 1, n, stdout);
      fclose(f);
      fflush(stdout);
    }
  }
  if (sleep_s > 0) sleep(sleep_s);
  return exit_code;
}
