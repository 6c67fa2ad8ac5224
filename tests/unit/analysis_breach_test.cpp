#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <limits>
#include <random>

#include "podgauge/analysis/trend.h"

#include "podgauge/analysis/breach_detector.h"

using namespace podgauge::analysis;
using namespace std::chrono_literals;

namespace {

UsageSample memory_at(Nanos t, double ws, double limit) {
  UsageSample s;
  s.time = t;
  s.memory_working_set_bytes = ws;
  s.memory_limit_bytes = limit;
  return s;
}

UsageSample cpu_at(Nanos t, double cores, double limit) {
  UsageSample s;
  s.time = t;
  s.cpu_cores = cores;
  s.cpu_limit_cores = limit;
  return s;
}

}  // namespace

TEST(BreachRules, parse_every_kind_and_option) {
  auto r = parse_breach_rule("memory.limit>=90%/5m");
  EXPECT_EQ(r.kind, BreachKind::MemoryOfLimit);
  EXPECT_DOUBLE_EQ(r.threshold, 90);
  EXPECT_EQ(r.sustain, Nanos(5min));
  EXPECT_EQ(r.clear_after, Nanos(30s));
  EXPECT_EQ(r.smoothing, Nanos(0));
  r = parse_breach_rule("cpu.request>=150%/10m,hysteresis=10%,clear=1m,smooth=30s");
  EXPECT_EQ(r.kind, BreachKind::CpuOfRequest);
  EXPECT_DOUBLE_EQ(r.threshold, 150);
  EXPECT_DOUBLE_EQ(r.hysteresis, 10);
  EXPECT_EQ(r.clear_after, Nanos(1min));
  EXPECT_EQ(r.smoothing, Nanos(30s));
  r = parse_breach_rule("memory.time_to_limit<=10m/30s,trend=5m");
  EXPECT_EQ(r.kind, BreachKind::MemoryTimeToLimit);
  EXPECT_DOUBLE_EQ(r.threshold, 600);
  EXPECT_EQ(r.trend_window, Nanos(5min));
  EXPECT_EQ(parse_breach_rule("throttling>=25%/1m").smoothing, Nanos(10s));
  EXPECT_EQ(default_breach_rules().size(), 4u);
}

TEST(BreachRules, bad_rules_say_what_is_wrong) {
  for (const char* bad : {"memory.limit>=90/5m", "memory.limit>=90%", "disk>=90%/1m", "memory.limit<=90%/1m",
                          "memory.time_to_limit>=10m/1m", "cpu.limit>=-5%/1m", "cpu.limit>=90%/5x",
                          "cpu.limit>=90%/5m,bogus=1", "cpu.limit>=abc%/1m", ""}) {
    try {
      parse_breach_rule(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).size(), 0u);
    }
  }
}

TEST(BreachDetector, memory_breach_starts_only_after_the_sustain_window) {
  BreachDetector d({parse_breach_rule("memory.limit>=90%/1m")});
  const double limit = 100e6;
  // 80% for a while: nothing.
  for (int s = 0; s < 120; ++s) EXPECT_TRUE(d.observe("c", memory_at(Nanos(s * 1s), 80e6, limit)).empty());
  // 95% from t=120 s: starts at t=180 s exactly, not before.
  std::vector<BreachEvent> got;
  int started_at = -1;
  for (int s = 120; s <= 200; ++s) {
    auto ev = d.observe("c", memory_at(Nanos(s * 1s), 95e6, limit));
    if (!ev.empty() && started_at < 0) started_at = s, got = ev;
  }
  ASSERT_EQ(started_at, 180);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].phase, BreachEvent::Phase::Start);
  EXPECT_EQ(got[0].since, Nanos(120s));
  EXPECT_NEAR(got[0].value, 95, 1e-9);
  EXPECT_EQ(d.active().size(), 1u);
  EXPECT_EQ(d.started_total().at("memory.limit>=90%/1m"), 1u);
}

TEST(BreachDetector, a_dip_below_the_threshold_restarts_the_sustain_window) {
  BreachDetector d({parse_breach_rule("memory.limit>=90%/1m")});
  for (int s = 0; s < 50; ++s) EXPECT_TRUE(d.observe("c", memory_at(Nanos(s * 1s), 95e6, 100e6)).empty());
  EXPECT_TRUE(d.observe("c", memory_at(50s, 89e6, 100e6)).empty());
  for (int s = 51; s < 111; ++s) EXPECT_TRUE(d.observe("c", memory_at(Nanos(s * 1s), 95e6, 100e6)).empty()) << s;
  EXPECT_EQ(d.observe("c", memory_at(111s, 95e6, 100e6)).size(), 1u);
}

TEST(BreachDetector, hysteresis_keeps_a_flapping_breach_open_and_clear_after_ends_it) {
  BreachDetector d({parse_breach_rule("memory.limit>=90%/10s,hysteresis=5,clear=20s")});
  int t = 0;
  for (; t <= 10; ++t) d.observe("c", memory_at(Nanos(t * 1s), 92e6, 100e6));
  ASSERT_EQ(d.active().size(), 1u);
  // Flapping between 88% and 92%: inside the hysteresis band, the breach stays open.
  for (; t < 100; ++t) {
    auto ev = d.observe("c", memory_at(Nanos(t * 1s), t % 2 ? 88e6 : 92e6, 100e6));
    EXPECT_TRUE(ev.empty()) << t;
  }
  // Below 85% for 20 s: ends exactly then.
  int ended = -1;
  for (int k = 0; k <= 30; ++k, ++t) {
    auto ev = d.observe("c", memory_at(Nanos(t * 1s), 50e6, 100e6));
    if (!ev.empty()) {
      EXPECT_EQ(ev[0].phase, BreachEvent::Phase::End);
      EXPECT_NEAR(ev[0].peak, 92, 1e-9);
      ended = k;
      break;
    }
  }
  EXPECT_EQ(ended, 20);
  EXPECT_TRUE(d.active().empty());
}

TEST(BreachDetector, cpu_is_smoothed_so_one_idle_second_does_not_reset_a_throttled_container) {
  BreachDetector d({parse_breach_rule("cpu.limit>=90%/5m")});
  int starts = 0;
  // 100% of a 0.5-core limit, idle one second in ten: the 10 s mean stays at 90%.
  for (int s = 0; s <= 400; ++s) {
    auto ev = d.observe("c", cpu_at(Nanos(s * 1s), s % 10 == 3 ? 0.0 : 0.5, 0.5));
    starts += int(ev.size());
  }
  EXPECT_EQ(starts, 1);
}

TEST(BreachDetector, memory_time_to_limit_follows_the_trend) {
  BreachDetector d({parse_breach_rule("memory.time_to_limit<=10m/30s,trend=2m")});
  // 1 GiB limit, 200 MiB used, growing 1 MiB/s: ~824 s to go at t=0 -> below 600 s after ~224 s.
  const double mib = 1 << 20;
  int started = -1;
  for (int s = 0; s < 400 && started < 0; ++s) {
    auto ev = d.observe("c", memory_at(Nanos(s * 1s), 200 * mib + s * mib, 1024 * mib));
    if (!ev.empty()) started = s;
  }
  // TTL <= 600 s from t=224 s, sustained 30 s -> 254 s.
  EXPECT_NEAR(started, 254, 2);
  // Flat memory: no trend, never a breach.
  BreachDetector flat({parse_breach_rule("memory.time_to_limit<=10m/30s")});
  for (int s = 0; s < 600; ++s) EXPECT_TRUE(flat.observe("c", memory_at(Nanos(s * 1s), 900 * mib, 1024 * mib)).empty());
}

TEST(BreachDetector, containers_without_limits_raise_nothing_and_a_removed_limit_ends_the_breach) {
  BreachDetector d({parse_breach_rule("memory.limit>=90%/0s")});
  UsageSample no_limit;
  no_limit.time = 1s;
  no_limit.memory_working_set_bytes = 1e12;
  EXPECT_TRUE(d.observe("c", no_limit).empty());
  EXPECT_EQ(d.observe("c", memory_at(2s, 95, 100)).size(), 1u);
  no_limit.time = 3s;
  auto ev = d.observe("c", no_limit);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].phase, BreachEvent::Phase::End);
  EXPECT_TRUE(std::isnan(ev[0].value));
}

TEST(BreachDetector, targets_are_independent_and_forget_drops_state) {
  BreachDetector d({parse_breach_rule("memory.limit>=90%/0s")});
  EXPECT_EQ(d.observe("a", memory_at(1s, 95, 100)).size(), 1u);
  EXPECT_TRUE(d.observe("b", memory_at(1s, 50, 100)).empty());
  EXPECT_EQ(d.active().size(), 1u);
  d.forget("a");
  EXPECT_TRUE(d.active().empty());
}

// The trend and the smoothing keep running sums as samples come and go. Over 20,000 samples of
// a wandering series (rebuilt every 512 updates on the way), every breach starts and ends when
// the value recomputed from the whole window says so, and with the same value.
TEST(BreachDetector, running_sums_agree_with_the_window_recomputed_every_round) {
  const double mib = 1 << 20, limit = 1024 * mib;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 2 * mib);
  struct Seen {
    int step;
    bool start;
    double value;
  };
  // Time to limit, from scratch: the window of the last 2 min, a least-squares slope.
  std::vector<Seen> want_ttl, got_ttl;
  {
    BreachDetector d({parse_breach_rule("memory.time_to_limit<=30m/0s,trend=2m,hysteresis=0%,clear=0s")});
    std::deque<std::pair<double, double>> window;
    bool active = false;
    for (int i = 0; i < 20000; ++i) {
      const double t = i, ws = 600 * mib + 200 * mib * std::sin(2 * M_PI * t / 3000) + noise(rng);
      for (const auto& e : d.observe("c", memory_at(Nanos(int64_t(i) * 1'000'000'000), ws, limit)))
        got_ttl.push_back({i, e.phase == BreachEvent::Phase::Start, e.value});
      window.emplace_back(t, ws);
      while (t - window.front().first > 120) window.pop_front();
      double ttl = std::numeric_limits<double>::infinity();
      if (window.size() >= 3 && (window.back().first - window.front().first) * 4 >= 120) {
        LinearTrend trend;
        for (const auto& [x, y] : window) trend.add(x - window.front().first, y);
        if (auto slope = trend.slope(); slope && *slope > 0) ttl = (limit - ws) / *slope;
      }
      if ((ttl <= 1800) != active) {
        active = !active;
        want_ttl.push_back({i, active, ttl});
      }
    }
  }
  ASSERT_GE(want_ttl.size(), 8u) << "the series must cross the threshold to prove anything";
  ASSERT_EQ(got_ttl.size(), want_ttl.size());
  for (size_t i = 0; i < want_ttl.size(); ++i) {
    EXPECT_EQ(got_ttl[i].step, want_ttl[i].step) << i;
    EXPECT_EQ(got_ttl[i].start, want_ttl[i].start) << i;
    if (std::isinf(want_ttl[i].value))
      EXPECT_TRUE(std::isinf(got_ttl[i].value)) << i << ": " << got_ttl[i].value;
    else
      EXPECT_NEAR(got_ttl[i].value, want_ttl[i].value, 1e-6 * want_ttl[i].value) << i;
  }
  // A 10 s mean of CPU against its limit.
  std::vector<Seen> want_cpu, got_cpu;
  {
    BreachDetector d({parse_breach_rule("cpu.limit>=90%/0s,smooth=10s,hysteresis=0%,clear=0s")});
    std::deque<std::pair<int, double>> window;
    std::uniform_real_distribution<double> cores(0, 1);
    bool active = false;
    for (int i = 0; i < 20000; ++i) {
      const double used = (i / 200) % 2 ? 0.8 + 0.2 * cores(rng) : 0.5 * cores(rng);
      for (const auto& e : d.observe("c", cpu_at(Nanos(int64_t(i) * 1'000'000'000), used, 1.0)))
        got_cpu.push_back({i, e.phase == BreachEvent::Phase::Start, e.value});
      window.emplace_back(i, 100 * used);
      while (i - window.front().first >= 10) window.pop_front();
      double sum = 0;
      for (const auto& [x, y] : window) sum += y;
      const double mean = sum / double(window.size());
      const bool breaching = active ? !(mean < 90) : mean >= 90;
      if (breaching != active) {
        active = breaching;
        want_cpu.push_back({i, active, mean});
      }
    }
  }
  ASSERT_GE(want_cpu.size(), 8u);
  ASSERT_EQ(got_cpu.size(), want_cpu.size());
  for (size_t i = 0; i < want_cpu.size(); ++i) {
    EXPECT_EQ(got_cpu[i].step, want_cpu[i].step) << i;
    EXPECT_EQ(got_cpu[i].start, want_cpu[i].start) << i;
    EXPECT_NEAR(got_cpu[i].value, want_cpu[i].value, 1e-9) << i;
  }
}
