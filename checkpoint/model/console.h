// The terminal of a sandbox started with `cr_run --sandbox --tty`: a pseudo-terminal whose slave
// is the controlling terminal of the sandbox's init (its session leader) and the program's fds
// 0-2. What the processes can observe of it is saved here, so the restarted sandbox's new pty
// looks the same from inside (termios(3), tty_ioctl(4)).
#pragma once

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace crbox::model {

struct Console {
  // struct termios as tcgetattr(3) returns it (glibc's layout: c_cc has NCCS entries).
  uint32_t iflag = 0, oflag = 0, cflag = 0, lflag = 0;
  uint8_t line = 0;          // line discipline (c_line)
  std::vector<uint8_t> cc;   // control characters (c_cc): VINTR, VQUIT, ..., VEOF, ...
  uint32_t ispeed = 0, ospeed = 0;  // cfgetispeed(3)/cfgetospeed(3) constants (B38400, ...)
  // struct winsize (TIOCGWINSZ).
  uint16_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;
  // The terminal's foreground process group, as the sandbox numbers it (0: none of the image's;
  // 1: the init's own group, the default a new controlling terminal starts with).
  int32_t foreground = 0;
  std::string path;  // the slave at the checkpoint (/dev/pts/N), for information only

  template <class A>
  void serialize(A& a) {
    a(CEREAL_NVP(iflag), CEREAL_NVP(oflag), CEREAL_NVP(cflag), CEREAL_NVP(lflag), CEREAL_NVP(line), CEREAL_NVP(cc),
      CEREAL_NVP(ispeed), CEREAL_NVP(ospeed), CEREAL_NVP(rows), CEREAL_NVP(cols), CEREAL_NVP(xpixel),
      CEREAL_NVP(ypixel), CEREAL_NVP(foreground), CEREAL_NVP(path));
  }
};

}  // namespace crbox::model
