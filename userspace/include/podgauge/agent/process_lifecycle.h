// Processes per container: lifecycle counters from the kernel, top processes by CPU, main
// process exits, shared pid namespaces, and the container runtime's own overhead per pod.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "podgauge/agent/cgroup_resolver.h"
#include "podgauge/agent/process_scan.h"
#include "podgauge/agent/usage_table.h"
#include "podgauge/exporters/exposition.h"
#include "podgauge/loader/process_probes.h"
#include "podgauge/v1/events.pb.h"

namespace podgauge::agent {

/// One process in a container's top list: running (from /proc) or exited (from BPF).
struct ProcessView {
  int32_t pid = 0;
  int32_t ppid = 0;
  std::string comm;
  double cpu_seconds = 0;
  double cpu_cores = 0;  // rate over the last scan; running processes only
  uint64_t rss_bytes = 0;
  bool exited = false;
  int exit_code = 0;
  int signal = 0;
  bool container_main = false;  // pid 1 of a non-host pid namespace
  bool host_pid_ns = false;     // shares the host's pid namespace (hostPID)
  uint64_t pid_ns = 0;
};

/// Thread-safe: every method takes the internal mutex.
class ProcessLifecycle {
 public:
  explicit ProcessLifecycle(size_t top_n = 10) : top_n_(top_n) {}

  /// Cumulative kernel counters per cgroup; ids that do not resolve yet are held back (the
  /// kernel keeps counting, nothing is lost).
  void observe_counts(const std::vector<loader::CgroupProcessCounts>& counts,
                      const std::function<ResolvedCgroup(uint64_t)>& resolve);
  /// One /proc scan: live top processes, shared pid namespaces, runtime overhead.
  void observe_processes(const std::vector<ProcessSample>& processes, uint64_t host_pid_ns,
                         double seconds_since_last_scan);
  /// An exit record from the kernel. Returns the event to publish for exits in pods.
  std::optional<v1::Event> on_exit(const loader::ProcessExit& x, const ResolvedCgroup& where,
                                   const std::string& node, int64_t realtime_minus_monotonic_ns,
                                   uint64_t host_pid_ns);
  void forget_cgroups(const std::vector<uint64_t>& cgroup_ids);

  void render(exporters::ExpositionWriter& w, const std::string& node, bool pod_uid_label) const;
  /// Top processes by CPU per container, for /v1/processes.
  nlohmann::json processes_json() const;

 private:
  struct Counts {
    uint64_t forks = 0, execs = 0, exits = 0, exits_signaled = 0;
  };
  struct RuntimeUsage {
    uint64_t cpu_ns = 0;
    uint64_t rss_bytes = 0;
  };
  using ProcessKey = std::pair<int32_t, uint64_t>;  // pid, start time

  size_t top_n_;
  mutable std::mutex mutex_;
  std::unordered_map<uint64_t, std::pair<UsageTarget, loader::CgroupProcessCounts>> last_;
  std::map<UsageTarget, Counts> totals_;
  std::map<UsageTarget, int> main_exit_code_;
  std::map<UsageTarget, std::vector<ProcessView>> live_;
  std::map<UsageTarget, std::vector<ProcessView>> exited_;
  std::map<ProcessKey, uint64_t> prev_cpu_ns_;
  std::map<std::string, bool> pod_shared_pid_ns_;
  std::map<std::pair<std::string, std::string>, RuntimeUsage> runtime_;  // {pod uid or "", kind}
};

/// Exit records whose cgroup the resolver does not know yet. A container made since the last
/// tree walk exits its first processes before any walk has seen it: a lookup miss rescans at
/// most every 200 ms, and a whole burst fits in that. Such a record waits here, in order, and is
/// passed on once its cgroup resolves; later records of a cgroup with a waiting one wait behind
/// it. One whose cgroup is still unknown after `hold` (made and removed between two walks), or
/// that finds `max_held` records waiting, is dropped and counted.
/// Thread-safety: offer() and retry() on one thread; held() and dropped() from any.
class HeldExits {
 public:
  using Clock = std::chrono::steady_clock;
  using Resolve = std::function<ResolvedCgroup(uint64_t)>;
  using Publish = std::function<void(const loader::ProcessExit&, const ResolvedCgroup&)>;

  explicit HeldExits(Clock::duration hold = std::chrono::seconds(10), size_t max_held = 4096)
      : hold_(hold), max_held_(max_held) {}

  /// Publishes `x` now if its cgroup resolves and none of its cgroup's records wait; else
  /// holds it (or drops it when full).
  void offer(const loader::ProcessExit& x, const Resolve& resolve, const Publish& publish,
             Clock::time_point now);
  /// Publishes, in arrival order, the waiting records whose cgroups now resolve; drops those
  /// that waited longer than `hold`.
  void retry(const Resolve& resolve, const Publish& publish, Clock::time_point now);

  size_t held() const { return held_count_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct Held {
    loader::ProcessExit exit;
    Clock::time_point since;
  };
  Clock::duration hold_;
  size_t max_held_;
  std::deque<Held> held_;
  std::unordered_map<uint64_t, size_t> waiting_;  // cgroup id -> records held
  std::atomic<size_t> held_count_{0};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace podgauge::agent
