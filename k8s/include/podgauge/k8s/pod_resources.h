// Pod-level resource arithmetic exactly as the scheduler and kubelet do it
// (k8s.io/component-helpers/resource PodRequests/PodLimits and the kubelet's QoS helper).
#pragma once

#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

struct PodResourcesOptions {
  /// Exclude spec.overhead (RuntimeClass) from the result.
  bool exclude_overhead = false;
  /// In-place resize: take max(spec, status.resources, allocatedResources) per container, or
  /// only the actuated/allocated values when the resize is Infeasible.
  bool use_status_resources = false;
  /// Ignore pod-level spec.resources even when set.
  bool skip_pod_level_resources = false;
};

/// Effective requests: max(Σ app containers + Σ sidecars, max over init i of
/// (init_i + Σ sidecars declared before i)) per resource, pod-level requests (cpu, memory,
/// hugepages-*) replacing the aggregate when set, plus overhead.
ResourceList pod_requests(const Pod& pod, const PodResourcesOptions& options = {});

/// Effective limits, same aggregation; a resource only some containers limit is the sum of
/// those limits; overhead is added only to resources that have a non-zero limit.
ResourceList pod_limits(const Pod& pod, const PodResourcesOptions& options = {});

/// The kubelet's QoS derivation (ComputePodQOS), honouring pod-level resources.
QosClass compute_qos_class(const Pod& pod);

/// status.qosClass when the API server set it, else compute_qos_class().
QosClass qos_class(const Pod& pod);

}  // namespace podgauge::k8s
