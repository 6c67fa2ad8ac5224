// Who delays whom, end to end on the real kernel: a latency-sensitive container and a
// neighbour pod's CPU burner share one CPU; a container is throttled by its own CPU quota.
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
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

class NoisyNeighbourTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { agent_ = new AgentProcess(); }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
  }
  static AgentProcess* agent_;
};
AgentProcess* NoisyNeighbourTest::agent_ = nullptr;


// The highest CPU this test may run on: the victim and its neighbour share it.
int shared_cpu() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  for (int c = CPU_SETSIZE - 1; c >= 0; --c)
    if (CPU_ISSET(c, &set)) return c;
  return 0;
}

// The container's run-queue latency histogram as /metrics shows it (cumulative buckets).
struct Histogram {
  std::vector<std::pair<double, double>> buckets;  // {le, cumulative count}, +Inf last
  double sum = 0, count = 0;
};

std::optional<Histogram> runqueue_histogram(const std::string& page, const std::string& cid) {
  const std::string name = "podgauge_container_runqueue_latency_seconds";
  Histogram h;
  std::istringstream in(page);
  std::string line;
  const std::regex le_re(R"(le="([^"]+)\")");
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0 || line.find("container_id=\"" + cid + "\"") == std::string::npos)
      continue;
    const double value = std::stod(line.substr(line.rfind(' ') + 1));
    std::smatch m;
    if (line.rfind(name + "_bucket{", 0) == 0 && std::regex_search(line, m, le_re))
      h.buckets.emplace_back(m[1] == "+Inf" ? INFINITY : std::stod(m[1]), value);
    else if (line.rfind(name + "_sum{", 0) == 0)
      h.sum = value;
    else if (line.rfind(name + "_count{", 0) == 0)
      h.count = value;
  }
  if (h.buckets.empty()) return std::nullopt;
  return h;
}

// What happened between two snapshots: mean and the bucket bound holding the 90th percentile.
struct Window {
  double count = 0, mean = 0, p90 = 0;
  std::string describe() const {
    std::ostringstream o;
    o << count << " waits, mean " << mean * 1e6 << " us, p90 <= " << p90 * 1e6 << " us";
    return o.str();
  }
};

Window between(const Histogram& a, const Histogram& b) {
  Window w;
  w.count = b.count - a.count;
  if (w.count <= 0) return w;
  w.mean = (b.sum - a.sum) / w.count;
  for (size_t i = 0; i < b.buckets.size() && i < a.buckets.size(); ++i) {
    if (b.buckets[i].second - a.buckets[i].second >= 0.9 * w.count) {
      w.p90 = b.buckets[i].first;
      break;
    }
  }
  return w;
}

std::string preemption_lines(const std::string& page) {
  std::istringstream in(page);
  std::string line, out;
  while (std::getline(in, line))
    if (line.rfind("podgauge_container_preemption", 0) == 0) out += line + "\n";
  return out;
}

Histogram wait_for_histogram(const AgentProcess& agent, const std::string& cid) {
  std::optional<Histogram> h;
  wait_until([&] { return (h = runqueue_histogram(agent.metrics(), cid)).has_value(); }, 5s);
  if (!h) throw std::runtime_error("no run-queue latency histogram for container " + cid);
  return *h;
}

}  // namespace

// cgroup v1 cpu.shares, or on v2 the cpu.weight kubelet derives from the same shares.
void set_cpu_shares(const CgroupSandbox& sandbox, const std::string& rel, const std::string& shares) {
  if (std::filesystem::exists(sandbox.path_in("cpu", rel) / "cpu.shares")) {
    sandbox.write("cpu", rel, "cpu.shares", shares);
    return;
  }
  const uint64_t s = std::stoull(shares);
  sandbox.write("cpu", rel, "cpu.weight", std::to_string(1 + ((s - 2) * 9999) / 262142));
}

TEST_F(NoisyNeighbourTest, a_cpu_burner_on_the_same_cpu_delays_the_victim_and_is_named) {
  CgroupSandbox sandbox;
  const auto victim_uid = KubeletNames::random_pod_uid();
  const auto victim_cid = KubeletNames::random_container_id();
  const auto victim = KubeletNames::systemd_container(QosClass::Burstable, victim_uid,
                                                      "cri-containerd", victim_cid);
  const auto noisy_uid = KubeletNames::random_pod_uid();
  const auto noisy_cid = KubeletNames::random_container_id();
  const auto noisy =
      KubeletNames::systemd_container(QosClass::Burstable, noisy_uid, "cri-containerd", noisy_cid);
  sandbox.create(victim);
  sandbox.create(noisy);
  // As kubelet sets them: cpu.shares = the pod's CPU request (victim 500m, neighbour 2 CPUs).
  ASSERT_TRUE(sandbox.has("cpu")) << "needs the cpu controller for pod CPU weights";
  for (const auto& [pod, container, shares] :
       {std::tuple{KubeletNames::systemd_pod(QosClass::Burstable, victim_uid), victim, "512"},
        std::tuple{KubeletNames::systemd_pod(QosClass::Burstable, noisy_uid), noisy, "2048"}}) {
    set_cpu_shares(sandbox, pod, shares);
    set_cpu_shares(sandbox, container, shares);
  }
  const std::string cpu = std::to_string(shared_cpu());

  // Wakes every 1 ms and works 400 us: a latency-sensitive service using 40% of a CPU, more
  // than its CPU weight gives it next to the neighbour, so the neighbour also preempts it.
  ChildProcess ticker(
      in_cgroup({helper_binary("pinload").string(), cpu, "20", "tick", "1000", "400", "pg-victim"},
                sandbox.dirs(victim)));
  std::this_thread::sleep_for(1s);
  const Histogram a = wait_for_histogram(*agent_, victim_cid);
  std::this_thread::sleep_for(3s);
  const Histogram b = wait_for_histogram(*agent_, victim_cid);

  ChildProcess burner(in_cgroup({helper_binary("pinload").string(), cpu, "10", "burn", "pg-noisy"},
                                sandbox.dirs(noisy)));
  std::this_thread::sleep_for(1s);
  const Histogram c = wait_for_histogram(*agent_, victim_cid);
  std::this_thread::sleep_for(3s);
  const Histogram d = wait_for_histogram(*agent_, victim_cid);

  const Window alone = between(a, b), shared = between(c, d);
  std::cout << "[          ] victim alone on CPU " << cpu << ": " << alone.describe() << "\n"
            << "[          ] with the neighbour:  " << shared.describe() << std::endl;
  // ~1000 wakeups a second natively; emulated timers (vmtests, single-threaded TCG) manage half.
  ASSERT_GT(alone.count, 300) << "the victim should wake ~1000 times a second";
  ASSERT_GT(shared.count, 20) << "the victim barely ran next to the neighbour";
  EXPECT_GT(shared.mean, 2 * alone.mean)
      << "alone: " << alone.describe() << "; shared: " << shared.describe();
  EXPECT_GT(shared.p90, alone.p90)
      << "alone: " << alone.describe() << "; shared: " << shared.describe();

  // The neighbour's pod is named as the victim's preemptor.
  double by_noisy = 0;
  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        by_noisy =
            metric_value(
                page, "podgauge_container_preemptions_total",
                {{"container_id", victim_cid}, {"by", "other_pod"}, {"by_pod_uid", noisy_uid}})
                .value_or(0);
        return by_noisy > 0;
      },
      3s))
      << "no preemption of the victim attributed to the neighbour pod " << noisy_uid
      << "; preemptions seen:\n"
      << preemption_lines(page);
  std::cout << "[          ] victim preempted by the neighbour " << by_noisy << " times"
            << std::endl;
  // And the neighbour, preempted by the victim's wakeups, names the victim's pod.
  EXPECT_GT(
      metric_value(page, "podgauge_container_preemptions_total",
                   {{"container_id", noisy_cid}, {"by", "other_pod"}, {"by_pod_uid", victim_uid}})
          .value_or(0),
      0)
      << page;
}

TEST_F(NoisyNeighbourTest, a_container_throttled_by_its_own_quota_is_not_blamed_on_neighbours) {
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(rel);
  ASSERT_TRUE(sandbox.has("cpu")) << "needs the cpu controller for a CFS quota";
  sandbox.set_cpu_quota(rel, 10000, 100000);  // 10% of one CPU

  ChildProcess burner(in_cgroup({helper_binary("pinload").string(), std::to_string(shared_cpu()),
                                 "6", "burn", "pg-throttled"},
                                sandbox.dirs(rel)));
  std::optional<double> first;
  ASSERT_TRUE(wait_until(
      [&] {
        first =
            metric_value(agent_->metrics(), "podgauge_container_cpu_cfs_throttled_periods_total",
                         {{"container_id", cid}});
        return first && *first > 0;
      },
      5s))
      << "no throttled periods for the container";
  std::this_thread::sleep_for(1500ms);
  const auto page = agent_->metrics();
  const double later = metric_value(page, "podgauge_container_cpu_cfs_throttled_periods_total",
                                    {{"container_id", cid}})
                           .value_or(0);
  EXPECT_GT(later, *first) << "throttled periods should keep rising while the burner runs";
  const double periods =
      metric_value(page, "podgauge_container_cpu_cfs_periods_total", {{"container_id", cid}})
          .value_or(0);
  const double throttled_s =
      metric_value(page, "podgauge_container_cpu_cfs_throttled_seconds_total",
                   {{"container_id", cid}})
          .value_or(0);
  EXPECT_GE(periods, later);
  EXPECT_GT(throttled_s, 0.1) << "90% of each 100 ms period is spent throttled";
  const uint64_t kernel = sandbox.read_key("cpu", rel, "cpu.stat", "nr_throttled");
  EXPECT_LE(later, double(kernel)) << "podgauge cannot be ahead of the kernel's cpu.stat";
  std::cout << "[          ] throttled " << later << " of " << periods << " periods, "
            << throttled_s << " s (kernel nr_throttled now " << kernel << ")" << std::endl;

  // Its waits are its own quota's doing: no other pod is named as preempting it.
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("podgauge_container_preemptions_total{", 0) != 0) continue;
    if (line.find(cid) == std::string::npos) continue;
    EXPECT_EQ(line.find("by=\"other_pod\""), std::string::npos) << line;
  }
  const auto h = runqueue_histogram(page, cid);
  ASSERT_TRUE(h);
  EXPECT_GT(h->sum, 0.5) << "throttled time is time spent runnable but waiting";
}
