// What the API server says about this node's pods, keyed the way cgroups name them: pod uid and
// runtime container id -> namespace, pod, container, workload owner, QoS, priority, resources.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "podgauge/k8s/pod.h"

namespace podgauge::metadata {

struct ContainerMetadata {
  std::string name;
  bool init = false;  ///< an init container (sidecars included)
  k8s::ResourceRequirements resources;
};

/// Thread-safety: a value type; the cache hands out immutable shared copies.
struct PodMetadata {
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string node;
  /// Workload owner: Deployment (via its ReplicaSet's name), StatefulSet, DaemonSet, Job,
  /// ReplicaSet, ...; "<none>" for a bare pod (as kube-state-metrics spells it).
  std::string owner_kind;
  std::string owner_name;
  std::string qos;  ///< "Guaranteed", "Burstable", "BestEffort"; "" when status has none yet
  std::optional<std::int32_t> priority;
  std::vector<ContainerMetadata> containers;  ///< spec order: init containers, then containers
  /// Runtime container id (64 hex, no "containerd://") -> index in `containers`. Keeps the ids
  /// of earlier instances too: a container restarted after an OOM kill gets a new id, while
  /// events and counters of the killed instance still carry the old one.
  std::vector<std::pair<std::string, std::uint32_t>> container_ids;
  /// Set once the pod is deleted (steady clock); it stays resolvable for the retention.
  std::optional<std::chrono::steady_clock::time_point> deleted_at;

  const ContainerMetadata* container_by_id(std::string_view container_id) const noexcept;
};

/// The names a cgroup gets; empty strings for what is unknown.
struct ResolvedNames {
  std::string namespace_;
  std::string pod;
  std::string container;
  std::string owner_kind;
  std::string owner_name;
  bool pod_known = false;
  bool container_known = false;
};

/// Reduces an API Pod to the fields the agent joins on. Container ids that do not parse
/// ("", unknown scheme) are left out.
PodMetadata pod_metadata_of(const k8s::Pod& pod);

/// Pod uid -> PodMetadata for the pods of one node, fed by a pod informer's handlers; deleted
/// pods stay resolvable for `deleted_retention` (an OOM-killed pod is often gone from the API
/// before its last event is named).
/// Thread-safety: every method may be called from any thread (a shared mutex; lookups take
/// it shared).
class PodMetadataCache {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PodMetadataCache(Clock::duration deleted_retention = std::chrono::minutes(10));

  /// ADDED / MODIFIED (also a re-list's view): replaces the pod, keeping ids seen earlier.
  void upsert(const k8s::Pod& pod, Clock::time_point now = Clock::now());
  /// DELETED: the pod becomes a tombstone until `now + deleted_retention`.
  void remove(const k8s::Pod& pod, Clock::time_point now = Clock::now());
  /// Drops tombstones older than the retention; upsert/remove call it now and then.
  void expire(Clock::time_point now = Clock::now());

  std::shared_ptr<const PodMetadata> pod(std::string_view uid) const;
  /// Names for a cgroup's (pod uid, container id); container_id may be empty (pod cgroup).
  ResolvedNames resolve(std::string_view pod_uid, std::string_view container_id) const;

  std::size_t live_pods() const;
  std::size_t deleted_pods() const;

 private:
  void expire_locked(Clock::time_point now);

  Clock::duration retention_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const PodMetadata>> pods_;
  std::size_t deleted_ = 0;
  Clock::time_point next_expiry_{};
};

}  // namespace podgauge::metadata
