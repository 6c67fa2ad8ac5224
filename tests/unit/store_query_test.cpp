// The store against a naive reference: every sample kept in a vector, every answer recomputed
// from scratch. Synthetic clocks (timestamps are the caller's) cover 24 h windows in seconds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <tuple>
#include <vector>

#include "podgauge/store/store.h"

namespace podgauge::store {
namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;  // 2025-11-30T00:00:00Z
constexpr std::int64_t kStep = 10'000;
constexpr std::uint16_t kMem = 1;
constexpr std::uint16_t kCpu = 2;

const char* agg_name(Agg a) {
  switch (a) {
    case Agg::kAvg: return "avg";
    case Agg::kMin: return "min";
    case Agg::kMax: return "max";
    case Agg::kLast: return "last";
    case Agg::kRate: return "rate";
    case Agg::kPercentile: return "percentile";
  }
  return "?";
}

std::optional<double> quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const double rank = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

// A point of the reference: a raw sample, or a bucket in the rollup reference.
struct Point {
  std::int64_t t;
  double count, sum, min, max, last, corr;
};

std::optional<double> reference(const std::vector<Point>& pts, SeriesKind kind, Agg agg, double q,
                                bool raw) {
  if (pts.empty()) return std::nullopt;
  const double secs = static_cast<double>(pts.back().t - pts.front().t) / 1000.0;
  if (kind == SeriesKind::kGauge) {
    double sum = 0, n = 0, mn = INFINITY, mx = -INFINITY;
    std::vector<double> means;
    for (const auto& p : pts) {
      sum += p.sum;
      n += p.count;
      mn = std::min(mn, p.min);
      mx = std::max(mx, p.max);
      means.push_back(p.sum / p.count);
    }
    switch (agg) {
      case Agg::kAvg: return sum / n;
      case Agg::kMin: return mn;
      case Agg::kMax: return mx;
      case Agg::kLast: return pts.back().last;
      case Agg::kRate:
        if (secs <= 0) return std::nullopt;
        return (pts.back().last - pts.front().last) / secs;
      case Agg::kPercentile: return quantile(means, q);
    }
  }
  double inc = 0;
  std::vector<double> rates;
  for (std::size_t i = 1; i < pts.size(); ++i) {
    const double prev = pts[i - 1].last;
    double d;
    if (raw) {
      d = pts[i].last < prev ? pts[i].last : pts[i].last - prev;  // reset: restarted from 0
    } else {
      d = pts[i].last - prev + pts[i].corr;
    }
    inc += d;
    rates.push_back(d / (static_cast<double>(pts[i].t - pts[i - 1].t) / 1000.0));
  }
  switch (agg) {
    case Agg::kAvg:
    case Agg::kRate:
      if (secs <= 0) return std::nullopt;
      return inc / secs;
    case Agg::kMin:
      if (rates.empty()) return std::nullopt;
      return *std::min_element(rates.begin(), rates.end());
    case Agg::kMax:
      if (rates.empty()) return std::nullopt;
      return *std::max_element(rates.begin(), rates.end());
    case Agg::kLast: return pts.back().last;
    case Agg::kPercentile: return quantile(rates, q);
  }
  return std::nullopt;
}

std::int64_t bucket_of(std::int64_t t) { return t / kStep - ((t % kStep != 0 && t < 0) ? 1 : 0); }

std::vector<Point> naive_buckets(const std::vector<Sample>& all, SeriesKind kind) {
  std::vector<Point> out;
  double prev = 0;
  bool have_prev = false;
  for (const auto& s : all) {
    if (out.empty() || bucket_of(out.back().t) != bucket_of(s.t_ms))
      out.push_back({s.t_ms, 0, 0, INFINITY, -INFINITY, 0, 0});
    Point& p = out.back();
    p.t = s.t_ms;
    p.count += 1;
    p.sum += s.value;
    p.min = std::min(p.min, s.value);
    p.max = std::max(p.max, s.value);
    p.last = s.value;
    if (kind == SeriesKind::kCounter && have_prev && s.value < prev) p.corr += prev;
    prev = s.value;
    have_prev = true;
  }
  return out;
}

std::vector<Point> in_window_raw(const std::vector<Sample>& all, Window w) {
  std::vector<Point> out;
  for (const auto& s : all)
    if (s.t_ms >= w.start_ms && s.t_ms <= w.end_ms)
      out.push_back({s.t_ms, 1, s.value, s.value, s.value, s.value, 0});
  return out;
}

std::vector<Point> in_window_buckets(const std::vector<Point>& b, Window w) {
  std::vector<Point> out;
  for (const auto& p : b) {
    const std::int64_t start = bucket_of(p.t) * kStep;
    if (start <= w.end_ms && start + kStep > w.start_ms) out.push_back(p);
  }
  return out;
}

// Rollup percentiles come from per-chunk sketches: within kRollupPercentileRelativeError of the
// exact value (the reference's values here are never of mixed sign).
double tolerance_for(Agg agg, Tier tier) {
  return agg == Agg::kPercentile && tier == Tier::kRollup ? kRollupPercentileRelativeError : 0.0;
}

void expect_close(std::optional<double> got, std::optional<double> want, const std::string& what,
                  double relative = 0) {
  ASSERT_EQ(got.has_value(), want.has_value()) << what;
  if (!want) return;
  const double tol = 1e-9 * std::max(1.0, std::fabs(*want)) + relative * std::fabs(*want);
  EXPECT_NEAR(*got, *want, tol) << what;
}

// A realistic-ish random series: 1 s ticks with occasional gaps, memory-like gauge or a CPU
// counter (cumulative seconds at µs resolution) with occasional restarts.
std::vector<Sample> make_series(std::mt19937_64& rng, SeriesKind kind, std::int64_t start,
                                std::int64_t seconds) {
  std::vector<Sample> out;
  double v = kind == SeriesKind::kGauge ? 2e8 : 100.0;
  std::int64_t usec = 100'000'000;
  for (std::int64_t i = 0; i < seconds; ++i) {
    if (rng() % 200 == 0) i += static_cast<std::int64_t>(rng() % 30);  // agent paused, pod idle
    const std::int64_t t = start + i * 1000;
    if (kind == SeriesKind::kGauge) {
      if (rng() % 20 == 0) v += 4096.0 * (static_cast<double>(rng() % 200) - 90.0);
      out.push_back({t, v});
    } else {
      usec += static_cast<std::int64_t>(rng() % 300'000);
      if (rng() % 3000 == 0) usec = static_cast<std::int64_t>(rng() % 1000);  // container restart
      out.push_back({t, static_cast<double>(usec) / 1e6});
    }
  }
  return out;
}

void check_windows(const Store& store, const SeriesKey& key, SeriesKind kind,
                   const std::vector<Sample>& all, std::mt19937_64& rng, std::int64_t from,
                   std::int64_t to, Tier tier, int windows) {
  const auto buckets = naive_buckets(all, kind);
  for (int i = 0; i < windows; ++i) {
    std::int64_t a = from + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(to - from));
    std::int64_t b = from + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(to - from));
    if (i == 0) {
      a = from;
      b = to;
    }
    Window w{std::min(a, b), std::max(a, b)};
    const auto pts = tier == Tier::kRaw ? in_window_raw(all, w) : in_window_buckets(buckets, w);
    for (Agg agg : {Agg::kAvg, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kRate, Agg::kPercentile}) {
      for (double q : {0.5, 0.95}) {
        if (agg != Agg::kPercentile && q != 0.5) continue;
        const auto got = store.query(key, w, agg, q);
        const std::string what = std::string(agg_name(agg)) + " q=" + std::to_string(q) + " window [" +
                                 std::to_string(w.start_ms - kT0) + "," + std::to_string(w.end_ms - kT0) + "]";
        expect_close(got ? std::optional<double>(got->value) : std::nullopt,
                     reference(pts, kind, agg, q, tier == Tier::kRaw), what, tolerance_for(agg, tier));
        if (got) {
          EXPECT_EQ(got->tier, tier) << what;
        }
      }
    }
  }
}

TEST(StoreAppend, rejects_out_of_order_duplicate_and_non_finite_samples) {
  Store s;
  const SeriesKey k{7, kMem};
  EXPECT_EQ(s.append(k, kT0, 1), AppendStatus::kOk);
  EXPECT_EQ(s.append(k, kT0, 2), AppendStatus::kDuplicate);
  EXPECT_EQ(s.append(k, kT0 - 1, 3), AppendStatus::kOutOfOrder);
  EXPECT_EQ(s.append(k, kT0 + 1, NAN), AppendStatus::kNotFinite);
  EXPECT_EQ(s.append(k, kT0 + 1, INFINITY), AppendStatus::kNotFinite);
  EXPECT_EQ(s.append(k, kT0 + 1, -INFINITY), AppendStatus::kNotFinite);
  EXPECT_EQ(s.append(k, kT0 + 1000, -0.0), AppendStatus::kOk);
  const auto raw = s.raw_samples(k);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw[0], (Sample{kT0, 1}));
  EXPECT_TRUE(std::signbit(raw[1].value));
  // Another series keeps its own clock.
  EXPECT_EQ(s.append({8, kMem}, kT0 - 5000, 1), AppendStatus::kOk);
}

TEST(StoreAppend, raw_tier_round_trips_exactly_across_sealed_chunks) {
  std::mt19937_64 rng(5);
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  for (auto [metric, kind] : {std::pair{kMem, SeriesKind::kGauge}, std::pair{kCpu, SeriesKind::kCounter}}) {
    const SeriesKey k{1, metric};
    auto all = make_series(rng, kind, kT0, 3000);
    std::uniform_real_distribution<double> any(-1e12, 1e12);
    all.push_back({all.back().t_ms + 1, any(rng)});  // a full-mantissa value and a 1 ms step
    all.push_back({all.back().t_ms + 86'400'000'000, 0.0});  // a thousand-day gap
    for (const auto& x : all) ASSERT_EQ(s.append(k, x.t_ms, x.value), AppendStatus::kOk);
    EXPECT_EQ(s.raw_samples(k), all);
  }
}

TEST(StoreRollup, buckets_hold_count_sum_min_max_last_and_reset_corrections) {
  std::mt19937_64 rng(9);
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  for (auto [metric, kind] : {std::pair{kMem, SeriesKind::kGauge}, std::pair{kCpu, SeriesKind::kCounter}}) {
    const SeriesKey k{1, metric};
    const auto all = make_series(rng, kind, kT0 + 3500, 20000);
    for (const auto& x : all) s.append(k, x.t_ms, x.value);
    const auto want = naive_buckets(all, kind);
    const auto got = s.rollup_rows(k);
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      SCOPED_TRACE("bucket " + std::to_string(i));
      EXPECT_EQ(got[i].t_ms, want[i].t);
      EXPECT_EQ(got[i].count, want[i].count);
      EXPECT_EQ(got[i].last, want[i].last);
      EXPECT_EQ(got[i].corr, want[i].corr);
      if (kind == SeriesKind::kGauge) {
        EXPECT_EQ(got[i].sum, want[i].sum);
        EXPECT_EQ(got[i].min, want[i].min);
        EXPECT_EQ(got[i].max, want[i].max);
      }
    }
  }
}

TEST(StoreQuery, raw_tier_answers_match_the_naive_reference) {
  std::mt19937_64 rng(13);
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  for (auto [metric, kind] : {std::pair{kMem, SeriesKind::kGauge}, std::pair{kCpu, SeriesKind::kCounter}}) {
    const SeriesKey k{3, metric};
    const auto all = make_series(rng, kind, kT0, 3000);
    for (const auto& x : all) s.append(k, x.t_ms, x.value);
    check_windows(s, k, kind, all, rng, kT0 - 5000, all.back().t_ms + 5000, Tier::kRaw, 150);
  }
}

TEST(StoreQuery, day_long_windows_use_the_rollup_tier_and_match_the_reference) {
  std::mt19937_64 rng(17);
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  const std::int64_t hours = 26;
  for (auto [metric, kind] : {std::pair{kMem, SeriesKind::kGauge}, std::pair{kCpu, SeriesKind::kCounter}}) {
    const SeriesKey k{4, metric};
    auto all = make_series(rng, kind, kT0, hours * 3600);
    const std::int64_t now = all.back().t_ms;
    for (const auto& x : all) s.append(k, x.t_ms, x.value);
    s.expire(now);
    // What the store may still hold: the last 24 h (and the bucket reaching into them), plus up
    // to 30 min (an eighth of a 4 h chunk) before the oldest chunk is re-encoded without them.
    const auto rows = s.rollup_rows(k);
    ASSERT_FALSE(rows.empty());
    EXPECT_GE(rows.front().t_ms, now - 24 * 3'600'000 - kStep - 1'800'000);
    EXPECT_LE(rows.front().t_ms, now - 24 * 3'600'000 + 31'000);  // + the longest pause in the series
    std::erase_if(all, [&](const Sample& x) { return x.t_ms < rows.front().t_ms - 100'000; });
    // Raw tier: only the last hour (plus up to one 15 min chunk) remains.
    const auto raw = s.raw_samples(k);
    ASSERT_FALSE(raw.empty());
    EXPECT_GE(raw.front().t_ms, now - 75 * 60'000);
    EXPECT_LE(raw.front().t_ms, now - 60 * 60'000);

    // Windows reaching past the raw tier come from the rollup, edges rounded to buckets.
    const std::int64_t from = now - 24 * 3'600'000;
    check_windows(s, k, kind, all, rng, from, raw.front().t_ms - 1, Tier::kRollup, 60);
    const Window day{from, now};
    auto day_avg = s.query(k, day, Agg::kAvg);
    ASSERT_TRUE(day_avg);
    EXPECT_EQ(day_avg->tier, Tier::kRollup);
    // Recent windows still come from raw samples.
    check_windows(s, k, kind, all, rng, raw.front().t_ms, now, Tier::kRaw, 40);
  }
}

// Windows whose edges fall on, just before and just after every chunk boundary: chunks cut by an
// edge are folded from decoded columns (binary search to the window's start, stop after its end),
// whole chunks from their summaries; every alignment must agree with the reference.
TEST(StoreQuery, windows_cut_at_every_chunk_alignment_match_the_reference) {
  std::mt19937_64 rng(23);
  Store s(Options{.raw_retention_ms = 120'000, .history_ms = 86'400'000, .rollup_step_ms = kStep,
                  .raw_chunk_samples = 7, .rollup_chunk_rows = 5});
  s.set_kind(kCpu, SeriesKind::kCounter);
  for (auto [metric, kind] : {std::pair{kMem, SeriesKind::kGauge}, std::pair{kCpu, SeriesKind::kCounter}}) {
    const SeriesKey k{5, metric};
    const auto all = make_series(rng, kind, kT0, 1800);
    const std::int64_t now = all.back().t_ms;
    for (const auto& x : all) s.append(k, x.t_ms, x.value);
    s.expire(now);
    const auto raw = s.raw_samples(k);
    ASSERT_FALSE(raw.empty());
    ASSERT_GT(raw.front().t_ms, kT0 + 600'000) << "the raw tier must have been evicted";
    const auto buckets = naive_buckets(all, kind);
    int checked = 0;
    auto check = [&](Window w, Tier tier) {
      const auto pts = tier == Tier::kRaw ? in_window_raw(all, w) : in_window_buckets(buckets, w);
      for (Agg agg : {Agg::kAvg, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kRate, Agg::kPercentile}) {
        const auto got = s.query(k, w, agg, 0.9);
        const std::string what = std::string(agg_name(agg)) + " window [" + std::to_string(w.start_ms - kT0) +
                                 "," + std::to_string(w.end_ms - kT0) + "]";
        expect_close(got ? std::optional<double>(got->value) : std::nullopt,
                     reference(pts, kind, agg, 0.9, tier == Tier::kRaw), what, tolerance_for(agg, tier));
        if (got) {
          EXPECT_EQ(got->tier, tier) << what;
        }
        ++checked;
      }
    };
    // Rollup tier (50 s chunks): starts every second over several chunks, various lengths.
    for (std::int64_t a = kT0 + 100'000; a < kT0 + 260'000; a += 1'000)
      for (std::int64_t len : {0, 9'999, 10'000, 49'999, 50'000, 137'000})
        check({a, a + len}, Tier::kRollup);
    // Raw tier (7-sample chunks): edges on every sample and 1 ms either side of it.
    for (std::size_t i = 0; i + 20 < raw.size(); ++i)
      for (std::int64_t d : {-1, 0, 1})
        for (std::size_t span : {0, 1, 6, 7, 8, 19}) {
          const Window w{raw[i].t_ms + d, raw[i + span].t_ms + d};
          if (w.start_ms >= raw.front().t_ms) check(w, Tier::kRaw);
        }
    EXPECT_GT(checked, 5000);
  }
}

TEST(StoreQuery, counter_rate_survives_restarts_and_percentiles_are_of_per_step_rates) {
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  const SeriesKey k{1, kCpu};
  // 0.5 CPU for 100 s, the container restarts (counter back to 0), then 1.5 CPU for 100 s.
  double v = 0;
  for (int i = 0; i <= 100; ++i) s.append(k, kT0 + i * 1000, v += (i ? 0.5 : 0));
  v = 0;
  for (int i = 101; i <= 200; ++i) s.append(k, kT0 + i * 1000, v += 1.5);
  const Window w{kT0, kT0 + 200'000};
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kRate)->value, (50.0 + 150.0) / 200.0);
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kMax)->value, 1.5);
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kMin)->value, 0.5);
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kPercentile, 0.25)->value, 0.5);
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kPercentile, 0.75)->value, 1.5);
  EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kLast)->value, 150.0);
  EXPECT_FALSE(s.query(k, {kT0, kT0}, Agg::kRate)) << "one sample has no rate";
  EXPECT_FALSE(s.query(k, {kT0 + 500'000, kT0 + 600'000}, Agg::kAvg)) << "no samples";
  EXPECT_FALSE(s.query({2, kCpu}, w, Agg::kAvg)) << "unknown series";
}

// Whole chunks come from their summaries and a chunk cut by the window's start from its summary
// minus the rows before the window (only those decoded). Against a brute force over the store's
// own decoded rows, on random windows over small chunks (every window cuts one): the same answers
// and the same sample counts, for integer and decimal gauges and counters with restarts.
TEST(StoreQuery, summary_and_edge_paths_match_a_brute_force_decode_on_random_windows) {
  std::mt19937_64 rng(31);
  Store s(Options{.raw_retention_ms = 1'800'000, .history_ms = 86'400'000, .rollup_step_ms = kStep,
                  .raw_chunk_samples = 53, .rollup_chunk_rows = 37});
  s.set_kind(kCpu, SeriesKind::kCounter);
  s.set_kind(3, SeriesKind::kCounter);
  s.set_kind(6, SeriesKind::kCounter);
  const std::int64_t seconds = 6 * 3600;
  std::int64_t now = 0;
  struct Gen {
    SeriesKey key;
    SeriesKind kind;
  };
  const Gen gens[] = {{{1, kMem}, SeriesKind::kGauge}, {{1, kCpu}, SeriesKind::kCounter},
                      {{1, 3}, SeriesKind::kCounter}, {{1, 4}, SeriesKind::kGauge},
                      {{1, 5}, SeriesKind::kGauge}, {{1, 6}, SeriesKind::kCounter}};  // flat chunks
  for (const Gen& g : gens) {
    std::vector<Sample> all;
    if (g.key.metric == kMem || g.key.metric == kCpu) {
      all = make_series(rng, g.kind, kT0, seconds);
    } else {
      double v = 0;
      for (std::int64_t i = 0; i < seconds; ++i) {
        if (g.key.metric == 5) {
          v = static_cast<double>(i / 1500) * 4096.0;  // steps every 25 min: most chunks constant
        } else if (g.key.metric == 6) {
          v = static_cast<double>(i * 3 + (i / 2000) * 7);  // one rate, a step every 2000 s
        } else if (g.kind == SeriesKind::kCounter) {
          v = rng() % 5000 == 0 ? 0 : v + static_cast<double>(rng() % 7);  // integer counter, restarts
        } else {
          v = static_cast<double>(rng() % 10'000) / 100.0 - 30.0;  // two decimals, both signs
        }
        all.push_back({kT0 + i * 1000, v});
      }
    }
    for (const auto& x : all) s.append(g.key, x.t_ms, x.value);
    now = std::max(now, all.back().t_ms);
  }
  s.expire(now);
  int checked = 0;
  for (const Gen& g : gens) {
    std::vector<Point> rows;
    for (const auto& r : s.rollup_rows(g.key)) rows.push_back({r.t_ms, r.count, r.sum, r.min, r.max, r.last, r.corr});
    std::vector<Point> raw;
    for (const auto& x : s.raw_samples(g.key)) raw.push_back({x.t_ms, 1, x.value, x.value, x.value, x.value, 0});
    ASSERT_GT(rows.size(), 37u * 10);
    ASSERT_GT(raw.size(), 53u * 10);
    for (int i = 0; i < 300; ++i) {
      const bool use_raw = i % 3 == 0;
      const std::int64_t lo = use_raw ? raw.front().t : rows.front().t - kStep;
      const std::int64_t hi = use_raw ? now : raw.front().t - 1;
      const std::int64_t a = lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo));
      const std::int64_t b = i % 2 ? now : a + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - a + 1));
      const Window w{a, b};
      std::vector<Point> pts;
      double count = 0;
      for (const Point& p : use_raw ? raw : rows) {
        const bool in = use_raw ? p.t >= w.start_ms && p.t <= w.end_ms
                                : bucket_of(p.t) * kStep <= w.end_ms && bucket_of(p.t) * kStep + kStep > w.start_ms;
        if (!in) continue;
        pts.push_back(p);
        count += p.count;
      }
      const Tier tier = use_raw ? Tier::kRaw : Tier::kRollup;
      for (Agg agg : {Agg::kAvg, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kRate, Agg::kPercentile}) {
        const auto got = s.query(g.key, w, agg, 0.9);
        const std::string what = std::string(agg_name(agg)) + " metric " + std::to_string(g.key.metric) + " window [" +
                                 std::to_string(w.start_ms - kT0) + "," + std::to_string(w.end_ms - kT0) + "]";
        // The raw reference treats a drop as a restart from 0, as the store does.
        expect_close(got ? std::optional<double>(got->value) : std::nullopt, reference(pts, g.kind, agg, 0.9, use_raw),
                     what, tolerance_for(agg, tier));
        if (!got) continue;
        EXPECT_EQ(got->tier, tier) << what;
        EXPECT_EQ(static_cast<double>(got->samples), count) << what;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 9000);
}

// Rollup percentiles merge per-chunk sketches: over values of every magnitude and both signs,
// across whole sealed chunks, the open chunk and the open bucket, each answer stays within
// kRollupPercentileRelativeError of the exact quantile of the bucket means (of the larger of the
// two order statistics it interpolates between).
TEST(StoreQuery, rollup_percentiles_stay_within_the_stated_error_for_any_magnitude_and_sign) {
  std::mt19937_64 rng(29);
  Store s;
  const SeriesKey k{6, kMem};
  std::vector<Sample> all;
  std::uniform_real_distribution<double> expo(-8, 14);
  const std::int64_t seconds = 5 * 3600;
  for (std::int64_t i = 0; i < seconds; i += 1 + static_cast<std::int64_t>(rng() % 3)) {
    double v = std::pow(10.0, expo(rng));
    if (rng() % 3 == 0) v = -v;
    if (rng() % 50 == 0) v = 0;
    all.push_back({kT0 + i * 1000, v});
    ASSERT_EQ(s.append(k, kT0 + i * 1000, v), AppendStatus::kOk);
  }
  const std::int64_t now = all.back().t_ms;
  s.expire(now + 2 * 3'600'000);  // the raw tier is gone: every window is answered from the rollup
  ASSERT_TRUE(s.raw_samples(k).empty());
  const auto buckets = naive_buckets(all, SeriesKind::kGauge);
  int checked = 0;
  for (int i = 0; i < 200; ++i) {
    std::int64_t a = kT0 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(seconds * 1000));
    std::int64_t b = kT0 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(seconds * 1000));
    if (i == 0) {
      a = kT0;
      b = now;
    }
    const Window w{std::min(a, b), std::max(a, b)};
    std::vector<double> means;
    for (const auto& p : in_window_buckets(buckets, w)) means.push_back(p.sum / p.count);
    if (means.empty()) continue;
    std::sort(means.begin(), means.end());
    for (double q : {0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0}) {
      const auto got = s.query(k, w, Agg::kPercentile, q);
      ASSERT_TRUE(got);
      EXPECT_EQ(got->tier, Tier::kRollup);
      const double rank = q * static_cast<double>(means.size() - 1);
      const auto lo = static_cast<std::size_t>(std::floor(rank));
      const auto hi = std::min(lo + 1, means.size() - 1);
      const double want = means[lo] + (means[hi] - means[lo]) * (rank - static_cast<double>(lo));
      const double bound = kRollupPercentileRelativeError * std::max(std::fabs(means[lo]), std::fabs(means[hi]));
      EXPECT_LE(std::fabs(got->value - want), bound * (1 + 1e-12) + 1e-300)
          << "q=" << q << " window [" << w.start_ms - kT0 << "," << w.end_ms - kT0 << "] exact " << want;
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(StoreQuery, selector_picks_series_by_target_or_metric) {
  Store s;
  for (std::uint64_t target = 1; target <= 5; ++target)
    for (std::uint16_t m : {kMem, kCpu})
      for (int i = 0; i < 10; ++i) s.append({target, m}, kT0 + i * 1000, static_cast<double>(target * 100 + m));
  const Window w{kT0, kT0 + 9000};
  const auto mem = s.query_all(Selector{.target = std::nullopt, .metric = kMem}, w, Agg::kAvg);
  ASSERT_EQ(mem.size(), 5u);
  for (std::size_t i = 0; i < mem.size(); ++i) {
    EXPECT_EQ(mem[i].first, (SeriesKey{i + 1, kMem}));
    EXPECT_DOUBLE_EQ(mem[i].second.value, static_cast<double>((i + 1) * 100 + kMem));
    EXPECT_EQ(mem[i].second.samples, 10u);
  }
  const auto t3 = s.query_all(Selector{.target = 3, .metric = std::nullopt}, w, Agg::kMax);
  ASSERT_EQ(t3.size(), 2u);
  EXPECT_EQ(t3[0].first, (SeriesKey{3, kMem}));
  EXPECT_EQ(t3[1].first, (SeriesKey{3, kCpu}));
  EXPECT_EQ(s.query_all(Selector{}, w, Agg::kLast).size(), 10u);
  EXPECT_TRUE(s.query_all(Selector{}, {kT0 + 100'000, kT0 + 200'000}, Agg::kLast).empty());
}

TEST(StoreExpire, series_of_a_container_gone_longer_than_the_history_are_dropped) {
  Store s;
  for (int i = 0; i < 100; ++i) s.append({1, kMem}, kT0 + i * 1000, 1);
  for (int i = 0; i < 100; ++i) s.append({2, kMem}, kT0 + 20 * 3'600'000 + i * 1000, 1);
  auto r = s.expire(kT0 + 24 * 3'600'000);
  EXPECT_EQ(r.series_dropped, 0u);
  EXPECT_EQ(s.stats().series, 2u);
  r = s.expire(kT0 + 24 * 3'600'000 + 100'000);
  EXPECT_EQ(r.series_dropped, 1u);
  EXPECT_EQ(s.keys(), (std::vector<SeriesKey>{{2, kMem}}));
  // The survivor's raw samples were older than an hour: gone, its rollup rows kept.
  EXPECT_TRUE(s.raw_samples({2, kMem}).empty());
  EXPECT_EQ(s.rollup_rows({2, kMem}).size(), 10u);
  const auto avg = s.query({2, kMem}, {kT0, kT0 + 24 * 3'600'000}, Agg::kAvg);
  ASSERT_TRUE(avg);
  EXPECT_EQ(avg->tier, Tier::kRollup);
  EXPECT_EQ(avg->samples, 100u);
}

// Expired rows at the front of the oldest rollup chunk are re-encoded away once an eighth of a chunk
// has expired: the tier holds the history plus at most that, and the re-encoded chunk answers
// like any other (its summary and sketch rebuilt), through restarts of a counter and a checkpoint.
TEST(StoreExpire, the_oldest_rollup_chunk_sheds_expired_rows_and_still_answers_exactly) {
  std::mt19937_64 rng(41);
  const Options o{.raw_retention_ms = 600'000, .history_ms = 3 * 3'600'000, .rollup_step_ms = kStep,
                  .raw_chunk_samples = 120, .rollup_chunk_rows = 40};
  const std::int64_t slack = 5 * kStep;  // an eighth of 40 rows
  Store s(o);
  s.set_kind(kCpu, SeriesKind::kCounter);
  std::vector<Sample> mem = make_series(rng, SeriesKind::kGauge, kT0, 5 * 3600);
  std::vector<Sample> cpu = make_series(rng, SeriesKind::kCounter, kT0, 5 * 3600);
  std::size_t im = 0, ic = 0;
  int checked = 0;
  for (std::int64_t now = kT0 + 60'000; now <= kT0 + 5 * 3'600'000; now += 60'000) {
    for (; im < mem.size() && mem[im].t_ms <= now; ++im) s.append({1, kMem}, mem[im].t_ms, mem[im].value);
    for (; ic < cpu.size() && cpu[ic].t_ms <= now; ++ic) s.append({1, kCpu}, cpu[ic].t_ms, cpu[ic].value);
    s.expire(now);
    if (now < kT0 + o.history_ms + 1'800'000 || (now / 60'000) % 7 != 0) continue;
    for (auto [metric, kind, all] : {std::tuple{kMem, SeriesKind::kGauge, &mem}, std::tuple{kCpu, SeriesKind::kCounter, &cpu}}) {
      const SeriesKey k{1, metric};
      const auto rows = s.rollup_rows(k);
      const std::int64_t cut = now - o.history_ms;
      ASSERT_GE(rows.front().t_ms, cut - kStep - slack) << "held more than the history plus an eighth of a chunk";
      std::vector<Sample> upto;
      for (const auto& x : *all)
        if (x.t_ms <= now) upto.push_back(x);
      const auto buckets = naive_buckets(upto, kind);
      for (const Window w : {Window{cut, now}, Window{cut + 7'000, cut + 1'200'000}}) {
        const auto pts = in_window_buckets(buckets, w);
        for (Agg agg : {Agg::kAvg, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kRate, Agg::kPercentile}) {
          const auto got = s.query(k, w, agg, 0.9);
          const std::string what = std::string(agg_name(agg)) + " at " + std::to_string(now - kT0);
          ASSERT_TRUE(got) << what;
          EXPECT_EQ(got->tier, Tier::kRollup) << what;
          expect_close(got->value, reference(pts, kind, agg, 0.9, false), what, tolerance_for(agg, Tier::kRollup));
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 200);
  // A trimmed store checkpoints and restores to the same rows.
  const auto bytes = s.checkpoint_bytes();
  Store t(o);
  ASSERT_TRUE(t.restore_bytes(bytes.data(), bytes.size(), "trimmed").ok());
  EXPECT_EQ(t.rollup_rows({1, kCpu}), s.rollup_rows({1, kCpu}));
  EXPECT_EQ(t.rollup_rows({1, kMem}), s.rollup_rows({1, kMem}));
}

TEST(StoreCompression, realistic_integer_and_constant_series_stay_under_one_and_a_half_bytes) {
  std::mt19937_64 rng(21);
  Store s;
  s.set_kind(kCpu, SeriesKind::kCounter);
  std::int64_t usec = 0;
  double mem = 3e8;
  for (int i = 0; i < 3600; ++i) {
    const std::int64_t t = kT0 + i * 1000;
    usec += 2'000 + static_cast<std::int64_t>(rng() % 60);  // a mostly idle service: 0.2% of a core
    s.append({1, kCpu}, t, static_cast<double>(usec) / 1e6);
    if (rng() % 30 == 0) mem += 4096.0 * static_cast<double>(static_cast<int>(rng() % 64) - 30);
    s.append({2, kMem}, t, mem);
    s.append({3, kMem}, t, 536870912.0);  // a limit
  }
  for (std::uint64_t target : {1, 2, 3}) {
    Store one;
    one.set_kind(kCpu, SeriesKind::kCounter);
    const SeriesKey k{target, target == 1 ? kCpu : kMem};
    for (const auto& x : s.raw_samples(k)) one.append(k, x.t_ms, x.value);
    const auto st = one.stats();
    const double bps = static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(st.sealed_raw_samples);
    EXPECT_LE(bps, 1.5) << "target " << target;
    if (target == 3) {
      EXPECT_LT(bps, 0.2);
    }
  }
}

TEST(StoreCompression, millisecond_precision_brings_a_busy_cpu_counter_under_one_and_a_half_bytes) {
  std::mt19937_64 rng(23);
  std::vector<double> usage;
  std::int64_t usec = 0;
  for (int i = 0; i < 3600; ++i) {
    usec += 400'000 + static_cast<std::int64_t>(rng() % 200'000);  // half a core, noisy
    usage.push_back(static_cast<double>(usec) / 1e6);
  }
  double exact_bps = 0;
  for (int decimals : {-1, 3}) {
    Store s;
    s.set_kind(kCpu, SeriesKind::kCounter);
    s.set_precision(kCpu, decimals);
    for (int i = 0; i < 3600; ++i) s.append({1, kCpu}, kT0 + i * 1000, usage[static_cast<std::size_t>(i)]);
    const auto st = s.stats();
    const double bps = static_cast<double>(st.sealed_raw_bytes) / static_cast<double>(st.sealed_raw_samples);
    const auto raw = s.raw_samples({1, kCpu});
    ASSERT_EQ(raw.size(), usage.size());
    if (decimals < 0) {
      exact_bps = bps;
      for (std::size_t i = 0; i < raw.size(); ++i) ASSERT_EQ(raw[i].value, usage[i]);
    } else {
      EXPECT_LE(bps, 1.5);
      EXPECT_LT(bps, exact_bps);
      for (std::size_t i = 0; i < raw.size(); ++i) ASSERT_NEAR(raw[i].value, usage[i], 0.0005 + 1e-12);
      // The hour's rate is still right to a millicore.
      const auto rate = s.query({1, kCpu}, {kT0, kT0 + 3'600'000}, Agg::kRate);
      EXPECT_NEAR(rate->value, (usage.back() - usage.front()) / 3599.0, 1e-6);
    }
  }
}

}  // namespace
}  // namespace podgauge::store
