// readFiles(paths, netns, maxBytes): many small kernel files (cgroup, /proc) read in one job on the libuv
// thread pool, so that the stats of hundreds of containers cost berthd's event loop one callback instead of
// four thread-pool round trips per file (Node's fs.readFile: open, fstat, read, close). netns[i], when
// not null, is a network namespace path: file i is then read from inside it (for /proc/thread-self/net/*).
// Resolves to an array with, per path, its text (at most maxBytes) or null when it could not be read.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"
#include "promise-worker.h"
#include "small-file.h"
#include "netns-guard.h"
#include "syscalls.h"

namespace berth {

namespace {

// The whole file (up to max bytes), or nothing on any error.
std::optional<std::string> ReadOrNothing(const std::string &path, size_t max) {
  std::string out;
  const char *failed = nullptr;
  if (ReadSmallFile(path, max, &out, &failed) != 0) return std::nullopt;
  return out;
}

class ReadFilesWorker : public PromiseWorker {
 public:
  ReadFilesWorker(Napi::Env env, std::vector<std::string> paths, std::vector<std::string> netns, size_t max)
      : PromiseWorker(env, "berth.readFiles"),
        paths_(std::move(paths)),
        netns_(std::move(netns)),
        max_(max) {}

  void Execute() override {
    results_.resize(paths_.size());
    for (size_t i = 0; i < paths_.size(); i++) {
      if (netns_[i].empty()) {
        results_[i] = ReadOrNothing(paths_[i], max_);
        continue;
      }
      NetnsGuard in(netns_[i]);
      if (in.ok()) results_[i] = ReadOrNothing(paths_[i], max_);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) {
      const auto &r = results_[i];
      out.Set(i, r ? Napi::String::New(env, *r) : env.Null());
    }
    Resolve(out);
  }

 private:
  std::vector<std::string> paths_;
  std::vector<std::string> netns_;
  size_t max_;
  std::vector<std::optional<std::string>> results_;
};

}  // namespace

Napi::Value ReadFiles(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<std::string> paths, netns;
  double max;
  if (!StringArrayArg(info, 0, "readFiles", "paths", &paths)) return env.Undefined();
  if (info[1].IsNull() || info[1].IsUndefined()) {
    netns.assign(paths.size(), "");
  } else {
    if (!StringArrayArg(info, 1, "readFiles", "netns", &netns, true)) return env.Undefined();
    if (netns.size() != paths.size()) {
      ThrowArg(env, "readFiles", "netns must be as long as paths");
      return env.Undefined();
    }
  }
  if (!NumberArg(info, 2, "readFiles", &max)) return env.Undefined();
  auto *worker = new ReadFilesWorker(env, std::move(paths), std::move(netns), static_cast<size_t>(max));
  return worker->QueueForPromise();
}

}  // namespace berth
