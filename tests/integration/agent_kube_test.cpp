// The agent joined with the Kubernetes API: the real agent binary watches the fake API server
// (HTTPS, bearer token, in this process) while real cgroups laid out as kubelet does carry real
// CPU burners and OOM kills; /metrics, /v1/summary and the real `podgauge tail -o json` must
// name namespace, pod and container, also across deletions, restarts, 410s and bad objects.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_metrics.h"
#include "agent_process.h"
#include "fake_api_server.h"
#include "support/cgroup_sandbox.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;
using nlohmann::json;
namespace fa = podgauge::fakeapi;

namespace {

constexpr const char* kNode = "itest-node";

struct ContainerSpec {
  std::string name;
  std::string id;  // 64 hex; "" before the kubelet reported it
  std::string memory_limit;
};

json pod_json(const std::string& ns, const std::string& name,
              const std::vector<ContainerSpec>& containers, const json& owner = nullptr,
              const json& labels = json::object()) {
  json spec_containers = json::array(), statuses = json::array();
  for (const auto& c : containers) {
    json sc = {{"name", c.name}, {"image", "registry.example/" + c.name + ":1"}};
    if (!c.memory_limit.empty())
      sc["resources"] = {{"limits", {{"memory", c.memory_limit}}},
                         {"requests", {{"memory", c.memory_limit}}}};
    spec_containers.push_back(sc);
    json st = {
        {"name", c.name},    {"ready", true},
        {"restartCount", 0}, {"image", sc["image"]},
        {"imageID", ""},     {"state", {{"running", {{"startedAt", "2026-01-01T00:00:00Z"}}}}}};
    if (!c.id.empty()) st["containerID"] = "containerd://" + c.id;
    statuses.push_back(st);
  }
  json meta = {{"name", name}, {"namespace", ns}, {"labels", labels}};
  if (!owner.is_null()) meta["ownerReferences"] = json::array({owner});
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", meta},
          {"spec", {{"nodeName", kNode}, {"containers", spec_containers}}},
          {"status", {{"phase", "Running"}, {"containerStatuses", statuses}}}};
}

json controller(const std::string& kind, const std::string& name) {
  return {{"apiVersion", kind == "Job" ? "batch/v1" : "apps/v1"},
          {"kind", kind},
          {"name", name},
          {"uid", KubeletNames::random_pod_uid()},
          {"controller", true}};
}

json summary(const AgentProcess& agent) {
  auto r = http_get(agent.url + "/v1/summary");
  return r.status == 200 ? json::parse(r.body) : json::object();
}

std::optional<double> named(const std::string& page, const std::string& metric,
                            const std::string& cid, const std::string& ns, const std::string& pod,
                            const std::string& container) {
  return metric_value(
      page, metric,
      {{"container_id", cid}, {"namespace", ns}, {"pod", pod}, {"container", container}});
}

// A CPU burner in a kubelet-style container cgroup of `uid`, run to completion.
void burn_in(CgroupSandbox& sandbox, const std::string& uid, const std::string& cid,
             const char* seconds = "0.3") {
  const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(rel);
  ChildProcess burner(
      in_cgroup({helper_binary("burn").string(), seconds, "pg-burn"}, sandbox.dirs(rel)));
  auto status = burner.wait(10s);
  ASSERT_TRUE(status && status->success())
      << (status ? status->describe() : "burner still running");
}

// Starts `podgauge tail -o json` against the agent.
std::unique_ptr<ChildProcess> start_tail(const AgentProcess& agent) {
  ProcessSpec spec;
  spec.argv = {podgauge_binary().string(), "tail", "--agent", agent.url, "-o", "json"};
  auto tail = std::make_unique<ChildProcess>(spec);
  std::this_thread::sleep_for(300ms);
  return tail;
}

// Runs the allocator into a memory-limited container cgroup of `uid` until the kernel kills it.
void oom_kill_in(CgroupSandbox& sandbox, const std::string& uid, const std::string& cid) {
  const auto rel = KubeletNames::cgroupfs_container(QosClass::Guaranteed, uid, cid);
  sandbox.create(rel);
  sandbox.set_memory_limit(rel, 64ull << 20);
  ChildProcess alloc(
      in_cgroup({helper_binary("alloc").string(), "256", "pg-alloc"}, sandbox.dirs(rel)));
  auto status = alloc.wait(30s);
  ASSERT_TRUE(status) << "allocator still running: no OOM kill";
  ASSERT_TRUE(status->killed_by(SIGKILL)) << status->describe();
  ASSERT_EQ(sandbox.memory_oom_kills(rel), 1u);
}

std::optional<json> oom_event_for(ChildProcess& tail, const std::string& cid,
                                  std::chrono::milliseconds within) {
  auto line = tail.wait_for_line(
      ChildProcess::Stream::Stdout,
      [&](const std::string& l) {
        return l.find("\"oom_kill\"") != std::string::npos && l.find(cid) != std::string::npos;
      },
      within);
  if (!line) return std::nullopt;
  return json::parse(*line);
}

uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class AgentKube : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fa::FakeApiServer::Options o;
    o.bookmark_interval = 500ms;
    o.auto_create_namespaces = true;
    api_ = new fa::FakeApiServer(o);
    // Events wait up to 15 s for their pod (default 5 s): the API outage below lasts ~2 s and
    // the informer's reconnect backoff adds a few more.
    agent_ = new AgentProcess(
        {"--kubeconfig", api_->token_kubeconfig().string(), "--metadata-wait", "15s"});
    if (!wait_until([] { return summary(*agent_).value("/kubernetes/synced"_json_pointer, false); },
                    20s))
      ADD_FAILURE() << "the agent never synced with the fake API server: "
                    << summary(*agent_).dump() << "\nagent stderr:\n"
                    << agent_->process->stderr_text();
  }
  static void TearDownTestSuite() {
    delete agent_;
    agent_ = nullptr;
    delete api_;
    api_ = nullptr;
  }
  void TearDown() override {
    api_->faults().reset();
    if (HasFailure())
      std::fprintf(stderr, "agent stderr:\n%s\n", agent_->process->stderr_text().c_str());
  }
  // Creates the pod and returns its uid (the API server assigns it, as the real one does).
  static std::string create_pod(const json& pod) {
    auto created = api_->create("pods", pod["metadata"]["namespace"], pod);
    return created["metadata"]["uid"];
  }
  static fa::FakeApiServer* api_;
  static AgentProcess* agent_;
};
fa::FakeApiServer* AgentKube::api_ = nullptr;
AgentProcess* AgentKube::agent_ = nullptr;

}  // namespace

TEST_F(AgentKube, metrics_and_summary_name_namespace_pod_container_and_owner) {
  const auto sum = summary(*agent_);
  EXPECT_EQ(sum["kubernetes"]["mode"], "kubeconfig");
  EXPECT_EQ(sum["kubernetes"]["synced"], true);
  EXPECT_EQ(sum["kubernetes"]["server"], api_->url());
  EXPECT_TRUE(sum["kubernetes"]["error"].is_null()) << sum["kubernetes"].dump();

  CgroupSandbox sandbox;
  const auto app = KubeletNames::random_container_id(), proxy = KubeletNames::random_container_id();
  const auto uid = create_pod(
      pod_json("shop", "web-5f6d7c-abcde", {{"app", app, ""}, {"proxy", proxy, ""}},
               controller("ReplicaSet", "web-5f6d7c"), {{"pod-template-hash", "5f6d7c"}}));
  // A pod of another node is not watched.
  auto elsewhere =
      pod_json("shop", "web-5f6d7c-other", {{"app", KubeletNames::random_container_id(), ""}});
  elsewhere["spec"]["nodeName"] = "another-node";
  create_pod(elsewhere);
  burn_in(sandbox, uid, app);
  burn_in(sandbox, uid, proxy);

  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        return named(page, "podgauge_container_cpu_usage_seconds_total", app, "shop",
                     "web-5f6d7c-abcde", "app") &&
               named(page, "podgauge_container_cpu_usage_seconds_total", proxy, "shop",
                     "web-5f6d7c-abcde", "proxy");
      },
      5s))
      << page;
  EXPECT_TRUE(metric_value(page, "podgauge_container_cpu_usage_seconds_total",
                           {{"container_id", app}, {"pod_uid", uid}, {"node", kNode}}))
      << "pod_uid and node stay";
  EXPECT_TRUE(metric_value(page, "podgauge_container_info",
                           {{"container_id", app},
                            {"container", "app"},
                            {"owner_kind", "Deployment"},
                            {"owner_name", "web"}}))
      << page;
  EXPECT_EQ(metric_value(page, "podgauge_agent_kubernetes_synced", {}), 1);
  EXPECT_EQ(metric_value(page, "podgauge_agent_kubernetes_pods", {{"state", "live"}}).value_or(-1),
            double(summary(*agent_)["kubernetes"]["pods"].get<int>()));

  // Every container series has the label set, also when unknown (here: a cgroup of no pod).
  const auto stranger = KubeletNames::random_container_id();
  burn_in(sandbox, KubeletNames::random_pod_uid(), stranger);
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        return named(page, "podgauge_container_cpu_usage_seconds_total", stranger, "", "", "")
            .has_value();
      },
      5s))
      << "an unknown pod's series has namespace=\"\", pod=\"\", container=\"\":\n"
      << page;

  const auto containers = json::parse(http_get(agent_->url + "/v1/containers").body);
  bool found = false;
  for (const auto& c : containers)
    if (c["container_id"] == app) {
      found = true;
      EXPECT_EQ(c["namespace"], "shop");
      EXPECT_EQ(c["pod"], "web-5f6d7c-abcde");
      EXPECT_EQ(c["container"], "app");
      EXPECT_EQ(c["owner_kind"], "Deployment");
    }
  EXPECT_TRUE(found) << containers.dump();
}

TEST_F(AgentKube, oom_killed_pod_deleted_right_after_the_kill_is_still_named) {
  CgroupSandbox sandbox;
  const auto cid = KubeletNames::random_container_id();
  const std::string pod = "nightly-29123-x7k2p";
  const auto uid = create_pod(
      pod_json("batch", pod, {{"worker", cid, "64Mi"}}, controller("Job", "nightly-29123")));
  ASSERT_TRUE(
      wait_until([&] { return summary(*agent_)["kubernetes"]["pods"].get<int>() > 0; }, 5s));
  auto tail = start_tail(*agent_);

  oom_kill_in(sandbox, uid, cid);
  api_->remove("pods", "batch", pod);  // as a Job controller or an operator would, at once

  auto e = oom_event_for(*tail, cid, 5s);
  ASSERT_TRUE(e) << "no oom_kill event for the container; tail stderr:\n" << tail->stderr_text();
  EXPECT_EQ((*e)["namespace"], "batch");
  EXPECT_EQ((*e)["pod"], pod);
  EXPECT_EQ((*e)["container"], "worker");
  EXPECT_EQ((*e)["pod_uid"], uid);

  // Once the agent has seen the deletion, the dead pod's series still carry its names.
  ASSERT_TRUE(wait_until(
      [&] { return summary(*agent_)["kubernetes"]["deleted_pods"].get<int>() >= 1; }, 5s))
      << summary(*agent_).dump();
  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        return named(page, "podgauge_container_oom_kills_total", cid, "batch", pod, "worker")
                   .value_or(0) == 1;
      },
      5s))
      << page;
  EXPECT_TRUE(metric_value(
      page, "podgauge_container_info",
      {{"container_id", cid}, {"owner_kind", "Job"}, {"owner_name", "nightly-29123"}}));
}

TEST_F(AgentKube, api_server_restart_mid_watch_loses_no_pod_and_held_events_get_named) {
  CgroupSandbox sandbox;
  auto tail = start_tail(*agent_);

  api_->stop();  // ends the agent's watch mid-stream
  // Created during the outage: the agent cannot know it, and its container is OOM-killed
  // before the agent can: the event must wait for the pod instead of going out unnamed.
  const auto cid = KubeletNames::random_container_id();
  const auto uid = create_pod(
      pod_json("shop", "cache-0", {{"redis", cid, "64Mi"}}, controller("StatefulSet", "cache")));
  oom_kill_in(sandbox, uid, cid);
  EXPECT_FALSE(oom_event_for(*tail, cid, 1500ms)) << "published before its pod was known";
  EXPECT_GE(summary(*agent_)["kubernetes"]["events_held"].get<int>(), 1);
  api_->start();

  auto e = oom_event_for(*tail, cid, 15s);
  ASSERT_TRUE(e) << "the held oom_kill never came out; " << summary(*agent_)["kubernetes"].dump();
  EXPECT_EQ((*e)["namespace"], "shop");
  EXPECT_EQ((*e)["pod"], "cache-0");
  EXPECT_EQ((*e)["container"], "redis");
  EXPECT_TRUE(wait_until([&] { return summary(*agent_)["kubernetes"]["error"].is_null(); }, 5s))
      << "the outage's error is still reported after the watch resumed: "
      << summary(*agent_)["kubernetes"].dump();
  const auto page = agent_->metrics();
  EXPECT_TRUE(
      metric_value(page, "podgauge_container_info",
                   {{"container_id", cid}, {"owner_kind", "StatefulSet"}, {"owner_name", "cache"}}))
      << page;
}

TEST_F(AgentKube, a_410_gone_relists_and_loses_no_update) {
  CgroupSandbox sandbox;
  const auto first = KubeletNames::random_container_id();
  const auto uid =
      create_pod(pod_json("shop", "api-0", {{"api", first, ""}}, controller("StatefulSet", "api")));
  const auto lists_before = summary(*agent_)["kubernetes"]["lists"].get<int>();

  api_->faults().expire_next_watches(1);
  api_->faults().drop_watches();
  // While the agent re-watches, gets 410 and re-lists: a new pod, and a sidecar added to a pod.
  const auto added = KubeletNames::random_container_id(),
             sidecar = KubeletNames::random_container_id();
  const auto added_uid =
      create_pod(pod_json("shop", "api-1", {{"api", added, ""}}, controller("StatefulSet", "api")));
  auto updated = pod_json("shop", "api-0", {{"api", first, ""}, {"envoy", sidecar, ""}});
  api_->patch("pods", "shop", "api-0", {{"spec", updated["spec"]}, {"status", updated["status"]}});

  burn_in(sandbox, added_uid, added);
  burn_in(sandbox, uid, sidecar);
  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        return named(page, "podgauge_container_cpu_usage_seconds_total", added, "shop", "api-1",
                     "api") &&
               named(page, "podgauge_container_cpu_usage_seconds_total", sidecar, "shop", "api-0",
                     "envoy");
      },
      10s))
      << page;
  EXPECT_GT(summary(*agent_)["kubernetes"]["lists"].get<int>(), lists_before)
      << "the 410 forced a re-list";
  EXPECT_GT(summary(*agent_)["kubernetes"]["watch_expired"].get<int>(), 0);
}

TEST_F(AgentKube, a_malformed_pod_is_reported_and_skipped_while_the_cache_stays_right) {
  CgroupSandbox sandbox;
  const auto good = KubeletNames::random_container_id();
  const auto good_uid = create_pod(pod_json("shop", "good-0", {{"app", good, ""}}));
  const auto errors_before = summary(*agent_)["kubernetes"]["decode_errors"].get<int>();

  auto broken = pod_json("shop", "broken-0", {{"app", KubeletNames::random_container_id(), ""}});
  broken["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "2x"}}}};  // not a quantity
  create_pod(broken);
  const auto later = KubeletNames::random_container_id();
  const auto later_uid = create_pod(pod_json("shop", "later-0", {{"app", later, ""}}));

  ASSERT_TRUE(wait_until(
      [&] { return summary(*agent_)["kubernetes"]["decode_errors"].get<int>() > errors_before; },
      5s))
      << summary(*agent_)["kubernetes"].dump();
  EXPECT_TRUE(wait_until(
      [&] { return agent_->process->stderr_text().find("broken-0") != std::string::npos; }, 2s))
      << "the log names the object that was skipped:\n"
      << agent_->process->stderr_text();
  EXPECT_GT(metric_value(agent_->metrics(), "podgauge_agent_kubernetes_decode_errors_total", {})
                .value_or(0),
            0);

  // A re-list meets it again: skipped again, the rest stays.
  const auto relist_errors = summary(*agent_)["kubernetes"]["decode_errors"].get<int>();
  api_->faults().expire_next_watches(1);
  api_->faults().drop_watches();
  ASSERT_TRUE(wait_until(
      [&] { return summary(*agent_)["kubernetes"]["decode_errors"].get<int>() > relist_errors; },
      10s));

  burn_in(sandbox, good_uid, good);
  burn_in(sandbox, later_uid, later);
  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = agent_->metrics();
        return named(page, "podgauge_container_cpu_usage_seconds_total", good, "shop", "good-0",
                     "app") &&
               named(page, "podgauge_container_cpu_usage_seconds_total", later, "shop", "later-0",
                     "app");
      },
      5s))
      << page;
  EXPECT_EQ(summary(*agent_)["kubernetes"]["synced"], true);
  api_->remove("pods", "shop", "broken-0");
}

TEST(AgentKubeUnreachable, agent_serves_while_the_api_server_is_down_and_syncs_when_it_comes_up) {
  const uint16_t port = closed_port();
  const auto dir = std::filesystem::temp_directory_path() / ("pg-kube-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto kubeconfig = dir / "kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster:\n"
                            << "    server: https://127.0.0.1:" << port
                            << "\n    insecure-skip-tls-verify: true\n"
                            << "users:\n- name: u\n  user:\n    token: "
                            << fa::FakeApiServer::kAdminToken << "\n"
                            << "contexts:\n- name: other\n  context: {cluster: nowhere, user: u}\n"
                            << "- name: down\n  context: {cluster: down, user: u}\n"
                            << "current-context: other\n";

  // A context that does not exist is the operator's mistake: refuse to start, say which exist.
  auto bad = run_process({podgauge_binary().string(), "agent", "--listen", "127.0.0.1:0",
                          "--kubeconfig", kubeconfig.string(), "--context", "nope"},
                         20s);
  EXPECT_NE(bad.status.code, 0);
  EXPECT_NE(bad.err.find("nope"), std::string::npos) << bad.err;

  AgentProcess agent(
      {"--kubeconfig", kubeconfig.string(), "--context", "down"});  // ready = serving
  json k;
  EXPECT_TRUE(wait_until(
      [&] {
        k = summary(agent)["kubernetes"];
        return k.value("error", json()).is_string();
      },
      10s))
      << k.dump();
  EXPECT_EQ(k["mode"], "kubeconfig");
  EXPECT_EQ(k["synced"], false);
  EXPECT_EQ(k["server"], "https://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(metric_value(agent.metrics(), "podgauge_agent_kubernetes_synced", {}), 0);
  EXPECT_NE(agent.process->stderr_text().find("127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << "the log says which server cannot be reached:\n"
      << agent.process->stderr_text();

  fa::FakeApiServer::Options o;
  o.port = port;
  fa::FakeApiServer api(o);
  EXPECT_TRUE(wait_until([&] { return summary(agent)["kubernetes"]["synced"] == true; }, 40s))
      << "the agent kept retrying? " << summary(agent)["kubernetes"].dump();
  EXPECT_TRUE(summary(agent)["kubernetes"]["error"].is_null());
  std::filesystem::remove_all(dir);
}

// The kill becomes a Kubernetes Event on the pod (reason OOMKilled), and a repeat of it is the
// same Event with series.count 2, as the Event API expects, not a second object.
TEST_F(AgentKube, an_oom_kill_is_written_as_an_oomkilled_event_on_the_pod_with_a_series) {
  CgroupSandbox sandbox;
  const auto cid = KubeletNames::random_container_id();
  const std::string pod = "api-7d9f8-qx2lz";
  const auto uid = create_pod(pod_json("shop", pod, {{"api", cid, "64Mi"}}, controller("ReplicaSet", "api-7d9f8")));
  ASSERT_TRUE(wait_until([&] { return summary(*agent_)["kubernetes"]["pods"].get<int>() > 0; }, 5s));

  auto oom_events = [&] {
    std::vector<json> out;
    for (const auto& e : api_->list("events", "shop"))
      if (e.value("reason", "") == "OOMKilled" && e["involvedObject"].value("uid", "") == uid) out.push_back(e);
    return out;
  };
  oom_kill_in(sandbox, uid, cid);
  std::vector<json> found;
  ASSERT_TRUE(wait_until([&] { return !(found = oom_events()).empty(); }, 10s))
      << "no OOMKilled Event; kubernetes: " << summary(*agent_)["kubernetes"].dump();
  ASSERT_EQ(found.size(), 1u);
  const json& ev = found[0];
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(ev["involvedObject"]["name"], pod);
  EXPECT_EQ(ev["involvedObject"]["fieldPath"], "spec.containers{api}");
  const std::string message = ev.value("message", "");
  EXPECT_NE(message.find("Container api"), std::string::npos) << message;
  EXPECT_NE(message.find("memory limit 64Mi"), std::string::npos) << message;
  EXPECT_EQ(ev.value("reportingComponent", ""), "podgauge.io/agent") << ev.dump();
  EXPECT_EQ(ev.value("reportingInstance", ""), "itest-node") << ev.dump();

  // The same container killed again: one object, its series counted.
  CgroupSandbox again;
  oom_kill_in(again, uid, cid);
  ASSERT_TRUE(wait_until(
      [&] {
        found = oom_events();
        return found.size() == 1 && found[0].contains("series") && found[0]["series"].value("count", 0) >= 2;
      },
      10s))
      << (found.empty() ? json() : json(found)).dump();
  const double created = metric_value(agent_->metrics(), "podgauge_agent_kubernetes_events_total",
                                      {{"outcome", "created"}}).value_or(0);
  EXPECT_GE(created, 1);
}
