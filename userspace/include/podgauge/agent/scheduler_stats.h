// Scheduler statistics per cgroup: run-queue latency histograms and CFS bandwidth throttling.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "podgauge/loader/kernel_probes.h"

namespace podgauge::agent {

/// Cumulative run-queue latency (bpf/cpu.h layout): per-slot counts, sum and count.
struct LatencyHistogram {
  std::array<uint64_t, loader::kRunqueueLatencySlots> slots{};
  uint64_t sum_ns = 0;
  uint64_t count = 0;

  void add(const LatencyHistogram& other);
  /// Element-wise maximum: a cumulative kernel counter read a second time never steps back.
  void max_with(const LatencyHistogram& other);
  bool operator==(const LatencyHistogram&) const = default;
};

/// CFS bandwidth statistics of one cgroup (cpu.stat).
struct CfsStats {
  uint64_t periods = 0;            // nr_periods: enforcement periods with runnable tasks
  uint64_t throttled_periods = 0;  // nr_throttled
  uint64_t throttled_ns = 0;       // v1 throttled_time (ns), v2 throttled_usec × 1000
  void max_with(const CfsStats& other);
};

/// Parses cpu.stat text (v1 or v2). nullopt when it has no nr_throttled line (v2 without the
/// cpu controller reports only usage).
std::optional<CfsStats> parse_cfs_stats(std::string_view cpu_stat);

}  // namespace podgauge::agent
