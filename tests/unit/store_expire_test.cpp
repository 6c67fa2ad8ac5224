// Expire in slices: after a restart restores an untrimmed checkpoint, expire() trims every series
// but never holds the exclusive lock for all of them at once; the result is the same as in one
// pass, and appends from another thread go through while it runs.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "podgauge/store/store.h"

namespace podgauge::store {
namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;
constexpr std::uint16_t kMem = 1;
constexpr std::uint16_t kCpu = 2;

Options small_options(std::int64_t budget_us) {
  return {.raw_retention_ms = 300'000,
          .history_ms = 3'600'000,
          .rollup_step_ms = 10'000,
          .raw_chunk_samples = 60,
          .rollup_chunk_rows = 40,
          .expire_lock_budget_us = budget_us};
}

// `targets` containers x 2 series over 90 min at 1 s, never expired (as a checkpoint written by an
// agent that then stopped for a while); the first 10 containers stopped after 20 min, so they
// are gone by the end.
std::vector<std::uint8_t> untrimmed_checkpoint(std::uint64_t targets, std::int64_t& end) {
  Store s(small_options(1'000'000));
  s.set_kind(kCpu, SeriesKind::kCounter);
  std::mt19937_64 rng(7);
  const std::int64_t seconds = 90 * 60;
  for (std::uint64_t target = 1; target <= targets; ++target) {
    double mem = 1e8;
    std::int64_t usec = 0;
    const std::int64_t last = target <= 10 ? 20 * 60 : seconds;
    for (std::int64_t i = 0; i < last; ++i) {
      if (rng() % 8 == 0) mem += 4096.0 * static_cast<double>(static_cast<int>(rng() % 9) - 4);
      usec += static_cast<std::int64_t>(rng() % 40'000);
      s.append({target, kMem}, kT0 + i * 1000, mem);
      s.append({target, kCpu}, kT0 + i * 1000, static_cast<double>(usec) / 1e6);
    }
  }
  end = kT0 + (seconds - 1) * 1000;
  return s.checkpoint_bytes();
}

TEST(StoreExpireSlices, expire_in_one_series_slices_leaves_exactly_what_one_pass_leaves) {
  std::int64_t end = 0;
  const auto bytes = untrimmed_checkpoint(100, end);
  Store sliced(small_options(0));  // a budget of 0: one series per hold of the lock
  Store whole(small_options(60'000'000));
  for (Store* s : {&sliced, &whole}) {
    s->set_kind(kCpu, SeriesKind::kCounter);
    ASSERT_TRUE(s->restore_bytes(bytes.data(), bytes.size(), "untrimmed").ok());
  }
  ASSERT_EQ(sliced.stats().series, 200u);
  const ExpireResult a = sliced.expire(end);
  const ExpireResult b = whole.expire(end);
  EXPECT_EQ(a.lock_holds, 200u) << "each series in a slice of its own";
  EXPECT_EQ(b.lock_holds, 1u);
  EXPECT_EQ(a.series_dropped, 20u);
  EXPECT_EQ(a.series_dropped, b.series_dropped);
  EXPECT_EQ(a.chunks_dropped, b.chunks_dropped);
  EXPECT_GT(a.chunks_dropped, 0u);
  ASSERT_EQ(sliced.keys(), whole.keys());
  ASSERT_EQ(sliced.keys().size(), 180u);
  for (const SeriesKey& k : sliced.keys()) {
    ASSERT_EQ(sliced.raw_samples(k), whole.raw_samples(k)) << k.target << "/" << k.metric;
    const auto rows = sliced.rollup_rows(k);
    ASSERT_EQ(rows, whole.rollup_rows(k)) << k.target << "/" << k.metric;
    // Trimmed: the rollup tier reaches back the history plus at most an eighth of a chunk (5 rows).
    ASSERT_GE(rows.front().t_ms, end - 3'600'000 - 6 * 10'000) << k.target << "/" << k.metric;
    const Window w{end - 3'600'000, end};
    for (Agg agg : {Agg::kAvg, Agg::kMax, Agg::kRate, Agg::kPercentile}) {
      const auto x = sliced.query(k, w, agg, 0.9);
      const auto y = whole.query(k, w, agg, 0.9);
      ASSERT_TRUE(x && y);
      EXPECT_EQ(x->value, y->value);
      EXPECT_EQ(x->samples, y->samples);
    }
  }
  const ExpireResult again = whole.expire(end);
  EXPECT_EQ(again.series_dropped, 0u);
  EXPECT_EQ(again.lock_holds, 1u);
}

// The agent's sampler appends every second while the minute's expire runs: with the lock taken a
// slice at a time, its appends go through during the expire instead of after it.
TEST(StoreExpireSlices, appends_from_another_thread_go_through_while_expire_trims) {
  std::int64_t end = 0;
  const auto bytes = untrimmed_checkpoint(400, end);
  Store s(small_options(0));
  s.set_kind(kCpu, SeriesKind::kCounter);
  ASSERT_TRUE(s.restore_bytes(bytes.data(), bytes.size(), "untrimmed").ok());
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> appended{0};
  std::thread sampler([&] {
    for (std::int64_t t = end + 1000; !stop.load(); t += 1000) {
      s.append({5000, kMem}, t, 1.0);
      appended.fetch_add(1);
    }
  });
  while (appended.load() == 0) std::this_thread::yield();
  const std::uint64_t before = appended.load();
  const ExpireResult r = s.expire(end);
  const std::uint64_t during = appended.load() - before;
  stop = true;
  sampler.join();
  EXPECT_EQ(r.lock_holds, 801u) << "800 restored series and the sampler's";
  EXPECT_EQ(r.series_dropped, 20u);
  // One pass under one lock would let at most the append already waiting through.
  EXPECT_GE(during, 10u) << "appends waited for the whole expire";
  std::printf("%llu appends went through during an expire of %zu slices (longest %lld us)\n",
              static_cast<unsigned long long>(during), r.lock_holds,
              static_cast<long long>(r.longest_lock_hold_us));
}

}  // namespace
}  // namespace podgauge::store
