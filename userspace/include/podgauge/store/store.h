// The agent's embedded 24 h history: per-series Gorilla-compressed chunks in two RRD-like tiers.
//
//   raw tier     every sample, kept for `raw_retention` (default 1 h; evicted a chunk at a time,
//                so up to one chunk longer)
//   rollup tier  one row per `rollup_step` bucket (default 10 s), kept for `history` (24 h; the
//                oldest chunk is re-encoded without expired rows once an eighth of a chunk has expired):
//                gauges keep count, sum, min, max, last; counters keep count, last and the
//                increase lost to resets inside the bucket, so avg/min/max/last/rate over any
//                window are exact at bucket resolution.
//
// Usage (timestamps come from the caller, in milliseconds; nothing here reads a clock):
//   Store s;
//   s.set_kind(kCpuUsageSeconds, SeriesKind::kCounter);
//   s.append({.target = cgroup_id, .metric = kMemoryWorkingSetBytes}, now_ms, 123456789.0);
//   auto avg = s.query({cgroup_id, kMemoryWorkingSetBytes}, {now_ms - 300'000, now_ms}, Agg::kAvg);
//   auto all = s.query_all(Selector{.metric = kCpuUsageSeconds}, {now_ms - 86'400'000, now_ms}, Agg::kRate);
//   s.expire(now_ms);                 // every minute: drops old chunks and series gone > history
//   s.checkpoint(state_dir / "store.ckpt");   // every minute and on SIGTERM
//   auto report = s.restore(state_dir / "store.ckpt");  // on start; report.errors says what was skipped
//
// Query semantics.
//   A window [start, end] (both inclusive) that lies inside the raw tier is answered from raw
//   samples; one that reaches further back is answered from the rollup tier, taking every bucket
//   that overlaps the window (edges round out to whole buckets).
//   Gauges: kAvg = mean of samples, kMin/kMax/kLast, kPercentile = quantile (linear
//   interpolation, as Prometheus' quantile_over_time) of raw samples, or of bucket means in the
//   rollup tier; kRate = (last - first) / seconds between them.
//   Counters: a sample below its predecessor is a reset (the counter restarted from 0, as
//   Prometheus assumes). kRate = increase / seconds between the first and last sample in the
//   window; kAvg equals kRate; kMin/kMax/kPercentile are over the per-step rates (per sample in
//   the raw tier, per bucket in the rollup tier); kLast = last raw value.
//   kPercentile is exact in the raw tier; in the rollup tier it is read from per-chunk sketches
//   and within kRollupPercentileRelativeError (1/128) of the exact answer.
//
// Cost. Whole chunks inside a window are answered from per-chunk summaries (and, for
// kPercentile in the rollup tier, per-chunk sketches of 64 bins an octave); only the chunks cut
// by the window's edges are decoded, only the columns the aggregation reads, straight into the
// aggregation. A chunk cut by the window's start is its summary (sketch) minus the rows before
// the window, so only those are decoded (min/max: when the chunk's extreme is not among them).
// See bench/store_bench.cpp for the 24 h figures over 6,000 series.
//
// Encoding. Each chunk column is encoded the smallest of: Gorilla XOR on the double's bits, or,
// when every value is exactly a decimal (v = x / 10^k, k <= 9, |x| <= 2^53), the integers x as
// values, deltas or delta-of-deltas divided by their common factor, in Gorilla prefix codes, with
// zero runs, or Rice codes around the median. A gauge bucket's min/max/last/sum are stored as min
// and offsets from it when that is smaller. Store counters as cumulative values
// (seconds from µs/ns accounting, bytes, counts), never as derived rates: a derived rate is a full
// 52-bit mantissa of noise, a cumulative decimal is a small delta-of-delta. Pass the scheduled
// tick time as the timestamp: jitter costs bits in every sample (see bench/store_bench.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace podgauge::store {

/// A checkpoint could not be written (disk full, permission, ...); what() says which file and why.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class SeriesKind : std::uint8_t { kGauge = 0, kCounter = 1 };

/// A series' identity: 16 bytes, so 6,000 series cost little. `target` is whatever the caller
/// uses for a container or pod (a cgroup id, a hash of the container id); `metric` its enum.
struct SeriesKey {
  std::uint64_t target = 0;
  std::uint16_t metric = 0;
  friend bool operator==(const SeriesKey&, const SeriesKey&) = default;
  friend auto operator<=>(const SeriesKey&, const SeriesKey&) = default;
};

/// Picks series by key prefix: a target (all its metrics), a metric (across all targets), both,
/// or neither (every series).
struct Selector {
  std::optional<std::uint64_t> target;
  std::optional<std::uint16_t> metric;
  bool matches(const SeriesKey& k) const {
    return (!target || *target == k.target) && (!metric || *metric == k.metric);
  }
};

/// Milliseconds, both ends inclusive.
struct Window {
  std::int64_t start_ms = 0;
  std::int64_t end_ms = 0;
};

enum class Agg { kAvg, kMin, kMax, kLast, kRate, kPercentile };

/// kPercentile over the rollup tier merges per-chunk sketches: the answer is within this
/// fraction of the exact one (of the larger of the two order statistics interpolated between,
/// when they differ in sign). Over the raw tier it is exact.
constexpr double kRollupPercentileRelativeError = 1.0 / 128;

enum class Tier : std::uint8_t { kRaw = 0, kRollup = 1 };

struct QueryResult {
  double value = 0;
  std::uint64_t samples = 0;  ///< raw samples behind the answer (sum of bucket counts in rollup)
  Tier tier = Tier::kRaw;
};

enum class AppendStatus {
  kOk,
  kOutOfOrder,  ///< older than the series' last sample: dropped
  kDuplicate,   ///< same timestamp as the series' last sample: dropped (first value wins)
  kNotFinite,   ///< NaN or ±Inf: dropped (a missing measurement is no sample, not a NaN)
};

struct Options {
  std::int64_t raw_retention_ms = 3'600'000;
  std::int64_t history_ms = 86'400'000;
  std::int64_t rollup_step_ms = 10'000;
  std::uint32_t raw_chunk_samples = 900;   ///< 15 min at 1 s
  std::uint32_t rollup_chunk_rows = 1440;  ///< 4 h at 10 s
  /// expire() holds the exclusive lock at most about this long at a time (it releases it between
  /// slices of series; at least one series a slice).
  std::int64_t expire_lock_budget_us = 2'000;
  /// After an expire that dropped chunks, return the heap's free pages to the system (glibc's
  /// malloc_trim): the store's freed blocks are otherwise kept resident.
  bool trim_heap_after_expire = true;
};

struct StoreStats {
  std::size_t series = 0;
  std::uint64_t raw_samples = 0;      ///< samples held in the raw tier
  std::uint64_t rollup_rows = 0;      ///< buckets held in the rollup tier
  std::uint64_t raw_bytes = 0;        ///< encoded bytes of raw chunks (sealed + open)
  std::uint64_t rollup_bytes = 0;     ///< encoded bytes of rollup chunks (sealed + open)
  std::uint64_t sealed_raw_samples = 0;
  std::uint64_t sealed_raw_bytes = 0;  ///< the ratio of these two is the compression figure
  std::size_t chunks = 0;
  /// Where the rest of the memory goes (for the benchmark's breakdown and self-metrics):
  std::uint64_t sketch_bytes = 0;          ///< of rollup_bytes: the percentile sketches
  std::uint64_t chunk_index_bytes = 0;     ///< sealed chunks' packed headers (summaries)
  std::uint64_t series_struct_bytes = 0;   ///< per-series state: open chunks and their sketches, bucket, hash node
  std::uint64_t open_slack_bytes = 0;      ///< reserved but unused capacity of open chunks
  std::uint64_t sealed_allocations = 0;    ///< heap blocks holding sealed chunks (one per non-empty tier)
};

struct ExpireResult {
  std::size_t chunks_dropped = 0;
  std::size_t series_dropped = 0;
  std::size_t lock_holds = 0;             ///< slices the call took the exclusive lock for
  std::int64_t longest_lock_hold_us = 0;   ///< the longest of them
};

struct CheckpointInfo {
  std::uint64_t bytes = 0;
  std::size_t series = 0;
};

/// What restore() found. A missing file is a normal first start (found = false, no errors).
struct RestoreReport {
  bool found = false;
  std::size_t series_loaded = 0;
  std::size_t series_skipped = 0;
  /// One line per problem, naming the file, what is wrong and what was skipped.
  std::vector<std::string> errors;
  bool ok() const { return errors.empty(); }
};

namespace detail {
struct Series;
class ByteSource;
}

/// Where a series lives, kept by a caller that appends to the same series every tick (the
/// agent's ContainerHistory), so the store need not look its key up each time. Start with a
/// default one; the store fills it in. It is checked under the store's lock: once the series may
/// have been dropped (expire, restore) or the key differs, the key is looked up again.
struct SeriesHandle {
  SeriesKey key{};
  detail::Series* series = nullptr;
  std::uint64_t epoch = 0;
};

/// One series' value of a tick, for Store::append_batch. `handle`, when set, is used and
/// refreshed for `key`.
struct AppendItem {
  SeriesKey key;
  double value;
  SeriesHandle* handle = nullptr;
};

/// One series' value at its own time, for Store::append_timed.
struct TimedAppendItem {
  SeriesKey key;
  std::int64_t t_ms;
  double value;
  SeriesHandle* handle = nullptr;
};

struct Sample {
  std::int64_t t_ms;
  double value;
  friend bool operator==(const Sample&, const Sample&) = default;
};

/// One bucket of the rollup tier. `t_ms` is the time of the bucket's last sample. `corr` (counters)
/// is the sum of values seen just before each reset, so increase = last - previous last + corr.
struct RollupRow {
  std::int64_t t_ms;
  double count, sum, min, max, last, corr;
  friend bool operator==(const RollupRow&, const RollupRow&) = default;
};

/// Thread-safety: all methods may be called from any thread; appends and expire take an exclusive
/// lock (expire a slice at a time), queries a shared one; checkpoint takes a shared one per series while it serialises it
/// (each series is consistent, the file as a whole is not one instant) and none while it writes.
class Store {
 public:
  explicit Store(Options options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// How series of `metric` are interpreted; set before the first append of that metric.
  void set_kind(std::uint16_t metric, SeriesKind kind);
  SeriesKind kind(std::uint16_t metric) const;

  /// Opt-in, lossy: values of `metric` are rounded to `decimals` places (0..9) before they are
  /// stored; -1 (the default) keeps them exact. A busy container's CPU seconds at µs resolution
  /// carry ~17 bits of noise a sample; kept to the millisecond (0.001 of a core over 1 s) they
  /// fit in 1.5 bytes. The rounding error of a cumulative counter never accumulates.
  void set_precision(std::uint16_t metric, int decimals);

  AppendStatus append(const SeriesKey& key, std::int64_t t_ms, double value);
  /// The same for many series at one time stamp (a sampler's tick), under one hold of the lock
  /// instead of one per sample. `statuses`, when given, receives one status per item; returns
  /// how many were kOk.
  std::size_t append_batch(std::int64_t t_ms, std::span<const AppendItem> items,
                           AppendStatus* statuses = nullptr);
  /// Many samples, each at its own time, under one hold of the lock. Several ticks of one series
  /// given one after the other (in time order) touch that series' blocks once, not once a tick.
  /// Returns how many were kOk.
  std::size_t append_timed(std::span<const TimedAppendItem> items);

  std::optional<QueryResult> query(const SeriesKey& key, Window w, Agg agg,
                                   double quantile = 0.95) const;
  /// One result per matching series that has samples in the window, in key order.
  std::vector<std::pair<SeriesKey, QueryResult>> query_all(const Selector& sel, Window w, Agg agg,
                                                           double quantile = 0.95) const;

  /// Drops raw chunks older than raw_retention, rollup chunks older than history, and series
  /// whose last sample is older than history (their container is gone). Works in slices of
  /// Options::expire_lock_budget_us under the exclusive lock, so appends and queries interleave.
  ExpireResult expire(std::int64_t now_ms);

  /// Writes everything to `path` atomically (temp file, fsync, rename, fsync of the directory),
  /// streamed a series at a time: it costs a few hundred KiB beyond the store, not a copy of it.
  /// Throws StoreError when the file cannot be written; the previous checkpoint stays intact.
  CheckpointInfo checkpoint(const std::filesystem::path& path) const;
  /// Replaces the store's contents with what `path` holds, read a section at a time (the file is
  /// never held whole in memory). Never throws on bad content: a torn, truncated or corrupt file
  /// or section is reported in the result and skipped.
  RestoreReport restore(const std::filesystem::path& path);

  /// The same, on bytes in memory (the fuzz target's entry point). `verify_checksums = false`
  /// lets a fuzzer reach the decoders behind the CRCs.
  RestoreReport restore_bytes(const std::uint8_t* data, std::size_t size, const std::string& name,
                              bool verify_checksums = true);
  std::vector<std::uint8_t> checkpoint_bytes() const;

  StoreStats stats(const Selector& sel = {}) const;
  std::vector<SeriesKey> keys() const;
  /// Decoded contents of one series' tiers (for tests and debugging).
  std::vector<Sample> raw_samples(const SeriesKey& key) const;
  std::vector<RollupRow> rollup_rows(const SeriesKey& key) const;

  const Options& options() const { return options_; }

  struct KeyHash {
    std::size_t operator()(const SeriesKey& k) const noexcept {
      std::uint64_t h = k.target * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{k.metric} << 1);
      return static_cast<std::size_t>(h ^ (h >> 29));
    }
  };

 private:
  AppendStatus append_locked(const SeriesKey& key, std::int64_t t_ms, double value,
                             SeriesHandle* handle = nullptr);
  std::optional<QueryResult> query_locked(const detail::Series& s, Window w, Agg agg,
                                          double quantile) const;
  /// Streams the checkpoint to `emit` in pieces of a few hundred KiB (one series at a time under
  /// the shared lock); returns the bytes emitted and sets `series` to the sections written.
  std::uint64_t write_checkpoint(const std::function<void(const std::uint8_t*, std::size_t)>& emit,
                                 std::size_t& series) const;
  RestoreReport restore_from(detail::ByteSource& in, const std::string& name, bool verify_checksums);

  Options options_;
  mutable std::shared_mutex mutex_;
  std::vector<std::uint8_t> kinds_;      // indexed by metric; grows on set_kind
  std::vector<std::int8_t> precision_;   // indexed by metric; -1 = exact
  std::unordered_map<SeriesKey, std::unique_ptr<detail::Series>, KeyHash> series_;
  // Bumped whenever a series may be dropped: handles of an older epoch are looked up again.
  std::uint64_t epoch_ = 1;
};

}  // namespace podgauge::store
