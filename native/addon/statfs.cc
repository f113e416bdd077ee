// statfs(2): the filesystem type and usage of a path.
#include <sys/vfs.h>

#include "errors.h"
#include "syscalls.h"

namespace berth {

Napi::Value Statfs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "statfs", &path)) return env.Undefined();
  struct statfs st;
  if (statfs(path.c_str(), &st) < 0) {
    ThrowErrno(env, errno, "statfs", path);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", Napi::Number::New(env, static_cast<double>(static_cast<unsigned long>(st.f_type))));
  out.Set("bsize", Napi::Number::New(env, static_cast<double>(st.f_bsize)));
  out.Set("blocks", Napi::Number::New(env, static_cast<double>(st.f_blocks)));
  out.Set("bfree", Napi::Number::New(env, static_cast<double>(st.f_bfree)));
  out.Set("bavail", Napi::Number::New(env, static_cast<double>(st.f_bavail)));
  out.Set("files", Napi::Number::New(env, static_cast<double>(st.f_files)));
  out.Set("ffree", Napi::Number::New(env, static_cast<double>(st.f_ffree)));
  out.Set("namelen", Napi::Number::New(env, static_cast<double>(st.f_namelen)));
  out.Set("frsize", Napi::Number::New(env, static_cast<double>(st.f_frsize)));
  out.Set("flags", Napi::Number::New(env, static_cast<double>(st.f_flags)));
  return out;
}

}  // namespace berth
