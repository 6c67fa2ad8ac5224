#include "podgauge/agent/memory_pressure.h"

#include <unistd.h>

#include <cstdio>

namespace podgauge::agent {

using exporters::Label;
using exporters::MetricType;

namespace {

template <typename T, typename Read>
std::optional<T> quietly(Read read) {
  try {
    return read();
  } catch (const cgroup::CgroupError& e) {
    // A file that stops parsing is a kernel change worth knowing about, not worth a crash.
    static std::once_flag once;
    std::call_once(once, [&] { fprintf(stderr, "podgauge: %s (reported once)\n", e.what()); });
    return std::nullopt;
  }
}

void add(loader::ReclaimStalls& into, const loader::ReclaimStalls& s) {
  for (size_t i = 0; i < into.slots.size(); ++i) into.slots[i] += s.slots[i];
  into.stall_ns += s.stall_ns;
  into.count += s.count;
}

// Element-wise maximum: a map entry read twice never steps back, even if deleted and re-made.
void max_with(loader::ReclaimStalls& into, const loader::ReclaimStalls& s) {
  for (size_t i = 0; i < into.slots.size(); ++i)
    into.slots[i] = std::max(into.slots[i], s.slots[i]);
  into.stall_ns = std::max(into.stall_ns, s.stall_ns);
  into.count = std::max(into.count, s.count);
}

}  // namespace

ContainerCgroupfsPressure read_container_pressure(cgroup::FileReader& files,
                                                  const cgroup::CgroupDir* memory_dir,
                                                  bool memory_v2,
                                                  const cgroup::CgroupDir* psi_dir) {
  ContainerCgroupfsPressure p;
  if (memory_dir) {
    if (memory_v2) {
      p.events =
          quietly<cgroup::MemoryEvents>([&] { return cgroup::read_memory_events(files, *memory_dir); });
    } else {
      p.failcnt = quietly<uint64_t>([&] { return cgroup::read_memory_failcnt(files, *memory_dir); });
      p.oom_control = quietly<cgroup::MemoryOomControl>(
          [&] { return cgroup::read_memory_oom_control(files, *memory_dir); });
    }
  }
  if (psi_dir) {
    auto psi = [&](const char* file) {
      return quietly<cgroup::Pressure>([&] { return cgroup::read_pressure(files, *psi_dir, file); });
    };
    p.cpu = psi("cpu.pressure");
    p.memory = psi("memory.pressure");
    p.io = psi("io.pressure");
  }
  return p;
}

std::optional<NodePressure> read_node_pressure(cgroup::FileReader& files,
                                               const std::filesystem::path& proc_pressure) {
  NodePressure n;
  auto psi = [&](const char* file) {
    return quietly<cgroup::Pressure>([&] { return cgroup::read_pressure(files, proc_pressure / file); });
  };
  n.cpu = psi("cpu");
  n.memory = psi("memory");
  n.io = psi("io");
  if (!n.cpu && !n.memory && !n.io) return std::nullopt;
  return n;
}

void MemoryPressureTable::observe_reclaim(const UsageTarget& target,
                                          const loader::CgroupReclaimStalls& stalls) {
  std::lock_guard lock(mutex_);
  auto& kept = entries_[target].reclaim[stalls.cgroup_id];
  kept.cgroup_id = stalls.cgroup_id;
  max_with(kept.memcg, stalls.memcg);
  max_with(kept.direct, stalls.direct);
}

void MemoryPressureTable::record_cgroupfs(const UsageTarget& target,
                                          ContainerCgroupfsPressure pressure) {
  std::lock_guard lock(mutex_);
  entries_[target].cgroupfs = std::move(pressure);
}

void MemoryPressureTable::record_node(std::optional<NodePressure> node, std::string why_absent) {
  std::lock_guard lock(mutex_);
  node_ = std::move(node);
  node_absent_ = std::move(why_absent);
}

std::vector<std::uint64_t> MemoryPressureTable::retain(const std::set<UsageTarget>& live) {
  std::lock_guard lock(mutex_);
  std::vector<std::uint64_t> gone;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (live.count(it->first)) {
      ++it;
      continue;
    }
    for (const auto& [id, s] : it->second.reclaim) gone.push_back(id);
    it = entries_.erase(it);
  }
  return gone;
}

void MemoryPressureTable::render(exporters::ExpositionWriter& w, const std::string& node,
                                 bool pod_uid_label) const {
  std::lock_guard lock(mutex_);
  std::vector<Label> labels;
  auto container_labels = [&](const UsageTarget& t) {
    labels.clear();
    labels.push_back({"node", node});
    if (pod_uid_label) labels.push_back({"pod_uid", t.pod_uid});
    labels.push_back({"container_id", t.container_id});
  };
  // Sums over each container's memory cgroups (its own and any nested below it).
  std::map<UsageTarget, std::array<loader::ReclaimStalls, 2>> reclaim;
  for (const auto& [target, e] : entries_) {
    if (e.reclaim.empty()) continue;
    auto& sum = reclaim[target];
    for (const auto& [id, s] : e.reclaim) add(sum[0], s.memcg), add(sum[1], s.direct);
  }
  static constexpr const char* kinds[2] = {"memcg", "direct"};

  w.family("podgauge_container_memory_reclaim_stall_seconds_total",
           "Time the container's tasks spent reclaiming memory before an allocation could "
           "proceed: kind=memcg when its cgroup (or an ancestor) was at memory.high/memory.max, "
           "kind=direct when the node ran short of free pages. From the vmscan tracepoints.",
           MetricType::counter);
  for (const auto& [target, sum] : reclaim)
    for (int k = 0; k < 2; ++k) {
      container_labels(target);
      labels.push_back({"kind", kinds[k]});
      w.sample(labels, double(sum[k].stall_ns) / 1e9);
    }
  const auto bounds = loader::reclaim_stall_bounds_seconds();
  w.family("podgauge_container_memory_reclaim_stall_duration_seconds",
           "Duration of each reclaim run the container's tasks stalled in, by kind (memcg, "
           "direct).",
           MetricType::histogram);
  for (const auto& [target, sum] : reclaim)
    for (int k = 0; k < 2; ++k) {
      if (sum[k].count == 0) continue;
      container_labels(target);
      labels.push_back({"kind", kinds[k]});
      w.histogram(labels, bounds, sum[k].slots, double(sum[k].stall_ns) / 1e9);
    }

  w.family("podgauge_container_memory_events_total",
           "cgroup v2 memory.events of the container: low, high (throttled over memory.high), "
           "max (at memory.max), oom, oom_kill, oom_group_kill.",
           MetricType::counter);
  for (const auto& [target, e] : entries_) {
    if (!e.cgroupfs || !e.cgroupfs->events) continue;
    const auto& ev = *e.cgroupfs->events;
    const std::pair<const char*, std::optional<uint64_t>> values[] = {
        {"low", ev.low}, {"high", ev.high},         {"max", ev.max},
        {"oom", ev.oom}, {"oom_kill", ev.oom_kill}, {"oom_group_kill", ev.oom_group_kill}};
    for (const auto& [name, v] : values) {
      if (!v) continue;
      container_labels(target);
      labels.push_back({"event", name});
      w.sample_integer(labels, *v);
    }
  }
  w.family("podgauge_container_memory_failcnt_total",
           "cgroup v1 memory.failcnt of the container: times usage hit memory.limit_in_bytes.",
           MetricType::counter);
  for (const auto& [target, e] : entries_) {
    if (!e.cgroupfs || !e.cgroupfs->failcnt) continue;
    container_labels(target);
    w.sample_integer(labels, *e.cgroupfs->failcnt);
  }
  w.family("podgauge_container_memory_under_oom",
           "cgroup v1 memory.oom_control under_oom: 1 while the container's tasks wait for the "
           "OOM killer (oom_kill_disable set).",
           MetricType::gauge);
  for (const auto& [target, e] : entries_) {
    if (!e.cgroupfs || !e.cgroupfs->oom_control) continue;
    container_labels(target);
    w.sample_integer(labels, e.cgroupfs->oom_control->under_oom ? 1 : 0);
  }

  auto pressure_samples = [&](const cgroup::Pressure& p, const char* resource) {
    const size_t base = labels.size();
    labels.push_back({"resource", resource});
    labels.push_back({"kind", "some"});
    w.sample(labels, double(p.some.total_us) / 1e6);
    if (p.full) {
      labels.back() = {"kind", "full"};
      w.sample(labels, double(p.full->total_us) / 1e6);
    }
    labels.resize(base);
  };
  w.family("podgauge_container_pressure_stalled_seconds_total",
           "PSI of the container's cgroup (cpu|memory|io.pressure total=): time some (kind=some) "
           "or all (kind=full) of its non-idle tasks were stalled on the resource.",
           MetricType::counter);
  for (const auto& [target, e] : entries_) {
    if (!e.cgroupfs) continue;
    const auto& c = *e.cgroupfs;
    container_labels(target);
    if (c.cpu) pressure_samples(*c.cpu, "cpu");
    if (c.memory) pressure_samples(*c.memory, "memory");
    if (c.io) pressure_samples(*c.io, "io");
  }
  w.family("podgauge_node_pressure_stalled_seconds_total",
           "PSI of the whole node (/proc/pressure/*): time some or all non-idle tasks were "
           "stalled on the resource.",
           MetricType::counter);
  if (node_) {
    labels.clear();
    labels.push_back({"node", node});
    if (node_->cpu) pressure_samples(*node_->cpu, "cpu");
    if (node_->memory) pressure_samples(*node_->memory, "memory");
    if (node_->io) pressure_samples(*node_->io, "io");
  }
}

nlohmann::json MemoryPressureTable::summary() const {
  std::lock_guard lock(mutex_);
  size_t with_reclaim = 0, with_psi = 0, with_events = 0;
  for (const auto& [target, e] : entries_) {
    with_reclaim += !e.reclaim.empty();
    if (e.cgroupfs) {
      with_psi += e.cgroupfs->memory.has_value();
      with_events += e.cgroupfs->events.has_value() || e.cgroupfs->failcnt.has_value();
    }
  }
  return {{"node_pressure", node_ ? std::string("available") : node_absent_},
          {"containers_with_reclaim_stalls", with_reclaim},
          {"containers_with_psi", with_psi},
          {"containers_with_memory_events", with_events}};
}

MemoryPressureTable::OomContext MemoryPressureTable::oom_context(const UsageTarget& target) const {
  std::lock_guard lock(mutex_);
  OomContext c;
  auto it = entries_.find(target);
  if (it == entries_.end()) return c;
  if (!it->second.reclaim.empty()) {
    uint64_t ns = 0;
    for (const auto& [id, r] : it->second.reclaim) ns += r.memcg.stall_ns + r.direct.stall_ns;
    c.reclaim_stall_seconds = double(ns) / 1e9;
  }
  if (it->second.cgroupfs && it->second.cgroupfs->memory) {
    c.memory_some = it->second.cgroupfs->memory->some;
    c.memory_full = it->second.cgroupfs->memory->full;
  }
  return c;
}

}  // namespace podgauge::agent
