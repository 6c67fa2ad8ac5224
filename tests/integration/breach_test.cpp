// Limit breaches end to end: real cgroups with real limits, a process ramping its memory into
// the OOM killer, a CPU burner held by its CFS quota; the agent's events through `podgauge tail`.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_metrics.h"
#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;

namespace {

// Short windows so the test runs in seconds; the rules' logic over long windows is covered by
// tests/unit/analysis_breach_test.cpp with an injected clock.
class BreachTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    agent_ = new AgentProcess({"--interval", "100ms",
                               "--breach-rule", "memory.limit>=75%/300ms,clear=300ms",
                               "--breach-rule", "throttling>=50%/1s,smooth=500ms,clear=1s"});
  }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
  }
  static AgentProcess* agent_;
};
AgentProcess* BreachTest::agent_ = nullptr;

ChildProcess tail_json(const std::string& url) {
  ProcessSpec spec;
  spec.argv = {podgauge_binary().string(), "tail", "--agent", url, "-o", "json"};
  return ChildProcess(spec);
}

// Every JSON event `tail` printed for the container until `done` matches one, or `timeout`.
std::vector<nlohmann::json> events_until(ChildProcess& tail, const std::string& cid,
                                         const std::function<bool(const nlohmann::json&)>& done,
                                         std::chrono::milliseconds timeout) {
  std::vector<nlohmann::json> seen;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto line = tail.wait_for_line(
        ChildProcess::Stream::Stdout,
        [&](const std::string& l) { return l.find(cid) != std::string::npos; },
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (!line) break;
    seen.push_back(nlohmann::json::parse(*line));
    if (done(seen.back())) break;
  }
  return seen;
}

// An allocator that holds its memory, started in `dirs`; returns once it has touched all of it
// (emulated guests fault pages in slowly).
std::unique_ptr<ChildProcess> allocated(const std::string& mib, const std::string& comm,
                                        std::vector<std::filesystem::path> dirs) {
  ProcessSpec spec;
  spec.argv = {helper_binary("alloc").string(), mib, comm, "60"};
  spec.cgroups = std::move(dirs);
  auto p = std::make_unique<ChildProcess>(spec);
  auto done = p->wait_for_line(
      ChildProcess::Stream::Stderr, [](const std::string& l) { return l.find("alloc: done") != std::string::npos; },
      60s);
  EXPECT_TRUE(done) << "the allocator never finished: " << p->stderr_text();
  return p;
}

}  // namespace

TEST_F(BreachTest, memory_ramping_to_its_limit_raises_a_breach_before_the_oom_kill_which_carries_the_trajectory) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::cgroupfs_container(QosClass::Burstable, uid, cid);
  sandbox.create(rel);
  const uint64_t limit = 64ull << 20;
  sandbox.set_memory_limit(rel, limit);

  ChildProcess tail = tail_json(agent_->url);
  std::this_thread::sleep_for(300ms);
  // 1 MiB every 40 ms: 75% of the limit after ~2 s, the limit ~0.6 s later.
  ChildProcess alloc(in_cgroup({helper_binary("alloc").string(), "256", "pg-ramp", "0", "40"}, sandbox.dirs(rel)));
  const pid_t victim = alloc.pid();
  auto status = alloc.wait(30s);
  ASSERT_TRUE(status) << "allocator still running: no OOM kill";
  ASSERT_TRUE(status->killed_by(SIGKILL)) << status->describe();

  auto events = events_until(tail, cid, [](const auto& e) { return e["type"] == "oom_kill"; }, 5s);
  ASSERT_FALSE(events.empty()) << "no event for the container; tail stderr:\n" << tail.stderr_text();
  const nlohmann::json* start = nullptr;
  const nlohmann::json* kill = nullptr;
  for (const auto& e : events) {
    if (e["type"] == "breach_start" && !start) start = &e;
    if (e["type"] == "oom_kill") kill = &e;
  }
  ASSERT_TRUE(kill) << "no oom_kill event";
  ASSERT_TRUE(start) << "no breach_start before the OOM kill";
  EXPECT_LT((*start)["seq"].get<uint64_t>(), (*kill)["seq"].get<uint64_t>());
  EXPECT_EQ((*start)["rule"], "memory.limit>=75%/300ms,clear=300ms");
  EXPECT_EQ((*start)["resource"], "memory.limit");
  EXPECT_EQ((*start)["pod_uid"], uid);
  EXPECT_GE((*start)["value"].get<double>(), 75.0);
  EXPECT_LE((*start)["value"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ((*start)["threshold"].get<double>(), 75.0);

  const auto& k = *kill;
  EXPECT_EQ(k["pid"], victim);
  EXPECT_EQ(k["oom_constraint"], "memcg");
  ASSERT_TRUE(k["memory_before"].is_array());
  const auto& points = k["memory_before"];
  // Sampled every 100 ms for the ~2.6 s the ramp lasted: well over 5 points in the last minute.
  ASSERT_GE(points.size(), 5u) << k.dump();
  int64_t previous = -61'000;
  for (const auto& p : points) {
    const int64_t off = p["offset_ms"].get<int64_t>();
    EXPECT_GE(off, previous) << "points in time order";
    EXPECT_LE(off, 100) << "no point after the kill (sampling jitter aside)";
    previous = off;
    EXPECT_EQ(p["limit_bytes"].get<uint64_t>(), limit);
  }
  EXPECT_GE(points.back()["working_set_bytes"].get<uint64_t>(), limit / 2)
      << "the last sample before the kill shows the container near its limit";
  EXPECT_GE(k["working_set_peak_bytes"].get<uint64_t>(), limit * 3 / 4);
  EXPECT_LE(k["working_set_peak_bytes"].get<uint64_t>(), limit);
  EXPECT_GT(k["memory_growth_bytes_per_second"].get<double>(), 4.0 * (1 << 20))
      << "the ramp was ~25 MiB/s";
  // Reclaim stalls and PSI ride along (values as of the last sample; 0 for anonymous memory
  // without swap, where reclaim finds nothing to do).
  EXPECT_TRUE(k.contains("reclaim_stall_seconds") && k.contains("memory_pressure_some_avg10")) << k.dump();
}

TEST_F(BreachTest, a_container_held_by_its_cpu_quota_raises_a_throttling_breach_that_ends_when_relieved) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::cgroupfs_container(QosClass::Burstable, uid, cid);
  sandbox.create(rel);
  sandbox.set_cpu_quota(rel, 10000);  // 0.1 CPU

  ChildProcess tail = tail_json(agent_->url);
  std::this_thread::sleep_for(300ms);
  ChildProcess burn(in_cgroup({helper_binary("burn").string(), "20", "pg-throttled"}, sandbox.dirs(rel)));

  auto started = events_until(tail, cid, [](const auto& e) { return e["type"] == "breach_start"; }, 8s);
  ASSERT_FALSE(started.empty() || started.back()["type"] != "breach_start")
      << "no throttling breach within 8 s; tail stderr:\n" << tail.stderr_text();
  const auto& s = started.back();
  EXPECT_EQ(s["resource"], "throttling");
  EXPECT_GE(s["value"].get<double>(), 50.0);
  const std::string page = agent_->metrics();
  EXPECT_EQ(metric_value(page, "podgauge_container_breach_active",
                         {{"container_id", cid}, {"rule", "throttling>=50%/1s,smooth=500ms,clear=1s"}}),
            1.0) << page;
  EXPECT_NEAR(metric_value(page, "podgauge_container_cpu_limit_cores", {{"container_id", cid}})
                  .value_or(-1),
              0.1, 1e-9);
  const auto active = nlohmann::json::parse(http_get(agent_->url + "/v1/breaches").body);
  bool listed = false;
  for (const auto& b : active) listed |= b["container_id"] == cid && b["resource"] == "throttling";
  EXPECT_TRUE(listed) << active.dump();

  // Relieve it: no quota any more.
  sandbox.set_cpu_quota(rel, -1);
  auto ended = events_until(tail, cid, [](const auto& e) { return e["type"] == "breach_end"; }, 8s);
  ASSERT_FALSE(ended.empty() || ended.back()["type"] != "breach_end") << "the breach did not end once relieved";
  EXPECT_EQ(ended.back()["resource"], "throttling");
  EXPECT_GT(ended.back()["duration_seconds"].get<double>(), 1.0);
  EXPECT_FALSE(metric_value(agent_->metrics(), "podgauge_container_cpu_limit_cores", {{"container_id", cid}}));
  burn.kill(SIGKILL);
}

TEST_F(BreachTest, working_set_and_limits_are_exported_like_the_kubelet_sees_them) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::cgroupfs_container(QosClass::Burstable, uid, cid);
  sandbox.create(rel);
  sandbox.set_memory_limit(rel, 256ull << 20);
  auto alloc = allocated("48", "pg-hold", sandbox.dirs(rel));
  double ws = 0, rss = 0;
  std::string page;
  // The usage is read every round, memory.stat's split (RSS, cache) every 10th: wait for both.
  ASSERT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        ws = metric_value(page, "podgauge_container_memory_working_set_bytes", {{"container_id", cid}}).value_or(0);
        rss = metric_value(page, "podgauge_container_memory_rss_bytes", {{"container_id", cid}}).value_or(0);
        return ws >= 48.0 * (1 << 20) && rss >= 47.0 * (1 << 20);
      },
      20s))
      << "working set " << ws << ", rss " << rss;
  EXPECT_EQ(metric_value(page, "podgauge_container_memory_limit_bytes", {{"container_id", cid}}),
            double(256ull << 20));
  EXPECT_LE(ws, 64.0 * (1 << 20)) << "48 MiB of anonymous memory plus a little";
  alloc->kill(SIGKILL);
}

TEST_F(BreachTest, top_shows_each_container_its_processes_and_sums_pods_against_their_limits) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto app = KubeletNames::random_container_id(), sidecar = KubeletNames::random_container_id();
  const auto app_rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", app);
  const auto side_rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", sidecar);
  sandbox.create(app_rel);
  sandbox.create(side_rel);
  sandbox.set_memory_limit(app_rel, 128ull << 20);
  sandbox.set_memory_limit(side_rel, 64ull << 20);
  auto a = allocated("40", "pg-app", sandbox.dirs(app_rel));
  auto b = allocated("16", "pg-side", sandbox.dirs(side_rel));
  ChildProcess burn(in_cgroup({helper_binary("burn").string(), "30", "pg-top-burn"}, sandbox.dirs(app_rel)));

  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), podgauge_binary().string());
    const RunResult r = run_process(args, 10s);
    EXPECT_TRUE(r.status.success()) << r.err;
    return r.out;
  };
  nlohmann::json mine;
  ASSERT_TRUE(wait_until(
      [&] {
        mine = nlohmann::json::array();
        for (const auto& c : nlohmann::json::parse(run({"top", "containers", "--agent", agent_->url, "-o", "json"})))
          if (c["pod_uid"] == uid && c["memory_working_set_bytes"].is_number() && c["cpu_cores"].is_number())
            mine.push_back(c);
        if (mine.size() != 2) return false;
        double app_ws = 0, side_ws = 0;
        for (const auto& c : mine)
          (c["container_id"] == app ? app_ws : side_ws) = c["memory_working_set_bytes"].get<double>();
        return app_ws >= 40.0 * (1 << 20) && side_ws >= 16.0 * (1 << 20) &&
               mine[0]["cpu_cores"].get<double>() > 0.05;
      },
      20s))
      << mine.dump();
  // Sorted by CPU: the burner's container first.
  EXPECT_EQ(mine[0]["container_id"], app);
  EXPECT_GT(mine[0]["cpu_cores"].get<double>(), mine[1]["cpu_cores"].get<double>());
  EXPECT_EQ(mine[0]["memory_limit_bytes"].get<double>(), double(128ull << 20));

  nlohmann::json pod;
  for (const auto& p : nlohmann::json::parse(run({"top", "pods", "--agent", agent_->url, "-o", "json"})))
    if (p["pod_uid"] == uid) pod = p;
  ASSERT_FALSE(pod.is_null());
  EXPECT_EQ(pod["containers"], 2);
  EXPECT_EQ(pod["memory_limit_bytes"].get<double>(), double(192ull << 20)) << "the pod's limit sums its containers'";
  EXPECT_GE(pod["memory_working_set_bytes"].get<double>(), 56.0 * (1 << 20));

  const std::string table = run({"top", "containers", "--agent", agent_->url, "--sort-by", "memory"});
  EXPECT_NE(table.find("CPU(cores)"), std::string::npos) << table;
  EXPECT_NE(table.find(app.substr(0, 12)), std::string::npos) << table;

  // The processes inside: the burner, by pid and name, with its CPU.
  nlohmann::json burner;
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& p : nlohmann::json::parse(run({"top", "processes", "--agent", agent_->url, "-o", "json"})))
          if (p["pid"] == burn.pid()) burner = p;
        return burner.is_object() && burner.value("cpu_cores", 0.0) > 0.05;
      },
      10s))
      << burner.dump();
  EXPECT_EQ(burner.value("comm", ""), "pg-top-burn");
  EXPECT_EQ(burner.value("container_id", ""), app);
  EXPECT_EQ(burner.value("pod_uid", ""), uid);
  const std::string procs = run({"top", "processes", "--agent", agent_->url});
  EXPECT_NE(procs.find("pg-top-burn"), std::string::npos) << procs;
  burn.kill(SIGKILL);
  a->kill(SIGKILL);
  b->kill(SIGKILL);
}

// Usage against limits over a window (/v1/efficiency) and what is left unset, on real cgroups:
// a container held to half a CPU and 256 MiB, burning and holding 32 MiB, next to a BestEffort
// one with no limits at all.
TEST_F(BreachTest, efficiency_reports_usage_against_limits_over_a_window_and_what_is_unset) {
  CgroupSandbox sandbox;
  const auto limited_cid = KubeletNames::random_container_id(), open_cid = KubeletNames::random_container_id();
  const auto limited = KubeletNames::cgroupfs_container(QosClass::Burstable, KubeletNames::random_pod_uid(), limited_cid);
  const auto open = KubeletNames::cgroupfs_container(QosClass::BestEffort, KubeletNames::random_pod_uid(), open_cid);
  sandbox.create(limited);
  sandbox.create(open);
  sandbox.set_memory_limit(limited, 256ull << 20);
  sandbox.set_cpu_quota(limited, 50000);  // 0.5 CPU
  auto holder = allocated("32", "pg-eff-mem", sandbox.dirs(limited));
  ChildProcess burn(in_cgroup({helper_binary("burn").string(), "20", "pg-eff-cpu"}, sandbox.dirs(limited)));
  ChildProcess sleeper(in_cgroup({"/bin/sleep", "30"}, sandbox.dirs(open)));
  std::this_thread::sleep_for(4s);

  const auto rows = nlohmann::json::parse(http_get(agent_->url + "/v1/efficiency?window=3s").body);
  auto row = [&](const std::string& cid) {
    for (const auto& r : rows)
      if (r["container_id"] == cid) return r;
    return nlohmann::json();
  };
  const auto a = row(limited_cid), b = row(open_cid);
  ASSERT_FALSE(a.is_null()) << rows.dump();
  ASSERT_FALSE(b.is_null()) << rows.dump();

  const auto& cpu = a["cpu"];
  ASSERT_TRUE(cpu["avg_cores"].is_number()) << a.dump();
  EXPECT_DOUBLE_EQ(cpu["limit_cores"].get<double>(), 0.5);
  const double avg = cpu["avg_cores"], p95 = cpu["p95_cores"];
  EXPECT_GT(avg, 0.05) << "the burner was not seen: " << a.dump();
  EXPECT_LE(avg, 0.6) << "above its 0.5 CPU quota: " << a.dump();
  EXPECT_GE(p95, avg * 0.9) << a.dump();
  EXPECT_NEAR(cpu["avg_of_limit_percent"].get<double>(), 100 * avg / 0.5, 1e-6);
  EXPECT_TRUE(cpu["request_cores"].is_null()) << "standalone: no pod spec";

  const auto& mem = a["memory"];
  EXPECT_DOUBLE_EQ(mem["limit_bytes"].get<double>(), double(256ull << 20));
  const double ws_avg = mem["avg_working_set_bytes"], ws_p95 = mem["p95_working_set_bytes"];
  EXPECT_GE(ws_avg, double(30ull << 20)) << "32 MiB held: " << a.dump();
  EXPECT_LT(ws_avg, double(256ull << 20));
  EXPECT_GE(ws_p95, ws_avg - double(1 << 20));
  EXPECT_GE(mem["max_working_set_bytes"].get<double>(), ws_p95);
  EXPECT_TRUE(a["unset"].empty()) << "limits set, requests unknown standalone: " << a.dump();
  EXPECT_FALSE(a["spec_known"].get<bool>());

  const auto unset = b["unset"].get<std::vector<std::string>>();
  EXPECT_EQ(unset, (std::vector<std::string>{"cpu_limit", "memory_limit"})) << b.dump();
  EXPECT_TRUE(b["cpu"]["avg_of_limit_percent"].is_null());

  const std::string page = agent_->metrics();
  auto unset_metric = [&](const std::string& cid, const char* resource) {
    return metric_value(page, "podgauge_container_resource_unset",
                        {{"container_id", cid}, {"resource", resource}, {"kind", "limit"}});
  };
  EXPECT_EQ(unset_metric(open_cid, "cpu"), 1.0);
  EXPECT_EQ(unset_metric(open_cid, "memory"), 1.0);
  EXPECT_EQ(unset_metric(limited_cid, "cpu"), 0.0);
  EXPECT_EQ(unset_metric(limited_cid, "memory"), 0.0);
}
