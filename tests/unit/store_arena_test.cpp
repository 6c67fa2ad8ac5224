// The tiers' chunk arenas: packed chunk headers (32-bit time spans, summaries with elided zeros
// and repeats) give back exactly what was stored, for sparse series too.
#include <gtest/gtest.h>

#include <vector>

#include "podgauge/store/store.h"

namespace podgauge::store {
namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;
constexpr std::int64_t kDay = 86'400'000;

// A sample every 20 days: a chunk of 900 would span 50 years; the header's 32-bit span (49 days)
// seals it early instead, and nothing is lost or misplaced.
TEST(StoreArena, a_series_sampled_weeks_apart_round_trips_through_chunks_and_checkpoints) {
  const Options o{.raw_retention_ms = 4000 * kDay, .history_ms = 4000 * kDay};
  Store s(o);
  s.set_kind(2, SeriesKind::kCounter);
  std::vector<Sample> want;
  for (int i = 0; i < 40; ++i) {
    const Sample x{kT0 + i * 20 * kDay, static_cast<double>(i * i)};
    ASSERT_EQ(s.append({1, 1}, x.t_ms, x.value), AppendStatus::kOk);
    ASSERT_EQ(s.append({1, 2}, x.t_ms, x.value), AppendStatus::kOk);
    want.push_back(x);
  }
  EXPECT_GT(s.stats().chunks, 2u + 2u) << "sealed chunks were expected";
  EXPECT_EQ(s.raw_samples({1, 1}), want);
  const Window all{kT0, kT0 + 40 * 20 * kDay};
  EXPECT_EQ(s.query({1, 1}, all, Agg::kMax)->value, 39.0 * 39.0);
  EXPECT_EQ(s.query({1, 1}, all, Agg::kMin)->value, 0.0);
  EXPECT_EQ(s.query({1, 1}, all, Agg::kAvg)->samples, 40u);
  EXPECT_DOUBLE_EQ(s.query({1, 2}, all, Agg::kRate)->value, 39.0 * 39.0 / (39 * 20 * 86'400.0));
  const auto bytes = s.checkpoint_bytes();
  Store t(o);
  t.set_kind(2, SeriesKind::kCounter);
  ASSERT_TRUE(t.restore_bytes(bytes.data(), bytes.size(), "sparse").ok());
  EXPECT_EQ(t.raw_samples({1, 1}), want);
  EXPECT_EQ(t.rollup_rows({1, 2}), s.rollup_rows({1, 2}));
}

// Summaries whose doubles are zero, repeated or distinct (and a counter reset's correction) are
// packed differently: whole-chunk answers must equal the row-by-row ones.
TEST(StoreArena, packed_summaries_answer_like_the_rows_they_summarise) {
  const Options o{.raw_chunk_samples = 10, .rollup_chunk_rows = 4};
  Store s(o);
  s.set_kind(2, SeriesKind::kCounter);
  double c = 0;
  for (int i = 0; i < 600; ++i) {
    const std::int64_t t = kT0 + i * 1000;
    s.append({1, 1}, t, 0.0);                                  // all zero
    s.append({2, 1}, t, 4096.0);                               // constant
    s.append({3, 1}, t, static_cast<double>((i * 37) % 101));  // moving
    c = (i == 333) ? 1.5 : c + 0.25 * (i % 3);                 // a reset
    s.append({4, 2}, t, c);
  }
  for (std::uint64_t target = 1; target <= 4; ++target) {
    const SeriesKey k{target, static_cast<std::uint16_t>(target == 4 ? 2 : 1)};
    const auto raw = s.raw_samples(k);
    ASSERT_EQ(raw.size(), 600u);
    double mx = -1e300, mn = 1e300, sum = 0;
    for (const auto& x : raw) {
      mx = std::max(mx, x.value);
      mn = std::min(mn, x.value);
      sum += x.value;
    }
    const Window w{kT0, kT0 + 599'000};
    if (target != 4) {
      EXPECT_EQ(s.query(k, w, Agg::kMax)->value, mx);
      EXPECT_EQ(s.query(k, w, Agg::kMin)->value, mn);
      EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kAvg)->value, sum / 600);
    } else {
      double inc = 0;
      for (std::size_t i = 1; i < raw.size(); ++i)
        inc += raw[i].value >= raw[i - 1].value ? raw[i].value - raw[i - 1].value : raw[i].value;
      EXPECT_DOUBLE_EQ(s.query(k, w, Agg::kRate)->value, inc / 599.0);
    }
  }
}

}  // namespace
}  // namespace podgauge::store
