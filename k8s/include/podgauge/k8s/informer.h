// List+watch reflector with a local cache, as client-go's informers: a paginated LIST, then a
// WATCH from the list's resourceVersion; 410 re-lists, disconnects resume with backoff.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/error.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/hpa.h"
#include "podgauge/k8s/node.h"
#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/policy.h"
#include "podgauge/k8s/workloads.h"

namespace podgauge::k8s {

/// Where a kind is listed and watched: `path` is the all-namespaces (or cluster-scoped)
/// collection; `prefix` + "/namespaces/<ns>/" + `resource` the one of a namespace. `group`
/// and `resource` name the kind as RBAC rules and 403 messages do.
template <class T>
struct ResourcePath;
template <>
struct ResourcePath<Pod> {
  static constexpr const char* path = "/api/v1/pods";
  static constexpr const char* prefix = "/api/v1";
  static constexpr const char* group = "";
  static constexpr const char* resource = "pods";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<Node> {
  static constexpr const char* path = "/api/v1/nodes";
  static constexpr const char* prefix = "/api/v1";
  static constexpr const char* group = "";
  static constexpr const char* resource = "nodes";
  static constexpr bool namespaced = false;
};
template <>
struct ResourcePath<Namespace> {
  static constexpr const char* path = "/api/v1/namespaces";
  static constexpr const char* prefix = "/api/v1";
  static constexpr const char* group = "";
  static constexpr const char* resource = "namespaces";
  static constexpr bool namespaced = false;
};
template <>
struct ResourcePath<ResourceQuota> {
  static constexpr const char* path = "/api/v1/resourcequotas";
  static constexpr const char* prefix = "/api/v1";
  static constexpr const char* group = "";
  static constexpr const char* resource = "resourcequotas";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<LimitRange> {
  static constexpr const char* path = "/api/v1/limitranges";
  static constexpr const char* prefix = "/api/v1";
  static constexpr const char* group = "";
  static constexpr const char* resource = "limitranges";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<ReplicaSet> {
  static constexpr const char* path = "/apis/apps/v1/replicasets";
  static constexpr const char* prefix = "/apis/apps/v1";
  static constexpr const char* group = "apps";
  static constexpr const char* resource = "replicasets";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<Deployment> {
  static constexpr const char* path = "/apis/apps/v1/deployments";
  static constexpr const char* prefix = "/apis/apps/v1";
  static constexpr const char* group = "apps";
  static constexpr const char* resource = "deployments";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<Job> {
  static constexpr const char* path = "/apis/batch/v1/jobs";
  static constexpr const char* prefix = "/apis/batch/v1";
  static constexpr const char* group = "batch";
  static constexpr const char* resource = "jobs";
  static constexpr bool namespaced = true;
};
template <>
struct ResourcePath<HorizontalPodAutoscaler> {
  static constexpr const char* path = "/apis/autoscaling/v2/horizontalpodautoscalers";
  static constexpr const char* prefix = "/apis/autoscaling/v2";
  static constexpr const char* group = "autoscaling";
  static constexpr const char* resource = "horizontalpodautoscalers";
  static constexpr bool namespaced = true;
};

/// The collection path of T in namespace `ns` ("" = all namespaces, or T is cluster-scoped).
template <class T>
std::string resource_path(const std::string& ns = "") {
  if (ns.empty() || !ResourcePath<T>::namespaced) return ResourcePath<T>::path;
  return std::string(ResourcePath<T>::prefix) + "/namespaces/" + ns + "/" + ResourcePath<T>::resource;
}

struct InformerOptions {
  std::string path;            ///< default: ResourcePath<T>::path (all namespaces)
  std::string field_selector;  ///< e.g. "spec.nodeName=node-1"
  std::string label_selector;
  int page_size = 500;
  /// timeoutSeconds of each watch; default random in [300, 600) s, as client-go.
  std::function<std::chrono::seconds()> watch_timeout;
  /// Delay before retry `attempt` (1, 2, ...); default exponential 200 ms .. 30 s with
  /// ±50% jitter.
  std::function<std::chrono::milliseconds(int attempt)> backoff;
  /// Problems (malformed events, retries); default: stderr.
  std::function<void(const std::string&)> log;
};

/// The last failed request of an informer, for callers that act on its kind (a 403 names a
/// missing RBAC rule; a 401 a credential to renew).
struct InformerFailure {
  std::string message;   ///< empty when the last request succeeded
  std::string verb;      ///< "list" or "watch": the request that failed
  std::optional<ApiErrorKind> kind;  ///< nullopt when it was no HTTP error (e.g. a bad list)
  int http_status = 0;
};

struct InformerStats {
  std::uint64_t lists = 0;      ///< completed LISTs (first + relists)
  std::uint64_t watches = 0;    ///< watch requests opened
  std::uint64_t expired = 0;    ///< 410s seen
  std::uint64_t malformed = 0;  ///< events skipped
  std::uint64_t errors = 0;     ///< failed requests
};

/// An informer's objects by "namespace/name" and by uid, and the resource version they reflect.
/// Hash maps: a watch event on a 5,000-pod cache costs one hash of its key, where a sorted map
/// paid a dozen cache-missing string compares; list() sorts instead (it is rare).
/// Thread-safety: none; the informer guards it with its cache lock.
template <class T>
struct ObjectIndex {
  using ObjectPtr = std::shared_ptr<const T>;
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>()(s);
    }
  };
  using Map = std::unordered_map<std::string, ObjectPtr, KeyHash, std::equal_to<>>;

  Map by_key;
  Map by_uid;
  std::string resource_version;

  /// Writes "namespace/name" (or "name" when cluster-scoped) into `out`, reusing its storage.
  static void key_into(std::string& out, std::string_view ns, std::string_view name) {
    out.clear();
    if (!ns.empty()) {
      out.reserve(ns.size() + 1 + name.size());
      out.append(ns).push_back('/');
    }
    out.append(name);
  }
  ObjectPtr find(std::string_view ns, std::string_view name, std::string& scratch) const {
    key_into(scratch, ns, name);
    auto it = by_key.find(std::string_view(scratch));
    return it == by_key.end() ? nullptr : it->second;
  }
  /// Adds or replaces `obj`; returns the object it replaced (nullptr when new).
  ObjectPtr upsert(ObjectPtr obj) {
    key_into(key_, obj->metadata.namespace_, obj->metadata.name);
    ObjectPtr old;
    auto it = by_key.find(std::string_view(key_));
    if (it != by_key.end()) old = it->second;
    if (old && old->metadata.uid != obj->metadata.uid) by_uid.erase(old->metadata.uid);
    if (!obj->metadata.uid.empty()) {
      auto u = by_uid.find(std::string_view(obj->metadata.uid));
      if (u != by_uid.end())
        u->second = obj;
      else
        by_uid.emplace(obj->metadata.uid, obj);
    }
    if (old)
      it->second = std::move(obj);
    else
      by_key.emplace(key_, std::move(obj));
    return old;
  }
  /// Removes the object named as `obj` is; returns it (nullptr when absent).
  ObjectPtr erase(const T& obj) {
    key_into(key_, obj.metadata.namespace_, obj.metadata.name);
    auto it = by_key.find(std::string_view(key_));
    if (it == by_key.end()) return nullptr;
    ObjectPtr old = std::move(it->second);
    by_key.erase(it);
    by_uid.erase(old->metadata.uid);
    return old;
  }

 private:
  std::string key_;  // upsert/erase scratch: no allocation per event once it has grown
};

/// Thread-safety: reads (get, list, size, has_synced, ...) may run from any thread, also
/// during re-lists (the new state is swapped in at once); handlers run on the informer's
/// thread; start/stop from one thread.
template <class T>
class Informer {
 public:
  using ObjectPtr = std::shared_ptr<const T>;
  struct Handlers {
    std::function<void(const T&)> on_add;
    std::function<void(const T& old_object, const T& new_object)> on_update;
    std::function<void(const T&)> on_delete;
  };

  Informer(std::shared_ptr<ApiClient> client, InformerOptions options = {}, Handlers handlers = {})
      : client_(std::move(client)), options_(std::move(options)), handlers_(std::move(handlers)) {
    if (options_.path.empty()) options_.path = ResourcePath<T>::path;
    if (!options_.watch_timeout) {
      options_.watch_timeout = [] {
        static thread_local std::mt19937 rng{std::random_device{}()};
        return std::chrono::seconds(std::uniform_int_distribution<int>(300, 599)(rng));
      };
    }
    if (!options_.backoff) {
      options_.backoff = [](int attempt) {
        static thread_local std::mt19937 rng{std::random_device{}()};
        double base = 200.0 * (1 << std::min(attempt - 1, 8));
        base = std::min(base, 30000.0);
        return std::chrono::milliseconds(
            static_cast<long>(base * std::uniform_real_distribution<double>(0.5, 1.5)(rng)));
      };
    }
    if (!options_.log)
      options_.log = [](const std::string& m) { std::fprintf(stderr, "%s\n", m.c_str()); };
  }
  ~Informer() { stop(); }
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void start() {
    if (thread_.joinable()) return;
    stop_ = false;
    thread_ = std::thread([this] { run(); });
  }
  void stop() {
    {
      std::lock_guard lock(wake_mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    client_->cancel_streams(&stop_);
    if (thread_.joinable()) thread_.join();
  }

  /// The first LIST has been applied.
  bool has_synced() const { return synced_.load(); }
  bool wait_for_sync(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(wake_mutex_);
    return synced_cv_.wait_for(lock, timeout, [&] { return synced_.load() || stop_.load(); }) &&
           synced_;
  }

  /// `ns` is "" for cluster-scoped kinds.
  ObjectPtr get(const std::string& ns, const std::string& name) const {
    std::string scratch;
    std::shared_lock lock(cache_mutex_);
    return cache_->find(ns, name, scratch);
  }
  ObjectPtr get_by_uid(const std::string& uid) const {
    std::shared_lock lock(cache_mutex_);
    auto it = cache_->by_uid.find(std::string_view(uid));
    return it == cache_->by_uid.end() ? nullptr : it->second;
  }
  /// Sorted by namespace, then name.
  std::vector<ObjectPtr> list() const {
    std::vector<ObjectPtr> out;
    {
      std::shared_lock lock(cache_mutex_);
      out.reserve(cache_->by_key.size());
      for (const auto& [k, v] : cache_->by_key) out.push_back(v);
    }
    std::sort(out.begin(), out.end(), [](const ObjectPtr& a, const ObjectPtr& b) {
      if (int c = a->metadata.namespace_.compare(b->metadata.namespace_); c != 0) return c < 0;
      return a->metadata.name < b->metadata.name;
    });
    return out;
  }
  std::size_t size() const {
    std::shared_lock lock(cache_mutex_);
    return cache_->by_key.size();
  }
  /// The resource version the cache reflects.
  std::string resource_version() const {
    std::shared_lock lock(cache_mutex_);
    return cache_->resource_version;
  }
  InformerStats stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }
  /// The last failure (empty when the last request succeeded).
  std::string last_error() const {
    std::lock_guard lock(stats_mutex_);
    return last_error_;
  }
  /// last_error() with the failed verb and the HTTP error kind.
  InformerFailure last_failure() const {
    std::lock_guard lock(stats_mutex_);
    if (last_error_.empty()) return {};
    return {last_error_, failed_verb_, failed_kind_, failed_status_};
  }

 private:
  using Cache = ObjectIndex<T>;

  std::string query(bool watch, const std::string& rv, const std::string& cont) const {
    std::string q = options_.path + "?";
    if (!options_.field_selector.empty())
      q += "fieldSelector=" + url_escape(options_.field_selector) + "&";
    if (!options_.label_selector.empty())
      q += "labelSelector=" + url_escape(options_.label_selector) + "&";
    if (watch) {
      q += "watch=true&allowWatchBookmarks=true&resourceVersion=" + url_escape(rv) +
           "&timeoutSeconds=" + std::to_string(current_watch_timeout_.count());
    } else {
      q += "limit=" + std::to_string(options_.page_size);
      if (!cont.empty()) q += "&continue=" + url_escape(cont);
    }
    return q;
  }

  void note_error(const std::string& message, std::optional<ApiErrorKind> kind = std::nullopt,
                  int http_status = 0) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.errors;
    last_error_ = message;
    failed_verb_ = listing_ ? "list" : "watch";
    failed_kind_ = kind;
    failed_status_ = http_status;
  }

  // Sleeps unless stopped; false when stopped.
  bool sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(wake_mutex_);
    return !wake_.wait_for(lock, d, [&] { return stop_.load(); });
  }

  void relist() {
    auto fresh = std::make_shared<Cache>();
    std::string cont;
    do {
      auto body = client_->get(query(false, "", cont));
      std::vector<std::string> skipped;
      auto page = ObjectList<T>::parse(body, &skipped);
      for (const auto& s : skipped) {
        options_.log("informer " + options_.path + ": skipped a malformed object in a list: " + s);
        std::lock_guard lock(stats_mutex_);
        ++stats_.malformed;
      }
      for (auto& item : page.items) fresh->upsert(std::make_shared<const T>(std::move(item)));
      fresh->resource_version = page.resource_version;
      cont = page.continue_token;
    } while (!cont.empty() && !stop_);
    if (stop_) return;
    std::shared_ptr<Cache> old;
    {
      std::unique_lock lock(cache_mutex_);
      old = std::move(cache_);
      cache_ = fresh;
    }
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.lists;
      last_error_.clear();
    }
    if (!synced_) {
      {
        std::lock_guard lock(wake_mutex_);
        synced_ = true;
      }
      synced_cv_.notify_all();
    }
    // Tell handlers what the re-list changed.
    for (const auto& [k, obj] : fresh->by_key) {
      auto it = old->by_key.find(k);
      if (it == old->by_key.end()) {
        if (handlers_.on_add) handlers_.on_add(*obj);
      } else if (it->second->metadata.resource_version != obj->metadata.resource_version) {
        if (handlers_.on_update) handlers_.on_update(*it->second, *obj);
      }
    }
    if (handlers_.on_delete)
      for (const auto& [k, obj] : old->by_key)
        if (!fresh->by_key.count(k)) handlers_.on_delete(*obj);
  }

  enum class WatchEnd { Closed, Expired };

  // Applies one event; returns false on a 410 ERROR event.
  bool apply(std::string_view line) {
    WatchEvent<T> ev;
    try {
      ev = WatchEvent<T>::parse(line);
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(stats_mutex_);
        ++stats_.malformed;
      }
      options_.log("informer " + options_.path + ": skipped a malformed watch event (" + e.what() +
                   "): " + std::string(line.substr(0, 200)));
      return true;
    }
    switch (ev.type) {
      case WatchEventType::Error:
        if (ev.error && ev.error->expired()) return false;
        // Any other ERROR ends this watch; it is reopened from the same version after a backoff.
        watch_failed_ =
            "watch " + options_.path + ": ERROR event: " + (ev.error ? ev.error->message : "");
        return false;
      case WatchEventType::Bookmark: {
        std::unique_lock lock(cache_mutex_);
        if (!ev.resource_version.empty()) cache_->resource_version = ev.resource_version;
        return true;
      }
      default:
        break;
    }
    if (!ev.object) return true;
    auto obj = std::make_shared<const T>(std::move(*ev.object));
    ObjectPtr old;
    {
      std::unique_lock lock(cache_mutex_);
      old = ev.type == WatchEventType::Deleted ? cache_->erase(*obj) : cache_->upsert(obj);
      if (!ev.resource_version.empty()) cache_->resource_version = std::move(ev.resource_version);
    }
    if (ev.type == WatchEventType::Deleted) {
      if (handlers_.on_delete) handlers_.on_delete(old ? *old : *obj);
    } else if (old) {
      if (handlers_.on_update) handlers_.on_update(*old, *obj);
    } else if (handlers_.on_add) {
      handlers_.on_add(*obj);
    }
    return true;
  }

  void run() {
    bool need_list = true;
    int attempt = 0;
    while (!stop_) {
      try {
        if (need_list) {
          listing_ = true;
          relist();
          listing_ = false;
          need_list = false;
        }
        if (stop_) break;
        current_watch_timeout_ = options_.watch_timeout();
        {
          std::lock_guard lock(stats_mutex_);
          ++stats_.watches;
        }
        bool expired = false;
        watch_failed_.clear();
        std::size_t lines = 0;
        auto opened = std::chrono::steady_clock::now();
        client_->stream(
            query(true, resource_version(), ""),
            [&](std::string_view line) {
              // The watch delivers again: an error from before the reconnect is history.
              if (++lines == 1) {
                std::lock_guard lock(stats_mutex_);
                last_error_.clear();
              }
              if (apply(line)) {
                attempt = 0;  // the watch is delivering: the next disconnect retries soon
                return true;
              }
              expired = watch_failed_.empty();
              return false;
            },
            &stop_, current_watch_timeout_ + std::chrono::seconds(30));
        if (expired) {
          std::lock_guard lock(stats_mutex_);
          ++stats_.expired;
          need_list = true;
          continue;
        }
        if (!watch_failed_.empty()) {
          note_error(watch_failed_);
          options_.log("informer " + options_.path + ": " + watch_failed_ + "; retrying");
          if (!sleep(options_.backoff(++attempt))) break;
          continue;
        }
        // The server ended the watch (timeout or cut): resume from the last version, at once
        // unless it ended straight away with nothing (a server refusing watches).
        if (lines == 0 && std::chrono::steady_clock::now() - opened < std::chrono::seconds(1))
          if (!sleep(options_.backoff(++attempt))) break;
      } catch (const ApiError& e) {
        if (stop_) break;
        note_error(e.what(), e.kind(), e.http_status());
        if (e.kind() == ApiErrorKind::Gone) {
          std::lock_guard lock(stats_mutex_);
          ++stats_.expired;
          need_list = true;
          continue;
        }
        options_.log(std::string("informer ") + options_.path + ": " + e.what() + "; retrying");
        if (!sleep(options_.backoff(++attempt))) break;
      } catch (const std::exception& e) {
        if (stop_) break;
        note_error(e.what());
        options_.log(std::string("informer ") + options_.path + ": " + e.what() + "; re-listing");
        need_list = true;
        if (!sleep(options_.backoff(++attempt))) break;
      }
    }
  }

  std::shared_ptr<ApiClient> client_;
  InformerOptions options_;
  Handlers handlers_;

  mutable std::shared_mutex cache_mutex_;
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();

  mutable std::mutex stats_mutex_;
  InformerStats stats_;
  std::string last_error_;
  std::string failed_verb_;
  std::optional<ApiErrorKind> failed_kind_;
  int failed_status_ = 0;
  bool listing_ = false;  // informer thread only

  mutable std::mutex wake_mutex_;
  mutable std::condition_variable wake_;
  mutable std::condition_variable synced_cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::chrono::seconds current_watch_timeout_{300};
  std::string watch_failed_;  // informer thread only
  std::thread thread_;
};

using PodInformer = Informer<Pod>;
using NodeInformer = Informer<Node>;
using NamespaceInformer = Informer<Namespace>;
using ResourceQuotaInformer = Informer<ResourceQuota>;
using LimitRangeInformer = Informer<LimitRange>;
using ReplicaSetInformer = Informer<ReplicaSet>;
using DeploymentInformer = Informer<Deployment>;
using JobInformer = Informer<Job>;
using HorizontalPodAutoscalerInformer = Informer<HorizontalPodAutoscaler>;

}  // namespace podgauge::k8s
