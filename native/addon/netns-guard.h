// Runs the calling thread inside another network namespace for the guard's lifetime. Only that thread
// moves (setns on a thread of a multi-threaded process); leaving again is checked, because a thread left
// in a pod's namespace would be far worse than a crash.
#pragma once
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace berth {

class NetnsGuard {
 public:
  // Enters the namespace at ns_path; on failure ok() is false, errno and failed() say why.
  explicit NetnsGuard(const std::string &ns_path) {
    self_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self_ < 0) {
      failed_ = "open";
      return;
    }
    int target = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      failed_ = "open";
      return;
    }
    int rc = setns(target, CLONE_NEWNET);
    int saved = errno;
    close(target);
    errno = saved;
    if (rc < 0) {
      failed_ = "setns";
      return;
    }
    entered_ = true;
  }
  ~NetnsGuard() {
    int saved = errno;
    if (entered_ && setns(self_, CLONE_NEWNET) < 0) abort();
    if (self_ >= 0) close(self_);
    errno = saved;
  }
  NetnsGuard(const NetnsGuard &) = delete;
  NetnsGuard &operator=(const NetnsGuard &) = delete;

  bool ok() const { return entered_; }
  const char *failed() const { return failed_; }

 private:
  int self_ = -1;
  bool entered_ = false;
  const char *failed_ = nullptr;
};

}  // namespace berth
