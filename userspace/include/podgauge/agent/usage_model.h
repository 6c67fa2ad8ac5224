// Per-container usage model: CPU rate, throttling, memory (working set, RSS, cache, swap) and
// limits each sampling round, the last minute of memory for OOM explanations, and the breach
// detector fed from it.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "podgauge/agent/scheduler_stats.h"
#include "podgauge/agent/usage_table.h"
#include "podgauge/analysis/breach_detector.h"
#include "podgauge/cgroup/working_set.h"

namespace podgauge::agent {

/// What one sampling round read for one container.
struct ContainerReading {
  UsageTarget target;
  uint64_t cpu_ns = 0;  // cumulative
  std::optional<CfsStats> cfs;
  std::optional<cgroup::MemoryUsage> memory;
  std::optional<double> cpu_limit_cores;
  std::optional<double> cpu_request_cores;     // from the pod spec, when known
  std::optional<double> memory_request_bytes;  // from the pod spec, when known
  // Which parts were read from cgroupfs this round; the others are the last slow round's (the
  // sampler reads what cannot breach at a slower cadence). History records only what was read:
  // a copy is no new measurement.
  bool cfs_read = true;     // cpu.stat
  bool usage_read = true;   // memory.current (usage, and with it the working set)
  bool memory_read = true;  // memory.stat (rss, page cache, swap)
};

/// Makes `r` a blank reading of `target`, keeping the buffers of its strings (the sampler reuses
/// one reading per container every round).
ContainerReading& fresh_reading(ContainerReading& r, const UsageTarget& target);

struct MemoryPoint {
  analysis::Nanos time{0};  // CLOCK_MONOTONIC
  uint64_t working_set = 0;
  std::optional<uint64_t> limit;
};

/// The model's view of one container after the latest round.
struct ContainerModel {
  std::optional<double> cpu_cores;          // average over the last interval
  std::optional<double> throttled_percent;  // throttled / all CFS periods in the last interval
  std::optional<cgroup::MemoryUsage> memory;
  std::optional<double> cpu_limit_cores;
  std::optional<double> cpu_request_cores;
  std::optional<double> memory_request_bytes;
  std::deque<MemoryPoint> recent_memory;  // the last kRecentMemory of working set
  // Previous cumulative readings for the rates.
  analysis::Nanos last_time{0};
  uint64_t last_cpu_ns = 0;
  std::optional<CfsStats> last_cfs;
  std::string key;  // target_key(), built once rather than every round
};

/// Key of a container for the detector and events: "<pod_uid>/<container_id>".
std::string target_key(const UsageTarget& t);

/// Thread-safety: not thread-safe; the agent serialises calls under its table lock.
class UsageModel {
 public:
  static constexpr analysis::Nanos kRecentMemory = std::chrono::seconds(60);

  explicit UsageModel(std::vector<analysis::BreachRule> rules = analysis::default_breach_rules());

  /// One round at monotonic time `now`; returns the breaches that started or ended.
  std::vector<analysis::BreachEvent> update(const std::vector<ContainerReading>& readings,
                                            analysis::Nanos now);
  /// Drops containers that are gone.
  void retain(const std::set<UsageTarget>& live);
  const ContainerModel* find(const UsageTarget& t) const;
  const std::map<UsageTarget, ContainerModel>& containers() const { return containers_; }
  const analysis::BreachDetector& detector() const { return detector_; }

 private:
  std::map<UsageTarget, ContainerModel> containers_;
  analysis::BreachDetector detector_;
};

}  // namespace podgauge::agent
