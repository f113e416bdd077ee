// mount(2) and umount2(2).
#include <sys/mount.h>

#include "errors.h"
#include "syscalls.h"

namespace berth {

Napi::Value Mount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string source, target, fstype, data;
  bool has_source, has_fstype, has_data;
  double flags;
  if (!OptionalStringArg(info, 0, "mount", &source, &has_source) || !StringArg(info, 1, "mount", &target) ||
      !OptionalStringArg(info, 2, "mount", &fstype, &has_fstype) || !NumberArg(info, 3, "mount", &flags) ||
      !OptionalStringArg(info, 4, "mount", &data, &has_data))
    return env.Undefined();
  int ret = mount(has_source ? source.c_str() : nullptr, target.c_str(), has_fstype ? fstype.c_str() : nullptr,
                  static_cast<unsigned long>(flags), has_data ? data.c_str() : nullptr);
  if (ret < 0) ThrowErrno(env, errno, "mount", has_source ? source : "none", target);
  return env.Undefined();
}

Napi::Value Umount2(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string target;
  double flags;
  if (!StringArg(info, 0, "umount2", &target) || !NumberArg(info, 1, "umount2", &flags)) return env.Undefined();
  if (umount2(target.c_str(), static_cast<int>(flags)) < 0) ThrowErrno(env, errno, "umount2", target);
  return env.Undefined();
}

}  // namespace berth
