// A job on the libuv thread pool whose end settles a JavaScript promise: what every thread-pool job of
// the addon shares (the deferred, its promise, a thrown error as the rejection).
#pragma once
#include <napi.h>

namespace berth {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char *resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the job and returns its promise (taken first: the worker deletes itself once settled).
  Napi::Promise QueueForPromise() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  void Resolve(Napi::Value value) { deferred_.Resolve(value); }
  void Reject(Napi::Value reason) { deferred_.Reject(reason); }
  void OnError(const Napi::Error &e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
};

}  // namespace berth
