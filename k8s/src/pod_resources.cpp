#include "podgauge/k8s/pod_resources.h"

namespace podgauge::k8s {

namespace {

bool is_pod_level_resource(std::string_view name) {
  return name == kResourceCpu || name == kResourceMemory || name.starts_with(kResourceHugePagesPrefix);
}

bool has_pod_level(const ResourceList& list) {
  for (const auto& [name, q] : list) {
    if (is_pod_level_resource(name)) return true;
  }
  return false;
}

using Getter = const ResourceList* (*)(const Container&, const ContainerStatus*, bool infeasible);

// aggregateContainerResourcesByFn: Σ app + Σ sidecars, then max with every init container's
// peak (itself plus the sidecars started before it).
ResourceList aggregate(const Pod& pod, bool use_status, Getter get) {
  const bool infeasible = use_status && pod.resize_infeasible();
  auto resources_of = [&](const Container& c) {
    const ContainerStatus* cs = use_status ? pod.container_status(c.name) : nullptr;
    return get(c, cs, infeasible);
  };
  ResourceList result;
  for (const Container& c : pod.spec.containers) {
    if (const ResourceList* r = resources_of(c)) result.add(*r);
  }
  ResourceList sidecars;
  ResourceList init_peak;
  for (const Container& c : pod.spec.init_containers) {
    const ResourceList* r = resources_of(c);
    if (c.is_sidecar()) {
      if (r != nullptr) {
        result.add(*r);
        sidecars.add(*r);
      }
      init_peak.max_with(sidecars);
    } else {
      ResourceList combined;
      if (r != nullptr) combined.add(*r);
      combined.add(sidecars);
      init_peak.max_with(combined);
    }
  }
  result.max_with(init_peak);
  return result;
}

const ResourceList* spec_requests(const Container& c, const ContainerStatus*, bool) {
  return &c.resources.requests;
}
const ResourceList* allocated_requests(const Container& c, const ContainerStatus* cs, bool infeasible) {
  if (cs != nullptr && cs->allocated_resources) return &*cs->allocated_resources;
  return infeasible ? nullptr : &c.resources.requests;
}
const ResourceList* actuated_requests(const Container& c, const ContainerStatus* cs, bool infeasible) {
  if (cs != nullptr && cs->resources && !cs->resources->requests.empty()) return &cs->resources->requests;
  if (cs != nullptr && cs->allocated_resources) return &*cs->allocated_resources;
  return infeasible ? nullptr : &c.resources.requests;
}
const ResourceList* spec_limits(const Container& c, const ContainerStatus*, bool) {
  return &c.resources.limits;
}
const ResourceList* actuated_limits(const Container& c, const ContainerStatus* cs, bool infeasible) {
  if (cs != nullptr && cs->resources && !cs->resources->limits.empty()) return &cs->resources->limits;
  return infeasible ? nullptr : &c.resources.limits;
}

void apply_pod_level(ResourceList& result, const ResourceList& pod_level) {
  for (const auto& [name, q] : pod_level) {
    if (is_pod_level_resource(name)) result.set(name, q);
  }
}

}  // namespace

ResourceList pod_requests(const Pod& pod, const PodResourcesOptions& options) {
  ResourceList requests;
  if (!options.use_status_resources) {
    requests = aggregate(pod, false, spec_requests);
  } else {
    const ResourceList actuated = aggregate(pod, true, actuated_requests);
    const ResourceList allocated = aggregate(pod, true, allocated_requests);
    if (!pod.resize_infeasible()) requests = aggregate(pod, true, spec_requests);
    requests.max_with(actuated);
    requests.max_with(allocated);
  }
  if (!options.skip_pod_level_resources && pod.spec.resources && has_pod_level(pod.spec.resources->requests)) {
    apply_pod_level(requests, pod.spec.resources->requests);
  }
  if (!options.exclude_overhead) requests.add(pod.spec.overhead);
  return requests;
}

ResourceList pod_limits(const Pod& pod, const PodResourcesOptions& options) {
  ResourceList limits;
  if (!options.use_status_resources) {
    limits = aggregate(pod, false, spec_limits);
  } else {
    const ResourceList actuated = aggregate(pod, true, actuated_limits);
    if (!pod.resize_infeasible()) limits = aggregate(pod, true, spec_limits);
    limits.max_with(actuated);
  }
  if (!options.skip_pod_level_resources && pod.spec.resources &&
      (has_pod_level(pod.spec.resources->requests) || has_pod_level(pod.spec.resources->limits))) {
    apply_pod_level(limits, pod.spec.resources->limits);
  }
  if (!options.exclude_overhead) {
    for (const auto& [name, q] : pod.spec.overhead) {
      const Quantity* have = limits.find(name);
      if (have != nullptr && !have->is_zero()) limits.set(name, *have + q);
    }
  }
  return limits;
}

QosClass compute_qos_class(const Pod& pod) {
  ResourceList requests;
  ResourceList limits;
  bool guaranteed = true;
  auto is_qos_resource = [](std::string_view name) { return name == kResourceCpu || name == kResourceMemory; };
  auto account = [&](const ResourceRequirements& r) {
    for (const auto& [name, q] : r.requests) {
      if (is_qos_resource(name) && q.sign() > 0) requests.add(ResourceList{{name, q}});
    }
    bool cpu_limit = false;
    bool memory_limit = false;
    for (const auto& [name, q] : r.limits) {
      if (!is_qos_resource(name) || q.sign() <= 0) continue;
      (name == kResourceCpu ? cpu_limit : memory_limit) = true;
      limits.add(ResourceList{{name, q}});
    }
    return cpu_limit && memory_limit;
  };
  if (pod.spec.resources) {
    // Pod-level resources decide alone when present (PodLevelResources).
    const bool both_limited = account(*pod.spec.resources);
    if (!pod.spec.resources->limits.empty() && !both_limited) guaranteed = false;
  } else {
    for (const auto* list : {&pod.spec.containers, &pod.spec.init_containers}) {
      for (const Container& c : *list) {
        if (!account(c.resources)) guaranteed = false;
      }
    }
  }
  if (requests.empty() && limits.empty()) return QosClass::BestEffort;
  if (guaranteed) {
    for (const auto& [name, q] : requests) {
      const Quantity* limit = limits.find(name);
      if (limit == nullptr || limit->compare(q) != 0) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size() == limits.size() ? QosClass::Guaranteed : QosClass::Burstable;
}

QosClass qos_class(const Pod& pod) {
  return pod.status.qos_class ? *pod.status.qos_class : compute_qos_class(pod);
}

}  // namespace podgauge::k8s
