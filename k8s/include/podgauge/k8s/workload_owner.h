// Which workload a pod belongs to: Deployment (via its ReplicaSet), StatefulSet, DaemonSet,
// Job, CronJob (via its Job), ReplicaSet, or none (a bare pod).
#pragma once

#include <string>
#include <string_view>

#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/workloads.h"

namespace podgauge::k8s {

struct WorkloadRef {
  std::string kind;  ///< "Deployment", "StatefulSet", ..., "Pod" for a pod without controller
  std::string name;
  std::string uid;   ///< empty when resolved by name only
  /// The name was derived from naming conventions (pod-template-hash) because the
  /// intermediate object was not known.
  bool inferred = false;

  friend bool operator==(const WorkloadRef&, const WorkloadRef&) = default;
};

/// Looks up intermediate owners by namespace and name. Implementations typically wrap an
/// informer cache. Thread-safety: as the implementation states.
class OwnerLookup {
 public:
  virtual ~OwnerLookup() = default;
  virtual const ReplicaSet* replica_set(std::string_view namespace_, std::string_view name) const = 0;
  virtual const Job* job(std::string_view namespace_, std::string_view name) const = 0;
};

/// Follows the pod's controller reference upwards. A ReplicaSet owned by a Deployment resolves
/// to the Deployment: through `lookup` when it knows the ReplicaSet, else when the ReplicaSet's
/// name is `<deployment>-<pod-template-hash label>` (inferred). A Job resolves to its CronJob
/// only through `lookup`.
WorkloadRef resolve_workload(const Pod& pod, const OwnerLookup* lookup = nullptr);

}  // namespace podgauge::k8s
