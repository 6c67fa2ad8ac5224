// The agent as a pod runs it on a cgroup v2 node: in a private cgroup namespace rooted at its own
// container's cgroup (`unshare -C` from a sandbox cgroup here). /proc/<pid>/cgroup then shows
// other pods' cgroups as "/../.."-relative paths; their processes must still be mapped to their
// containers, and CPU still attributed.
#include <gtest/gtest.h>

#include <chrono>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <string>

#include "agent_metrics.h"
#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;

TEST(CgroupNamespaceTest, an_agent_in_its_own_cgroup_namespace_still_maps_pods_processes) {
  CgroupSandbox sandbox;
  sandbox.create("agent");
  std::string uid, cid;
  const auto rel = sandbox.create_container(&uid, &cid);
  ChildProcess burner(
      in_cgroup({helper_binary("burn").string(), "30", "pg-nsburn", "cpu"}, sandbox.dirs(rel)));

  AgentProcess agent({}, {"/usr/bin/unshare", "--cgroup", "--"}, sandbox.dirs("agent"));
  // The agent really is in a namespace of its own: its view of its cgroup is the root.
  char self_ns[64] = {}, agent_ns[64] = {};
  ASSERT_GT(readlink("/proc/self/ns/cgroup", self_ns, sizeof self_ns - 1), 0);
  ASSERT_GT(readlink(("/proc/" + std::to_string(agent.process->pid()) + "/ns/cgroup").c_str(),
                     agent_ns, sizeof agent_ns - 1),
            0);
  ASSERT_STRNE(self_ns, agent_ns);

  EXPECT_GT(agent.wait_for_container_cpu(cid, 1.0, 20s), 1.0) << "container " << cid;

  nlohmann::json list;
  bool listed = false;
  EXPECT_TRUE(wait_until(
      [&] {
        list = nlohmann::json::parse(http_get(agent.url + "/v1/processes").body);
        for (const auto& c : list)
          if (c["container_id"] == cid && c["pod_uid"] == uid)
            for (const auto& p : c["processes"])
              listed = listed || (p["comm"] == "pg-nsburn" && p["pid"] == burner.pid());
        return listed;
      },
      20s))
      << "pg-nsburn (pid " << burner.pid() << ") not listed under container " << cid << ":\n"
      << list.dump(1);
  burner.kill();
}
