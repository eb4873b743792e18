// The N-API binding: argument unpacking and JS object plumbing only. Everything that talks to the
// kernel is in core/. The TypeScript layer (src/*.ts) validates every argument before it gets here
// and maps the thrown errors (errno, syscall) to typed errors.
#include <napi.h>

#include <sys/mman.h>

#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unistd.h>
#include <vector>

#include "core/dirty_tracker.h"
#include "core/fault_thread.h"
#include "core/page_ops.h"
#include "core/probe.h"
#include "core/region.h"
#include "core/sys_error.h"
#include "core/uffd.h"

namespace {

using e2k::RegionRegistry;
using e2k::SysError;

// Bumped whenever the JS <-> C++ contract changes; the loader refuses a stale binary.
constexpr int kAbiVersion = 4;
constexpr uint64_t kViewBytes = 1ULL << 30;

Napi::Error ToJs(Napi::Env env, const SysError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("errno", Napi::Number::New(env, e.err()));
  err.Set("syscall", Napi::String::New(env, e.syscall()));
  if (e.progress() >= 0) err.Set("progress", Napi::Number::New(env, static_cast<double>(e.progress())));
  return err;
}

// Runs `fn`, converting core errors into JS exceptions.
template <typename F>
auto Guard(Napi::Env env, F fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const SysError& e) {
    throw ToJs(env, e);
  }
}

uint64_t U64(const Napi::Value& v) { return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value()); }
uint32_t U32(const Napi::Value& v) { return v.As<Napi::Number>().Uint32Value(); }

// ---- per-environment state: the views this thread holds, and how to detach them from afar ----

struct Attachment {
  std::vector<Napi::Reference<Napi::ArrayBuffer>> views;
};

struct EnvState {
  napi_env env = nullptr;
  std::map<uint32_t, Attachment> attachments;
  Napi::ThreadSafeFunction detacher;  // unref'd: calls DetachLocal(id) on this thread
  // Fault threads of userfaultfds created on this thread: stopped at environment teardown.
  std::map<void*, std::function<void()>> on_teardown;
  bool alive = true;
};

std::mutex g_attach_mu;
std::multimap<uint32_t, EnvState*>* g_attached = new std::multimap<uint32_t, EnvState*>();

EnvState* State(Napi::Env env) { return env.GetInstanceData<EnvState>(); }

void UnindexLocked(uint32_t id, EnvState* st) {
  auto range = g_attached->equal_range(id);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == st) {
      g_attached->erase(it);
      return;
    }
  }
}

// Detaches this thread's views of region `id` and drops its attachment. Runs on the owner thread.
void DetachLocal(EnvState* st, uint32_t id) {
  auto it = st->attachments.find(id);
  if (it == st->attachments.end()) return;
  for (auto& ref : it->second.views) {
    Napi::ArrayBuffer ab = ref.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
    ref.Reset();
  }
  st->attachments.erase(it);
  {
    std::lock_guard<std::mutex> lock(g_attach_mu);
    UnindexLocked(id, st);
  }
  RegionRegistry::Get().Release(id);
}

void EnvCleanup(void* arg) {
  auto* st = static_cast<EnvState*>(arg);
  // Stop fault threads before their thread-safe functions die with the environment.
  for (auto& [owner, stop] : st->on_teardown) stop();
  st->on_teardown.clear();
  std::vector<uint32_t> ids;
  {
    std::lock_guard<std::mutex> lock(g_attach_mu);
    st->alive = false;
    for (auto& [id, att] : st->attachments) {
      UnindexLocked(id, st);
      ids.push_back(id);
      for (auto& ref : att.views) ref.SuppressDestruct();
    }
    st->attachments.clear();
    st->detacher.Release();
  }
  for (uint32_t id : ids) RegionRegistry::Get().Release(id);
}

// ---- regions ----------------------------------------------------------------------------------

Napi::Value CreateRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int kind = info[0].As<Napi::Number>().Int32Value();
  const uint64_t size = U64(info[1]);
  const std::string name = info[2].As<Napi::String>().Utf8Value();
  return Guard(env, [&] {
    const uint32_t id = RegionRegistry::Get().Create(static_cast<e2k::RegionKind>(kind), size, name);
    return Napi::Number::New(env, id);
  });
}

Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t id = U32(info[0]);
  EnvState* st = State(env);
  return Guard(env, [&]() -> Napi::Value {
    auto it = st->attachments.find(id);
    if (it == st->attachments.end()) {
      RegionRegistry::Get().Acquire(id);
      const e2k::Region r = RegionRegistry::Get().Info(id);
      Attachment att;
      for (uint64_t off = 0; off < r.size; off += kViewBytes) {
        const uint64_t len = std::min<uint64_t>(kViewBytes, r.size - off);
        // SAFETY: the memory stays mapped while this attachment exists (registry refcount); the
        // views are detached before the attachment is released, so JS never sees unmapped memory.
        Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, r.base + off, len, [](Napi::Env, void*) {});
        att.views.push_back(Napi::Persistent(ab));
      }
      it = st->attachments.emplace(id, std::move(att)).first;
      std::lock_guard<std::mutex> lock(g_attach_mu);
      g_attached->emplace(id, st);
    }
    Napi::Array out = Napi::Array::New(env, it->second.views.size());
    for (size_t i = 0; i < it->second.views.size(); i++) out[i] = it->second.views[i].Value();
    return out;
  });
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  DetachLocal(State(info.Env()), U32(info[0]));
  return info.Env().Undefined();
}

Napi::Value CloseRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t id = U32(info[0]);
  EnvState* self = State(env);
  Guard(env, [&] {
    RegionRegistry::Get().Close(id);
    return 0;
  });
  {
    std::lock_guard<std::mutex> lock(g_attach_mu);
    auto range = g_attached->equal_range(id);
    for (auto it = range.first; it != range.second; ++it) {
      EnvState* other = it->second;
      if (other == self || !other->alive) continue;
      auto* payload = new uint32_t(id);
      napi_status s = other->detacher.NonBlockingCall(payload, [other](Napi::Env, Napi::Function, uint32_t* p) {
        DetachLocal(other, *p);
        delete p;
      });
      if (s != napi_ok) delete payload;
    }
  }
  DetachLocal(self, id);
  return env.Undefined();
}

Napi::Value RegionBase(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const e2k::Region r = RegionRegistry::Get().Info(U32(info[0]));
    return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uint64_t>(r.base)));
  });
}

Napi::Value Discard(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t id = U32(info[0]);
  const uint64_t offset = U64(info[1]);
  const uint64_t length = U64(info[2]);
  return Guard(env, [&]() -> Napi::Value {
    uint8_t* p = RegionRegistry::Get().Range(id, offset, length);
    const e2k::Region r = RegionRegistry::Get().Info(id);
    if (r.fd >= 0) {
      // SAFETY: punches a hole in our own memfd inside the region's file size.
      if (fallocate(r.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) != 0) {
        e2k::ThrowErrno("fallocate(PUNCH_HOLE)");
      }
    } else {
      // SAFETY: drops private anonymous pages inside the region; the next access faults.
      if (madvise(p, length, MADV_DONTNEED) != 0) e2k::ThrowErrno("madvise(MADV_DONTNEED)");
    }
    return env.Undefined();
  });
}

// ---- page operations --------------------------------------------------------------------------

Napi::Value ZeroBitmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t id = U32(info[0]);
  const uint64_t offset = U64(info[1]);
  const uint64_t length = U64(info[2]);
  Napi::Uint32Array out = info[3].As<Napi::Uint32Array>();
  return Guard(env, [&] {
    const e2k::Region r = RegionRegistry::Get().Info(id);
    const uint8_t* p = RegionRegistry::Get().Range(id, offset, length);
    const uint64_t pages = length / r.page_size;
    if (out.ElementLength() * 32 < pages) e2k::ThrowInvalid("bitmap too small");
    const uint64_t n = e2k::ZeroPageBitmap(p, pages, r.page_size, out.Data());
    return Napi::Number::New(env, static_cast<double>(n));
  });
}

Napi::Value HashRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Guard(env, [&] {
    const uint64_t length = U64(info[2]);
    const uint8_t* p = RegionRegistry::Get().Range(U32(info[0]), U64(info[1]), length);
    return Napi::BigInt::New(env, e2k::PageHash(p, length));
  });
}

Napi::Value HashBytes(const Napi::CallbackInfo& info) {
  Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
  return Napi::BigInt::New(info.Env(), e2k::PageHash(a.Data(), a.ByteLength()));
}

Napi::Value GetTid(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), e2k::ThreadId()); }

std::mutex g_threads_mu;
std::map<int, uint32_t>* g_threads = new std::map<int, uint32_t>();  // worker threadId -> tid

Napi::Value RecordThread(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(g_threads_mu);
  (*g_threads)[info[0].As<Napi::Number>().Int32Value()] = e2k::ThreadId();
  return info.Env().Undefined();
}

Napi::Value TidOfThread(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> lock(g_threads_mu);
  auto it = g_threads->find(info[0].As<Napi::Number>().Int32Value());
  return Napi::Number::New(info.Env(), it == g_threads->end() ? -1 : static_cast<double>(it->second));
}

Napi::Value UnregisterAll(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), e2k::Uffd::UnregisterEverywhere());
}

Napi::Value ProbeKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const e2k::ProbeResult r = e2k::Probe();
  Napi::Object o = Napi::Object::New(env);
  o.Set("uffdSyscallErrno", r.uffd_syscall_errno);
  o.Set("uffdDeviceErrno", r.uffd_device_errno);
  o.Set("uffdFeatures", Napi::Number::New(env, static_cast<double>(r.uffd_features)));
  o.Set("uffdIoctls", Napi::Number::New(env, static_cast<double>(r.uffd_ioctls)));
  o.Set("wpAsync", r.wp_async);
  o.Set("pagemapScan", r.pagemap_scan);
  o.Set("dirtyErrno", r.dirty_errno);
  o.Set("hugetlbMemfdErrno", r.hugetlb_memfd_errno);
  return o;
}

// ---- userfaultfd ------------------------------------------------------------------------------

class UffdWrap : public Napi::ObjectWrap<UffdWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Uffd",
                       {InstanceMethod("features", &UffdWrap::Features), InstanceMethod("source", &UffdWrap::Source),
                        InstanceMethod("register", &UffdWrap::Register),
                        InstanceMethod("unregister", &UffdWrap::Unregister),
                        InstanceMethod("startFaultThread", &UffdWrap::StartFaultThread),
                        InstanceMethod("readFaults", &UffdWrap::ReadFaults),
                        InstanceMethod("copy", &UffdWrap::Copy), InstanceMethod("copyPages", &UffdWrap::CopyPages),
                        InstanceMethod("zeroPage", &UffdWrap::ZeroPage), InstanceMethod("wake", &UffdWrap::Wake),
                        InstanceMethod("close", &UffdWrap::Close)});
  }

  explicit UffdWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UffdWrap>(info) {
    Guard(info.Env(), [&] {
      uffd_ = std::make_unique<e2k::Uffd>(U64(info[0]));
      return 0;
    });
  }

  ~UffdWrap() override { StopThread(); }

 private:
  uint64_t Addr(uint32_t id, uint64_t offset, uint64_t length) {
    return reinterpret_cast<uint64_t>(RegionRegistry::Get().Range(id, offset, length));
  }
  e2k::Uffd& U(Napi::Env env) {
    if (!uffd_) throw ToJs(env, SysError(EBADF, "userfaultfd", "userfaultfd is closed"));
    return *uffd_;
  }

  Napi::Value Features(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(U(info.Env()).features()));
  }
  Napi::Value Source(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(),
                             U(info.Env()).source() == e2k::UffdSource::kSyscall ? "syscall" : "/dev/userfaultfd");
  }
  Napi::Value Register(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      const uint32_t id = U32(info[0]);
      const uint64_t len = U64(info[2]);
      U(env).Register(id, Addr(id, U64(info[1]), len), len, info[3].ToBoolean(), info[4].ToBoolean());
      return env.Undefined();
    });
  }
  Napi::Value Unregister(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      const uint64_t len = U64(info[2]);
      U(env).Unregister(Addr(U32(info[0]), U64(info[1]), len), len);
      return env.Undefined();
    });
  }
  static Napi::Array FaultArray(Napi::Env env, const std::vector<e2k::FaultRecord>& recs) {
    Napi::Array arr = Napi::Array::New(env, recs.size());
    for (size_t i = 0; i < recs.size(); i++) {
      const e2k::FaultRecord& r = recs[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("regionId", r.region_id);
      o.Set("offset", Napi::Number::New(env, static_cast<double>(r.page_offset)));
      o.Set("address", Napi::Number::New(env, static_cast<double>(r.address)));
      o.Set("flags", Napi::Number::New(env, static_cast<double>(r.flags)));
      o.Set("tid", r.tid);
      o.Set("timestampNs", Napi::BigInt::New(env, r.timestamp_ns));
      arr[i] = o;
    }
    return arr;
  }
  // readFaults(timeoutMs, out: Float64Array) -> count: blocks this JS thread in poll() on the
  // userfaultfd for up to timeoutMs, like QEMU's fault thread; for a handler that owns its thread.
  // Fault i fills out[6i..6i+5] = regionId, offset, address, flags, tid, timestampNs (doubles are
  // exact below 2^53: addresses, and nanoseconds of uptime for 104 days); no objects are made here.
  // EBUSY while the fault thread runs (two readers would split the faults between them).
  Napi::Value ReadFaults(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      if (thread_) throw SysError(EBUSY, "readFaults", "the fault thread is reading this userfaultfd");
      const int timeout = static_cast<int>(U32(info[0]));
      Napi::Float64Array out = info[1].As<Napi::Float64Array>();
      const size_t max = out.ElementLength() / 6;
      if (max == 0) e2k::ThrowInvalid("readFaults: out holds no fault (6 doubles each)");
      thread_local std::vector<e2k::FaultRecord> recs;
      recs.clear();
      if (e2k::ReadFaults(U(env).fd(), -1, timeout, max, &recs) == e2k::ReadStatus::kClosed) {
        throw SysError(EBADF, "readFaults", "the userfaultfd cannot be read");
      }
      double* o = out.Data();
      for (const e2k::FaultRecord& r : recs) {
        o[0] = r.region_id;
        o[1] = static_cast<double>(r.page_offset);
        o[2] = static_cast<double>(r.address);
        o[3] = static_cast<double>(r.flags);
        o[4] = r.tid;
        o[5] = static_cast<double>(r.timestamp_ns);
        o += 6;
      }
      return Napi::Number::New(env, static_cast<double>(recs.size()));
    });
  }
  // startFaultThread(callback): events arrive as arrays of {regionId, offset, address, flags, tid, timestampNs}.
  Napi::Value StartFaultThread(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (thread_) return env.Undefined();
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "e2k-uffd-faults", 0, 1);
    tsfn_.Unref(env);
    Napi::ThreadSafeFunction* tsfn = &tsfn_;
    thread_ = std::make_unique<e2k::FaultThread>(U(env).fd(), [tsfn](std::vector<e2k::FaultRecord>&& batch) {
      auto* data = new std::vector<e2k::FaultRecord>(std::move(batch));
      const napi_status s = tsfn->NonBlockingCall(
          data, [](Napi::Env env, Napi::Function cb, std::vector<e2k::FaultRecord>* recs) {
            Napi::Array arr = FaultArray(env, *recs);
            delete recs;
            cb.Call({arr});
          });
      if (s != napi_ok) delete data;
    });
    State(env)->on_teardown[this] = [this] {
      // The environment is going away: stop the thread; N-API finalizes the tsfn itself.
      thread_->Stop();
      thread_.reset();
    };
    return env.Undefined();
  }
  // copy(id, offset, u8, wake) -> bytes
  Napi::Value Copy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      Napi::Uint8Array src = info[2].As<Napi::Uint8Array>();
      const uint64_t len = src.ByteLength();
      const uint64_t dst = Addr(U32(info[0]), U64(info[1]), len);
      return Napi::Number::New(env, static_cast<double>(U(env).Copy(dst, src.Data(), len, info[3].ToBoolean())));
    });
  }
  // copyPages(id, offsets: Float64Array, src: Uint8Array, pageSize, wake) -> [bytesCopied, pagesAlreadyPresent]
  // Page i of src goes to offsets[i]; runs of consecutive offsets become one UFFDIO_COPY; pages
  // that are already present (EEXIST) are skipped and counted.
  Napi::Value CopyPages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      const uint32_t id = U32(info[0]);
      Napi::Float64Array offs = info[1].As<Napi::Float64Array>();
      Napi::Uint8Array src = info[2].As<Napi::Uint8Array>();
      const uint64_t page = U64(info[3]);
      const bool wake = info[4].ToBoolean();
      const size_t n = offs.ElementLength();
      if (src.ByteLength() < n * page) e2k::ThrowInvalid("source shorter than offsets.length pages");
      e2k::Uffd& u = U(env);
      int64_t copied = 0;
      double existing = 0;
      size_t i = 0;
      while (i < n) {
        size_t j = i + 1;
        while (j < n && offs[j] == offs[j - 1] + static_cast<double>(page)) j++;
        uint64_t off = static_cast<uint64_t>(offs[i]);
        uint64_t len = (j - i) * page;
        const uint8_t* from = src.Data() + i * page;
        while (len > 0) {
          const uint64_t dst = Addr(id, off, len);
          try {
            copied += u.Copy(dst, from, len, wake);
            break;
          } catch (const SysError& e) {
            if (e.err() != EEXIST) throw;
            const uint64_t skip = static_cast<uint64_t>(e.progress() > 0 ? e.progress() : 0) + page;
            copied += e.progress() > 0 ? e.progress() : 0;
            existing += 1;
            if (skip >= len) break;
            off += skip;
            from += skip;
            len -= skip;
          }
        }
        i = j;
      }
      Napi::Array out = Napi::Array::New(env, 2);
      out[0u] = Napi::Number::New(env, static_cast<double>(copied));
      out[1u] = Napi::Number::New(env, existing);
      return out;
    });
  }
  // zeroPage(id, offset, length, wake, hugetlb) -> bytes; hugetlb copies from a zero huge page.
  Napi::Value ZeroPage(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      const uint64_t len = U64(info[2]);
      const uint64_t dst = Addr(U32(info[0]), U64(info[1]), len);
      const bool wake = info[3].ToBoolean();
      if (!info[4].ToBoolean()) return Napi::Number::New(env, static_cast<double>(U(env).ZeroPage(dst, len, wake)));
      static const uint8_t* zeros = [] {
        // SAFETY: a private read-only zero mapping, kept for the process lifetime.
        void* p = mmap(nullptr, e2k::kHugePage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : static_cast<const uint8_t*>(p);
      }();
      if (!zeros) e2k::ThrowErrno("mmap(zero huge page)");
      int64_t done = 0;
      for (uint64_t off = 0; off < len; off += e2k::kHugePage) done += U(env).Copy(dst + off, zeros, e2k::kHugePage, wake);
      return Napi::Number::New(env, static_cast<double>(done));
    });
  }
  Napi::Value Wake(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      const uint64_t len = U64(info[2]);
      U(env).Wake(Addr(U32(info[0]), U64(info[1]), len), len);
      return env.Undefined();
    });
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!uffd_) return env.Undefined();
    if (uffd_->HasRanges()) {
      throw ToJs(env, SysError(EBUSY, "close", "userfaultfd still has registered ranges; unregister them first"));
    }
    StopThread();
    uffd_.reset();
    return env.Undefined();
  }
  void StopThread() {
    if (!thread_) return;
    thread_->Stop();
    State(Env())->on_teardown.erase(this);
    thread_.reset();
    tsfn_.Release();
  }

  std::unique_ptr<e2k::Uffd> uffd_;
  std::unique_ptr<e2k::FaultThread> thread_;
  Napi::ThreadSafeFunction tsfn_;
};

// ---- kernel dirty tracking --------------------------------------------------------------------

class TrackerWrap : public Napi::ObjectWrap<TrackerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DirtyTracker",
                       {InstanceMethod("collect", &TrackerWrap::Collect), InstanceMethod("stop", &TrackerWrap::Stop)});
  }
  // new DirtyTracker(id, offset, length)
  explicit TrackerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TrackerWrap>(info) {
    Guard(info.Env(), [&] {
      id_ = U32(info[0]);
      const e2k::Region r = RegionRegistry::Get().Info(id_);
      const uint64_t len = U64(info[2]);
      base_ = reinterpret_cast<uint64_t>(RegionRegistry::Get().Range(id_, U64(info[1]), len)) - U64(info[1]);
      tracker_ = std::make_unique<e2k::DirtyTracker>(id_, base_ + U64(info[1]), len, r.page_size);
      return 0;
    });
  }

 private:
  // collect(offset, length, out: Uint32Array) -> dirty pages
  Napi::Value Collect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return Guard(env, [&] {
      if (!tracker_) e2k::ThrowInvalid("dirty tracking is stopped");
      Napi::Uint32Array out = info[2].As<Napi::Uint32Array>();
      const uint64_t n = tracker_->Collect(base_ + U64(info[0]), U64(info[1]), out.Data(), out.ElementLength());
      return Napi::Number::New(env, static_cast<double>(n));
    });
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    tracker_.reset();
    return info.Env().Undefined();
  }

  uint32_t id_ = 0;
  uint64_t base_ = 0;
  std::unique_ptr<e2k::DirtyTracker> tracker_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* st = new EnvState();
  st->env = env;
  st->detacher = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                               "e2k-region-detach", 0, 1);
  st->detacher.Unref(env);
  env.SetInstanceData<EnvState>(st);
  // Registered after the detacher exists, so it runs before N-API's own cleanup of it.
  napi_add_env_cleanup_hook(env, EnvCleanup, st);

  exports.Set("abiVersion", Napi::Number::New(env, kAbiVersion));
  exports.Set("viewBytes", Napi::Number::New(env, static_cast<double>(kViewBytes)));
  exports.Set("createRegion", Napi::Function::New(env, CreateRegion));
  exports.Set("attach", Napi::Function::New(env, Attach));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("closeRegion", Napi::Function::New(env, CloseRegion));
  exports.Set("regionBase", Napi::Function::New(env, RegionBase));
  exports.Set("discard", Napi::Function::New(env, Discard));
  exports.Set("zeroBitmap", Napi::Function::New(env, ZeroBitmap));
  exports.Set("hashRange", Napi::Function::New(env, HashRange));
  exports.Set("hashBytes", Napi::Function::New(env, HashBytes));
  exports.Set("gettid", Napi::Function::New(env, GetTid));
  exports.Set("recordThread", Napi::Function::New(env, RecordThread));
  exports.Set("tidOfThread", Napi::Function::New(env, TidOfThread));
  exports.Set("unregisterAll", Napi::Function::New(env, UnregisterAll));
  exports.Set("probe", Napi::Function::New(env, ProbeKernel));
  exports.Set("Uffd", UffdWrap::Define(env));
  exports.Set("DirtyTracker", TrackerWrap::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(e2k_native, Init)
