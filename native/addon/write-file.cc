// writeFileSynced(path, data, mode, renameTo): a small file written durably in one job on the libuv thread
// pool, where Node's fs.promises needs a thread-pool round trip (and a promise, and a FileHandle) for
// each of open, write, fsync and close, and three more for a rename's directory sync. berthd writes such
// a file for every state record and every layer it stores.
//
// The file is created (O_EXCL, never through a symlink) with `mode`, written whole and fsynced. With
// renameTo, it is then renamed over renameTo and renameTo's directory is fsynced, so that after a crash a
// reader finds the old file or the new one, complete. On any failure, the file made here is unlinked and
// the promise rejects with a Node-style error naming the call and the path.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "errors.h"
#include "promise-worker.h"
#include "syscalls.h"

namespace berth {

namespace {

struct Failure {
  int err = 0;
  const char *syscall = nullptr;
  std::string path;
};

bool Fail(Failure *f, const char *syscall, const std::string &path) {
  f->err = errno;
  f->syscall = syscall;
  f->path = path;
  return false;
}

bool WriteAll(int fd, const std::string &data, const std::string &path, Failure *f) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(f, "write", path);
    off += static_cast<size_t>(n);
  }
  return true;
}

// open, write, fsync, close: the file's bytes are on disk when this returns true. *created says whether
// the file was made (and so is this call's to remove).
bool WriteSynced(const std::string &path, const std::string &data, mode_t mode, bool *created, Failure *f) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Fail(f, "open", path);
  *created = true;
  bool ok = WriteAll(fd, data, path, f) && (fsync(fd) == 0 || Fail(f, "fsync", path));
  if (close(fd) < 0 && ok) ok = Fail(f, "close", path);
  return ok;
}

bool SyncDir(const std::string &dir, Failure *f) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Fail(f, "open", dir);
  bool ok = fsync(fd) == 0 || Fail(f, "fsync", dir);
  close(fd);
  return ok;
}

std::string DirOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

class WriteFileWorker : public PromiseWorker {
 public:
  WriteFileWorker(Napi::Env env, std::string path, std::string data, mode_t mode, std::string rename_to)
      : PromiseWorker(env, "berth.writeFileSynced"),
        path_(std::move(path)),
        data_(std::move(data)),
        mode_(mode),
        rename_to_(std::move(rename_to)) {}

  void Execute() override {
    bool created = false;
    if (!WriteSynced(path_, data_, mode_, &created, &failure_)) {
      if (created) unlink(path_.c_str());
      return;
    }
    if (rename_to_.empty()) return;
    if (rename(path_.c_str(), rename_to_.c_str()) < 0) {
      Fail(&failure_, "rename", path_);
      unlink(path_.c_str());
      return;
    }
    SyncDir(DirOf(rename_to_), &failure_);
  }

  void OnOK() override {
    if (failure_.syscall) Reject(ErrnoError(Env(), failure_.err, failure_.syscall, failure_.path).Value());
    else Resolve(Env().Undefined());
  }

 private:
  std::string path_;
  std::string data_;
  mode_t mode_;
  std::string rename_to_;
  Failure failure_;
};

}  // namespace

Napi::Value WriteFileSynced(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string path, rename_to;
  bool has_rename = false;
  double mode;
  if (!StringArg(info, 0, "writeFileSynced", &path)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsBuffer()) {
    ThrowArg(env, "writeFileSynced", "argument 2 must be a Buffer");
    return env.Undefined();
  }
  auto buf = info[1].As<Napi::Buffer<char>>();
  if (!NumberArg(info, 2, "writeFileSynced", &mode)) return env.Undefined();
  if (!OptionalStringArg(info, 3, "writeFileSynced", &rename_to, &has_rename)) return env.Undefined();
  // Copied: the job runs after this returns, and the Buffer is the caller's.
  auto *worker = new WriteFileWorker(env, std::move(path), std::string(buf.Data(), buf.Length()), static_cast<mode_t>(mode),
                                     has_rename ? std::move(rename_to) : std::string());
  return worker->QueueForPromise();
}

}  // namespace berth
