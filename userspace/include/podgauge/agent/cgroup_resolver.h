// cgroup id -> path -> pod/container identity, for one hierarchy.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "podgauge/cgroup/cgroup_index.h"
#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/cgroup/kubelet_layout.h"

namespace podgauge::agent {

struct ResolvedCgroup {
  std::shared_ptr<const std::string> path;  // null when the id is unknown even after a rescan
  std::optional<cgroup::CgroupIdentity> identity;  // set for kubelet pod/container cgroups
  bool removed = false;                            // the cgroup is gone (tombstone)
};

/// Resolves ids of one hierarchy, parsing each path once.
/// Thread-safe: resolve() may be called from several threads.
class CgroupResolver {
 public:
  explicit CgroupResolver(const cgroup::CgroupHierarchy& hierarchy,
                          cgroup::CgroupIndexOptions options = {});
  ResolvedCgroup resolve(uint64_t cgroup_id);
  cgroup::CgroupIndex& index() { return index_; }
  const cgroup::CgroupHierarchy& hierarchy() const { return hierarchy_; }

 private:
  cgroup::CgroupHierarchy hierarchy_;
  cgroup::CgroupIndex index_;
  std::mutex mutex_;
  // Keyed by id; the path pointer tells whether the cached parse is still for the same path.
  std::unordered_map<uint64_t, std::pair<std::shared_ptr<const std::string>,
                                         std::optional<cgroup::CgroupIdentity>>> parsed_;
};

}  // namespace podgauge::agent
