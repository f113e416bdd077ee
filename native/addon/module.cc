// berth_native: syscalls Node lacks. Policy lives in TypeScript (src/native/); this only wraps.
#include <napi.h>

#include "syscalls.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, berth::Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, berth::Umount2, "umount2"));
  exports.Set("idmapMount", Napi::Function::New(env, berth::IdmapMount, "idmapMount"));
  exports.Set("statfs", Napi::Function::New(env, berth::Statfs, "statfs"));
  exports.Set("mknod", Napi::Function::New(env, berth::Mknod, "mknod"));
  exports.Set("makedev", Napi::Function::New(env, berth::Makedev, "makedev"));
  exports.Set("lsetxattr", Napi::Function::New(env, berth::Lsetxattr, "lsetxattr"));
  exports.Set("lgetxattr", Napi::Function::New(env, berth::Lgetxattr, "lgetxattr"));
  exports.Set("llistxattr", Napi::Function::New(env, berth::Llistxattr, "llistxattr"));
  exports.Set("netnsConnect", Napi::Function::New(env, berth::NetnsConnect, "netnsConnect"));
  exports.Set("spawn", Napi::Function::New(env, berth::Spawn, "spawn"));
  exports.Set("spawnAsync", Napi::Function::New(env, berth::SpawnAsync, "spawnAsync"));
  exports.Set("reap", Napi::Function::New(env, berth::Reap, "reap"));
  exports.Set("pipe", Napi::Function::New(env, berth::Pipe, "pipe"));
  exports.Set("readFiles", Napi::Function::New(env, berth::ReadFiles, "readFiles"));
  exports.Set("writeFileSynced", Napi::Function::New(env, berth::WriteFileSynced, "writeFileSynced"));
  exports.Set("diskUsage", Napi::Function::New(env, berth::DiskUsage, "diskUsage"));
  exports.Set("makeCgroup", Napi::Function::New(env, berth::MakeCgroup, "makeCgroup"));
  return exports;
}

NODE_API_MODULE(berth_native, Init)
