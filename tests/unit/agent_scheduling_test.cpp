#include <gtest/gtest.h>

#include "podgauge/agent/preemption_table.h"
#include "podgauge/agent/scheduler_stats.h"
#include "podgauge/agent/usage_table.h"

using namespace podgauge::agent;
using namespace std::chrono_literals;

namespace {

UsageTarget container(const std::string& uid, char id) {
  UsageTarget t;
  t.kind = UsageTarget::Kind::Container;
  t.pod_uid = uid;
  t.container_id = std::string(64, id);
  return t;
}

UsageTarget host(const std::string& group) {
  UsageTarget t;
  t.kind = UsageTarget::Kind::HostGroup;
  t.group = group;
  return t;
}

std::string pod(int i) { return "00000000-0000-4000-8000-" + std::string(11, '0') + char('a' + i); }

const PreemptionSeries* find(const std::vector<PreemptionSeries>& v, PreemptorKind by,
                             const std::string& uid) {
  for (const auto& s : v)
    if (s.by == by && s.by_pod_uid == uid) return &s;
  return nullptr;
}

ResolvedCgroup resolved(const std::string& path) {
  ResolvedCgroup r;
  r.path = std::make_shared<const std::string>(path);
  r.identity = podgauge::cgroup::parse_kubelet_path(path);
  return r;
}

LatencyHistogram hist(std::initializer_list<std::pair<size_t, uint64_t>> slots, uint64_t sum) {
  LatencyHistogram h;
  for (auto [i, n] : slots) h.slots[i] = n, h.count += n;
  h.sum_ns = sum;
  return h;
}

}  // namespace

TEST(PreemptorKind, classifies_by_container_pod_and_host) {
  const auto victim = container(pod(0), 'a');
  EXPECT_EQ(classify_preemptor(victim, victim), PreemptorKind::SameContainer);
  EXPECT_EQ(classify_preemptor(victim, container(pod(0), 'b')), PreemptorKind::SamePod);
  UsageTarget overhead;
  overhead.kind = UsageTarget::Kind::PodOverhead;
  overhead.pod_uid = pod(0);
  overhead.group = "pod";
  EXPECT_EQ(classify_preemptor(victim, overhead), PreemptorKind::SamePod);
  EXPECT_EQ(classify_preemptor(victim, container(pod(1), 'c')), PreemptorKind::OtherPod);
  EXPECT_EQ(classify_preemptor(victim, host("/")), PreemptorKind::Host);
  EXPECT_EQ(classify_preemptor(victim, host("/system.slice")), PreemptorKind::Host);
}

TEST(PreemptionTable, counts_deltas_of_cumulative_kernel_counters_per_preemptor) {
  PreemptionTable table;
  const auto victim = container(pod(0), 'a');
  table.observe(1, 2, victim, container(pod(1), 'b'), 10);
  table.observe(1, 3, victim, host("/"), 4);
  table.observe(1, 1, victim, victim, 2);
  table.fold();
  table.observe(1, 2, victim, container(pod(1), 'b'), 15);
  table.fold();
  const auto series = table.series().at(victim);
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(find(series, PreemptorKind::OtherPod, pod(1))->count, 15u);
  EXPECT_EQ(find(series, PreemptorKind::Host, "")->count, 4u);
  EXPECT_EQ(find(series, PreemptorKind::SameContainer, pod(0))->count, 2u);
}

TEST(PreemptionTable, sums_the_cgroups_of_one_preemptor_pod) {
  PreemptionTable table;
  const auto victim = container(pod(0), 'a');
  table.observe(1, 2, victim, container(pod(1), 'b'), 3);
  table.observe(1, 5, victim, container(pod(1), 'c'), 4);
  table.observe(7, 2, victim, container(pod(1), 'b'), 5);  // a cgroup nested in the victim
  table.fold();
  EXPECT_EQ(find(table.series().at(victim), PreemptorKind::OtherPod, pod(1))->count, 12u);
}

TEST(PreemptionTable, labels_only_the_top_n_pods_and_sums_the_rest_as_other) {
  PreemptionTable table(2);
  const auto victim = container(pod(0), 'a');
  for (int i = 1; i <= 5; ++i)
    table.observe(1, 100 + i, victim, container(pod(i), 'b'), uint64_t(i) * 10);
  table.fold();
  const auto series = table.series().at(victim);
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(find(series, PreemptorKind::OtherPod, pod(5))->count, 50u);
  EXPECT_EQ(find(series, PreemptorKind::OtherPod, pod(4))->count, 40u);
  EXPECT_EQ(find(series, PreemptorKind::OtherPod, PreemptionTable::kOtherPods)->count, 60u);
}

TEST(PreemptionTable, no_series_steps_back_when_the_top_n_changes) {
  PreemptionTable table(1);
  const auto victim = container(pod(0), 'a');
  table.observe(1, 101, victim, container(pod(1), 'b'), 10);
  table.observe(1, 102, victim, container(pod(2), 'b'), 5);
  table.fold();
  auto s = table.series().at(victim);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, pod(1))->count, 10u);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, "other")->count, 5u);
  // pod 2 overtakes pod 1: it is labelled from now on; what it did before stays in "other".
  table.observe(1, 102, victim, container(pod(2), 'b'), 25);
  table.fold();
  s = table.series().at(victim);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, pod(1)), nullptr) << "no longer in the top 1";
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, pod(2))->count, 20u);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, "other")->count, 5u);
  // pod 1 comes back on top: its counter resumes where it was; pod 2's later work is "other".
  table.observe(1, 101, victim, container(pod(1), 'b'), 40);
  table.observe(1, 102, victim, container(pod(2), 'b'), 26);
  table.fold();
  s = table.series().at(victim);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, pod(1))->count, 40u);
  EXPECT_EQ(find(s, PreemptorKind::OtherPod, "other")->count, 6u);
  uint64_t total = 0;
  for (const auto& x : s) total += x.count;
  EXPECT_EQ(total + 20u /* pod 2's own, hidden */, 66u) << "each preemption counted exactly once";
}

TEST(PreemptionTable, a_recreated_kernel_entry_counts_from_zero_and_forgotten_pairs_restart) {
  PreemptionTable table;
  const auto victim = container(pod(0), 'a');
  table.observe(1, 2, victim, host("/"), 10);
  table.fold();
  table.observe(1, 2, victim, host("/"), 3);  // deleted and counted anew in the kernel
  table.fold();
  EXPECT_EQ(find(table.series().at(victim), PreemptorKind::Host, "")->count, 13u);
  table.forget_cgroups({2});
  table.observe(1, 2, victim, host("/"), 1);
  table.fold();
  EXPECT_EQ(find(table.series().at(victim), PreemptorKind::Host, "")->count, 14u);
}

TEST(PreemptionTable, ignores_victims_that_are_not_containers_and_drops_retired_ones) {
  PreemptionTable table;
  table.observe(1, 2, host("/system.slice"), container(pod(1), 'b'), 5);
  const auto victim = container(pod(0), 'a');
  table.observe(3, 2, victim, container(pod(1), 'b'), 5);
  table.fold();
  EXPECT_EQ(table.series().size(), 1u);
  table.retain_victims({});
  EXPECT_TRUE(table.series().empty());
}

TEST(CfsStats, parses_v1_and_v2_cpu_stat) {
  auto v1 = parse_cfs_stats("nr_periods 120\nnr_throttled 100\nthrottled_time 9000000000\n");
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->periods, 120u);
  EXPECT_EQ(v1->throttled_periods, 100u);
  EXPECT_EQ(v1->throttled_ns, 9'000'000'000u);
  auto v2 = parse_cfs_stats(
      "usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\nnr_periods 7\nnr_throttled 3\n"
      "throttled_usec 2500\nnr_bursts 0\nburst_usec 0\n");
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->periods, 7u);
  EXPECT_EQ(v2->throttled_periods, 3u);
  EXPECT_EQ(v2->throttled_ns, 2'500'000u);
  EXPECT_FALSE(parse_cfs_stats("usage_usec 5000\nuser_usec 4000\nsystem_usec 1000\n"))
      << "a v2 cgroup without the cpu controller has no bandwidth statistics";
  EXPECT_FALSE(parse_cfs_stats(""));
}

TEST(LatencyHistogram, bounds_are_the_log2_slots_in_seconds) {
  const auto b = podgauge::loader::runqueue_latency_bounds_seconds();
  ASSERT_EQ(b.size(), podgauge::loader::kRunqueueLatencySlots - 1);
  EXPECT_DOUBLE_EQ(b.front(), 1024e-9);
  EXPECT_DOUBLE_EQ(b[1], 2048e-9);
  EXPECT_DOUBLE_EQ(b.back(), double(1ull << 30) / 1e9);
}

TEST(UsageTable, folds_run_queue_histograms_per_container_and_never_steps_back) {
  UsageTable table(1min);
  const std::string path =
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod0d1c7a8e_3b2f_4f5e_9a6b_7c8d9e0f1a2b.slice/"
      "cri-containerd-" +
      std::string(64, 'a') + ".scope";
  auto now = Clock::now();
  table.observe_cpu(1, 100, resolved(path), now);
  table.observe_cpu(2, 100, resolved(path + "/worker"), now);
  table.observe_runqueue(1, hist({{0, 5}, {3, 1}}, 9000));
  table.observe_runqueue(2, hist({{3, 2}}, 16000));
  table.observe_runqueue(99, hist({{1, 7}}, 1));  // not known yet: held back
  auto t = table.targets();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].runqueue, hist({{0, 5}, {3, 3}}, 25000));
  // A racing read that is lower in one slot does not step the series back.
  table.observe_runqueue(1, hist({{0, 4}, {3, 2}}, 9500));
  t = table.targets();
  EXPECT_EQ(t[0].runqueue.slots[0], 5u);
  EXPECT_EQ(t[0].runqueue.slots[3], 4u);
  // The nested cgroup goes away: its waits stay with the container.
  table.observe_cpu(
      2, 100,
      [&] {
        auto r = resolved(path + "/worker");
        r.removed = true;
        return r;
      }(),
      now);
  now += 2min;
  table.observe_cpu(1, 200, resolved(path), now);
  const auto retired = table.expire(now);
  EXPECT_EQ(retired, std::vector<uint64_t>{2});
  t = table.targets();
  EXPECT_EQ(t[0].runqueue.slots[3], 4u);
  EXPECT_EQ(t[0].runqueue.sum_ns, 25500u);
}

TEST(UsageTable, cfs_counters_never_step_back) {
  UsageTable table;
  const std::string path =
      "/kubepods/besteffort/pod0d1c7a8e-3b2f-4f5e-9a6b-7c8d9e0f1a2b/" + std::string(64, 'b');
  table.observe_cpu(1, 1, resolved(path), Clock::now());
  const auto target = table.targets()[0].target;
  table.record_cfs(target, {10, 5, 500});
  table.record_cfs(target, {9, 6, 400});
  const auto cfs = table.targets()[0].cfs;
  ASSERT_TRUE(cfs);
  EXPECT_EQ(cfs->periods, 10u);
  EXPECT_EQ(cfs->throttled_periods, 6u);
  EXPECT_EQ(cfs->throttled_ns, 500u);
}
