#include <gtest/gtest.h>

#include "podgauge/agent/agent.h"
#include "podgauge/agent/usage_table.h"

using namespace podgauge::agent;
using namespace std::chrono_literals;

namespace {

const std::string kUid = "0d1c7a8e-3b2f-4f5e-9a6b-7c8d9e0f1a2b";
const std::string kCid(64, 'a');

ResolvedCgroup resolved(const std::string& path, bool removed = false) {
  ResolvedCgroup r;
  r.path = std::make_shared<const std::string>(path);
  r.identity = podgauge::cgroup::parse_kubelet_path(path);
  r.removed = removed;
  return r;
}

std::string container_path() {
  std::string uid_ = kUid;
  std::replace(uid_.begin(), uid_.end(), '-', '_');
  return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid_ +
         ".slice/cri-containerd-" + kCid + ".scope";
}

const TargetUsage* find(const std::vector<TargetUsage>& v, UsageTarget::Kind kind,
                        const std::string& key = "") {
  for (const auto& t : v)
    if (t.target.kind == kind && (key.empty() || t.target.container_id == key || t.target.group == key))
      return &t;
  return nullptr;
}

}  // namespace

TEST(UsageTable, sums_a_container_and_the_cgroups_nested_below_it) {
  UsageTable table;
  const auto now = Clock::now();
  table.observe_cpu(1, 100, resolved(container_path()), now);
  table.observe_cpu(2, 50, resolved(container_path() + "/worker"), now);
  const auto targets = table.targets();
  const auto* c = find(targets, UsageTarget::Kind::Container, kCid);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->cpu_ns, 150u);
  EXPECT_EQ(c->target.pod_uid, kUid);
  EXPECT_EQ(c->runtime, "containerd");
  EXPECT_EQ(c->qos, "Burstable");
  EXPECT_EQ(c->cgroup_path, container_path()) << "the container's own cgroup, not the nested one";
}

TEST(UsageTable, counter_never_steps_back_when_an_in_flight_estimate_was_high) {
  UsageTable table;
  const auto now = Clock::now();
  table.observe_cpu(1, 1000, resolved(container_path()), now);
  table.observe_cpu(1, 990, resolved(container_path()), now + 1s);
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container)->cpu_ns, 1000u);
}

TEST(UsageTable, removed_cgroups_keep_counting_until_retired_and_then_stay_in_the_total) {
  UsageTable table(10min);
  const auto t0 = Clock::now();
  table.observe_cpu(1, 100, resolved(container_path()), t0);
  table.observe_cpu(2, 40, resolved(container_path() + "/a"), t0);
  table.observe_cpu(2, 40, resolved(container_path() + "/a", /*removed=*/true), t0 + 1s);
  EXPECT_TRUE(table.expire(t0 + 2s).empty()) << "tombstone still within retention";
  table.observe_cpu(1, 200, resolved(container_path()), t0 + 11min);
  const auto retired = table.expire(t0 + 11min);
  ASSERT_EQ(retired, std::vector<uint64_t>{2});
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container)->cpu_ns, 240u)
      << "a retired cgroup's time stays in its container's counter";
}

TEST(UsageTable, a_container_whose_cgroups_are_all_gone_disappears_after_the_retention) {
  UsageTable table(10min);
  const auto t0 = Clock::now();
  table.observe_cpu(1, 100, resolved(container_path(), true), t0);
  EXPECT_TRUE(table.expire(t0 + 5min).empty());
  const auto* kept = find(table.targets(), UsageTarget::Kind::Container);
  ASSERT_NE(kept, nullptr) << "the final value stays scrapeable during the retention";
  EXPECT_EQ(kept->cpu_ns, 100u);
  EXPECT_EQ(table.expire(t0 + 11min), std::vector<uint64_t>{1});
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container), nullptr);
}

TEST(UsageTable, unresolved_ids_lose_nothing_when_they_resolve_later) {
  UsageTable table;
  const auto t0 = Clock::now();
  table.observe_cpu(7, 500, ResolvedCgroup{}, t0);
  EXPECT_EQ(table.unresolved_count(), 1u);
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container), nullptr);
  table.observe_cpu(7, 800, resolved(container_path()), t0 + 1s);
  EXPECT_EQ(table.unresolved_count(), 0u);
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container)->cpu_ns, 800u);
}

TEST(UsageTable, ids_never_resolved_are_retired_and_counted_apart) {
  UsageTable table(1min);
  const auto t0 = Clock::now();
  table.observe_cpu(7, 500, ResolvedCgroup{}, t0);
  EXPECT_EQ(table.expire(t0 + 2min), std::vector<uint64_t>{7});
  EXPECT_EQ(table.unresolved_cpu_ns(), 500u);
}

TEST(UsageTable, host_cgroups_group_by_top_level_and_conmon_is_pod_overhead) {
  UsageTable table;
  const auto now = Clock::now();
  table.observe_cpu(1, 10, resolved("/system.slice/containerd.service"), now);
  table.observe_cpu(2, 20, resolved("/system.slice/kubelet.service"), now);
  table.observe_cpu(3, 5, resolved("/"), now);
  std::string uid_ = kUid;
  std::replace(uid_.begin(), uid_.end(), '-', '_');
  table.observe_cpu(4, 7, resolved("/kubepods.slice/kubepods-pod" + uid_ + ".slice/crio-conmon-" + kCid + ".scope"), now);
  const auto targets = table.targets();
  EXPECT_EQ(find(targets, UsageTarget::Kind::HostGroup, "/system.slice")->cpu_ns, 30u);
  EXPECT_EQ(find(targets, UsageTarget::Kind::HostGroup, "/")->cpu_ns, 5u);
  const auto* overhead = find(targets, UsageTarget::Kind::PodOverhead, "runtime");
  ASSERT_NE(overhead, nullptr);
  EXPECT_EQ(overhead->cpu_ns, 7u);
  EXPECT_EQ(find(targets, UsageTarget::Kind::Container), nullptr);
}

TEST(UsageTable, oom_kills_count_against_the_container) {
  UsageTable table;
  const auto now = Clock::now();
  table.observe_cpu(1, 1, resolved(container_path()), now);
  table.record_oom_kill(resolved(container_path()), now);
  table.record_oom_kill(resolved(container_path() + "/x"), now);
  EXPECT_EQ(find(table.targets(), UsageTarget::Kind::Container)->oom_kills, 2u);
}

TEST(Duration, parses_go_style_durations) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("1s"), 1s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("24h"), 24h);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
}

TEST(Duration, rejects_what_it_cannot_read_with_a_message) {
  for (const char* bad : {"", "soon", "5", "5x", "m5", "-1s"}) {
    try {
      parse_duration(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("duration"), std::string::npos) << e.what();
    }
  }
}

TEST(UsageTable, containers_reports_what_targets_does_for_every_container) {
  UsageTable table(10min);
  const auto t0 = Clock::now();
  const std::string other = "/kubepods/besteffort/pod" + kUid + "/" + std::string(64, 'b');
  table.observe_cpu(1, 100, resolved(container_path()), t0);
  table.observe_cpu(2, 40, resolved(container_path() + "/a"), t0);
  table.observe_cpu(2, 40, resolved(container_path() + "/a", /*removed=*/true), t0 + 1s);
  table.observe_cpu(3, 7, resolved(other), t0);
  table.record_oom_kill(resolved(other), t0);
  table.observe_cpu(1, 200, resolved(container_path()), t0 + 11min);
  table.observe_cpu(3, 9, resolved(other), t0 + 11min);
  ASSERT_EQ(table.expire(t0 + 11min), std::vector<uint64_t>{2});
  const auto targets = table.targets();
  const auto containers = table.containers();
  ASSERT_EQ(containers.size(), 2u);
  for (const auto& c : containers) {
    const auto* t = find(targets, UsageTarget::Kind::Container, c.target.container_id);
    ASSERT_NE(t, nullptr) << c.target.container_id;
    EXPECT_EQ(c.cpu_ns, t->cpu_ns) << c.target.container_id;
    EXPECT_EQ(c.oom_kills, t->oom_kills) << c.target.container_id;
    EXPECT_EQ(c.cgroup_path, t->cgroup_path) << c.target.container_id;
  }
  EXPECT_EQ(find(targets, UsageTarget::Kind::Container, kCid)->cpu_ns, 240u);
}

TEST(UsageTable, containers_into_a_reused_vector_follow_containers_that_come_and_go) {
  UsageTable table(10min);
  const auto t0 = Clock::now();
  const std::string other = "/kubepods/besteffort/pod" + kUid + "/" + std::string(64, 'b');
  table.observe_cpu(1, 100, resolved(container_path()), t0);
  table.observe_cpu(3, 7, resolved(other), t0);
  std::vector<UsageTable::ContainerCpu> reused;
  table.containers(reused);
  ASSERT_EQ(reused.size(), 2u);
  // The other container's cgroup goes away and is retired; the first keeps counting.
  table.observe_cpu(3, 9, resolved(other, /*removed=*/true), t0 + 1s);
  table.observe_cpu(1, 300, resolved(container_path()), t0 + 11min);
  table.expire(t0 + 11min);
  table.expire(t0 + 22min);
  table.observe_cpu(1, 350, resolved(container_path()), t0 + 22min);
  table.containers(reused);
  const auto fresh = table.containers();
  ASSERT_EQ(reused.size(), 1u);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(reused[0].target, fresh[0].target);
  EXPECT_EQ(reused[0].target.container_id, kCid);
  EXPECT_EQ(reused[0].cgroup_path, container_path());
  EXPECT_EQ(reused[0].cpu_ns, 350u);
  EXPECT_EQ(reused[0].cpu_ns, fresh[0].cpu_ns);
}

TEST(UsageTable, a_cgroup_seen_again_keeps_its_container_and_the_shortest_own_path) {
  UsageTable table;
  const auto now = Clock::now();
  // A host cgroup has no kubelet identity: its own path is the whole path, and the target's
  // path is the shortest of its cgroups', whichever round brought it.
  ResolvedCgroup deep = resolved("/system.slice/a.service/sub");
  table.observe_cpu(1, 10, deep, now);
  table.observe_cpu(2, 10, resolved("/system.slice"), now + 1s);
  table.observe_cpu(1, 20, deep, now + 2s);
  const auto* host = find(table.targets(), UsageTarget::Kind::HostGroup, "/system.slice");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->cgroup_path, "/system.slice");
  EXPECT_EQ(host->cpu_ns, 30u);
}
