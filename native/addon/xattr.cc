// lsetxattr(2), lgetxattr(2), llistxattr(2): never following symlinks, as image layers need.
#include <sys/xattr.h>

#include <vector>

#include "errors.h"
#include "syscalls.h"

namespace berth {

Napi::Value Lsetxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path, name;
  double flags;
  if (!StringArg(info, 0, "lsetxattr", &path) || !StringArg(info, 1, "lsetxattr", &name)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsBuffer()) {
    ThrowArg(env, "lsetxattr", "argument 3 must be a Buffer");
    return env.Undefined();
  }
  if (!NumberArg(info, 3, "lsetxattr", &flags)) return env.Undefined();
  Napi::Buffer<char> value = info[2].As<Napi::Buffer<char>>();
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), static_cast<int>(flags)) < 0)
    ThrowErrno(env, errno, "lsetxattr", path);
  return env.Undefined();
}

Napi::Value Lgetxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path, name;
  if (!StringArg(info, 0, "lgetxattr", &path) || !StringArg(info, 1, "lgetxattr", &name)) return env.Undefined();
  for (;;) {
    ssize_t size = lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) {
      if (errno == ENODATA) return env.Null();
      ThrowErrno(env, errno, "lgetxattr", path);
      return env.Undefined();
    }
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    ssize_t got = lgetxattr(path.c_str(), name.c_str(), buf.data(), buf.size());
    if (got < 0 && errno == ERANGE) continue;  // grew between the two calls
    if (got < 0) {
      if (errno == ENODATA) return env.Null();
      ThrowErrno(env, errno, "lgetxattr", path);
      return env.Undefined();
    }
    return Napi::Buffer<char>::Copy(env, buf.data(), static_cast<size_t>(got));
  }
}

Napi::Value Llistxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "llistxattr", &path)) return env.Undefined();
  for (;;) {
    ssize_t size = llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) {
      ThrowErrno(env, errno, "llistxattr", path);
      return env.Undefined();
    }
    std::vector<char> buf(static_cast<size_t>(size) + 1);
    ssize_t got = llistxattr(path.c_str(), buf.data(), buf.size());
    if (got < 0 && errno == ERANGE) continue;
    if (got < 0) {
      ThrowErrno(env, errno, "llistxattr", path);
      return env.Undefined();
    }
    Napi::Array names = Napi::Array::New(env);
    uint32_t n = 0;
    for (ssize_t i = 0; i < got;) {
      std::string name(buf.data() + i);
      names.Set(n++, Napi::String::New(env, name));
      i += static_cast<ssize_t>(name.size()) + 1;
    }
    return names;
  }
}

}  // namespace berth
