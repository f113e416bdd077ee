// mount(2), umount2(2), and idmapped binds (open_tree, mount_setattr, move_mount).
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

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

// idmapMount(source, target, usernsPath): a read-only copy of the mount at source, idmapped with the
// user namespace at usernsPath (a pinned nsfs file), attached on target: what an overlay's lower layer
// needs, and nothing that could write through to the source. Synchronous: syscalls that touch no disk
// data.
Napi::Value IdmapMount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string source, target, userns;
  if (!StringArg(info, 0, "idmapMount", &source) || !StringArg(info, 1, "idmapMount", &target) ||
      !StringArg(info, 2, "idmapMount", &userns))
    return env.Undefined();
  int ns = open(userns.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    ThrowErrno(env, errno, "open", userns);
    return env.Undefined();
  }
  int tree = open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) {
    int saved = errno;
    close(ns);
    ThrowErrno(env, saved, "open_tree", source);
    return env.Undefined();
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY;
  attr.userns_fd = static_cast<uint64_t>(ns);
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
    ThrowErrno(env, errno, "mount_setattr idmap", source);
  else if (move_mount(tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    ThrowErrno(env, errno, "move_mount", source, target);
  close(tree);
  close(ns);
  return env.Undefined();
}

}  // namespace berth
