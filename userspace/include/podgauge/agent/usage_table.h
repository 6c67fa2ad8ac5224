// Cumulative per-container usage assembled from per-cgroup kernel counters.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "podgauge/agent/cgroup_resolver.h"
#include "podgauge/agent/scheduler_stats.h"

namespace podgauge::agent {

using Clock = std::chrono::steady_clock;

/// What a cgroup's usage is attributed to.
struct UsageTarget {
  enum class Kind { Container, PodOverhead, HostGroup };
  Kind kind = Kind::HostGroup;
  std::string pod_uid;       // Container, PodOverhead
  std::string container_id;  // Container
  std::string group;         // HostGroup: top-level cgroup ("/system.slice"); PodOverhead: component
  auto operator<=>(const UsageTarget&) const = default;
};

/// Maps a resolved cgroup to its target: a container (also for cgroups nested in it), a pod's
/// overhead (pod-level cgroup, CRI-O conmon), or the host's top-level cgroup.
UsageTarget target_of(const ResolvedCgroup& resolved);

struct TargetUsage {
  UsageTarget target;
  std::string runtime;      // containerd, cri-o, docker
  std::string qos;          // Guaranteed, Burstable, BestEffort
  std::string cgroup_path;  // the container's (or pod's) own cgroup
  uint64_t cpu_ns = 0;      // cumulative, never decreases
  uint64_t oom_kills = 0;
  LatencyHistogram runqueue;   // cumulative, never decreases
  std::optional<CfsStats> cfs;  // when the container's cpu.stat has bandwidth statistics
};

/// Per-cgroup cumulative counters folded into per-target counters that never go backwards,
/// also when cgroups come and go.
/// Not thread-safe: the agent guards it with its own mutex.
class UsageTable {
 public:
  explicit UsageTable(Clock::duration retention = std::chrono::minutes(10))
      : retention_(retention) {}

  /// Cumulative on-CPU ns of one cgroup, as the kernel map holds it now. Unresolved ids
  /// (null path) are held back until they resolve.
  void observe_cpu(uint64_t cgroup_id, uint64_t cumulative_ns, const ResolvedCgroup& resolved,
                   Clock::time_point now);
  /// Cumulative run-queue latency of one cgroup, as the kernel map holds it now. Cgroups not
  /// yet known through observe_cpu are held back (the kernel keeps counting meanwhile).
  void observe_runqueue(uint64_t cgroup_id, const LatencyHistogram& cumulative);
  /// CFS bandwidth statistics read from a target's own cgroup.
  void record_cfs(const UsageTarget& target, const CfsStats& stats);
  /// Counts one OOM kill against the target of `resolved`.
  void record_oom_kill(const ResolvedCgroup& resolved, Clock::time_point now);
  /// Retires cgroups not seen (or removed) for longer than the retention and drops targets with
  /// nothing left. Returns the cgroup ids retired, to be deleted from the kernel map.
  std::vector<uint64_t> expire(Clock::time_point now);

  std::vector<TargetUsage> targets() const;
  /// What each sampling round needs of the containers: cheaper than targets() (no histograms,
  /// no pods).
  struct ContainerCpu {
    UsageTarget target;
    std::string cgroup_path;
    uint64_t cpu_ns = 0;  // as targets() reports it
    uint64_t oom_kills = 0;
  };
  std::vector<ContainerCpu> containers() const;
  /// The same into `out`, assigned over its elements: called every round, it then allocates
  /// nothing while the containers stay the same.
  void containers(std::vector<ContainerCpu>& out) const;
  size_t cgroup_count() const { return cgroups_.size(); }
  size_t unresolved_count() const { return unresolved_.size(); }
  /// CPU of cgroups that vanished before any scan could name them.
  uint64_t unresolved_cpu_ns() const { return unresolved_cpu_ns_; }

 private:
  struct TargetState;
  struct CgroupState {
    UsageTarget target;
    // The target's entry in targets_ (map nodes do not move; an entry is erased only once no
    // cgroup counts towards it): each round's update needs no lookup and no copy of the target.
    struct TargetState* state = nullptr;
    uint64_t cpu_ns = 0;
    LatencyHistogram runqueue;
    bool removed = false;
    Clock::time_point last_seen;
  };
  struct TargetState {
    TargetUsage usage;
    uint64_t retired_cpu_ns = 0;  // from cgroups already retired
    LatencyHistogram retired_runqueue;
    size_t live_cgroups = 0;
    Clock::time_point last_activity;
    mutable size_t listed_at = 0;  // containers()' scratch: this container's slot in its output
  };
  TargetState& target_state(const ResolvedCgroup& resolved, const UsageTarget& target,
                            Clock::time_point now);

  struct Unresolved {
    uint64_t cpu_ns = 0;
    Clock::time_point first_seen, last_seen;
  };

  Clock::duration retention_;
  std::unordered_map<uint64_t, Unresolved> unresolved_;
  uint64_t unresolved_cpu_ns_ = 0;
  std::unordered_map<uint64_t, CgroupState> cgroups_;
  std::map<UsageTarget, TargetState> targets_;
};

}  // namespace podgauge::agent
