// The agent end to end on the real kernel: real cgroups laid out as kubelet does, real CPU
// burners and OOM kills, the real `podgauge tail`, the real Prometheus server and promtool.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "agent_metrics.h"
#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"
#include "support/prometheus.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;

namespace {

class AgentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { agent_ = new AgentProcess(); }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
  }
  static AgentProcess* agent_;
};
AgentProcess* AgentTest::agent_ = nullptr;

std::optional<double> container_cpu(const std::string& page, const std::string& container_id) {
  return metric_value(page, "podgauge_container_cpu_usage_seconds_total",
                      {{"container_id", container_id}});
}


}  // namespace

TEST_F(AgentTest, container_cpu_seconds_match_the_kernels_accounting_within_5_percent) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(rel);

  ChildProcess burner(in_cgroup({helper_binary("burn").string(), "2", "pg-burn"}, sandbox.dirs(rel)));
  auto status = burner.wait(10s);
  ASSERT_TRUE(status && status->success()) << (status ? status->describe() : "still running");
  const double kernel = double(sandbox.cpuacct_usage_ns(rel)) / 1e9;
  ASSERT_GT(kernel, 0.5) << "the burner barely ran: nothing to compare";

  double seen = 0;
  const bool close = wait_until(
      [&] {
        seen = container_cpu(agent_->metrics(), cid).value_or(0);
        return std::abs(seen - kernel) / kernel < 0.05;
      },
      5s);
  EXPECT_TRUE(close) << "podgauge says " << seen << " s, the kernel's cpuacct says " << kernel << " s";

  const auto page = agent_->metrics();
  EXPECT_TRUE(metric_value(page, "podgauge_container_cpu_usage_seconds_total",
                           {{"container_id", cid}, {"pod_uid", uid}, {"node", "itest-node"}}))
      << "series lacks pod_uid/node labels:\n" << page;
  EXPECT_TRUE(metric_value(page, "podgauge_container_info",
                           {{"container_id", cid}, {"runtime", "containerd"}, {"qos", "Burstable"}}));
}

TEST_F(AgentTest, a_task_joining_its_container_while_running_is_charged_from_that_moment) {
  CgroupSandbox sandbox;
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, KubeletNames::random_pod_uid(),
                                                   "cri-containerd", cid);
  sandbox.create(rel);
  // SCHED_FIFO: nothing preempts the mover, so the slice running when it moves lasts ~0.65 s.
  // RT_GROUP_SCHED refuses RT tasks in a new v1 cpu cgroup: join the other hierarchies only.
  std::vector<std::string> argv{helper_binary("movein").string(), "--fifo", "0.3", "1"};
  for (const auto& h : sandbox.hierarchies())
    if (h.v2 || !h.has_controller("cpu")) argv.push_back(sandbox.path_in(h.name, rel).string());
  ProcessSpec spec;
  spec.argv = argv;
  spec.stderr_mode = OutputMode::Capture;
  ChildProcess mover(spec);
  auto status = mover.wait(20s);
  ASSERT_TRUE(status && status->success()) << mover.stderr_text();
  const double kernel = double(sandbox.cpuacct_usage_ns(rel)) / 1e9;
  ASSERT_GT(kernel, 0.9);
  double seen = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        seen = container_cpu(agent_->metrics(), cid).value_or(0);
        return std::abs(seen - kernel) / kernel < 0.05;
      },
      5s))
      << "podgauge says " << seen << " s, the kernel " << kernel
      << " s: the slice running when the task moved was charged to the cgroup it left";
}

TEST_F(AgentTest, oom_kill_reaches_tail_within_a_second_with_pod_and_container) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::cgroupfs_container(QosClass::BestEffort, uid, cid);
  sandbox.create(rel);
  sandbox.set_memory_limit(rel, 64ull << 20);

  ProcessSpec tail_spec;
  tail_spec.argv = {podgauge_binary().string(), "tail", "--agent", agent_->url, "-o", "json"};
  ChildProcess tail(tail_spec);
  std::this_thread::sleep_for(300ms);  // let it connect; it would replay held events anyway

  ChildProcess alloc(in_cgroup({helper_binary("alloc").string(), "256", "pg-alloc"}, sandbox.dirs(rel)));
  const pid_t victim = alloc.pid();
  auto status = alloc.wait(30s);
  ASSERT_TRUE(status) << "allocator still running: no OOM kill";
  ASSERT_TRUE(status->killed_by(SIGKILL)) << status->describe();
  ASSERT_EQ(sandbox.memory_oom_kills(rel), 1u);

  const auto t0 = std::chrono::steady_clock::now();
  auto line = tail.wait_for_line(
      ChildProcess::Stream::Stdout,
      [&](const std::string& l) {
        return l.find("\"oom_kill\"") != std::string::npos && l.find(cid) != std::string::npos;
      },
      1s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(line) << "no oom_kill for the container from `podgauge tail -o json` within 1 s; "
                    << "tail stderr:\n" << tail.stderr_text();
  EXPECT_LE(waited, 1s);

  const auto e = nlohmann::json::parse(*line);
  EXPECT_EQ(e["type"], "oom_kill");
  EXPECT_EQ(e["pod_uid"], uid);
  EXPECT_EQ(e["container_id"], cid);
  EXPECT_EQ(e["pid"], victim);
  EXPECT_EQ(e["tgid"], victim);
  EXPECT_EQ(e["comm"], "pg-alloc");
  EXPECT_EQ(e["node"], "itest-node");
  EXPECT_EQ(e["qos"], "BestEffort");
  EXPECT_EQ(e["memory_limit_bytes"], 64ull << 20);
  EXPECT_GT(e["rss_bytes"].get<uint64_t>(), 32ull << 20) << "victim's RSS at the kill";
  for (const char* field : {"seq", "time", "namespace", "pod", "container", "cgroup_id"})
    EXPECT_TRUE(e.contains(field)) << field;

  double kills = -1;
  EXPECT_TRUE(wait_until(
      [&] {
        kills = metric_value(agent_->metrics(), "podgauge_container_oom_kills_total",
                             {{"container_id", cid}}).value_or(-1);
        return kills == 1;
      },
      3s))
      << "podgauge_container_oom_kills_total for the container is " << kills;
}

TEST_F(AgentTest, every_kubelet_layout_is_recognised_on_real_cgroups) {
  CgroupSandbox sandbox;
  struct Case {
    std::string rel, cid, runtime, qos;
  };
  std::vector<Case> cases;
  auto add = [&](std::string rel, std::string cid, std::string runtime, std::string qos) {
    cases.push_back({std::move(rel), std::move(cid), std::move(runtime), std::move(qos)});
  };
  const auto uid1 = KubeletNames::random_pod_uid(), uid2 = KubeletNames::random_pod_uid(),
             uid3 = KubeletNames::random_pod_uid(), uid4 = KubeletNames::random_pod_uid();
  const auto c1 = KubeletNames::random_container_id(), c2 = KubeletNames::random_container_id(),
             c3 = KubeletNames::random_container_id(), c4 = KubeletNames::random_container_id();
  add(KubeletNames::systemd_container(QosClass::Guaranteed, uid1, "crio", c1), c1, "cri-o", "Guaranteed");
  add(KubeletNames::systemd_container(QosClass::BestEffort, uid2, "docker", c2), c2, "docker", "BestEffort");
  add(KubeletNames::cgroupfs_container(QosClass::Guaranteed, uid3, c3), c3, "", "Guaranteed");
  add(KubeletNames::containerd_colon_container(QosClass::Burstable, uid4, c4), c4, "containerd", "Burstable");
  const auto conmon = KubeletNames::systemd_crio_conmon(QosClass::Guaranteed, uid1, c1);

  std::vector<std::unique_ptr<ChildProcess>> burners;
  for (const auto& c : cases) {
    sandbox.create(c.rel);
    burners.push_back(std::make_unique<ChildProcess>(
        in_cgroup({helper_binary("burn").string(), "0.3", "pg-burn"}, sandbox.dirs(c.rel))));
  }
  sandbox.create(conmon);
  burners.push_back(std::make_unique<ChildProcess>(
      in_cgroup({helper_binary("burn").string(), "0.3", "conmon"}, sandbox.dirs(conmon))));
  for (auto& b : burners) ASSERT_TRUE(b->wait(10s));

  // Each container's series matches its own cgroup's kernel accounting; conmon's CPU is the
  // pod's runtime overhead, never the container's.
  auto kernel = [&](const std::string& rel) { return double(sandbox.cpuacct_usage_ns(rel)) / 1e9; };
  auto near = [](std::optional<double> seen, double want) {
    return seen && std::abs(*seen - want) <= 0.05 * want + 0.005;
  };
  std::string page;
  const bool all_match = wait_until(
      [&] {
        page = agent_->metrics();
        for (const auto& c : cases)
          if (!near(container_cpu(page, c.cid), kernel(c.rel))) return false;
        return near(metric_value(page, "podgauge_pod_overhead_cpu_usage_seconds_total",
                                 {{"pod_uid", uid1}, {"component", "runtime"}}),
                    kernel(conmon));
      },
      5s);
  for (const auto& c : cases) {
    std::map<std::string, std::string> match{{"container_id", c.cid}, {"qos", c.qos}};
    if (!c.runtime.empty()) match["runtime"] = c.runtime;
    EXPECT_TRUE(metric_value(page, "podgauge_container_info", match)) << c.rel;
    EXPECT_TRUE(near(container_cpu(page, c.cid), kernel(c.rel)))
        << c.rel << ": podgauge " << container_cpu(page, c.cid).value_or(-1) << " s, kernel "
        << kernel(c.rel) << " s";
  }
  EXPECT_TRUE(all_match) << page;
  EXPECT_GT(kernel(conmon), 0.01) << "the conmon stand-in did not run";
}

// The kernel tells the agent which cgroup it made (cgroup_mkdir's path, through a ring buffer),
// so a pod whose container has not run a single task is named within a round or two, without a
// walk of the trees, however recently the trees were walked; and the trees are not walked while
// nothing changes.
TEST_F(AgentTest, a_new_container_cgroup_is_seen_at_once_without_any_task_running_in_it) {
  const auto summary = nlohmann::json::parse(http_get(agent_->url + "/v1/summary").body);
  bool mkdir_attached = false;
  for (const auto& p : summary.at("programs"))
    if (p.at("program") == "cgroup_mkdir") mkdir_attached = p.at("attach") != "not_loaded";
  ASSERT_TRUE(mkdir_attached) << "cgroup_mkdir program not attached: " << summary.at("programs").dump();

  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid(), cid = KubeletNames::random_container_id();
  const auto rescans = [&] {
    return metric_value(agent_->metrics(), "podgauge_agent_cgroup_rescans_total", {}).value_or(-1);
  };
  // Other cgroups on the host may come and go meanwhile; walks stay spaced at least 1 s apart
  // (the 250 ms rounds would be 12 walks in 3 s if every round walked).
  std::this_thread::sleep_for(1500ms);
  const double before = rescans();
  std::this_thread::sleep_for(3s);
  EXPECT_LE(rescans() - before, 3) << "the trees are walked every round";

  const auto made_total = [&] {
    return metric_value(agent_->metrics(), "podgauge_agent_cgroups_made_total", {}).value_or(-1);
  };
  const double made_before = made_total();
  ASSERT_GE(made_before, 0) << "podgauge_agent_cgroups_made_total missing";
  // A pod replaced just before: its removal has the trees walked, and the new one must not wait
  // behind that walk.
  sandbox.create("replaced");
  for (const auto& dir : sandbox.dirs("replaced")) std::filesystem::remove(dir);
  std::this_thread::sleep_for(300ms);
  const auto made = std::chrono::steady_clock::now();
  sandbox.create(KubeletNames::cgroupfs_container(QosClass::BestEffort, uid, cid));
  const bool seen = wait_until([&] { return container_cpu(agent_->metrics(), cid).has_value(); }, 10s, 100ms);
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - made).count();
  ASSERT_TRUE(seen) << "an empty container cgroup never appeared on /metrics";
  EXPECT_LT(took, 3.0) << "the new cgroup waited for a timer, not for the kernel's mkdir";
  std::printf("new container on /metrics after %.2f s\n", took);
  // The kernel reported "replaced", the pod's and the container's cgroups, one by one (counted
  // also when the removal's walk ran in the same round and found them first).
  EXPECT_GE(made_total() - made_before, 3);
}

TEST_F(AgentTest, prometheus_scrapes_the_agent_and_promql_finds_the_burner) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(rel);
  ChildProcess burner(in_cgroup({helper_binary("burn").string(), "1", "pg-burn"}, sandbox.dirs(rel)));
  ASSERT_TRUE(burner.wait(10s));
  const double kernel = double(sandbox.cpuacct_usage_ns(rel)) / 1e9;

  PrometheusServer prometheus(agent_->url.substr(std::string("http://").size()));
  ASSERT_TRUE(prometheus.wait_for_target_up(20s)) << prometheus.log();
  const auto result = prometheus.wait_for_result(
      "podgauge_container_cpu_usage_seconds_total{container_id=\"" + cid + "\"}", 20s);
  ASSERT_EQ(result.size(), 1u) << result.dump();
  EXPECT_EQ(result[0]["metric"]["pod_uid"], uid);
  // Prometheus may hold a scrape from while the burner still ran; never more than the kernel.
  const double scraped = std::stod(result[0]["value"][1].get<std::string>());
  EXPECT_GT(scraped, 0.0);
  EXPECT_LE(scraped, kernel * 1.05);
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = prometheus.query("podgauge_container_cpu_usage_seconds_total{container_id=\"" + cid + "\"}");
        return !r["result"].empty() &&
               std::abs(std::stod(r["result"][0]["value"][1].get<std::string>()) - kernel) < 0.05 * kernel;
      },
      10s))
      << "Prometheus never saw the final value " << kernel;

  const auto lint = promtool_check_metrics(agent_->metrics());
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << "promtool check metrics complained";
}

TEST_F(AgentTest, health_and_summary_report_what_was_detected) {
  EXPECT_EQ(http_get(agent_->url + "/healthz").status, 200);
  auto r = http_get(agent_->url + "/v1/summary");
  ASSERT_EQ(r.status, 200);
  const auto s = nlohmann::json::parse(r.body);
  EXPECT_EQ(s["node"], "itest-node");
  ASSERT_TRUE(s["programs"].is_array());
  for (const auto& p : s["programs"]) {
    EXPECT_NE(p["attach"], "not_loaded") << p.dump();
  }
  const auto page = agent_->metrics();
  EXPECT_TRUE(metric_value(page, "podgauge_agent_bpf_events_total", {{"family", "cpu"}}).value_or(0) > 0);
  EXPECT_TRUE(metric_value(page, "podgauge_agent_ringbuf_drops_total", {{"family", "oom"}}).has_value());
  EXPECT_EQ(http_get(agent_->url + "/nope").status, 404);
}

TEST_F(AgentTest, a_second_agent_on_a_taken_port_says_so_and_exits) {
  const std::string port = agent_->url.substr(agent_->url.rfind(':') + 1);
  auto r = run_process({podgauge_binary().string(), "agent", "--listen", "127.0.0.1:" + port, "--no-kube"}, 20s);
  EXPECT_EQ(r.status.code, 1) << r.status.describe();
  EXPECT_NE(r.err.find("already in use"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--listen"), std::string::npos) << "the error should say how to fix it: " << r.err;
}

// The other kernel paths: raw tracepoints (kernels without tp_btf) and cgroup v2 keying (pure
// v2 nodes; this hybrid host has the controller-less v2 tree, which the sandbox mirrors).
struct Variant {
  std::vector<std::string> flags;
  std::string attach, keying;  // keying "auto": v1-cpuacct where v1 cpuacct is mounted, else v2
};

std::string auto_keying() {
  for (const auto& h : discover_cgroup_hierarchies())
    if (!h.v2 && h.has_controller("cpuacct")) return "v1-cpuacct";
  return "v2";
}
class AgentVariant : public ::testing::TestWithParam<Variant> {};

TEST_P(AgentVariant, accounts_container_cpu_like_the_kernel) {
  const auto& v = GetParam();
  AgentProcess agent(v.flags);
  const auto s = nlohmann::json::parse(http_get(agent.url + "/v1/summary").body);
  for (const auto& p : s["programs"]) EXPECT_EQ(p["attach"], v.attach) << p.dump();
  EXPECT_EQ(s["keying"], v.keying == "auto" ? auto_keying() : v.keying);

  CgroupSandbox sandbox;
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, KubeletNames::random_pod_uid(),
                                                   "cri-containerd", cid);
  sandbox.create(rel);
  ChildProcess burner(in_cgroup({helper_binary("burn").string(), "1", "pg-burn"}, sandbox.dirs(rel)));
  ASSERT_TRUE(burner.wait(10s));
  const double kernel = double(sandbox.cpuacct_usage_ns(rel)) / 1e9;
  double seen = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        seen = container_cpu(agent.metrics(), cid).value_or(0);
        return std::abs(seen - kernel) / kernel < 0.05;
      },
      5s))
      << seen << " vs " << kernel;
}

INSTANTIATE_TEST_SUITE_P(
    KernelPaths, AgentVariant,
    ::testing::Values(Variant{{"--raw-tracepoints"}, "raw_tp", "auto"},
                      Variant{{"--cgroup-hierarchy", "v2"}, "tp_btf", "v2"}),
    [](const auto& info) {
      std::string name = info.param.keying + "_" + info.param.attach;
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

TEST(AgentErrors, bad_flags_are_refused_with_a_message) {
  auto r = run_process({podgauge_binary().string(), "agent", "--interval", "soon"}, 10s);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("bad duration"), std::string::npos) << r.err;
  r = run_process({podgauge_binary().string(), "agent", "--frobnicate"}, 10s);
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("unknown flag"), std::string::npos) << r.err;
}
