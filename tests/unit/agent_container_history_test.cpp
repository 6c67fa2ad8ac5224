// ContainerHistory records what a round read, not the copies the sampler carries between its
// slow reads: a carried value is no new measurement.
#include <gtest/gtest.h>

#include <map>

#include "podgauge/agent/container_history.h"

using namespace podgauge;
using agent::ContainerHistory;
using agent::ContainerReading;
using agent::HistoryMetric;

namespace {

constexpr std::int64_t kT0 = 1'764'460'800'000;

std::map<HistoryMetric, std::size_t> raw_counts(const ContainerHistory& h) {
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
