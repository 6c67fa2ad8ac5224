// Process lifecycle per container on the real kernel: fork/exec/exit counted in BPF, exits of
// container main processes (real pid namespaces) as events, top processes, shared pid
// namespaces, container-runtime overhead, and the per-cgroup rate limit on exit records.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
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

class ProcessLifecycleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { agent_ = new AgentProcess(); }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
  }
  static AgentProcess* agent_;
};
AgentProcess* ProcessLifecycleTest::agent_ = nullptr;

double exits(const std::string& page, const std::string& cid, const std::string& reason) {
  return metric_value(page, "podgauge_container_process_exits_total",
                      {{"container_id", cid}, {"reason", reason}})
      .value_or(-1);
}

// Events of one type for one container held by the agent (non-follow /v1/events).
std::vector<nlohmann::json> held_events(const std::string& url, const std::string& type,
                                        const std::string& cid) {
  std::vector<nlohmann::json> out;
  std::istringstream in(http_get(url + "/v1/events").body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto e = nlohmann::json::parse(line);
    if (e["type"] == type && e["container_id"] == cid) out.push_back(std::move(e));
  }
  return out;
}

double metric_sum(const std::string& page, const std::string& name) {
  double sum = 0;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + "{", 0) == 0 || line.rfind(name + " ", 0) == 0)
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

}  // namespace

TEST_F(ProcessLifecycleTest, every_one_of_200_short_lived_processes_is_counted) {
  CgroupSandbox sandbox;
  std::string cid;
  const auto rel = sandbox.create_container(nullptr, &cid);
  // 200 children of 1 ms each: far shorter than the agent's 250 ms interval.
  ChildProcess forker(
      in_cgroup({helper_binary("forker").string(), "200", "0", "1"}, sandbox.dirs(rel)));
  auto status = forker.wait(30s);
  ASSERT_TRUE(status && status->success()) << (status ? status->describe() : "still running");

  double started = -1, exited = -1;
  const bool exact = wait_until(
      [&] {
        const auto page = agent_->metrics();
        started = metric_value(page, "podgauge_container_processes_started_total",
                               {{"container_id", cid}})
                      .value_or(-1);
        exited = exits(page, cid, "exit");
        return started == 200 && exited == 201;
      },
      5s);
  // The forker itself was forked outside the container (it joined before exec) but exits in it.
  EXPECT_TRUE(exact) << "started " << started << " (want 200), exited " << exited
                     << " (want 200 children + the forker)";
  EXPECT_EQ(exits(agent_->metrics(), cid, "signal"), 0);
}

TEST_F(ProcessLifecycleTest, main_process_exit_code_and_kill_signal_reach_tail_and_events) {
  CgroupSandbox sandbox;
  std::string uid, cid_exit, cid_kill;
  const auto rel_exit = sandbox.create_container(&uid, &cid_exit);
  const auto rel_kill = sandbox.create_container(nullptr, &cid_kill);

  ProcessSpec tail_spec;
  tail_spec.argv = {podgauge_binary().string(), "tail", "--agent", agent_->url, "-o", "json"};
  ChildProcess tail(tail_spec);
  std::this_thread::sleep_for(300ms);

  ChildProcess exiter(in_cgroup({helper_binary("pidns_main").string(), "300", "exit", "3"},
                                sandbox.dirs(rel_exit)));
  ChildProcess killed(
      in_cgroup({helper_binary("pidns_main").string(), "300", "sigkill"}, sandbox.dirs(rel_kill)));
  auto s1 = exiter.wait(10s), s2 = killed.wait(10s);
  ASSERT_TRUE(s1 && s1->success())
      << "pidns_main exit 3: " << (s1 ? s1->describe() : "still running");
  ASSERT_TRUE(s2 && s2->success())
      << "pidns_main sigkill: " << (s2 ? s2->describe() : "still running");

  std::map<std::string, nlohmann::json> mains;
  auto line = tail.wait_for_line(
      ChildProcess::Stream::Stdout,
      [&](const std::string& l) {
        if (l.find("\"process_exit\"") == std::string::npos) return false;
        auto e = nlohmann::json::parse(l);
        if (e["is_container_main"] == true) mains[e["container_id"]] = e;
        return mains.count(cid_exit) && mains.count(cid_kill);
      },
      5s);
  ASSERT_TRUE(line)
      << "no process_exit events for both main processes from `podgauge tail -o json`; "
      << "tail stderr:\n"
      << tail.stderr_text();
  const auto& e3 = mains[cid_exit];
  EXPECT_EQ(e3["exit_code"], 3);
  EXPECT_EQ(e3["signal"], 0);
  EXPECT_EQ(e3["comm"], "pg-main");
  EXPECT_EQ(e3["ns_pid"], 1);
  EXPECT_EQ(e3["pod_uid"], uid);
  EXPECT_NE(e3["pid_ns"], 0);
  const auto& e9 = mains[cid_kill];
  EXPECT_EQ(e9["signal"], SIGKILL);
  EXPECT_EQ(e9["exit_code"], 0);
  EXPECT_NE(e9["pid_ns"], e3["pid_ns"]) << "two unshare()s, two namespaces";

  // The same on /v1/events, and the kubelet-style exit code gauge.
  auto held3 = held_events(agent_->url, "process_exit", cid_exit);
  EXPECT_TRUE(std::any_of(held3.begin(), held3.end(), [](const auto& e) {
    return e["is_container_main"] == true && e["exit_code"] == 3;
  }));
  auto held9 = held_events(agent_->url, "process_exit", cid_kill);
  EXPECT_TRUE(std::any_of(held9.begin(), held9.end(), [](const auto& e) {
    return e["is_container_main"] == true && e["signal"] == 9;
  }));
  // The helper's outer process (not pid 1 of a namespace) is reported, but not as main, and
  // without waking the agent: within one poll (100 ms).
  EXPECT_TRUE(wait_until(
      [&] {
        const auto held = held_events(agent_->url, "process_exit", cid_exit);
        return std::any_of(held.begin(), held.end(), [](const auto& e) {
          return e["is_container_main"] == false && e["comm"] == "pidns_main" &&
                 e["exit_code"] == 0;
        });
      },
      1s));
  const auto page = agent_->metrics();
  EXPECT_EQ(
      metric_value(page, "podgauge_container_main_process_exit_code", {{"container_id", cid_exit}}),
      3);
  EXPECT_EQ(
      metric_value(page, "podgauge_container_main_process_exit_code", {{"container_id", cid_kill}}),
      128 + 9);
  double signaled = -1;
  EXPECT_TRUE(wait_until(
      [&] { return (signaled = exits(agent_->metrics(), cid_kill, "signal")) == 1; }, 2s))
      << "exits by signal in the killed container: " << signaled;
}

TEST_F(ProcessLifecycleTest, top_processes_and_a_pid_namespace_shared_by_two_containers) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid_a = KubeletNames::random_container_id(),
             cid_b = KubeletNames::random_container_id();
  const auto rel_a =
      KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid_a);
  const auto rel_b =
      KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid_b);
  sandbox.create(rel_a);
  sandbox.create(rel_b);
  // A second pod whose only container has its own namespace: not shared.
  std::string uid_alone, cid_alone;
  const auto rel_alone = sandbox.create_container(&uid_alone, &cid_alone);

  std::vector<std::string> argv{helper_binary("pidns_main").string(), "3000", "exit", "0"};
  for (const auto& d : sandbox.dirs(rel_b)) argv.push_back(d.string());
  ProcessSpec spec = in_cgroup(argv, sandbox.dirs(rel_a));
  spec.stdout_mode = OutputMode::Capture;
  ChildProcess shared(spec);
  ChildProcess alone(in_cgroup({helper_binary("pidns_main").string(), "3000", "exit", "0"},
                               sandbox.dirs(rel_alone)));
  ChildProcess burner(in_cgroup({helper_binary("burn").string(), "0.5", "pg-burn", "cpu"},
                                sandbox.dirs(rel_alone)));
  auto main_line = shared.read_stdout_line(5s);
  ASSERT_TRUE(main_line) << "pidns_main printed nothing";

  double shared_flag = -1, alone_flag = -1;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto page = agent_->metrics();
        shared_flag = metric_value(page, "podgauge_pod_shared_pid_namespace", {{"pod_uid", uid}})
                          .value_or(-1);
        alone_flag =
            metric_value(page, "podgauge_pod_shared_pid_namespace", {{"pod_uid", uid_alone}})
                .value_or(-1);
        return shared_flag == 1 && alone_flag == 0;
      },
      10s))  // the /proc walk runs every 10th round
      << "shared pod: " << shared_flag << ", single-container pod: " << alone_flag;

  const auto burned = burner.wait(20s);
  ASSERT_TRUE(burned && burned->success());
  // The kernel's own account of the burner (wait4 rusage), to compare the exit record with.
  const double kernel_cpu = std::chrono::duration<double>(burned->cpu_time).count();
  // /v1/processes: the burner leads its container's list by CPU (exited, from the exit record),
  // and the main process is recognised as pid 1 of a namespace that is not the host's.
  nlohmann::json list;
  const bool found = wait_until(
      [&] {
        list = nlohmann::json::parse(http_get(agent_->url + "/v1/processes").body);
        for (const auto& c : list) {
          if (c["container_id"] != cid_alone || c["processes"].empty()) continue;
          const auto& top = c["processes"][0];
          bool main_seen = false;
          for (const auto& p : c["processes"])
            main_seen = main_seen || (p["comm"] == "pg-main" && p["container_main"] == true &&
                                      p["host_pid_namespace"] == false);
          return top["comm"] == "pg-burn" &&
                 std::abs(top["cpu_seconds"].get<double>() - kernel_cpu) <=
                     0.05 * kernel_cpu + 0.01 &&
                 main_seen;
        }
        return false;
      },
      10s);
  EXPECT_TRUE(found) << "want pg-burn on top with " << kernel_cpu << " s (rusage) and pg-main as "
                     << "the container's main process:\n"
                     << list.dump(1);
}

TEST_F(ProcessLifecycleTest, a_runtime_shims_cpu_and_memory_are_its_pods_overhead) {
  CgroupSandbox sandbox;
  std::string uid;
  const auto rel = sandbox.create_container(&uid);
  std::vector<std::string> argv{helper_binary("fakeshim").string(), "400", "48"};
  for (const auto& d : sandbox.dirs(rel)) argv.push_back(d.string());
  ProcessSpec spec;
  spec.argv = argv;  // the shim itself stays outside the pod, as on a node
  ChildProcess shim(spec);
  auto ready = shim.read_stdout_line(20s);
  ASSERT_TRUE(ready && ready->rfind("ready", 0) == 0) << shim.stderr_text();

  // The kernel's view of the shim (idle from now on), to compare with.
  std::ifstream stat("/proc/" + std::to_string(shim.pid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  ASSERT_NE(text.find("(containerd-shim)"), std::string::npos) << text;
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
  ASSERT_GT(f.size(), 13u);
  const double kernel_cpu =
      double(std::stoull(f[11]) + std::stoull(f[12])) / double(sysconf(_SC_CLK_TCK));

  double cpu = -1, rss = -1;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto page = agent_->metrics();
        cpu = metric_value(page, "podgauge_pod_runtime_overhead_cpu_seconds_total",
                           {{"pod_uid", uid}, {"process", "containerd-shim"}})
                  .value_or(-1);
        rss = metric_value(page, "podgauge_pod_runtime_overhead_memory_bytes",
                           {{"pod_uid", uid}, {"process", "containerd-shim"}})
                  .value_or(-1);
        return cpu >= 0.38 && std::abs(cpu - kernel_cpu) <= 0.02 && rss >= 48.0 * (1 << 20);
      },
      10s))
      << "shim CPU " << cpu << " s (kernel: " << kernel_cpu << " s, burned >= 0.4 s), RSS " << rss
      << " bytes (touched 48 MiB)";
}

TEST_F(ProcessLifecycleTest, a_runtime_process_serving_no_pod_is_the_nodes_overhead) {
  CgroupSandbox sandbox;
  sandbox.create("system.slice/not-a-pod.scope");
  const double before =
      metric_value(agent_->metrics(), "podgauge_node_runtime_overhead_cpu_seconds_total",
                   {{"process", "containerd-shim"}})
          .value_or(0);
  std::vector<std::string> argv{helper_binary("fakeshim").string(), "300", "1"};
  for (const auto& d : sandbox.dirs("system.slice/not-a-pod.scope")) argv.push_back(d.string());
  ProcessSpec spec;
  spec.argv = argv;
  ChildProcess shim(spec);
  auto ready = shim.read_stdout_line(20s);
  ASSERT_TRUE(ready && ready->rfind("ready", 0) == 0) << shim.stderr_text();
  double node_cpu = -1;
  EXPECT_TRUE(wait_until(
      [&] {
        node_cpu =
            metric_value(agent_->metrics(), "podgauge_node_runtime_overhead_cpu_seconds_total",
                         {{"process", "containerd-shim"}})
                .value_or(-1);
        return node_cpu - before >= 0.28;
      },
      10s))
      << "node-level shim CPU went from " << before << " to " << node_cpu << " s (burned 0.3 s)";
}

// A separate agent with a small budget: 20 records, then 1 a second. It attaches raw
// tracepoints, so that flavour is exercised end to end too.
TEST(ProcessExitRateLimit,
     a_burst_above_the_budget_is_dropped_and_counted_while_counters_stay_exact) {
  AgentProcess agent(
      {"--process-exit-burst", "20", "--process-exit-rate", "1", "--raw-tracepoints"});
  for (const char* program : {"sched_process_fork", "sched_process_exec", "sched_process_exit"})
    EXPECT_TRUE(metric_value(agent.metrics(), "podgauge_agent_bpf_program_info",
                             {{"family", "proc"}, {"program", program}, {"attach", "raw_tp"}}))
        << program << " is not attached as raw_tp";
  CgroupSandbox sandbox;
  std::string cid;
  const auto rel = sandbox.create_container(nullptr, &cid);
  const double limited_before =
      metric_value(agent.metrics(), "podgauge_agent_bpf_rate_limited_total", {{"family", "proc"}})
          .value_or(-1);
  ASSERT_GE(limited_before, 0) << "no podgauge_agent_bpf_rate_limited_total{family=\"proc\"}";

  const auto t0 = std::chrono::steady_clock::now();
  ChildProcess forker(
      in_cgroup({helper_binary("forker").string(), "200", "0", "1"}, sandbox.dirs(rel)));
  auto status = forker.wait(60s);
  ASSERT_TRUE(status && status->success());
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  double exited = -1, limited = -1;
  std::vector<nlohmann::json> events;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto page = agent.metrics();
        exited = exits(page, cid, "exit");
        limited = metric_value(page, "podgauge_agent_bpf_rate_limited_total", {{"family", "proc"}})
                      .value_or(-1);
        events = held_events(agent.url, "process_exit", cid);
        // Every exit of the container either became an event or was counted as held back
        // (the counter is node-wide, so other cgroups may add to it).
        return exited == 201 && limited - limited_before >= 201 - double(events.size());
      },
      5s))
      << "exits " << exited << " (want 201), events " << events.size() << ", rate-limited "
      << (limited - limited_before) << " (want >= " << 201 - double(events.size()) << ")";
  EXPECT_GE(events.size(), 20u) << "the burst was not let through";
  EXPECT_LE(double(events.size()), 20 + 1 * (took + 1) + 1)
      << "more than burst + rate x " << took << " s went through";
  EXPECT_EQ(metric_sum(agent.metrics(), "podgauge_agent_ringbuf_drops_total"), 0)
      << "the rate limit, not the ring buffer, should hold the burst back";
  // The container is new: its first exits may come before any walk has seen its cgroup.
  // They wait for it rather than being lost.
  EXPECT_EQ(metric_value(agent.metrics(), "podgauge_agent_process_exits_unresolved_total", {}), 0);
  EXPECT_EQ(metric_value(agent.metrics(), "podgauge_agent_process_exits_held", {}), 0);
}
