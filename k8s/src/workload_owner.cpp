#include "podgauge/k8s/workload_owner.h"

namespace podgauge::k8s {

WorkloadRef resolve_workload(const Pod& pod, const OwnerLookup* lookup) {
  const OwnerReference* owner = pod.metadata.controller();
  if (owner == nullptr) return {"Pod", pod.metadata.name, pod.metadata.uid, false};
  const std::string& ns = pod.metadata.namespace_;

  if (owner->kind == "ReplicaSet") {
    const ReplicaSet* rs = lookup != nullptr ? lookup->replica_set(ns, owner->name) : nullptr;
    // A cached ReplicaSet of the same name but another uid is a recreated object: ignore it.
    if (rs != nullptr && (owner->uid.empty() || rs->metadata.uid.empty() || rs->metadata.uid == owner->uid)) {
      const OwnerReference* up = rs->metadata.controller();
      if (up != nullptr && up->kind == "Deployment") return {"Deployment", up->name, up->uid, false};
      return {"ReplicaSet", owner->name, owner->uid, false};
    }
    // The Deployment controller names its ReplicaSets <deployment>-<pod-template-hash>.
    const std::string* hash = pod.metadata.label("pod-template-hash");
    if (hash != nullptr && !hash->empty() && owner->name.size() > hash->size() + 1 &&
        owner->name.ends_with(*hash) && owner->name[owner->name.size() - hash->size() - 1] == '-') {
      return {"Deployment", owner->name.substr(0, owner->name.size() - hash->size() - 1), "", true};
    }
    return {"ReplicaSet", owner->name, owner->uid, false};
  }
  if (owner->kind == "Job") {
    const Job* job = lookup != nullptr ? lookup->job(ns, owner->name) : nullptr;
    if (job != nullptr && (owner->uid.empty() || job->metadata.uid.empty() || job->metadata.uid == owner->uid)) {
      const OwnerReference* up = job->metadata.controller();
      if (up != nullptr && up->kind == "CronJob") return {"CronJob", up->name, up->uid, false};
    }
    return {"Job", owner->name, owner->uid, false};
  }
  // StatefulSet, DaemonSet, ReplicationController, Node (mirror pods), custom controllers.
  return {owner->kind, owner->name, owner->uid, false};
}

}  // namespace podgauge::k8s
