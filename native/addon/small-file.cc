#include "small-file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace berth {

int ReadSmallFile(const std::string &path, size_t max, std::string *out, const char **failed) {
  out->clear();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    *failed = "open";
    return errno;
  }
  char buf[8192];
  int err = 0;
  while (out->size() < max) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      *failed = "read";
      break;
    }
    if (n == 0) break;
    out->append(buf, std::min(static_cast<size_t>(n), max - out->size()));
  }
  close(fd);
  return err;
}

}  // namespace berth
