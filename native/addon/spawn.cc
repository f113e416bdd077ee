// posix_spawn(3) for berthd's short helper processes (runtime commands, monitors). glibc spawns with
// CLONE_VM|CLONE_VFORK: no copy of berthd's page tables, so a spawn costs about a millisecond where
// Node's fork+exec costs 10-20 ms for a daemon of 100 MB. The child is reaped with Reap (waitpid
// WNOHANG): libuv reaps only the children it spawned itself.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "promise-worker.h"
#include "syscalls.h"

extern char **environ;

namespace berth {

// spawn(file, argv, stdoutFd, stderrFd, newSession, stdinFd, env): the child's pid. An fd of -1 means
// /dev/null. The fds given are not closed here. env: an array of "NAME=value" strings for the child's
// whole environment, or null for berthd's own.

// The NULL-terminated char* array exec wants, pointing into strings (which must outlive it).
static std::vector<char *> CStrings(std::vector<std::string> &strings) {
  std::vector<char *> out;
  for (auto &s : strings) out.push_back(const_cast<char *>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// One of the child's standard fds: dup'd from fd, or /dev/null when fd is -1.
static int StdFd(posix_spawn_file_actions_t *actions, int fd, int target, int null_flags, const char **failed) {
  int rc = fd >= 0 ? posix_spawn_file_actions_adddup2(actions, fd, target)
                   : posix_spawn_file_actions_addopen(actions, target, "/dev/null", null_flags, 0);
  if (rc != 0) *failed = fd >= 0 ? "posix_spawn_file_actions_adddup2" : "posix_spawn_file_actions_addopen";
  return rc;
}

// The file actions and attributes of a spawn, every call checked: 0, or the error and the call that failed
// (then nothing is left to destroy).
static int PrepareSpawn(posix_spawn_file_actions_t *actions, posix_spawnattr_t *attr, int in_fd, int out_fd, int err_fd,
                        bool new_session, const char **failed) {
  int rc = posix_spawn_file_actions_init(actions);
  if (rc != 0) {
    *failed = "posix_spawn_file_actions_init";
    return rc;
  }
  rc = posix_spawnattr_init(attr);
  if (rc != 0) {
    *failed = "posix_spawnattr_init";
    posix_spawn_file_actions_destroy(actions);
    return rc;
  }
  // The child starts with the default signal mask and dispositions, whatever berthd's threads hold.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (new_session ? POSIX_SPAWN_SETSID : 0);
  if ((rc = StdFd(actions, in_fd, 0, O_RDONLY, failed)) == 0 && (rc = StdFd(actions, out_fd, 1, O_WRONLY, failed)) == 0 &&
      (rc = StdFd(actions, err_fd, 2, O_WRONLY, failed)) == 0) {
    if ((rc = posix_spawnattr_setsigmask(attr, &none)) != 0) *failed = "posix_spawnattr_setsigmask";
    else if ((rc = posix_spawnattr_setsigdefault(attr, &all)) != 0) *failed = "posix_spawnattr_setsigdefault";
    else if ((rc = posix_spawnattr_setflags(attr, flags)) != 0) *failed = "posix_spawnattr_setflags";
  }
  if (rc != 0) {
    posix_spawn_file_actions_destroy(actions);
    posix_spawnattr_destroy(attr);
  }
  return rc;
}

// What a spawn needs, read from the JS arguments on the main thread (a thread-pool job may not touch them).
struct SpawnRequest {
  std::string file;
  std::vector<std::string> args;
  std::vector<std::string> env_strings;
  bool own_env = false;
  int in_fd = -1, out_fd = -1, err_fd = -1;
  bool new_session = false;
};

// spawn's arguments as a request; false with a pending TypeError naming the function `fn`.
static bool ParseSpawn(const Napi::CallbackInfo &info, const char *fn, SpawnRequest *req) {
  if (!StringArg(info, 0, fn, &req->file)) return false;
  if (info.Length() < 5) {
    ThrowArg(info.Env(), fn, "argv must be an array of strings");
    return false;
  }
  if (!StringArrayArg(info, 1, fn, "argv", &req->args)) return false;
  double out_fd, err_fd, in_fd = -1;
  if (!NumberArg(info, 2, fn, &out_fd) || !NumberArg(info, 3, fn, &err_fd)) return false;
  req->new_session = info[4].ToBoolean().Value();
  if (info.Length() > 5 && !NumberArg(info, 5, fn, &in_fd)) return false;
  req->own_env = info.Length() > 6 && info[6].IsArray();
  if (req->own_env && !StringArrayArg(info, 6, fn, "env", &req->env_strings)) return false;
  req->in_fd = static_cast<int>(in_fd);
  req->out_fd = static_cast<int>(out_fd);
  req->err_fd = static_cast<int>(err_fd);
  return true;
}

// Runs the spawn: 0 and the child's pid, or the error and the call that failed.
static int RunSpawn(SpawnRequest &req, pid_t *pid, const char **failed) {
  std::vector<char *> envp = CStrings(req.env_strings);
  std::vector<char *> argv = CStrings(req.args);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int rc = PrepareSpawn(&actions, &attr, req.in_fd, req.out_fd, req.err_fd, req.new_session, failed);
  if (rc != 0) return rc;
  rc = posix_spawn(pid, req.file.c_str(), &actions, &attr, argv.data(), req.own_env ? envp.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) *failed = "posix_spawn";
  return rc;
}

Napi::Value Spawn(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  SpawnRequest req;
  if (!ParseSpawn(info, "spawn", &req)) return env.Undefined();
  pid_t pid;
  const char *failed = nullptr;
  int rc = RunSpawn(req, &pid, &failed);
  if (rc != 0) {
    ThrowErrno(env, rc, failed, req.file);
    return env.Undefined();
  }
  return Napi::Number::New(env, pid);
}

namespace {

// The spawn on the thread pool: glibc's CLONE_VFORK suspends the calling thread until the child has
// exec'd (a millisecond or more for a binary with many libraries), and that thread is not berthd's.
class SpawnWorker : public PromiseWorker {
 public:
  SpawnWorker(Napi::Env env, SpawnRequest req)
      : PromiseWorker(env, "berth.spawn"), req_(std::move(req)) {}

  void Execute() override { rc_ = RunSpawn(req_, &pid_, &failed_); }

  void OnOK() override {
    if (rc_ != 0) Reject(ErrnoError(Env(), rc_, failed_, req_.file).Value());
    else Resolve(Napi::Number::New(Env(), pid_));
  }

 private:
  SpawnRequest req_;
  pid_t pid_ = -1;
  int rc_ = 0;
  const char *failed_ = nullptr;
};

}  // namespace

// spawnAsync(same arguments as spawn): a promise of the child's pid. The fds given must stay open until it
// settles.
Napi::Value SpawnAsync(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  SpawnRequest req;
  if (!ParseSpawn(info, "spawnAsync", &req)) return env.Undefined();
  auto *worker = new SpawnWorker(env, std::move(req));
  return worker->QueueForPromise();
}

// reap(pid): null while the child runs; { code, signal } once it has exited (and is reaped).
Napi::Value Reap(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double pid;
  if (!NumberArg(info, 0, "reap", &pid)) return env.Undefined();
  int status;
  pid_t r;
  do r = waitpid(static_cast<pid_t>(pid), &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    ThrowErrno(env, errno, "waitpid", std::to_string(static_cast<int>(pid)));
    return env.Undefined();
  }
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("code", WIFEXITED(status) ? Napi::Value(Napi::Number::New(env, WEXITSTATUS(status))) : env.Null());
  out.Set("signal", WIFSIGNALED(status) ? Napi::Value(Napi::Number::New(env, WTERMSIG(status))) : env.Null());
  return out;
}

// pipe(): [readFd, writeFd], both close-on-exec (a child gets only the end dup2'd onto its stdin), with
// room for 1 MiB in flight where the system allows it: fewer wakeups for a stream of large writes.
Napi::Value Pipe(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    ThrowErrno(env, errno, "pipe2", "");
    return env.Undefined();
  }
  (void)fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);  // a smaller pipe still works, only slower
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, fds[0]));
  out.Set(1u, Napi::Number::New(env, fds[1]));
  return out;
}

}  // namespace berth
