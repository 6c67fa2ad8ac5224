// Who preempts whom: per-{victim, preemptor} cgroup counters folded into per-container series.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/agent/usage_table.h"

namespace podgauge::agent {

/// Where the preempting task ran, relative to the preempted container.
enum class PreemptorKind { SameContainer, SamePod, OtherPod, Host };
/// "same_container", "same_pod", "other_pod", "host" (the `by` label).
std::string_view to_string(PreemptorKind kind);
/// Classifies `preemptor` relative to the container `victim`: its own cgroups, a sibling in the
/// same pod (containers or the pod's overhead), another pod, else the host (kernel threads,
/// system services).
PreemptorKind classify_preemptor(const UsageTarget& victim, const UsageTarget& preemptor);

/// One exported preemption series of a victim container.
struct PreemptionSeries {
  PreemptorKind by = PreemptorKind::Host;
  std::string by_pod_uid;  // empty for Host; "other" for pods beyond the top N
  uint64_t count = 0;      // cumulative, never decreases
};

/// Turns cumulative per-{victim cgroup, preemptor cgroup} kernel counters into per-container
/// counters labelled by who preempted. Other pods are labelled individually only for the top N
/// (by preemptions so far) per victim; the rest add up in by_pod_uid="other". Each preemption
/// counts in exactly one series, and no series ever decreases, also when the top N changes.
/// Not thread-safe: the agent guards it with its mutex.
class PreemptionTable {
 public:
  static constexpr const char* kOtherPods = "other";
  explicit PreemptionTable(size_t top_n = 5) : top_n_(top_n) {}

  /// One pair's cumulative counters as the kernel holds them now. `victim` must be a container
  /// target (others are ignored).
  void observe(uint64_t victim_cgroup, uint64_t preemptor_cgroup, const UsageTarget& victim,
               const UsageTarget& preemptor, uint64_t count);
  /// Distributes what observe() gathered since the last fold() over the series.
  void fold();
  /// Series of every victim container, in a stable order.
  std::map<UsageTarget, std::vector<PreemptionSeries>> series() const;
  /// Forgets pairs involving retired cgroups (the kernel deletes them too).
  void forget_cgroups(const std::vector<uint64_t>& cgroup_ids);
  /// Drops victims that are no longer tracked containers.
  void retain_victims(const std::set<UsageTarget>& live);

 private:
  struct PairState {
    uint64_t count = 0;  // last cumulative value seen
  };
  struct Counter {
    uint64_t count = 0;
  };
  using SeriesKey = std::pair<PreemptorKind, std::string>;  // {by, by_pod_uid}
  struct Victim {
    std::map<SeriesKey, Counter> pending;        // deltas since the last fold, by real preemptor
    std::map<std::string, uint64_t> pod_totals;  // other pods: preemptions so far, for top N
    std::map<SeriesKey, Counter> series;         // exported
    std::set<std::string> labelled;              // other pods currently in the top N
  };

  size_t top_n_;
  std::map<std::pair<uint64_t, uint64_t>, PairState> pairs_;
  std::map<UsageTarget, Victim> victims_;
};

}  // namespace podgauge::agent
