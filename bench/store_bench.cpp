// History store: bytes per sample by series type, append throughput, 24 h queries over a full
// node (500 containers x 12 series), checkpoint write/load, and the RSS of that full store.
//
//   store_bench                       Google Benchmark cases (builds the full 24 h store once)
//   store_bench --rss [--cpu-ms] [--time-major]
//                                     fills a full 24 h store in a fresh process and prints
//                                     VmRSS; --time-major appends as the agent does (every series
//                                     each second, several times slower) instead of series by series
//   --cpu-ms                          keep CPU/PSI seconds counters to the millisecond
//                                     (Store::set_precision) instead of exact
//   --rss --save PATH                 also checkpoints the full store to PATH and prints the peak
//                                     RSS while it does (VmHWM, reset before the checkpoint)
//   --restore-rss PATH                in a fresh process: restores PATH as the agent does at start,
//                                     then checkpoints it to PATH.again; prints the peak RSS of each
//                                     (what they cost on top of the store)
//   --rollup-rows N                   rows per rollup chunk (Options::rollup_chunk_rows) of the
//                                     full store and --breakdown
//   --store-from PATH                 the benchmarks' full store is restored from PATH (a file
//                                     --rss --save wrote) instead of filled: seconds, not minutes;
//                                     chunks are the same bytes, but laid out as a restore leaves them
//
// Targets: <= 1.5 bytes/sample, < 50 ms for a 24 h query over all series, store well under 64 MiB.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "podgauge/store/store.h"

namespace {

using podgauge::store::Agg;
using podgauge::store::SeriesKey;
using podgauge::store::SeriesKind;
using podgauge::store::Store;
using podgauge::store::Window;

constexpr std::int64_t kT0 = 1'764'460'800'000;
constexpr int kContainers = 500;
constexpr int kSeriesPerContainer = 12;

struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }
};

// What the agent samples every second, as the kernel reports it (integers or µs/ns decimals).
enum Metric : std::uint16_t {
  kCpuUsageSeconds,          // counter, cpu.stat usage_usec / 1e6
  kCpuThrottledPeriods,      // counter, integer
  kCpuThrottledSeconds,      // counter, throttled_usec / 1e6
  kMemoryWorkingSetBytes,    // gauge, page multiples
  kMemoryRssBytes,           // gauge
  kMemoryCacheBytes,         // gauge
  kMemorySwapBytes,          // gauge, mostly 0
  kMemoryLimitBytes,         // gauge, constant
  kPsiCpuSomeSeconds,        // counter, total= µs / 1e6
  kPsiMemorySomeSeconds,     // counter
  kPsiMemoryFullSeconds,     // counter
  kOomKills,                 // counter, integer, mostly 0
};

SeriesKind kind_of(int m) {
  switch (m) {
    case kMemoryWorkingSetBytes:
    case kMemoryRssBytes:
    case kMemoryCacheBytes:
    case kMemorySwapBytes:
    case kMemoryLimitBytes:
      return SeriesKind::kGauge;
    default:
      return SeriesKind::kCounter;
  }
}

// One container's 12 series. Activity: 0 idle (sleeping), 1 moderate, 2 busy.
struct Container {
  int activity;
  Rng rng;
  std::int64_t usage_us = 0, thr_periods = 0, thr_us = 0, psi_cpu = 0, psi_msome = 0, psi_mfull = 0;
  std::int64_t ws_pages, rss_pages, cache_pages, limit;
  std::int64_t ooms = 0;

  explicit Container(int i) : activity(i % 10 < 6 ? 0 : i % 10 < 9 ? 1 : 2), rng{0x9E3779B97F4A7C15ull * (i + 1)} {
    ws_pages = 5000 + rng.below(200000);
    rss_pages = ws_pages * 3 / 4;
    cache_pages = ws_pages / 4;
    limit = (std::int64_t{1} << 30) * (1 + i % 4);
  }

  void tick(double out[kSeriesPerContainer]) {
    const std::int64_t cpu_per_s = activity == 0 ? 150 : activity == 1 ? 50'000 : 800'000;
    usage_us += activity == 0 ? rng.below(cpu_per_s) : cpu_per_s * 8 / 10 + rng.below(cpu_per_s * 4 / 10);
    if (activity == 2 && rng.below(4) == 0) {
      thr_periods += 1 + rng.below(10);
      thr_us += rng.below(20'000);
    }
    if (activity > 0) psi_cpu += rng.below(activity == 1 ? 2'000 : 60'000);
    if (activity == 2 && rng.below(20) == 0) psi_msome += rng.below(5'000);
    if (activity == 2 && rng.below(60) == 0) psi_mfull += rng.below(2'000);
    const std::int64_t change_every = activity == 0 ? 300 : activity == 1 ? 10 : 1;
    if (rng.below(change_every) == 0) {
      const std::int64_t d = rng.below(activity == 2 ? 512 : 32) - (activity == 2 ? 250 : 15);
      ws_pages = std::max<std::int64_t>(1000, ws_pages + d);
      rss_pages = std::max<std::int64_t>(500, rss_pages + d * 3 / 4);
    }
    if (rng.below(change_every * 5) == 0) cache_pages += rng.below(16);
    out[kCpuUsageSeconds] = static_cast<double>(usage_us) / 1e6;
    out[kCpuThrottledPeriods] = static_cast<double>(thr_periods);
    out[kCpuThrottledSeconds] = static_cast<double>(thr_us) / 1e6;
    out[kMemoryWorkingSetBytes] = static_cast<double>(ws_pages * 4096);
    out[kMemoryRssBytes] = static_cast<double>(rss_pages * 4096);
    out[kMemoryCacheBytes] = static_cast<double>(cache_pages * 4096);
    out[kMemorySwapBytes] = 0;
    out[kMemoryLimitBytes] = static_cast<double>(limit);
    out[kPsiCpuSomeSeconds] = static_cast<double>(psi_cpu) / 1e6;
    out[kPsiMemorySomeSeconds] = static_cast<double>(psi_msome) / 1e6;
    out[kPsiMemoryFullSeconds] = static_cast<double>(psi_mfull) / 1e6;
    out[kOomKills] = static_cast<double>(ooms);
  }
};

// `cpu_decimals` >= 0 keeps the seconds counters (CPU, throttling, PSI) to that many decimals.
void set_kinds(Store& s, int cpu_decimals) {
  for (int m = 0; m < kSeriesPerContainer; ++m) s.set_kind(static_cast<std::uint16_t>(m), kind_of(m));
  for (int m : {kCpuUsageSeconds, kCpuThrottledSeconds, kPsiCpuSomeSeconds, kPsiMemorySomeSeconds,
                kPsiMemoryFullSeconds})
    s.set_precision(static_cast<std::uint16_t>(m), cpu_decimals);
}

// Fills `hours` of 1 s samples for the whole node; returns the last timestamp. Time-major is what
// the agent does (every series each tick, expire every minute). Block-major appends 10 minutes of
// one container at a time, then expires: the same contents and nearly the same heap history,
// several times faster (cache-friendly), for the benchmarks' fixture.
std::int64_t fill_node(Store& s, int hours, bool time_major, int cpu_decimals) {
  set_kinds(s, cpu_decimals);
  std::vector<Container> cs;
  for (int i = 0; i < kContainers; ++i) cs.emplace_back(i);
  double v[kSeriesPerContainer];
  const std::int64_t end = kT0 + (hours * 3600 - 1) * 1000;
  auto add = [&](int i, std::int64_t t) {
    cs[static_cast<std::size_t>(i)].tick(v);
    for (int m = 0; m < kSeriesPerContainer; ++m)
      s.append({static_cast<std::uint64_t>(1000 + i), static_cast<std::uint16_t>(m)}, t, v[m]);
  };
  const std::int64_t block = time_major ? 1 : 600;
  for (std::int64_t sec = 0; sec < hours * 3600; sec += block) {
    for (int i = 0; i < kContainers; ++i)
      for (std::int64_t j = sec; j < std::min<std::int64_t>(sec + block, hours * 3600); ++j) add(i, kT0 + j * 1000);
    if (sec % 60 == 0 || !time_major) s.expire(kT0 + sec * 1000);
  }
  s.expire(end);
  return end;
}

int g_cpu_decimals = -1;
bool g_time_major = false;
const char* g_store_from = nullptr;
std::uint32_t g_rollup_rows = podgauge::store::Options{}.rollup_chunk_rows;
podgauge::store::Options bench_options() { return {.rollup_chunk_rows = g_rollup_rows}; }

Store& full_store(std::int64_t* now = nullptr, bool time_major = false) {
  static std::int64_t last = 0;
  static Store* s = [time_major] {
    auto* st = new Store(bench_options());
    const auto a = std::chrono::steady_clock::now();
    if (g_store_from) {
      set_kinds(*st, g_cpu_decimals);
      const auto rep = st->restore(g_store_from);
      if (!rep.ok() || rep.series_loaded == 0) {
        std::fprintf(stderr, "cannot use %s: %s\n", g_store_from, rep.ok() ? "empty" : rep.errors.front().c_str());
        std::exit(1);
      }
      last = kT0 + (26 * 3600 - 1) * 1000;
      const auto e = std::chrono::steady_clock::now();
      const auto ex = st->expire(last);  // as the agent does every minute (and fill_node at its end)
      std::fprintf(stderr,
                   "restored %zu series from %s in %.1f s wall, then expire in %.0f ms (%zu holds of the lock, "
                   "longest %.2f ms)\n",
                   rep.series_loaded, g_store_from, std::chrono::duration<double>(e - a).count(),
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - e).count(),
                   ex.lock_holds, static_cast<double>(ex.longest_lock_hold_us) / 1000.0);
      return st;
    }
    last = fill_node(*st, 26, time_major, g_cpu_decimals);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    std::fprintf(stderr, "filled 26 h x %d series (%s, CPU seconds %s) in %.1f s wall\n",
                 kContainers * kSeriesPerContainer, time_major ? "time-major" : "block-major",
                 g_cpu_decimals < 0 ? "exact" : "to the ms", secs);
    return st;
  }();
  if (now) *now = last;
  return *s;
}

// ---- bytes per sample, one series type at a time ---------------------------------------------

enum Shape {
  kCpuBusyUsec,
  kCpuModerateUsec,
  kCpuIdleUsec,
  kCpuBusyNsec,
  kCpuRateDouble,
  kMemorySlowPages,
  kMemoryBusyPages,
  kConstantGauge,
  kPsiAvg10,
  kNoisyGaugeDouble,
  kThrottledPeriods,
  kShapes
};
const char* kShapeName[] = {"cpu_counter_busy_usec", "cpu_counter_moderate_usec", "cpu_counter_idle_usec",
                            "cpu_counter_busy_nsec", "cpu_rate_as_double",  "memory_bytes_slow",
                            "memory_bytes_busy",     "constant_gauge",      "psi_avg10_2_decimals",
                            "noisy_gauge_double",    "throttled_periods"};

void BM_BytesPerSample(benchmark::State& state) {
  const auto shape = static_cast<Shape>(state.range(0));
  const bool jitter = state.range(1) != 0;
  const int decimals = static_cast<int>(state.range(2));
  const bool counter = shape == kCpuBusyUsec || shape == kCpuModerateUsec || shape == kCpuIdleUsec ||
                       shape == kCpuBusyNsec || shape == kThrottledPeriods;
  double bytes_per_sample = 0;
  for (auto _ : state) {
    Store s;
    s.set_kind(1, counter ? SeriesKind::kCounter : SeriesKind::kGauge);
    s.set_precision(1, decimals);
    Rng rng{42};
    std::int64_t acc = 0;
    double g = 3e8;
    for (int i = 0; i < 3600; ++i) {
      const std::int64_t t = kT0 + i * 1000 + (jitter ? rng.below(5) - 2 : 0);
      double v = 0;
      switch (shape) {
        case kCpuBusyUsec: acc += 400'000 + rng.below(200'000); v = static_cast<double>(acc) / 1e6; break;
        case kCpuModerateUsec: acc += 45'000 + rng.below(10'000); v = static_cast<double>(acc) / 1e6; break;
        case kCpuIdleUsec: acc += rng.below(150); v = static_cast<double>(acc) / 1e6; break;
        case kCpuBusyNsec: acc += 400'000'000 + rng.below(200'000'000); v = static_cast<double>(acc) / 1e9; break;
        case kCpuRateDouble: v = 0.4 + 0.2 * rng.uniform(); break;
        case kMemorySlowPages: if (rng.below(30) == 0) g += 4096.0 * static_cast<double>(rng.below(64) - 30); v = g; break;
        case kMemoryBusyPages: g += 4096.0 * static_cast<double>(rng.below(512) - 250); v = g; break;
        case kConstantGauge: v = 536870912; break;
        case kPsiAvg10: v = static_cast<double>(rng.below(500)) / 100.0; break;
        case kNoisyGaugeDouble: v = 100.0 * rng.uniform(); break;
        case kThrottledPeriods: if (rng.below(4) == 0) acc += 1 + rng.below(10); v = static_cast<double>(acc); break;
        case kShapes: break;
      }
      s.append({1, 1}, t, v);
    }
    const auto st = s.stats();
    bytes_per_sample = static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(st.sealed_raw_samples);
    benchmark::DoNotOptimize(st);
  }
  state.counters["bytes_per_sample"] = bytes_per_sample;
  state.counters["meets_1.5"] = bytes_per_sample <= 1.5 ? 1 : 0;
  state.SetLabel(std::string(kShapeName[shape]) + (jitter ? " +-2ms jitter" : "") +
                 (decimals >= 0 ? " kept to " + std::to_string(decimals) + " decimals" : ""));
}
BENCHMARK(BM_BytesPerSample)
    ->ArgsProduct({benchmark::CreateDenseRange(0, kShapes - 1, 1), {0}, {-1}})
    ->Args({kCpuBusyUsec, 0, 3})
    ->Args({kCpuModerateUsec, 0, 3})
    ->Args({kCpuBusyNsec, 0, 3})
    ->Args({kCpuModerateUsec, 1, -1})
    ->Args({kCpuModerateUsec, 1, 3})
    ->Args({kMemorySlowPages, 1, -1})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// ---- the realistic node mix -------------------------------------------------------------------

void BM_NodeMixBytesPerSample(benchmark::State& state) {
  double bps = 0, rollup_bpr = 0;
  for (auto _ : state) {
    Store s;
    fill_node(s, 1, false, static_cast<int>(state.range(0)));
    const auto st = s.stats();
    bps = static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(st.sealed_raw_samples);
    rollup_bpr = static_cast<double>(st.rollup_bytes) / static_cast<double>(st.rollup_rows);
  }
  state.counters["raw_bytes_per_sample"] = bps;
  state.counters["rollup_bytes_per_10s_row"] = rollup_bpr;
  state.SetLabel(std::string("500 containers x 12 series, 60% idle / 30% moderate / 10% busy, 1 h, CPU seconds ") +
                 (state.range(0) < 0 ? "exact" : "to the ms"));
}
BENCHMARK(BM_NodeMixBytesPerSample)->Arg(-1)->Arg(3)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_AppendNodeTick(benchmark::State& state) {
  Store s;
  set_kinds(s, -1);
  std::vector<Container> cs;
  for (int i = 0; i < kContainers; ++i) cs.emplace_back(i);
  double v[kSeriesPerContainer];
  std::int64_t t = kT0;
  for (auto _ : state) {
    t += 1000;
    for (int i = 0; i < kContainers; ++i) {
      cs[static_cast<std::size_t>(i)].tick(v);
      for (int m = 0; m < kSeriesPerContainer; ++m)
        s.append({static_cast<std::uint64_t>(1000 + i), static_cast<std::uint16_t>(m)}, t, v[m]);
    }
  }
  state.SetItemsProcessed(state.iterations() * kContainers * kSeriesPerContainer);
  state.SetLabel("one 1 s tick of 6000 series");
}
BENCHMARK(BM_AppendNodeTick)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// The same tick through Store::append_batch: one lock for the 6,000 samples.
void BM_AppendNodeTickBatch(benchmark::State& state) {
  Store s;
  set_kinds(s, -1);
  std::vector<Container> cs;
  for (int i = 0; i < kContainers; ++i) cs.emplace_back(i);
  double v[kSeriesPerContainer];
  std::vector<podgauge::store::AppendItem> items;
  items.reserve(kContainers * kSeriesPerContainer);
  std::int64_t t = kT0;
  for (auto _ : state) {
    t += 1000;
    items.clear();
    for (int i = 0; i < kContainers; ++i) {
      cs[static_cast<std::size_t>(i)].tick(v);
      for (int m = 0; m < kSeriesPerContainer; ++m)
        items.push_back({{static_cast<std::uint64_t>(1000 + i), static_cast<std::uint16_t>(m)}, v[m]});
    }
    s.append_batch(t, items);
  }
  state.SetItemsProcessed(state.iterations() * kContainers * kSeriesPerContainer);
  state.SetLabel("one 1 s tick of 6000 series, one append_batch");
}
BENCHMARK(BM_AppendNodeTickBatch)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// ---- 24 h queries over the full node ----------------------------------------------------------

void BM_Query24hAllSeries(benchmark::State& state) {
  std::int64_t now = 0;
  const Store& s = full_store(&now);
  const auto agg = static_cast<Agg>(state.range(0));
  std::size_t n = 0;
  for (auto _ : state) {
    auto r = s.query_all({}, Window{now - 86'400'000, now}, agg, 0.95);
    n = r.size();
    benchmark::DoNotOptimize(r);
  }
  static const char* names[] = {"avg", "min", "max", "last", "rate", "p95"};
  state.SetLabel(std::string(names[state.range(0)]) + " over " + std::to_string(n) + " series");
}
BENCHMARK(BM_Query24hAllSeries)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);

// The same with the window's start moved 0, 10, ..., 110 min later, so it falls anywhere in each
// series' oldest chunk (at now - 24 h it cuts the fill's oldest chunk at its last row), and the
// window still ends now, as the agent's queries do.
void BM_Query24hMovedStart(benchmark::State& state) {
  std::int64_t now = 0;
  const Store& s = full_store(&now);
  const auto agg = static_cast<Agg>(state.range(0));
  std::int64_t k = 0;
  for (auto _ : state) {
    const std::int64_t start = now - 86'400'000 + (k++ % 12) * 600'000;
    auto r = s.query_all({}, Window{start, now}, agg, 0.95);
    benchmark::DoNotOptimize(r);
  }
  static const char* names[] = {"avg", "min", "max", "last", "rate", "p95"};
  state.SetLabel(std::string(names[state.range(0)]) + ", window starts at now - 24 h + 0, 10, ..., 110 min");
}
BENCHMARK(BM_Query24hMovedStart)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);

// The query: one metric over all containers of the node (500 series), 24 h, with the
// start moved through the oldest chunk as above.
void BM_Query24hOneMetricMovedStart(benchmark::State& state) {
  std::int64_t now = 0;
  const Store& s = full_store(&now);
  const auto agg = static_cast<Agg>(state.range(0));
  std::int64_t k = 0;
  std::size_t n = 0;
  for (auto _ : state) {
    const std::int64_t start = now - 86'400'000 + (k++ % 12) * 600'000;
    auto r = s.query_all({.target = std::nullopt, .metric = kMemoryWorkingSetBytes}, Window{start, now}, agg, 0.95);
    n = r.size();
    benchmark::DoNotOptimize(r);
  }
  static const char* names[] = {"avg", "min", "max", "last", "rate", "p95"};
  state.SetLabel(std::string(names[state.range(0)]) + " working set over " + std::to_string(n) +
                 " containers, window starts at now - 24 h + 0, 10, ..., 110 min");
}
BENCHMARK(BM_Query24hOneMetricMovedStart)->DenseRange(0, 5)->Unit(benchmark::kMillisecond);

void BM_Query1hOneMetricAllContainers(benchmark::State& state) {
  std::int64_t now = 0;
  const Store& s = full_store(&now);
  for (auto _ : state) {
    auto r = s.query_all({.target = std::nullopt, .metric = kMemoryWorkingSetBytes}, Window{now - 3'600'000, now},
                         static_cast<Agg>(state.range(0)), 0.95);
    benchmark::DoNotOptimize(r);
  }
  state.SetLabel(state.range(0) == 5 ? "p95 working set, 500 containers, raw tier" : "max working set, raw tier");
}
BENCHMARK(BM_Query1hOneMetricAllContainers)->Arg(2)->Arg(5)->Unit(benchmark::kMillisecond);

void BM_Checkpoint(benchmark::State& state) {
  const Store& s = full_store();
  const auto path = std::filesystem::temp_directory_path() / ("store_bench_" + std::to_string(::getpid()) + ".ckpt");
  std::uint64_t bytes = 0;
  for (auto _ : state) bytes = s.checkpoint(path).bytes;
  state.counters["file_MiB"] = static_cast<double>(bytes) / (1 << 20);
  state.SetLabel("write + fsync + rename of the full 24 h store");
  std::filesystem::remove(path);
}
BENCHMARK(BM_Checkpoint)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Restore(benchmark::State& state) {
  const Store& s = full_store();
  const auto path = std::filesystem::temp_directory_path() / ("store_bench_" + std::to_string(::getpid()) + ".ckpt");
  s.checkpoint(path);
  for (auto _ : state) {
    Store t;
    auto rep = t.restore(path);
    if (!rep.ok()) state.SkipWithError(rep.errors.front().c_str());
    benchmark::DoNotOptimize(rep);
  }
  state.SetLabel("read, verify, decode and rebuild the full 24 h store");
  std::filesystem::remove(path);
}
BENCHMARK(BM_Restore)->Unit(benchmark::kMillisecond)->Iterations(3);

long proc_status_kib(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::stol(line.substr(n + 1));
  return -1;
}
long vm_rss_kib() { return proc_status_kib("VmRSS"); }
// Peak RSS since the last reset_peak_rss() (or the process start).
long vm_hwm_kib() { return proc_status_kib("VmHWM"); }
void reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // resets VmHWM to the current RSS (Linux >= 4.0)
}

void print_breakdown(const Store& s) {
  const auto st = s.stats();
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf("breakdown: raw chunks %.1f MiB, rollup chunks %.1f MiB (of which sketches %.1f), chunk index %.1f MiB "
              "(%zu chunks, %llu heap blocks), series state %.1f MiB, open-chunk slack %.1f MiB\n",
              mib(st.raw_bytes), mib(st.rollup_bytes - st.sketch_bytes), mib(st.sketch_bytes), mib(st.chunk_index_bytes),
              st.chunks, static_cast<unsigned long long>(st.sealed_allocations), mib(st.series_struct_bytes),
              mib(st.open_slack_bytes));
  const struct mallinfo2 mi = mallinfo2();
  std::printf("heap in use %.1f MiB, free in heap %.1f MiB\n", static_cast<double>(mi.uordblks) / (1 << 20),
              static_cast<double>(mi.fordblks) / (1 << 20));
}

int restore_rss_mode(const char* path) {
  const long before = vm_rss_kib();
  Store s;
  set_kinds(s, g_cpu_decimals);
  const auto a = std::chrono::steady_clock::now();
  const auto rep = s.restore(path);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  if (!rep.ok()) std::printf("restore reported: %s\n", rep.errors.front().c_str());
  const long after = vm_rss_kib(), peak = vm_hwm_kib();
  std::error_code ec;
  std::printf("restore of %s (%.1f MiB, %zu series) in %.2f s: VmRSS before %ld KiB, after %ld KiB, peak %ld KiB: "
              "restore peaked %.1f MiB above the restored store\n",
              path, static_cast<double>(std::filesystem::file_size(path, ec)) / (1 << 20), rep.series_loaded, secs,
              before, after, peak, static_cast<double>(peak - after) / 1024.0);
  print_breakdown(s);
  if (!rep.ok()) return 1;
  // Then a checkpoint of what was restored, as the agent writes one every minute.
  malloc_trim(0);
  reset_peak_rss();
  const long at = vm_rss_kib();
  const std::string out = std::string(path) + ".again";
  const auto b = std::chrono::steady_clock::now();
  const auto info = s.checkpoint(out);
  const double csecs = std::chrono::duration<double>(std::chrono::steady_clock::now() - b).count();
  const long cpeak = vm_hwm_kib();
  std::printf("checkpoint of it (%.1f MiB) in %.2f s: VmRSS before %ld KiB, peak %ld KiB: checkpoint peaked %.1f MiB "
              "above the store\n",
              static_cast<double>(info.bytes) / (1 << 20), csecs, at, cpeak, static_cast<double>(cpeak - at) / 1024.0);
  std::filesystem::remove(out);
  return 0;
}

// Per metric and activity: what one container's series cost after 26 h.
int breakdown_mode() {
  static const char* names[] = {"cpu_usage_s", "thr_periods", "thr_s", "ws_bytes", "rss_bytes", "cache_bytes",
                                "swap_bytes", "limit_bytes", "psi_cpu_s", "psi_msome_s", "psi_mfull_s", "ooms"};
  for (int activity = 0; activity < 3; ++activity) {
    Container c(activity == 0 ? 0 : activity == 1 ? 6 : 9);
    Store s(bench_options());
    set_kinds(s, g_cpu_decimals);
    double v[kSeriesPerContainer];
    const std::int64_t end = kT0 + (26 * 3600 - 1) * 1000;
    for (std::int64_t sec = 0; sec < 26 * 3600; ++sec) {
      c.tick(v);
      for (int m = 0; m < kSeriesPerContainer; ++m) s.append({1, static_cast<std::uint16_t>(m)}, kT0 + sec * 1000, v[m]);
    }
    s.expire(end);
    std::printf("activity %d (raw B/sample / rollup B/row):", activity);
    for (int m = 0; m < kSeriesPerContainer; ++m) {
      const auto st = s.stats({.target = std::nullopt, .metric = static_cast<std::uint16_t>(m)});
      std::printf(" %s=%.2f/%.2f", names[m],
                  static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(std::max<std::uint64_t>(1, st.sealed_raw_samples)),
                  static_cast<double>(st.rollup_bytes) / static_cast<double>(st.rollup_rows));
    }
    const auto st = s.stats();
    std::printf("\n  raw %.2f B/sample, rollup %.2f B/row over 12 series\n",
                static_cast<double>(st.raw_bytes) / static_cast<double>(st.raw_samples),
                static_cast<double>(st.rollup_bytes) / static_cast<double>(st.rollup_rows));
  }
  return 0;
}

int rss_mode(const char* save_path) {
  const long before = vm_rss_kib();
  std::int64_t now = 0;
  const Store& s = full_store(&now, g_time_major);
  const long after = vm_rss_kib();
  const auto st = s.stats();
  std::printf("full store: %zu series, %llu raw samples, %llu rollup rows, %zu chunks\n", st.series,
              static_cast<unsigned long long>(st.raw_samples), static_cast<unsigned long long>(st.rollup_rows), st.chunks);
  std::printf("encoded: raw %.1f MiB (%.3f B/sample sealed), rollup %.1f MiB (%.2f B/10 s row)\n",
              static_cast<double>(st.raw_bytes) / (1 << 20),
              static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(st.sealed_raw_samples),
              static_cast<double>(st.rollup_bytes) / (1 << 20),
              static_cast<double>(st.rollup_bytes) / static_cast<double>(st.rollup_rows));
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::printf("breakdown: raw chunks %.1f MiB, rollup chunks %.1f MiB (of which sketches %.1f), chunk index %.1f MiB "
              "(%llu sealed chunks), series state %.1f MiB, open-chunk slack %.1f MiB\n",
              mib(st.raw_bytes), mib(st.rollup_bytes - st.sketch_bytes), mib(st.sketch_bytes), mib(st.chunk_index_bytes),
              static_cast<unsigned long long>(st.sealed_allocations), mib(st.series_struct_bytes), mib(st.open_slack_bytes));
  const struct mallinfo2 mi = mallinfo2();
  std::printf("VmRSS before fill %ld KiB, after %ld KiB: the store costs %.1f MiB (heap in use %.1f MiB, free in heap %.1f MiB)\n",
              before, after, static_cast<double>(after - before) / 1024.0, static_cast<double>(mi.uordblks) / (1 << 20),
              static_cast<double>(mi.fordblks) / (1 << 20));
  const auto tt = std::chrono::steady_clock::now();
  malloc_trim(0);
  std::printf("after malloc_trim(0) (%.1f ms): VmRSS %ld KiB\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tt).count(), vm_rss_kib());
  if (save_path) {
    reset_peak_rss();
    const long at = vm_rss_kib();
    const auto a = std::chrono::steady_clock::now();
    const auto info = s.checkpoint(save_path);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    const long peak = vm_hwm_kib();
    std::printf("checkpoint to %s: %.1f MiB, %zu series in %.2f s: VmRSS before %ld KiB, peak %ld KiB "
                "(%.1f MiB above the store)\n",
                save_path, static_cast<double>(info.bytes) / (1 << 20), info.series, secs, at, peak,
                static_cast<double>(peak - at) / 1024.0);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool rss = false;
  const char* save = nullptr;
  const char* restore_rss = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rss") == 0) rss = true;
    if (std::strcmp(argv[i], "--cpu-ms") == 0) g_cpu_decimals = 3;
    if (std::strcmp(argv[i], "--time-major") == 0) g_time_major = true;
    if (i + 1 < argc && std::strcmp(argv[i], "--save") == 0) save = argv[i + 1];
    if (i + 1 < argc && std::strcmp(argv[i], "--rollup-rows") == 0)
      g_rollup_rows = static_cast<std::uint32_t>(std::stoul(argv[i + 1]));
    if (i + 1 < argc && std::strcmp(argv[i], "--restore-rss") == 0) restore_rss = argv[i + 1];
  }
  if (restore_rss) return restore_rss_mode(restore_rss);
  if (rss) return rss_mode(save);
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--breakdown") == 0) return breakdown_mode();
  // --cpu-ms also applies to the benchmarks' full store; strip it before Google Benchmark sees it.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 < argc && std::strcmp(argv[i], "--store-from") == 0) {
      g_store_from = argv[++i];
      continue;
    }
    if (std::strcmp(argv[i], "--cpu-ms") != 0) argv[kept++] = argv[i];
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
