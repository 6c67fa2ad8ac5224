#include "podgauge/agent/cgroup_resolver.h"

namespace podgauge::agent {

CgroupResolver::CgroupResolver(const cgroup::CgroupHierarchy& hierarchy,
                               cgroup::CgroupIndexOptions options)
    : hierarchy_(hierarchy), index_(hierarchy.mount_point, std::move(options)) {}

ResolvedCgroup CgroupResolver::resolve(uint64_t cgroup_id) {
  ResolvedCgroup out;
  auto entry = index_.lookup(cgroup_id);
  if (!entry) return out;
  out.path = entry->path;
  out.removed = entry->removed;
  std::lock_guard lock(mutex_);
  auto& slot = parsed_[cgroup_id];
  if (slot.first != entry->path) {
    slot.first = entry->path;
    slot.second = cgroup::parse_kubelet_path(*entry->path);
  }
  out.identity = slot.second;
  if (parsed_.size() > 4 * index_.size() + 1024) {
    // Ids the index dropped: forget their parses too.
    std::erase_if(parsed_, [&](const auto& kv) { return !index_.find(kv.first); });
  }
  return out;
}

}  // namespace podgauge::agent
