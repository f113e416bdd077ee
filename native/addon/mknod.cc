// mknod(2) for device nodes and fifos (overlay whiteouts are 0/0 character devices).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "errors.h"
#include "syscalls.h"

namespace berth {

Napi::Value Mknod(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path;
  double mode, dev;
  if (!StringArg(info, 0, "mknod", &path) || !NumberArg(info, 1, "mknod", &mode) || !NumberArg(info, 2, "mknod", &dev))
    return env.Undefined();
  if (mknod(path.c_str(), static_cast<mode_t>(mode), static_cast<dev_t>(dev)) < 0)
    ThrowErrno(env, errno, "mknod", path);
  return env.Undefined();
}

Napi::Value Makedev(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double major_num, minor_num;
  if (!NumberArg(info, 0, "makedev", &major_num) || !NumberArg(info, 1, "makedev", &minor_num))
    return env.Undefined();
  dev_t dev = makedev(static_cast<unsigned int>(major_num), static_cast<unsigned int>(minor_num));
  return Napi::Number::New(env, static_cast<double>(dev));
}

}  // namespace berth
