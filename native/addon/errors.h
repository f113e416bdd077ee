// One way to report a failed syscall to JavaScript: an Error shaped like Node's own fs errors.
#pragma once
#include <napi.h>
#include <string>
#include <vector>

namespace berth {

// The Error ThrowErrno throws, for a thread-pool job to reject its promise with.
Napi::Error ErrnoError(Napi::Env env, int err, const char *syscall, const std::string &path,
                       const std::string &dest = "");

// Throws (as a pending JS exception) `CODE: strerror, syscall 'path'` with code, errno, syscall, path.
void ThrowErrno(Napi::Env env, int err, const char *syscall, const std::string &path,
                const std::string &dest = "");

// Throws a TypeError naming the argument that was wrong.
void ThrowArg(Napi::Env env, const char *fn, const char *what);

// Reads argument i as a string; sets a pending TypeError and returns false when it is not one.
bool StringArg(const Napi::CallbackInfo &info, size_t i, const char *fn, std::string *out);
// Like StringArg, but null/undefined give has_value = false.
bool OptionalStringArg(const Napi::CallbackInfo &info, size_t i, const char *fn, std::string *out,
                       bool *has_value);
bool NumberArg(const Napi::CallbackInfo &info, size_t i, const char *fn, double *out);
// Reads argument i as an array of strings (named `what` in the TypeError); with allow_null, a null or
// undefined element becomes "".
bool StringArrayArg(const Napi::CallbackInfo &info, size_t i, const char *fn, const char *what,
                    std::vector<std::string> *out, bool allow_null = false);

}  // namespace berth
