// A node's worth of pods: 250 real pod cgroups laid out like kubelet's, each with a sleeping
// process, below this test's own cgroup. The agent samples at 1 s and names every one of them.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
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

constexpr int kPods = 250;

// container_id label values of every sample of `family` on the page.
std::set<std::string> container_ids(const std::string& page, const std::string& family) {
  std::set<std::string> out;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(family + "{", 0) != 0) continue;
    const auto at = line.find("container_id=\"");
    if (at == std::string::npos) continue;
    const auto start = at + 14;
    out.insert(line.substr(start, line.find('"', start) - start));
  }
  return out;
}

}  // namespace

TEST(AgentScale, every_one_of_250_pods_appears_and_the_agent_keeps_up_at_1s) {
  CgroupSandbox sandbox;
  std::set<std::string> ids;
  std::vector<std::unique_ptr<ChildProcess>> sleepers;
  for (int i = 0; i < kPods; ++i) {
    const auto uid = KubeletNames::random_pod_uid();
    const auto cid = KubeletNames::random_container_id();
    const QosClass qos = i % 3 == 0 ? QosClass::Guaranteed : i % 3 == 1 ? QosClass::Burstable : QosClass::BestEffort;
    const auto rel = i % 2 ? KubeletNames::systemd_container(qos, uid, "cri-containerd", cid)
                           : KubeletNames::cgroupfs_container(qos, uid, cid);
    sandbox.create(rel);
    if (qos == QosClass::Guaranteed) sandbox.set_memory_limit(rel, 64ull << 20);
    sleepers.push_back(std::make_unique<ChildProcess>(in_cgroup({"/bin/sleep", "120"}, sandbox.dirs(rel))));
    ids.insert(cid);
  }
  AgentProcess agent({"--interval", "1s"});

  std::set<std::string> missing_cpu, missing_memory;
  const bool all = wait_until(
      [&] {
        const std::string page = agent.metrics();
        const auto cpu = container_ids(page, "podgauge_container_cpu_usage_seconds_total");
        const auto mem = container_ids(page, "podgauge_container_memory_working_set_bytes");
        missing_cpu.clear(), missing_memory.clear();
        for (const auto& id : ids) {
          if (!cpu.count(id)) missing_cpu.insert(id);
          if (!mem.count(id)) missing_memory.insert(id);
        }
        return missing_cpu.empty() && missing_memory.empty();
      },
      20s, 500ms);
  EXPECT_TRUE(all) << missing_cpu.size() << " of " << kPods << " containers without CPU series, "
                   << missing_memory.size() << " without a working set";

  // Keeping up: over 10 s at a 1 s interval the agent completes ~10 rounds, each well under 1 s.
  const double before = metric_value(agent.metrics(), "podgauge_agent_samples_total", {}).value_or(0);
  std::this_thread::sleep_for(10s);
  const std::string page = agent.metrics();
  const double after = metric_value(page, "podgauge_agent_samples_total", {}).value_or(0);
  EXPECT_GE(after - before, 9) << "sampling rounds in 10 s";
  const double last = metric_value(page, "podgauge_agent_sample_duration_seconds", {}).value_or(99);
  EXPECT_LT(last, 1.0) << "a round must fit in the interval";
  const double limits = double(container_ids(page, "podgauge_container_memory_limit_bytes").size());
  EXPECT_GE(limits, double(kPods / 3)) << "every Guaranteed pod's memory limit";
}
