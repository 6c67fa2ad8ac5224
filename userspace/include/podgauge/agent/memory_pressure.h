// Memory pressure per container and per node: reclaim stalls from the mem BPF family,
// memory.events (v2) or memory.failcnt / memory.oom_control (v1), and PSI.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "podgauge/agent/usage_table.h"
#include "podgauge/cgroup/memory_stats.h"
#include "podgauge/exporters/exposition.h"
#include "podgauge/loader/memory_probes.h"

namespace podgauge::agent {

/// What a container's own cgroup directories say about pressure, read each interval.
struct ContainerCgroupfsPressure {
  std::optional<cgroup::MemoryEvents> events;           // v2 memory controller
  std::optional<std::uint64_t> failcnt;                 // v1 memory controller
  std::optional<cgroup::MemoryOomControl> oom_control;  // v1 memory controller
  std::optional<cgroup::Pressure> cpu, memory, io;      // v2 tree, where the kernel has PSI
};

/// Reads the memory controller's files in `memory_dir` (v2 when `memory_v2`) and the PSI files
/// in `psi_dir`; either may be null. A file that is missing or does not parse is left out.
ContainerCgroupfsPressure read_container_pressure(cgroup::FileReader& files,
                                                  const cgroup::CgroupDir* memory_dir,
                                                  bool memory_v2,
                                                  const cgroup::CgroupDir* psi_dir);

/// The node's PSI (/proc/pressure/{cpu,memory,io}). nullopt when the kernel has none
/// (CONFIG_PSI off, or booted with psi=0).
struct NodePressure {
  std::optional<cgroup::Pressure> cpu, memory, io;
};
std::optional<NodePressure> read_node_pressure(
    cgroup::FileReader& files, const std::filesystem::path& proc_pressure = "/proc/pressure");

/// Per-container memory pressure, kept from one sample to the next for /metrics.
/// Thread-safe: every method locks an internal mutex (sampler thread writes, HTTP thread reads).
class MemoryPressureTable {
 public:
  /// Cumulative stalls of one memory cgroup that belongs to `target` (a container, possibly
  /// a cgroup nested inside it). Per-cgroup values are kept while the target lives, so the
  /// container's sum never goes backwards.
  void observe_reclaim(const UsageTarget& target, const loader::CgroupReclaimStalls& stalls);
  void record_cgroupfs(const UsageTarget& target, ContainerCgroupfsPressure pressure);
  void record_node(std::optional<NodePressure> node, std::string why_absent);
  /// Forgets targets not in `live`; returns their memory cgroup ids for the kernel map.
  std::vector<std::uint64_t> retain(const std::set<UsageTarget>& live);

  /// What an OOM kill's event tells about the pressure that led to it.
  struct OomContext {
    std::optional<double> reclaim_stall_seconds;  // memcg + direct, all of the container's cgroups
    std::optional<cgroup::PressureLine> memory_some, memory_full;  // latest PSI, where the kernel has it
  };
  OomContext oom_context(const UsageTarget& target) const;

  void render(exporters::ExpositionWriter& w, const std::string& node, bool pod_uid_label) const;
  /// {"node_pressure": "available" | why not, "containers_with_reclaim": n, ...}
  nlohmann::json summary() const;

 private:
  struct Entry {
    std::map<std::uint64_t, loader::CgroupReclaimStalls> reclaim;  // by memory cgroup id
    std::optional<ContainerCgroupfsPressure> cgroupfs;
  };
  mutable std::mutex mutex_;
  std::map<UsageTarget, Entry> entries_;
  std::optional<NodePressure> node_;
  std::string node_absent_ = "not sampled yet";
};

}  // namespace podgauge::agent
