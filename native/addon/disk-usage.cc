// diskUsage(dirs): for each directory, the bytes (allocated blocks) and inodes below it, as du counts them:
// symlinks not followed, other filesystems not entered, a hard-linked file counted once. Walked on the libuv
// thread pool (one job for all the directories) so that a container's writable layer, however large, never
// costs berthd's event loop more than one callback. Resolves to an array of {bytes, inodes} or null (a
// directory that cannot be walked, e.g. gone).
#include <ftw.h>
#include <sys/stat.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "promise-worker.h"
#include "syscalls.h"

namespace berth {

namespace {

struct Usage {
  double bytes = 0;
  double inodes = 0;
};

// nftw takes a plain function: the walk's state lives in the worker thread's own slot.
thread_local Usage *walk_usage;
thread_local std::set<std::pair<dev_t, ino_t>> *walk_linked;

int CountEntry(const char *, const struct stat *st, int type, struct FTW *) {
  if (type == FTW_NS) return 0;
  if (st->st_nlink > 1 && !S_ISDIR(st->st_mode) && !walk_linked->insert({st->st_dev, st->st_ino}).second) return 0;
  walk_usage->inodes += 1;
  walk_usage->bytes += static_cast<double>(st->st_blocks) * 512;
  return 0;
}

// Directory fds nftw may hold open at once (deeper trees reopen by path).
constexpr int kOpenFds = 16;

std::optional<Usage> Walk(const std::string &dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  Usage usage;
  std::set<std::pair<dev_t, ino_t>> linked;
  walk_usage = &usage;
  walk_linked = &linked;
  int rc = nftw(dir.c_str(), CountEntry, kOpenFds, FTW_PHYS | FTW_MOUNT);
  walk_usage = nullptr;
  walk_linked = nullptr;
  if (rc != 0) return std::nullopt;
  return usage;
}

class DiskUsageWorker : public PromiseWorker {
 public:
  DiskUsageWorker(Napi::Env env, std::vector<std::string> dirs)
      : PromiseWorker(env, "berth.diskUsage"), dirs_(std::move(dirs)) {}

  void Execute() override {
    for (const auto &d : dirs_) results_.push_back(Walk(d));
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) {
      if (!results_[i]) {
        out.Set(i, env.Null());
        continue;
      }
      Napi::Object u = Napi::Object::New(env);
      u.Set("bytes", Napi::Number::New(env, results_[i]->bytes));
      u.Set("inodes", Napi::Number::New(env, results_[i]->inodes));
      out.Set(i, u);
    }
    Resolve(out);
  }

 private:
  std::vector<std::string> dirs_;
  std::vector<std::optional<Usage>> results_;
};

}  // namespace

Napi::Value DiskUsage(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::vector<std::string> dirs;
  if (!StringArrayArg(info, 0, "diskUsage", "dirs", &dirs)) return env.Undefined();
  auto *worker = new DiskUsageWorker(env, std::move(dirs));
  return worker->QueueForPromise();
}

}  // namespace berth
