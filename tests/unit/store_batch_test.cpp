// Store::append_batch: a sampler's tick under one lock stores exactly what one append per sample
// stores, and reports each sample's status the same way.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "podgauge/store/store.h"

namespace podgauge::store {
namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;

TEST(StoreAppendBatch, a_batch_stores_what_single_appends_store_and_reports_each_status) {
  const Options o{.raw_chunk_samples = 50, .rollup_chunk_rows = 20};
  Store single(o), batch(o);
  for (Store* s : {&single, &batch}) {
    s->set_kind(2, SeriesKind::kCounter);
    s->set_precision(2, 3);
  }
  std::mt19937_64 rng(3);
  std::vector<AppendItem> items;
  std::vector<AppendStatus> got;
  double cpu[20] = {};
  for (int sec = 0; sec < 1500; ++sec) {
    const std::int64_t t = kT0 + sec * 1000;
    items.clear();
    for (std::uint64_t target = 1; target <= 20; ++target) {
      cpu[target - 1] += static_cast<double>(rng() % 100'000) / 1e6;
      items.push_back({{target, 1}, static_cast<double>(rng() % 1000) * 4096.0});
      items.push_back({{target, 2}, cpu[target - 1]});
    }
    if (sec % 97 == 0) items.push_back({{7, 1}, NAN});
    if (sec % 89 == 0) items.push_back({{8, 1}, 1.0});  // a second value for a series this tick
    std::size_t ok = 0;
    std::vector<AppendStatus> want;
    for (const AppendItem& it : items) {
      want.push_back(single.append(it.key, t, it.value));
      ok += want.back() == AppendStatus::kOk;
    }
    got.assign(items.size(), AppendStatus::kOk);
    ASSERT_EQ(batch.append_batch(t, items, got.data()), ok);
    ASSERT_EQ(got, want) << "at second " << sec;
  }
  // Out of order for every series: all dropped.
  EXPECT_EQ(batch.append_batch(kT0, items), 0u);
  ASSERT_EQ(batch.keys(), single.keys());
  for (const SeriesKey& k : single.keys()) {
    EXPECT_EQ(batch.raw_samples(k), single.raw_samples(k));
    EXPECT_EQ(batch.rollup_rows(k), single.rollup_rows(k));
  }
  EXPECT_EQ(single.raw_samples({8, 1}).size(), 1500u);
}

// Handles skip the key lookup; they must never outlive their series: after an expire drops it or
// a restore replaces everything, the next append through an old handle finds (or makes) the
// series by its key again.
TEST(StoreAppendBatch, handles_append_to_their_series_and_survive_expire_and_restore) {
  const Options o{.raw_retention_ms = 3'600'000, .history_ms = 3'600'000};
  Store s(o);
  SeriesHandle a, b;
  auto tick = [&](std::int64_t t, double va, double vb) {
    const AppendItem items[] = {{{1, 1}, va, &a}, {{2, 1}, vb, &b}};
    return s.append_batch(t, items);
  };
  ASSERT_EQ(tick(kT0, 1, 10), 2u);
  ASSERT_EQ(tick(kT0 + 1000, 2, 20), 2u);
  EXPECT_EQ(a.key, (SeriesKey{1, 1}));
  EXPECT_NE(a.series, nullptr);
  EXPECT_EQ(s.raw_samples({1, 1}), (std::vector<Sample>{{kT0, 1}, {kT0 + 1000, 2}}));

  // A handle given for another key is not trusted.
  SeriesHandle wrong = a;
  const AppendItem other[] = {{{3, 1}, 30, &wrong}};
  ASSERT_EQ(s.append_batch(kT0 + 2000, other), 1u);
  EXPECT_EQ(s.raw_samples({3, 1}), (std::vector<Sample>{{kT0 + 2000, 30}}));
  EXPECT_EQ(s.raw_samples({1, 1}).size(), 2u) << "the sample went to the handle's series";

  // Series 1 goes quiet for over the history; series 2 keeps appending (by key) and stays.
  const std::int64_t later = kT0 + 3'700'000;
  ASSERT_EQ(s.append({2, 1}, later, 21), AppendStatus::kOk);
  const auto dropped = s.expire(later);
  EXPECT_EQ(dropped.series_dropped, 2u) << "series 1 and 3 are past the history";
  ASSERT_EQ(tick(later + 1000, 3, 22), 2u);
  EXPECT_EQ(s.raw_samples({1, 1}), (std::vector<Sample>{{later + 1000, 3}}))
      << "the old handle's series was dropped: a new one is made by the key";
  EXPECT_EQ(s.raw_samples({2, 1}).back(), (Sample{later + 1000, 22}));

  // A restore replaces every series: handles find the restored ones.
  const auto bytes = s.checkpoint_bytes();
  ASSERT_EQ(tick(later + 2000, 4, 23), 2u);  // not in the checkpoint
  ASSERT_TRUE(s.restore_bytes(bytes.data(), bytes.size(), "test").ok());
  ASSERT_EQ(tick(later + 2000, 5, 24), 2u) << "the restored series end at later + 1000";
  EXPECT_EQ(s.raw_samples({1, 1}), (std::vector<Sample>{{later + 1000, 3}, {later + 2000, 5}}));
}

// Store::append_timed: several ticks of a series in a row (ContainerHistory's batches) store what
// one append per tick stores; a repeated or earlier time and a non-finite value are refused.
TEST(StoreAppendBatch, timed_items_store_what_single_appends_store) {
  const Options o{.raw_chunk_samples = 50, .rollup_chunk_rows = 20};
  Store single(o), timed(o);
  std::mt19937_64 rng(5);
  std::vector<TimedAppendItem> items;
  std::vector<SeriesHandle> handles(3);
  std::size_t want_ok = 0, timed_ok = 0;
  for (int batch = 0; batch < 150; ++batch) {
    items.clear();
    for (std::uint16_t metric = 1; metric <= 3; ++metric)
      for (int tick = 0; tick < 10; ++tick) {
        const std::int64_t t = kT0 + (batch * 10 + tick) * 1000;
        const double v = tick == 4 && metric == 2 ? NAN : static_cast<double>(rng() % 1000);
        items.push_back({{9, metric}, t, v, &handles[metric - 1]});
        if (tick == 6) items.push_back({{9, metric}, t, 1.0, &handles[metric - 1]});  // same time again
      }
    for (const auto& it : items) want_ok += single.append(it.key, it.t_ms, it.value) == AppendStatus::kOk;
    timed_ok += timed.append_timed(items);
  }
  EXPECT_EQ(want_ok, 150u * 3 * 10 - 150);
  EXPECT_EQ(timed_ok, want_ok);
  for (std::uint16_t metric = 1; metric <= 3; ++metric) {
    const SeriesKey k{9, metric};
    const auto a = single.raw_samples(k), b = timed.raw_samples(k);
    ASSERT_EQ(a.size(), b.size()) << metric;
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].t_ms, b[i].t_ms);
      EXPECT_EQ(a[i].value, b[i].value);
    }
  }
  EXPECT_EQ(single.checkpoint_bytes(), timed.checkpoint_bytes());
}

}  // namespace
}  // namespace podgauge::store
