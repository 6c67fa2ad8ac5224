// The cluster as the CLI and the library's cluster mode see it: one informer per kind (pods,
// nodes, namespaces, resourcequotas, limitranges, replicasets, deployments, jobs,
// horizontalpodautoscalers), each synced and failing on its own, so a missing RBAC rule
// degrades one view and never the whole cache.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/informer.h"
#include "podgauge/k8s/workload_owner.h"

namespace podgauge::k8s {

enum class ClusterKind : std::uint8_t {
  Pods,
  Nodes,
  Namespaces,
  ResourceQuotas,
  LimitRanges,
  ReplicaSets,
  Deployments,
  HorizontalPodAutoscalers,
  Jobs,
};
inline constexpr std::array<ClusterKind, 9> kClusterKinds = {
    ClusterKind::Pods,        ClusterKind::Nodes,
    ClusterKind::Namespaces,  ClusterKind::ResourceQuotas,
    ClusterKind::LimitRanges, ClusterKind::ReplicaSets,
    ClusterKind::Deployments, ClusterKind::HorizontalPodAutoscalers,
    ClusterKind::Jobs};

/// "pods", "replicasets.apps", "horizontalpodautoscalers.autoscaling": as RBAC and kubectl
/// name the resource.
std::string_view to_string(ClusterKind kind) noexcept;

enum class KindState : std::uint8_t {
  Syncing,       ///< the first LIST has not completed and nothing failed yet
  Synced,        ///< the cache reflects the server (LIST done, WATCH running)
  Forbidden,     ///< 403: an RBAC rule is missing; `error` names verb, resource and scope
  Unauthorized,  ///< 401: the credentials were rejected
  Failing,       ///< any other failure (unreachable, 5xx, malformed list); retried with backoff
};
std::string_view to_string(KindState state) noexcept;

struct KindStatus {
  ClusterKind kind = ClusterKind::Pods;
  KindState state = KindState::Syncing;
  /// The first LIST was applied. Stays true when a later request fails: the view is then
  /// stale but still served.
  bool synced = false;
  /// What to do, e.g. `forbidden: list horizontalpodautoscalers.autoscaling at the cluster
  /// scope — grant list, watch on "horizontalpodautoscalers" in API group "autoscaling" ...`;
  /// empty when state is Syncing or Synced.
  std::string error;
  std::size_t objects = 0;
  InformerStats stats;
};

struct ClusterCacheOptions {
  /// "" watches every namespace. Otherwise the namespaced kinds are listed in that
  /// namespace only (a namespace-scoped Role suffices for them); nodes stay cluster-wide and
  /// namespaces are narrowed to that one namespace (both need cluster-scope rules).
  std::string namespace_;
  /// Watch timeout, backoff, log and page size for every informer; `path`, selectors are
  /// set per kind.
  InformerOptions informer;
};

/// Thread-safety: reads (lists, get, status, has_synced, workload_of ...) may run from any
/// thread, also during re-lists; start/stop from one thread.
class ClusterCache {
 public:
  ClusterCache(std::shared_ptr<ApiClient> client, ClusterCacheOptions options = {});
  ~ClusterCache();
  ClusterCache(const ClusterCache&) = delete;
  ClusterCache& operator=(const ClusterCache&) = delete;

  void start();
  void stop();

  /// Every kind has synced.
  bool has_synced() const;
  bool has_synced(ClusterKind kind) const;
  /// Waits until every kind has synced; returns has_synced().
  bool wait_for_sync(std::chrono::milliseconds timeout) const;
  /// Waits until every kind has either synced or failed at least once (a CLI can then show
  /// what it has and say what is missing); returns false on timeout.
  bool wait_until_settled(std::chrono::milliseconds timeout) const;

  KindStatus status(ClusterKind kind) const;
  std::vector<KindStatus> status() const;

  template <class T>
  using Ptr = std::shared_ptr<const T>;

  /// Snapshots; `ns` "" = every namespace the cache watches.
  std::vector<Ptr<Pod>> pods(const std::string& ns = "") const;
  std::vector<Ptr<Node>> nodes() const;
  std::vector<Ptr<Namespace>> namespaces() const;
  std::vector<Ptr<ResourceQuota>> resource_quotas(const std::string& ns = "") const;
  std::vector<Ptr<LimitRange>> limit_ranges(const std::string& ns = "") const;
  std::vector<Ptr<ReplicaSet>> replica_sets(const std::string& ns = "") const;
  std::vector<Ptr<Deployment>> deployments(const std::string& ns = "") const;
  std::vector<Ptr<HorizontalPodAutoscaler>> horizontal_pod_autoscalers(
      const std::string& ns = "") const;
  std::vector<Ptr<Job>> jobs(const std::string& ns = "") const;

  Ptr<Pod> pod(const std::string& ns, const std::string& name) const;
  Ptr<Node> node(const std::string& name) const;
  Ptr<Namespace> namespace_(const std::string& name) const;
  Ptr<ResourceQuota> resource_quota(const std::string& ns, const std::string& name) const;
  Ptr<LimitRange> limit_range(const std::string& ns, const std::string& name) const;
  Ptr<ReplicaSet> replica_set(const std::string& ns, const std::string& name) const;
  Ptr<Deployment> deployment(const std::string& ns, const std::string& name) const;
  Ptr<HorizontalPodAutoscaler> horizontal_pod_autoscaler(const std::string& ns,
                                                         const std::string& name) const;
  Ptr<Job> job(const std::string& ns, const std::string& name) const;

  /// The pod's workload (Deployment via its ReplicaSet, CronJob via its Job, StatefulSet,
  /// ...), resolved with resolve_workload() against the cached ReplicaSets and Jobs. While
  /// the Job is not cached (not synced yet, or forbidden), its pods resolve to the Job.
  WorkloadRef workload_of(const Pod& pod) const;
  /// The cached Deployment owning `pod` through its ReplicaSet; nullptr when there is none
  /// (or it is not cached, or its uid differs from the owner reference).
  Ptr<Deployment> deployment_of(const Pod& pod) const;

 private:
  struct Informers;
  std::shared_ptr<ApiClient> client_;
  ClusterCacheOptions options_;
  std::unique_ptr<Informers> informers_;
};

}  // namespace podgauge::k8s
