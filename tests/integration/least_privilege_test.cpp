// The agent without root's full power: uid 0 whose capabilities are only CAP_BPF, CAP_PERFMON
// and CAP_SYS_PTRACE (the bounding set, as a pod's securityContext grants them with
// `drop: [ALL]`). Every BPF family must load and attribute CPU to a container, and a process of
// another user must still be identified; without CAP_SYS_PTRACE its namespace is not readable.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent_metrics.h"
#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;

namespace {

// The capabilities the chart's DaemonSet grants (charts/podgauge/files/agent-capabilities.yaml,
// "  - NAME" lines under add:), as setpriv's "+bpf,+perfmon,..." list.
std::string chart_capabilities() {
  const char* dir = std::getenv("PODGAUGE_CHART_DIR");
  const auto path = (dir && *dir ? std::filesystem::path(dir)
                                 : std::filesystem::path(PODGAUGE_SOURCE_DIR) / "charts" / "podgauge") /
                    "files" / "agent-capabilities.yaml";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::string line, caps;
  while (std::getline(in, line)) {
    if (line.rfind("  - ", 0) != 0) continue;
    std::string name = line.substr(4);
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    caps += (caps.empty() ? "+" : ",+") + name;
  }
  return caps;
}
// util-linux's (busybox's applet lacks --bounding-set and --reuid).
const std::string kSetpriv = "/usr/bin/setpriv";

std::vector<std::string> with_only(const std::string& caps) {
  return {kSetpriv, "--bounding-set", "-all," + caps, "--inh-caps", "-all", "--"};
}

uint64_t host_pid_namespace() {
  struct stat st {};
  return stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
}

// A CPU burner of uid/gid 65534 in a new container of `sandbox`; its container id in `cid`.
ChildProcess nobody_burner(CgroupSandbox& sandbox, std::string& cid) {
  const auto rel = sandbox.create_container(nullptr, &cid);
  return ChildProcess(in_cgroup({kSetpriv, "--reuid", "65534", "--regid", "65534",
                                 "--clear-groups", helper_binary("burn").string(), "30",
                                 "pg-nobody", "cpu"},
                                sandbox.dirs(rel)));
}

// The pid namespace /v1/processes reports for the container's process named `comm`, once listed.
std::optional<uint64_t> listed_pid_namespace(const AgentProcess& agent, const std::string& cid,
                                             const std::string& comm) {
  std::optional<uint64_t> ns;
  nlohmann::json list;
  wait_until(
      [&] {
        list = nlohmann::json::parse(http_get(agent.url + "/v1/processes").body);
        for (const auto& c : list) {
          if (c["container_id"] != cid) continue;
          for (const auto& p : c["processes"])
            if (p["comm"] == comm) ns = p["pid_namespace"].get<uint64_t>();
        }
        return ns.has_value();
      },
      30s);
  if (!ns) ADD_FAILURE() << comm << " of container " << cid << " not in /v1/processes:\n" << list.dump(1);
  return ns;
}

}  // namespace

TEST(LeastPrivilegeTest, with_bpf_perfmon_and_sys_ptrace_only_every_probe_loads_and_pods_are_seen) {
  const std::string caps_list = chart_capabilities();
  ASSERT_EQ(caps_list, "+bpf,+perfmon,+sys_ptrace") << "the chart's set changed: update this test";
  AgentProcess agent({}, with_only(caps_list));
  // The agent really runs without the rest: no CAP_SYS_ADMIN in its effective set (bit 21).
  std::ifstream in("/proc/" + std::to_string(agent.process->pid()) + "/status");
  const std::string status((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto eff = status.find("CapEff:");
  ASSERT_NE(eff, std::string::npos);
  const uint64_t caps = std::stoull(status.substr(eff + 7), nullptr, 16);
  EXPECT_EQ(caps & (1ull << 21), 0u) << status;
  EXPECT_NE(caps & (1ull << 39), 0u) << "CAP_BPF missing:\n" << status;

  const auto summary = nlohmann::json::parse(http_get(agent.url + "/v1/summary").body);
  for (const auto& p : summary["programs"])
    EXPECT_EQ(p["reason"], "") << p["family"] << "/" << p["program"] << " did not load: "
                               << p["reason"];

  CgroupSandbox sandbox;
  std::string cid;
  ChildProcess burner = nobody_burner(sandbox, cid);
  // More than a failed exec could use.
  EXPECT_GT(agent.wait_for_container_cpu(cid, 1.0, 15s), 1.0) << "container " << cid;
  // Another user's process: its pid namespace needs ptrace read access.
  EXPECT_EQ(listed_pid_namespace(agent, cid, "pg-nobody"), host_pid_namespace());
  burner.kill();
}

TEST(LeastPrivilegeTest, without_sys_ptrace_another_users_namespace_is_unknown) {
  AgentProcess agent({}, with_only("+bpf,+perfmon"));
  CgroupSandbox sandbox;
  std::string cid;
  ChildProcess burner = nobody_burner(sandbox, cid);
  EXPECT_EQ(listed_pid_namespace(agent, cid, "pg-nobody"), std::optional<uint64_t>(0));
  burner.kill();
}
