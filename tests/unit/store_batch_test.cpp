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

}  // namespace
}  // namespace podgauge::store
