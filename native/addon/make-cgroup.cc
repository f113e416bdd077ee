// makeCgroup(roots, cgroup, pid): the cgroup (and its missing ancestors) made in every hierarchy, v1 cpuset
// cgroups given their parent's cpus and mems (they start empty, and no task can join an empty one), and,
// when pid > 0, that process moved in. One job on the libuv thread pool: a pod's cgroups on a v1 host are
// some fifty mkdirs, reads and writes, each cheap in the kernel, but as separate fs promises they cost a
// thread-pool round trip each, and under a pod start's load those round trips were most of 30 ms.
// Rejects with a Node-style errno error naming the syscall and the path that failed.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "promise-worker.h"
#include "small-file.h"
#include "syscalls.h"

namespace berth {

namespace {

struct Failure {
  int err = 0;
  const char *syscall = "";
  std::string path;
};

int Fail(Failure *failure, int err, const char *syscall, const std::string &path) {
  *failure = {err, syscall, path};
  return -1;
}

// The file's text without trailing whitespace, or the errno of what failed.
int ReadTrimmed(const std::string &path, std::string *out, Failure *failure) {
  const char *failed = nullptr;
  int err = ReadSmallFile(path, 64 * 1024, out, &failed);
  if (err != 0) return Fail(failure, err, failed, path);
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
  return 0;
}

// One write of the whole text, as cgroup files take it.
int WriteText(const std::string &path, const std::string &text, Failure *failure) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail(failure, errno, "open", path);
  ssize_t n;
  do n = write(fd, text.data(), text.size());
  while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  if (close(fd) < 0 && err == 0) err = errno;
  if (err) return Fail(failure, err, "write", path);
  return 0;
}

bool Exists(const std::string &path) { return access(path.c_str(), F_OK) == 0; }

// A v1 cpuset cgroup (cpuset.cpus without a v2 cgroup.subtree_control beside it) left empty gets its parent's.
int InheritCpuset(const std::string &dir, const std::string &parent, Failure *failure) {
  if (!Exists(dir + "/cpuset.cpus") || Exists(dir + "/cgroup.subtree_control")) return 0;
  for (const char *file : {"/cpuset.cpus", "/cpuset.mems"}) {
    std::string own, inherited;
    if (ReadTrimmed(dir + file, &own, failure) < 0) return -1;
    if (!own.empty()) continue;
    if (ReadTrimmed(parent + file, &inherited, failure) < 0) return -1;
    if (WriteText(dir + file, inherited, failure) < 0) return -1;
  }
  return 0;
}

int MakeIn(const std::string &root, const std::string &cgroup, long pid, Failure *failure) {
  std::string dir = root;
  size_t start = 0;
  while (start <= cgroup.size()) {
    size_t end = cgroup.find('/', start);
    if (end == std::string::npos) end = cgroup.size();
    std::string part = cgroup.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    std::string parent = dir;
    dir += "/" + part;
    if (mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return Fail(failure, errno, "mkdir", dir);
    if (InheritCpuset(dir, parent, failure) < 0) return -1;
  }
  if (pid > 0 && WriteText(dir + "/cgroup.procs", std::to_string(pid), failure) < 0) return -1;
  return 0;
}

class MakeCgroupWorker : public PromiseWorker {
 public:
  MakeCgroupWorker(Napi::Env env, std::vector<std::string> roots, std::string cgroup, long pid)
      : PromiseWorker(env, "berth.makeCgroup"),
        roots_(std::move(roots)),
        cgroup_(std::move(cgroup)),
        pid_(pid) {}

  void Execute() override {
    for (const auto &root : roots_)
      if (MakeIn(root, cgroup_, pid_, &failure_) < 0) return;
  }

  void OnOK() override {
    if (failure_.err) {
      Reject(ErrnoError(Env(), failure_.err, failure_.syscall, failure_.path).Value());
      return;
    }
    Resolve(Env().Undefined());
  }

 private:
  std::vector<std::string> roots_;
  std::string cgroup_;
  long pid_;
  Failure failure_;
};

}  // namespace

Napi::Value MakeCgroup(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<std::string> roots;
  std::string cgroup;
  double pid;
  if (!StringArrayArg(info, 0, "makeCgroup", "roots", &roots)) return env.Undefined();
  if (!StringArg(info, 1, "makeCgroup", &cgroup)) return env.Undefined();
  if (!NumberArg(info, 2, "makeCgroup", &pid)) return env.Undefined();
  if (pid < 0 || pid > 4194304 || pid != static_cast<long>(pid)) {
    ThrowArg(env, "makeCgroup", "pid must be 0 or a process id");
    return env.Undefined();
  }
  auto *worker = new MakeCgroupWorker(env, std::move(roots), std::move(cgroup), static_cast<long>(pid));
  return worker->QueueForPromise();
}

}  // namespace berth
