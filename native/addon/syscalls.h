// The functions the addon exports; each wraps one syscall and throws a Node-style error on failure.
#pragma once
#include <napi.h>

namespace berth {

Napi::Value Mount(const Napi::CallbackInfo &info);
Napi::Value Umount2(const Napi::CallbackInfo &info);
Napi::Value IdmapMount(const Napi::CallbackInfo &info);
Napi::Value Statfs(const Napi::CallbackInfo &info);
Napi::Value Mknod(const Napi::CallbackInfo &info);
Napi::Value Makedev(const Napi::CallbackInfo &info);
Napi::Value Lsetxattr(const Napi::CallbackInfo &info);
Napi::Value Lgetxattr(const Napi::CallbackInfo &info);
Napi::Value Llistxattr(const Napi::CallbackInfo &info);
Napi::Value NetnsConnect(const Napi::CallbackInfo &info);
Napi::Value Spawn(const Napi::CallbackInfo &info);
Napi::Value SpawnAsync(const Napi::CallbackInfo &info);
Napi::Value WriteFileSynced(const Napi::CallbackInfo &info);
Napi::Value Reap(const Napi::CallbackInfo &info);
Napi::Value Pipe(const Napi::CallbackInfo &info);
Napi::Value ReadFiles(const Napi::CallbackInfo &info);
Napi::Value DiskUsage(const Napi::CallbackInfo &info);
Napi::Value MakeCgroup(const Napi::CallbackInfo &info);

}  // namespace berth
