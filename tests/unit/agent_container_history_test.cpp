// ContainerHistory records what a round read, not the copies the sampler carries between its
// slow reads: a carried value is no new measurement.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "podgauge/agent/container_history.h"

using namespace podgauge;
using agent::ContainerHistory;
using agent::ContainerReading;
using agent::HistoryMetric;

namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;

std::map<HistoryMetric, std::size_t> raw_counts(const ContainerHistory& h) {
  h.flush();
  std::map<HistoryMetric, std::size_t> out;
  for (const auto& k : h.store().keys())
    out[static_cast<HistoryMetric>(k.metric)] = h.store().raw_samples(k).size();
  return out;
}

ContainerReading reading(int tick, bool limited) {
  ContainerReading r;
  r.target.kind = agent::UsageTarget::Kind::Container;
  r.target.pod_uid = "6a1f2c3d-0000-4000-8000-000000000001";
  r.target.container_id = "c0ffee";
  r.cpu_ns = 1'000'000'000ull * tick;
  cgroup::MemoryUsage m;
  m.usage = (100 + tick) << 20;
  m.working_set = (90 + tick) << 20;
  m.rss = 80 << 20;
  if (limited) m.limit = 512ull << 20;
  r.memory = m;
  if (limited) {
    r.cpu_limit_cores = 1.0;
    r.cfs = agent::CfsStats{10ull * tick, 0, 0};
  }
  return r;
}

}  // namespace

TEST(ContainerHistory, records_every_series_of_a_full_read) {
  ContainerHistory h;
  for (int i = 0; i < 3; ++i) h.record(reading(i, true), 0, kT0 + 1000 * i);
  const auto n = raw_counts(h);
  for (auto m : {HistoryMetric::CpuSeconds, HistoryMetric::OomKills, HistoryMetric::WorkingSetBytes,
                 HistoryMetric::UsageBytes, HistoryMetric::RssBytes, HistoryMetric::CacheBytes,
                 HistoryMetric::SwapBytes, HistoryMetric::MemoryLimitBytes, HistoryMetric::CpuLimitCores,
                 HistoryMetric::CfsPeriods, HistoryMetric::CfsThrottledPeriods,
                 HistoryMetric::CfsThrottledSeconds})
    EXPECT_EQ(n.count(m) ? n.at(m) : 0, 3u) << agent::to_string(m);
}

TEST(ContainerHistory, values_carried_from_the_last_slow_read_are_not_recorded_again) {
  ContainerHistory h;
  // Round 0 reads everything; rounds 1-9 carry memory.stat's split (and, without a memory
  // limit, the usage too) and the CFS counters of a container without a CPU limit.
  for (int i = 0; i < 10; ++i) {
    ContainerReading limited = reading(i, true);
    limited.target.container_id = "limited";
    ContainerReading unlimited = reading(i, false);
    unlimited.target.container_id = "unlimited";
    unlimited.cfs = agent::CfsStats{};  // cpu.stat without a quota
    if (i > 0) {
      limited.memory_read = false;  // usage re-read every round: it can breach
      unlimited.memory_read = unlimited.usage_read = unlimited.cfs_read = false;
    }
    h.record(limited, 0, kT0 + 1000 * i);
    h.record(unlimited, 0, kT0 + 1000 * i);
  }
  std::map<std::string, std::map<HistoryMetric, std::size_t>> by_container;
  const auto names = h.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 10'000}, store::Agg::kLast, 0);
  ASSERT_EQ(names.size(), 2u);
  for (const auto& k : h.store().keys())
    for (const auto& p : h.query(static_cast<HistoryMetric>(k.metric), {kT0, kT0 + 10'000}, store::Agg::kLast, 0))
      by_container[p.target.container_id][static_cast<HistoryMetric>(k.metric)] = p.result.samples;
  const auto& lim = by_container["limited"];
  const auto& unl = by_container["unlimited"];
  EXPECT_EQ(lim.at(HistoryMetric::CpuSeconds), 10u);
  EXPECT_EQ(lim.at(HistoryMetric::WorkingSetBytes), 10u) << "a limited container's usage is read every round";
  EXPECT_EQ(lim.at(HistoryMetric::MemoryLimitBytes), 10u) << "limits every round: window rules need one";
  EXPECT_EQ(lim.at(HistoryMetric::CfsPeriods), 10u);
  EXPECT_EQ(lim.at(HistoryMetric::RssBytes), 1u) << "memory.stat's split only when read";
  EXPECT_EQ(unl.at(HistoryMetric::CpuSeconds), 10u);
  EXPECT_EQ(unl.at(HistoryMetric::OomKills), 10u);
  EXPECT_EQ(unl.at(HistoryMetric::WorkingSetBytes), 1u);
  EXPECT_EQ(unl.at(HistoryMetric::UsageBytes), 1u);
  EXPECT_EQ(unl.at(HistoryMetric::CfsPeriods), 1u);
}

// Ticks are held per container and written kBatchTicks at a time; nothing a reader asks for is
// missing meanwhile, and nothing held is lost at a checkpoint.
TEST(ContainerHistory, held_ticks_are_seen_by_queries_and_checkpoints) {
  constexpr auto kBatch = ContainerHistory::kBatchTicks;
  ContainerHistory h;
  for (std::size_t i = 0; i < kBatch - 1; ++i) h.record(reading(int(i), true), 0, kT0 + 1000 * i);
  EXPECT_TRUE(h.store().keys().empty()) << "fewer ticks than a batch are held, not written";
  h.record(reading(0, true), 0, kT0 + 1000 * (kBatch - 2));  // the same tick again: refused
  const auto last = h.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kLast, 0);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].result.samples, kBatch - 1) << "a query sees the held ticks";
  EXPECT_DOUBLE_EQ(last[0].result.value, double(kBatch - 2));

  ContainerHistory batched;
  for (std::size_t i = 0; i < kBatch + 1; ++i) batched.record(reading(int(i), true), 0, kT0 + 1000 * i);
  const auto cpu = store::SeriesKey{batched.store().keys().at(0).target, std::uint16_t(HistoryMetric::CpuSeconds)};
  EXPECT_EQ(batched.store().raw_samples(cpu).size(), kBatch) << "a full batch is written at once";

  const auto dir = std::filesystem::temp_directory_path() /
                   ("podgauge-history-test-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  batched.checkpoint(dir, kT0 + 1000 * (kBatch + 1));
  ContainerHistory restored;
  EXPECT_TRUE(restored.restore(dir).empty());
  std::filesystem::remove_all(dir);
  const auto back = restored.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kLast, 0);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].result.samples, kBatch + 1) << "the tick held at the checkpoint was written";
  EXPECT_EQ(back[0].target.container_id, "c0ffee");
}

// Rounds usually record their containers in the order of the last one, and record() guesses so;
// when the order changes, a container appears or one is forgotten at a checkpoint, every tick
// still lands in its own container's series.
TEST(ContainerHistory, ticks_land_in_their_own_series_whatever_the_order_of_a_round) {
  auto of = [](const char* id, int tick) {
    ContainerReading r = reading(tick, false);
    r.target.container_id = id;
    r.cpu_ns = 1'000'000'000ull * tick + (id[0] == 'a' ? 0 : id[0] == 'b' ? 1'000'000 : 2'000'000);
    return r;
  };
  const std::vector<std::vector<const char*>> rounds = {
      {"a", "b"}, {"a", "b"}, {"b", "a"}, {"a", "b", "c"}, {"c", "a"}, {"a", "b", "c"}, {"b"}, {"a", "b", "c"}};
  ContainerHistory h;
  std::map<std::string, std::vector<double>> want;
  for (std::size_t t = 0; t < rounds.size(); ++t)
    for (const char* id : rounds[t]) {
      const auto r = of(id, int(t));
      h.record(r, 0, kT0 + 1000 * std::int64_t(t));
      want[id].push_back(double(r.cpu_ns) / 1e9);
    }
  h.flush();
  for (const auto& [id, values] : want) {
    const auto points = h.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kLast, 0, id);
    ASSERT_EQ(points.size(), 1u) << id;
    EXPECT_EQ(points[0].result.samples, values.size()) << id;
    EXPECT_DOUBLE_EQ(points[0].result.value, values.back()) << id;
    // Each container's CPU grows one second a second: a tick of another (offset by 1 or 2 ms)
    // in its series would make a faster second.
    const auto fastest = h.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kMax, 0, id);
    EXPECT_NEAR(fastest[0].result.value, 1.0, 1e-6) << id;
  }
  // "c" only recorded long ago: forgotten at a checkpoint (older than the history); the next
  // rounds, in the old order, still land right.
  ContainerHistory short_lived(std::chrono::seconds(5));
  for (int t = 0; t < 3; ++t)
    for (const char* id : {"a", "c", "b"}) short_lived.record(of(id, t), 0, kT0 + 1000 * t);
  for (int t = 3; t < 20; ++t)
    for (const char* id : {"a", "b"}) short_lived.record(of(id, t), 0, kT0 + 1000 * t);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("podgauge-history-order-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  short_lived.checkpoint(dir, kT0 + 20'000);
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(short_lived.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kLast, 0, "c").empty());
  for (int t = 20; t < 25; ++t)
    for (const char* id : {"b", "a"}) short_lived.record(of(id, t), 0, kT0 + 1000 * t);
  for (const char* id : {"a", "b"}) {
    const auto last = short_lived.query(HistoryMetric::CpuSeconds, {kT0, kT0 + 100'000}, store::Agg::kLast, 0, id);
    ASSERT_EQ(last.size(), 1u) << id;
    EXPECT_DOUBLE_EQ(last[0].result.value, double(of(id, 24).cpu_ns) / 1e9) << id;
  }
}
