// A process moved to another cgroup is re-attributed: the kernel names it (cgroup_attach_task),
// and the agent's /proc scan, which otherwise reuses what it read of a known process, re-reads
// its cgroup file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_process.h"
#include "podgauge/loader/kernel_probes.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;

namespace {

std::string new_container(CgroupSandbox& sandbox, std::string* cid_out) {
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(rel);
  *cid_out = cid;
  return rel;
}

// The container /v1/processes lists `pid` under, "" if none.
std::string container_of(const std::string& url, pid_t pid) {
  const auto list = nlohmann::json::parse(http_get(url + "/v1/processes").body);
  for (const auto& c : list)
    for (const auto& p : c["processes"])
      if (p["pid"] == pid) return c["container_id"].get<std::string>();
  return "";
}

}  // namespace

TEST(CgroupMoves, the_kernel_names_each_moved_process_once) {
  podgauge::loader::KernelProbes probes(podgauge::loader::LoaderOptions{});
  ASSERT_TRUE(probes.take_cgroup_moves())
      << "cgroup_attach_task did not attach: moved processes cannot be told apart";
  CgroupSandbox sandbox;
  std::string cid_a, cid_b;
  const auto rel_a = new_container(sandbox, &cid_a), rel_b = new_container(sandbox, &cid_b);
  ChildProcess sleeper(in_cgroup({"/bin/sleep", "60"}, sandbox.dirs(rel_a)));
  (void)probes.take_cgroup_moves();  // the placement above is a move too
  sandbox.add_pid(rel_b, sleeper.pid());
  const auto moves = probes.take_cgroup_moves();
  ASSERT_TRUE(moves) << "moves were lost with a nearly empty set";
  EXPECT_NE(std::find(moves->begin(), moves->end(), int32_t(sleeper.pid())), moves->end())
      << "pid " << sleeper.pid() << " was moved but not reported";
  const auto again = probes.take_cgroup_moves();
  ASSERT_TRUE(again);
  EXPECT_EQ(std::find(again->begin(), again->end(), int32_t(sleeper.pid())), again->end())
      << "a move is reported once, then taken out of the kernel's set";
}

TEST(CgroupMoves, a_process_moved_to_another_container_is_listed_under_it_at_the_next_walk) {
  CgroupSandbox sandbox;
  std::string cid_a, cid_b;
  const auto rel_a = new_container(sandbox, &cid_a), rel_b = new_container(sandbox, &cid_b);
  AgentProcess agent;
  ChildProcess sleeper(in_cgroup({"/bin/sleep", "120"}, sandbox.dirs(rel_a)));
  // The /proc walk runs every 10th round (the test agent's rounds are 250 ms): 6 s is two
  // walks and slack, well short of the 6 walks (15 s) between the scanner's unconditional
  // cgroup re-reads, so a move the kernel did not report would be missed.
  std::string seen;
  auto wait_for = [&](const std::string& cid) {
    const auto deadline = std::chrono::steady_clock::now() + 6s;
    while (std::chrono::steady_clock::now() < deadline) {
      seen = container_of(agent.url, sleeper.pid());
      if (seen == cid) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_for(cid_a)) << "pid " << sleeper.pid() << " not listed under its container; seen under '"
                               << seen << "'";
  sandbox.add_pid(rel_b, sleeper.pid());
  EXPECT_TRUE(wait_for(cid_b)) << "pid " << sleeper.pid() << " moved to container " << cid_b
                               << " but still listed under '" << seen << "'";
}
