#include "podgauge/metadata/pod_metadata_cache.h"

#include <algorithm>
#include <mutex>

#include "podgauge/k8s/container_id.h"
#include "podgauge/k8s/workload_owner.h"

namespace podgauge::metadata {

namespace {

// Ids of earlier container instances kept per pod: enough for a crash-looping pod's recent
// restarts, bounded so that one cannot grow the cache without limit.
constexpr std::size_t kMaxContainerIds = 64;

}  // namespace

const ContainerMetadata* PodMetadata::container_by_id(
    std::string_view container_id) const noexcept {
  for (const auto& [id, index] : container_ids)
    if (id == container_id && index < containers.size()) return &containers[index];
  return nullptr;
}

PodMetadata pod_metadata_of(const k8s::Pod& pod) {
  PodMetadata m;
  m.uid = pod.metadata.uid;
  m.namespace_ = pod.metadata.namespace_;
  m.name = pod.metadata.name;
  m.node = pod.spec.node_name;
  const k8s::WorkloadRef owner = k8s::resolve_workload(pod);
  if (owner.kind == "Pod") {
    m.owner_kind = m.owner_name = "<none>";
  } else {
    m.owner_kind = owner.kind;
    m.owner_name = owner.name;
  }
  if (pod.status.qos_class) m.qos = std::string(k8s::to_string(*pod.status.qos_class));
  m.priority = pod.spec.priority;
  m.containers.reserve(pod.spec.init_containers.size() + pod.spec.containers.size());
  for (const auto& c : pod.spec.init_containers)
    m.containers.push_back({c.name, true, c.resources});
  for (const auto& c : pod.spec.containers) m.containers.push_back({c.name, false, c.resources});
  auto add_ids = [&](const std::vector<k8s::ContainerStatus>& statuses, bool init) {
    for (const auto& s : statuses) {
      auto id = k8s::parse_container_id(s.container_id);
      if (!id) continue;
      auto it = std::find_if(
          m.containers.begin(), m.containers.end(),
          [&](const ContainerMetadata& c) { return c.name == s.name && c.init == init; });
      if (it == m.containers.end()) {
        // A status without a spec entry (ephemeral containers, or a spec cut short): still name it.
        m.containers.push_back({s.name, init, {}});
        it = std::prev(m.containers.end());
      }
      m.container_ids.emplace_back(id->id, std::uint32_t(it - m.containers.begin()));
    }
  };
  add_ids(pod.status.init_container_statuses, true);
  add_ids(pod.status.container_statuses, false);
  return m;
}

PodMetadataCache::PodMetadataCache(Clock::duration deleted_retention)
    : retention_(deleted_retention) {}

void PodMetadataCache::upsert(const k8s::Pod& pod, Clock::time_point now) {
  if (pod.metadata.uid.empty()) return;
  auto fresh = std::make_shared<PodMetadata>(pod_metadata_of(pod));
  std::unique_lock lock(mutex_);
  auto it = pods_.find(fresh->uid);
  if (it != pods_.end()) {
    const PodMetadata& old = *it->second;
    if (old.deleted_at) --deleted_;
    // Earlier instances' ids, mapped to the same container name in the new spec.
    for (const auto& [id, index] : old.container_ids) {
      if (fresh->container_ids.size() >= kMaxContainerIds) break;
      if (fresh->container_by_id(id)) continue;
      const std::string& name = old.containers[index].name;
      const bool init = old.containers[index].init;
      auto c = std::find_if(
          fresh->containers.begin(), fresh->containers.end(),
          [&](const ContainerMetadata& m) { return m.name == name && m.init == init; });
      if (c == fresh->containers.end()) {
        fresh->containers.push_back(old.containers[index]);
        c = std::prev(fresh->containers.end());
      }
      fresh->container_ids.emplace_back(id, std::uint32_t(c - fresh->containers.begin()));
    }
    it->second = std::move(fresh);
  } else {
    pods_.emplace(fresh->uid, std::move(fresh));
  }
  expire_locked(now);
}

void PodMetadataCache::remove(const k8s::Pod& pod, Clock::time_point now) {
  if (pod.metadata.uid.empty()) return;
  // The deleted object's final state is the most complete (it may carry the last ids).
  upsert(pod, now);
  std::unique_lock lock(mutex_);
  auto it = pods_.find(pod.metadata.uid);
  if (it == pods_.end() || it->second->deleted_at) return;
  auto tomb = std::make_shared<PodMetadata>(*it->second);
  tomb->deleted_at = now;
  it->second = std::move(tomb);
  ++deleted_;
}

void PodMetadataCache::expire(Clock::time_point now) {
  std::unique_lock lock(mutex_);
  next_expiry_ = {};
  expire_locked(now);
}

void PodMetadataCache::expire_locked(Clock::time_point now) {
  // A full scan at most every few seconds keeps each watch event O(1) on average.
  if (deleted_ == 0 || now < next_expiry_) return;
  next_expiry_ = now + std::chrono::seconds(5);
  for (auto it = pods_.begin(); it != pods_.end();) {
    if (it->second->deleted_at && now - *it->second->deleted_at >= retention_) {
      it = pods_.erase(it);
      --deleted_;
    } else {
      ++it;
    }
  }
}

std::shared_ptr<const PodMetadata> PodMetadataCache::pod(std::string_view uid) const {
  std::shared_lock lock(mutex_);
  auto it = pods_.find(std::string(uid));
  if (it == pods_.end()) return nullptr;
  // Expired but not yet swept: as good as gone.
  if (it->second->deleted_at && Clock::now() - *it->second->deleted_at >= retention_)
    return nullptr;
  return it->second;
}

ResolvedNames PodMetadataCache::resolve(std::string_view pod_uid,
                                        std::string_view container_id) const {
  ResolvedNames r;
  if (pod_uid.empty()) return r;
  auto p = pod(pod_uid);
  if (!p) return r;
  r.pod_known = true;
  r.namespace_ = p->namespace_;
  r.pod = p->name;
  r.owner_kind = p->owner_kind;
  r.owner_name = p->owner_name;
  if (!container_id.empty())
    if (const ContainerMetadata* c = p->container_by_id(container_id)) {
      r.container = c->name;
      r.container_known = true;
    }
  return r;
}

std::size_t PodMetadataCache::live_pods() const {
  std::shared_lock lock(mutex_);
  return pods_.size() - deleted_;
}

std::size_t PodMetadataCache::deleted_pods() const {
  std::shared_lock lock(mutex_);
  return deleted_;
}

}  // namespace podgauge::metadata
