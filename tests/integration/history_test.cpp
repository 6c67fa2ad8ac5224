// History end to end: the agent keeps every container's usage in its store, answers window
// queries (/v1/history, podgauge breaches --threshold --window), checkpoints under --state-dir,
// comes back with its history after a restart, and skips a corrupt checkpoint with a clear line.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_process.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;
using nlohmann::json;

namespace {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/podgauge-history-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

json get_json(const AgentProcess& a, const std::string& path) {
  const auto r = http_get(a.url + path);
  EXPECT_EQ(r.status, 200) << path << ": " << r.body;
  return json::parse(r.body.empty() ? "null" : r.body);
}

std::optional<json> row_for(const json& rows, const std::string& cid) {
  for (const auto& r : rows)
    if (r.value("container_id", "") == cid) return r;
  return std::nullopt;
}

void stop_agent(AgentProcess& a) {
  a.process->kill(SIGTERM);
  auto st = a.process->wait(15s);
  ASSERT_TRUE(st) << "agent did not stop on SIGTERM";
}

}  // namespace

TEST(History, a_restarted_agent_keeps_its_history_and_window_breaches_come_from_it) {
  TempDir state;
  CgroupSandbox sandbox;
  const auto uid = KubeletNames::random_pod_uid();
  const auto cid = KubeletNames::random_container_id();
  const auto rel = KubeletNames::cgroupfs_container(QosClass::Burstable, uid, cid);
  sandbox.create(rel);
  sandbox.set_memory_limit(rel, 64ull << 20);
  // 48 MiB of 64: 75% of the limit, held.
  ProcessSpec alloc_spec;
  alloc_spec.argv = {helper_binary("alloc").string(), "48", "pg-hist", "120"};
  alloc_spec.cgroups = sandbox.dirs(rel);
  ChildProcess alloc(alloc_spec);
  ASSERT_TRUE(alloc.wait_for_line(
      ChildProcess::Stream::Stderr, [](const std::string& l) { return l.find("alloc: done") != std::string::npos; },
      60s))
      << alloc.stderr_text();

  {
    AgentProcess agent({"--state-dir", state.path.string()});
    json rows;
    ASSERT_TRUE(wait_until(
        [&] {
          rows = get_json(agent, "/v1/history?metric=working_set_bytes&agg=min&window=2s&container_id=" + cid);
          auto r = row_for(rows, cid);
          return r && (*r)["samples"].get<int>() >= 4 && (*r)["value"].get<double>() >= 48.0 * (1 << 20);
        },
        30s))
        << rows.dump();
    const auto r = *row_for(rows, cid);
    EXPECT_EQ(r["pod_uid"], uid);
    EXPECT_EQ(r["tier"], "raw");

    // The whole 2 s window at >= 70% of the limit, not at >= 90%.
    auto breaches = [&](const std::string& threshold) {
      ProcessSpec spec;
      const RunResult res = run_process({podgauge_binary().string(), "breaches", "--agent", agent.url, "--threshold",
                                         threshold, "--window", "2s", "-o", "json"},
                                        10s);
      EXPECT_TRUE(res.status.success()) << res.err;
      return json::parse(res.out);
    };
    const json at70 = breaches("70");
    const auto listed = row_for(at70, cid);
    ASSERT_TRUE(listed) << at70.dump();
    EXPECT_GE((*listed)["value"].get<double>(), 70.0);
    EXPECT_LE((*listed)["value"].get<double>(), 80.0);
    EXPECT_FALSE(row_for(breaches("90"), cid)) << "75% is not 90%";
    EXPECT_EQ(http_get(agent.url + "/v1/breaches?threshold=90").status, 400) << "a threshold needs a window";
    EXPECT_EQ(http_get(agent.url + "/v1/history?metric=nope").status, 400);

    stop_agent(agent);  // SIGTERM: the final checkpoint
  }
  ASSERT_TRUE(std::filesystem::exists(state.path / "store.ckpt"));
  alloc.kill(SIGKILL);
  alloc.wait(5s);

  // A new agent, the container gone: its history is still there.
  {
    AgentProcess agent({"--state-dir", state.path.string()});
    const json rows = get_json(agent, "/v1/history?metric=working_set_bytes&agg=max&window=10m&container_id=" + cid);
    const auto r = row_for(rows, cid);
    ASSERT_TRUE(r) << "history lost across the restart: " << rows.dump() << "\n"
                   << get_json(agent, "/v1/summary")["history"].dump();
    EXPECT_GE((*r)["value"].get<double>(), 48.0 * (1 << 20));
    EXPECT_EQ((*r)["pod_uid"], uid) << "the container's names come back too";
    EXPECT_TRUE(get_json(agent, "/v1/summary")["history"]["restore_problems"].empty());
    stop_agent(agent);
  }

  // A corrupt checkpoint: reported with the file's name, skipped, the agent runs.
  {
    std::fstream f(state.path / "store.ckpt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    const char junk[64] = "this is not a podgauge checkpoint section, it is torn garbage";
    f.write(junk, sizeof junk);
  }
  AgentProcess agent({"--state-dir", state.path.string()});
  const json problems = get_json(agent, "/v1/summary")["history"]["restore_problems"];
  ASSERT_FALSE(problems.empty()) << "the corruption went unnoticed";
  EXPECT_NE(problems[0].get<std::string>().find("store.ckpt"), std::string::npos) << problems.dump();
  EXPECT_NE(agent.process->stderr_text().find("history:"), std::string::npos) << agent.process->stderr_text();
  EXPECT_EQ(http_get(agent.url + "/readyz").status, 200);
}
