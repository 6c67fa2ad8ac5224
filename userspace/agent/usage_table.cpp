#include "podgauge/agent/usage_table.h"

namespace podgauge::agent {

namespace {
std::string top_level_group(const std::string& path) {
  if (path.size() <= 1) return "/";
  const auto slash = path.find('/', 1);
  return slash == std::string::npos ? path : path.substr(0, slash);
}

// The pod's or container's own cgroup: the path up to the end of what the layout matched.
std::string owner_cgroup_path(const ResolvedCgroup& r) {
  if (!r.path) return "";
  if (r.identity && r.identity->matched_length > 0 && r.identity->matched_length <= r.path->size())
    return r.path->substr(0, r.identity->matched_length);
  return *r.path;
}
}  // namespace

UsageTarget target_of(const ResolvedCgroup& r) {
  UsageTarget t;
  if (!r.identity) {
    t.kind = UsageTarget::Kind::HostGroup;
    t.group = r.path ? top_level_group(*r.path) : "";
    return t;
  }
  t.pod_uid = r.identity->pod_uid.str();
  switch (r.identity->kind) {
    case cgroup::CgroupKind::Container:
      t.kind = UsageTarget::Kind::Container;
      t.container_id = r.identity->container_id.str();
      break;
    case cgroup::CgroupKind::RuntimeOverhead:
      t.kind = UsageTarget::Kind::PodOverhead;
      t.group = "runtime";
      break;
    case cgroup::CgroupKind::Pod:
      t.kind = UsageTarget::Kind::PodOverhead;
      t.group = "pod";
      break;
  }
  return t;
}

UsageTable::TargetState& UsageTable::target_state(const ResolvedCgroup& r, const UsageTarget& target,
                                                  Clock::time_point now) {
  auto [it, inserted] = targets_.try_emplace(target);
  auto& ts = it->second;
  if (inserted) {
    ts.usage.target = target;
    if (r.identity) {
      ts.usage.runtime = std::string(cgroup::to_string(r.identity->runtime));
      ts.usage.qos = std::string(cgroup::to_string(r.identity->qos));
      if (r.identity->runtime == cgroup::ContainerRuntime::Unknown) ts.usage.runtime.clear();
    }
  }
  if (ts.usage.cgroup_path.empty() || (r.path && !r.removed)) {
    const std::string own = owner_cgroup_path(r);
    if (!own.empty() && (ts.usage.cgroup_path.empty() || own.size() < ts.usage.cgroup_path.size()))
      ts.usage.cgroup_path = own;
  }
  ts.last_activity = now;
  return ts;
}

void UsageTable::observe_cpu(uint64_t id, uint64_t cumulative_ns, const ResolvedCgroup& r,
                             Clock::time_point now) {
  if (!r.path) {
    // Not resolvable yet (created since the last scan, or gone before it). The kernel value is
    // cumulative, so waiting loses nothing; give up only after the retention.
    auto [it, inserted] = unresolved_.try_emplace(id, Unresolved{cumulative_ns, now, now});
    it->second.cpu_ns = std::max(it->second.cpu_ns, cumulative_ns);
    it->second.last_seen = now;
    return;
  }
  unresolved_.erase(id);
  auto [it, inserted] = cgroups_.try_emplace(id);
  auto& cg = it->second;
  // An id's path never changes (kernfs ids are not reused), so its target is fixed.
  const UsageTarget target = inserted ? target_of(r) : cg.target;
  auto& ts = target_state(r, target, now);
  if (inserted) {
    cg.target = target;
    ++ts.live_cgroups;
  }
  // In-flight slices are estimated; never let a counter step back.
  cg.cpu_ns = std::max(cg.cpu_ns, cumulative_ns);
  cg.removed = r.removed;
  cg.last_seen = now;
}

void UsageTable::observe_runqueue(uint64_t id, const LatencyHistogram& cumulative) {
  auto it = cgroups_.find(id);
  if (it != cgroups_.end()) it->second.runqueue.max_with(cumulative);
}

void UsageTable::record_cfs(const UsageTarget& target, const CfsStats& stats) {
  auto it = targets_.find(target);
  if (it == targets_.end()) return;
  auto& cfs = it->second.usage.cfs;
  if (!cfs) cfs = stats;
  else cfs->max_with(stats);  // a failed or racing read must not step back
}

void UsageTable::record_oom_kill(const ResolvedCgroup& r, Clock::time_point now) {
  target_state(r, target_of(r), now).usage.oom_kills++;
}

std::vector<uint64_t> UsageTable::expire(Clock::time_point now) {
  std::vector<uint64_t> retired;
  for (auto it = cgroups_.begin(); it != cgroups_.end();) {
    const bool stale = now - it->second.last_seen > retention_;
    const bool gone = it->second.removed && stale;
    if (gone || now - it->second.last_seen > 2 * retention_) {
      auto t = targets_.find(it->second.target);
      if (t != targets_.end()) {
        t->second.retired_cpu_ns += it->second.cpu_ns;
        t->second.retired_runqueue.add(it->second.runqueue);
        if (t->second.live_cgroups > 0) --t->second.live_cgroups;
      }
      retired.push_back(it->first);
      it = cgroups_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = unresolved_.begin(); it != unresolved_.end();) {
    if (now - it->second.first_seen > retention_) {
      unresolved_cpu_ns_ += it->second.cpu_ns;
      retired.push_back(it->first);
      it = unresolved_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(targets_, [&](const auto& kv) {
    return kv.second.live_cgroups == 0 && now - kv.second.last_activity > retention_;
  });
  return retired;
}

std::vector<TargetUsage> UsageTable::targets() const {
  std::vector<TargetUsage> out;
  out.reserve(targets_.size());
  struct Live {
    uint64_t cpu_ns = 0;
    LatencyHistogram runqueue;
  };
  std::map<UsageTarget, Live> live;
  for (const auto& [id, cg] : cgroups_) {
    auto& l = live[cg.target];
    l.cpu_ns += cg.cpu_ns;
    l.runqueue.add(cg.runqueue);
  }
  for (const auto& [target, ts] : targets_) {
    TargetUsage u = ts.usage;
    auto l = live.find(target);
    u.cpu_ns = ts.retired_cpu_ns + (l == live.end() ? 0 : l->second.cpu_ns);
    u.runqueue = ts.retired_runqueue;
    if (l != live.end()) u.runqueue.add(l->second.runqueue);
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<UsageTable::ContainerCpu> UsageTable::containers() const {
  std::vector<ContainerCpu> out;
  out.reserve(targets_.size());
  std::unordered_map<const TargetState*, size_t> index;  // target -> its entry in out
  index.reserve(targets_.size());
  for (const auto& [target, ts] : targets_) {
    if (target.kind != UsageTarget::Kind::Container) continue;
    index.emplace(&ts, out.size());
    out.push_back({target, ts.usage.cgroup_path, ts.retired_cpu_ns, ts.usage.oom_kills});
  }
  for (const auto& [id, cg] : cgroups_) {
    if (cg.target.kind != UsageTarget::Kind::Container) continue;
    const auto t = targets_.find(cg.target);
    if (t == targets_.end()) continue;
    if (const auto i = index.find(&t->second); i != index.end()) out[i->second].cpu_ns += cg.cpu_ns;
  }
  return out;
}

}  // namespace podgauge::agent
