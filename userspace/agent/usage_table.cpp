#include "podgauge/agent/usage_table.h"

namespace podgauge::agent {

namespace {
std::string top_level_group(const std::string& path) {
  if (path.size() <= 1) return "/";
  const auto slash = path.find('/', 1);
  return slash == std::string::npos ? path : path.substr(0, slash);
}

// The length of the pod's or container's own cgroup path: the path up to the end of what the
// layout matched.
size_t owner_cgroup_length(const ResolvedCgroup& r) {
  if (!r.path) return 0;
  if (r.identity && r.identity->matched_length > 0 && r.identity->matched_length <= r.path->size())
    return r.identity->matched_length;
  return r.path->size();
}

// Keeps the shortest owner path seen (nested cgroups resolve to the same target); builds the
// string only when it changes.
void update_owner_path(std::string& kept, const ResolvedCgroup& r) {
  if (!kept.empty() && !(r.path && !r.removed)) return;
  const size_t own = owner_cgroup_length(r);
  if (own != 0 && (kept.empty() || own < kept.size())) kept.assign(*r.path, 0, own);
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
  update_owner_path(ts.usage.cgroup_path, r);
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
  if (inserted) {
    cg.target = target_of(r);
    cg.state = &target_state(r, cg.target, now);
    ++cg.state->live_cgroups;
  } else {
    update_owner_path(cg.state->usage.cgroup_path, r);
    cg.state->last_activity = now;
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
  containers(out);
  return out;
}

void UsageTable::containers(std::vector<ContainerCpu>& out) const {
  size_t n = 0;
  for (const auto& [target, ts] : targets_) {
    if (target.kind != UsageTarget::Kind::Container) continue;
    ts.listed_at = n;
    if (n == out.size()) out.emplace_back();
    ContainerCpu& c = out[n++];
    c.target = target;  // string assignments reuse the element's buffers
    c.cgroup_path = ts.usage.cgroup_path;
    c.cpu_ns = ts.retired_cpu_ns;
    c.oom_kills = ts.usage.oom_kills;
  }
  out.resize(n);
  for (const auto& [id, cg] : cgroups_) {
    if (cg.target.kind != UsageTarget::Kind::Container) continue;
    // A container cgroup's state is a container target's, listed above.
    if (cg.state) out[cg.state->listed_at].cpu_ns += cg.cpu_ns;
  }
}

}  // namespace podgauge::agent
