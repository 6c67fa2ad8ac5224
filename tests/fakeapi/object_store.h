#pragma once
// The fake's etcd: objects as JSON, one global resourceVersion counter, and a bounded window
// of change events that watches replay from.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "resource_catalog.h"
#include "selectors.h"

namespace podgauge::fakeapi {

/// One change, as a watch replays it. `object` carries the change's resourceVersion (for
/// DELETED: the deletion's); `previous` is the state before (null for ADDED).
struct StoredEvent {
  std::uint64_t resource_version = 0;
  std::string type;  // ADDED, MODIFIED, DELETED
  const ResourceType* resource = nullptr;
  nlohmann::json object;
  nlohmann::json previous;
};
using StoredEventPtr = std::shared_ptr<const StoredEvent>;

enum class PatchType { Merge, StrategicMerge, Json };

struct ListOptions {
  std::string namespace_;  // "" = all namespaces (or a cluster-scoped resource)
  LabelSelector labels;
  FieldSelector fields;
  std::int64_t limit = 0;  // 0 = no limit
  std::string continue_token;
};

struct ListResult {
  std::vector<nlohmann::json> items;
  std::uint64_t resource_version = 0;
  std::string continue_token;                        // "" when this was the last page
  std::optional<std::int64_t> remaining_item_count;  // only without selectors, as upstream
};

/// Every operation is atomic and bumps the global resourceVersion once per changed object.
/// Errors throw ApiError with the real server's Status. Thread-safety: fully thread-safe.
class ObjectStore {
 public:
  struct Options {
    std::size_t history_window = 1000;   // events kept for watch replay
    bool auto_create_namespaces = false;  // the real server answers 404 for a missing one
  };

  ObjectStore(const ResourceCatalog& catalog, Options options);

  nlohmann::json create(const ResourceType& type, const std::string& ns, nlohmann::json object);
  nlohmann::json get(const ResourceType& type, const std::string& ns,
                     const std::string& name) const;
  /// PUT. A non-empty metadata.resourceVersion must equal the stored one (else 409 Conflict).
  /// `status_only`: the /status subresource, only .status is taken from `object`.
  nlohmann::json update(const ResourceType& type, const std::string& ns, const std::string& name,
                        nlohmann::json object, bool status_only = false);
  nlohmann::json patch(const ResourceType& type, const std::string& ns, const std::string& name,
                       const nlohmann::json& patch, PatchType patch_type,
                       bool status_only = false);
  /// Immediate deletion (no kubelet here to finish a graceful one); returns the last state.
  /// Deleting a namespace deletes everything in it.
  nlohmann::json remove(const ResourceType& type, const std::string& ns, const std::string& name);
  ListResult list(const ResourceType& type, const ListOptions& options) const;

  std::uint64_t resource_version() const;
  /// Highest resourceVersion whose events were dropped from the window; a watch must start
  /// at or after it, else 410 Expired.
  std::uint64_t compacted_resource_version() const;
  /// Events of `type` with resourceVersion > `after` (at most `max`). Throws ApiError 410
  /// "too old resource version" when `after` is older than the window.
  std::vector<StoredEventPtr> events_after(const ResourceType& type, std::uint64_t after,
                                           std::size_t max = 500) const;
  /// Blocks until the resourceVersion exceeds `after`, `deadline` passes or wake_all().
  void wait_for_change(std::uint64_t after, std::chrono::steady_clock::time_point deadline) const;
  void wake_all() const;
  /// Forgets the whole event history (as an etcd compaction would).
  void compact();
  /// Drops every object and event but keeps the counter.
  void clear();

 private:
  using Bucket = std::map<std::string, nlohmann::json>;  // key: "<ns>/<name>" or "<name>"
  static std::string key_of(const ResourceType& type, const std::string& ns,
                            const std::string& name);
  nlohmann::json& find_locked(const ResourceType& type, const std::string& ns,
                              const std::string& name);
  nlohmann::json commit_locked(const ResourceType& type, const std::string& key,
                               nlohmann::json object, const char* event_type,
                               nlohmann::json previous);
  nlohmann::json remove_locked(const ResourceType& type, const std::string& key);
  void record_locked(StoredEventPtr event);
  void prepare_new_locked(const ResourceType& type, const std::string& ns, nlohmann::json& object);
  /// The type whose bucket holds `type`'s objects when it is another view of them
  /// (events.k8s.io/v1 Events are stored as core/v1 Events); nullptr for itself.
  const ResourceType* storage_of(const ResourceType& type) const;

  const ResourceCatalog& catalog_;
  Options options_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::uint64_t resource_version_ = 1;
  std::uint64_t compacted_ = 0;
  std::map<const ResourceType*, Bucket> objects_;
  std::deque<StoredEventPtr> history_;
};

/// RFC 3339 in UTC with second precision, as metav1.Time serializes.
std::string rfc3339_now();
std::string random_uid();

}  // namespace podgauge::fakeapi
