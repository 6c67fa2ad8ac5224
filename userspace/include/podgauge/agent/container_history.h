// 24 h of every container's usage in the embedded store (podgauge/store), checkpointed under
// --state-dir so a restarted agent still has its history.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "podgauge/agent/usage_model.h"
#include "podgauge/store/store.h"

namespace podgauge::agent {

/// The series kept per container (12 of them), as store metric ids; stable across versions
/// because checkpoints carry them.
enum class HistoryMetric : std::uint16_t {
  CpuSeconds = 1,          // counter: on-CPU seconds
  WorkingSetBytes = 2,
  UsageBytes = 3,
  RssBytes = 4,
  CacheBytes = 5,
  SwapBytes = 6,
  MemoryLimitBytes = 7,
  CpuLimitCores = 8,
  CfsPeriods = 9,          // counter
  CfsThrottledPeriods = 10,  // counter
  CfsThrottledSeconds = 11,  // counter
  OomKills = 12,           // counter
};
/// "cpu_seconds", "working_set_bytes", ...; nullopt for an unknown name.
std::optional<HistoryMetric> history_metric(std::string_view name);
std::string_view to_string(HistoryMetric m);
/// "avg", "min", "max", "last", "rate", "p95" / "p99" / "p50" ...: the aggregation and quantile.
std::optional<std::pair<store::Agg, double>> history_aggregation(std::string_view name);

/// A container as history knows it.
struct HistoryTarget {
  std::string pod_uid, container_id;
};

/// Thread-safety: every method may be called from any thread.
class ContainerHistory {
 public:
  explicit ContainerHistory(std::chrono::milliseconds history = std::chrono::hours(24));

  /// One sampling round at wall-clock `t_ms` (the scheduled tick, so timestamps compress).
  /// A container's ticks are held and written to the store kBatchTicks at a time, series by
  /// series: appending one series several ticks in a row touches its blocks once. Queries and
  /// checkpoints write what is held first, so they see every tick recorded.
  void record(const ContainerReading& reading, uint64_t oom_kills, std::int64_t t_ms);
  /// Writes every held tick to the store (query() and checkpoint() do it themselves).
  void flush() const;
  static constexpr std::size_t kBatchTicks = 10;

  /// Loads `dir`/store.ckpt and its target names. Returns one line per problem (file, what,
  /// what was skipped); a missing checkpoint is a first start, not a problem.
  std::vector<std::string> restore(const std::filesystem::path& dir);
  /// Drops what is older than the history, then writes the checkpoint atomically. Throws
  /// store::StoreError saying which file and why.
  store::CheckpointInfo checkpoint(const std::filesystem::path& dir, std::int64_t now_ms);

  struct Point {
    HistoryTarget target;
    store::QueryResult result;
  };
  /// One metric of every container (or of one, when container_id is set) over a window.
  std::vector<Point> query(HistoryMetric metric, store::Window w, store::Agg agg, double quantile,
                           const std::string& container_id = "") const;
  /// The store, as written so far: up to kBatchTicks - 1 ticks of each container may still be
  /// held (flush() first to see them).
  const store::Store& store() const { return store_; }

 private:
  // A container's series handles, indexed by HistoryMetric: a tick appends without looking up
  // any series key.
  using Handles = std::array<store::SeriesHandle, 13>;
  // Ticks not yet in the store, indexed by tick then HistoryMetric.
  struct Held {
    std::array<std::int64_t, kBatchTicks> t{};
    std::array<std::uint16_t, kBatchTicks> present{};  // bit m: metric m has a value at that tick
    std::array<std::array<double, 13>, kBatchTicks> value{};
    std::size_t ticks = 0;
  };
  struct Container {
    Handles handles;
    Held held;
  };
  Container& container_of(const UsageTarget& t, std::uint64_t& id);  // registers the name; names_mutex_
  void flush_locked(std::uint64_t target, Container& c) const;       // names_mutex_
  mutable store::Store store_;  // thread-safe; a const query writes the held ticks
  mutable std::mutex names_mutex_;
  std::map<std::uint64_t, HistoryTarget> names_;
  // The keys of names_, with their handles and held ticks: every record() asks whether its
  // container is named, and a hash lookup of an integer costs a fraction of a descent through
  // the ordered map. Mutable: a const query writes the held ticks first.
  mutable std::unordered_map<std::uint64_t, Container> named_;
  mutable std::vector<store::TimedAppendItem> flush_items_;  // names_mutex_
  // record()'s guess of each call's container (names_mutex_): a round records its containers in
  // the order of the last one, so the i-th call of a tick is first checked against the i-th of
  // the last tick (the two ids compared) before they are hashed and looked up. Cleared when
  // containers are forgotten or restored.
  struct Recent {
    std::uint64_t id;
    Container* container;
    const HistoryTarget* name;
  };
  std::vector<Recent> recent_;
  std::size_t recent_at_ = 0;
  std::int64_t recent_tick_ = 0;
};

}  // namespace podgauge::agent
