// A TCP connection to a loopback port inside another network namespace (for PortForward): the
// calling thread enters the namespace only long enough to create the socket, which stays bound to
// that namespace; the connect itself happens back in berthd's own namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "errors.h"
#include "netns-guard.h"
#include "syscalls.h"

namespace berth {

namespace {

// Creates a socket in the namespace at ns_path; on failure returns -1 with errno and the failed call.
int SocketInNetns(const std::string &ns_path, int family, const char **failed) {
  NetnsGuard in(ns_path);
  if (!in.ok()) return *failed = in.failed(), -1;
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) *failed = "socket";
  return fd;
}

}  // namespace

// netnsConnect(nsPath, address, port): a connected TCP socket's fd; address is an IPv4 or IPv6 literal.
Napi::Value NetnsConnect(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string ns_path, address;
  double port;
  if (!StringArg(info, 0, "netnsConnect", &ns_path) || !StringArg(info, 1, "netnsConnect", &address) ||
      !NumberArg(info, 2, "netnsConnect", &port))
    return env.Undefined();
  struct sockaddr_storage sa;
  socklen_t len;
  memset(&sa, 0, sizeof(sa));
  auto *v4 = reinterpret_cast<struct sockaddr_in *>(&sa);
  auto *v6 = reinterpret_cast<struct sockaddr_in6 *>(&sa);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    ThrowArg(env, "netnsConnect", "address must be an IP literal");
    return env.Undefined();
  }
  const char *failed = nullptr;
  int fd = SocketInNetns(ns_path, sa.ss_family, &failed);
  if (fd < 0) {
    ThrowErrno(env, errno, failed, ns_path);
    return env.Undefined();
  }
  // Loopback connects complete (or are refused) at once: blocking here costs nothing.
  if (connect(fd, reinterpret_cast<struct sockaddr *>(&sa), len) < 0) {
    int saved = errno;
    close(fd);
    ThrowErrno(env, saved, "connect", address + ":" + std::to_string(static_cast<int>(port)));
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace berth
