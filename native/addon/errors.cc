#include "errors.h"

#include <errno.h>
#include <string.h>

namespace berth {

static const char *ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name ? name : "EUNKNOWN";
}

Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall, const std::string &path,
                       const std::string &dest) {
  std::string msg = std::string(ErrnoName(err)) + ": " + strerror(err) + ", " + syscall;
  if (!path.empty()) msg += " '" + path + "'";
  if (!dest.empty()) msg += " -> '" + dest + "'";
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  if (!dest.empty()) error.Set("dest", Napi::String::New(env, dest));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const char *syscall, const std::string &path,
                const std::string &dest) {
  ErrnoError(env, err, syscall, path, dest).ThrowAsJavaScriptException();
}

void ThrowArg(Napi::Env env, const char *fn, const char *what) {
  Napi::TypeError::New(env, std::string(fn) + ": " + what).ThrowAsJavaScriptException();
}

bool StringArg(const Napi::CallbackInfo &info, size_t i, const char *fn, std::string *out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowArg(info.Env(), fn, ("argument " + std::to_string(i + 1) + " must be a string").c_str());
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->find('\0') != std::string::npos) {
    ThrowArg(info.Env(), fn, ("argument " + std::to_string(i + 1) + " contains a NUL byte").c_str());
    return false;
  }
  return true;
}

bool OptionalStringArg(const Napi::CallbackInfo &info, size_t i, const char *fn, std::string *out,
                       bool *has_value) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) {
    *has_value = false;
    return true;
  }
  *has_value = true;
  return StringArg(info, i, fn, out);
}

bool NumberArg(const Napi::CallbackInfo &info, size_t i, const char *fn, double *out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowArg(info.Env(), fn, ("argument " + std::to_string(i + 1) + " must be a number").c_str());
    return false;
  }
  *out = info[i].As<Napi::Number>().DoubleValue();
  return true;
}

bool StringArrayArg(const Napi::CallbackInfo &info, size_t i, const char *fn, const char *what,
                    std::vector<std::string> *out, bool allow_null) {
  const std::string message = std::string(what) + (allow_null ? " must be an array of strings or nulls" : " must be an array of strings");
  if (info.Length() <= i || !info[i].IsArray()) {
    ThrowArg(info.Env(), fn, message.c_str());
    return false;
  }
  Napi::Array arr = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value v = arr.Get(k);
    if (v.IsString()) {
      out->push_back(v.As<Napi::String>().Utf8Value());
    } else if (allow_null && (v.IsNull() || v.IsUndefined())) {
      out->push_back("");
    } else {
      ThrowArg(info.Env(), fn, message.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace berth
