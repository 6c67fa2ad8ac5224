// The fake API server (tests/fakeapi) proven against the real kubectl 1.32, plus its list/watch
// semantics checked with plain HTTP clients. kubectl runs as a separate process against the
// podgauge-fakeapi binary over HTTPS, with a kubeconfig the fake wrote.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "fake_api_server.h"
#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/event_writer.h"
#include "podgauge/k8s/kubeconfig.h"
#include "support/http.h"
#include "support/paths.h"
#include "support/process.h"

using namespace std::chrono_literals;
using namespace podgauge::itest;
using nlohmann::json;
namespace fa = podgauge::fakeapi;

namespace {

const char* kKubectl = "/usr/bin/kubectl";
const std::string kAdminToken = "itest-admin-token";
const std::string kViewerToken = "itest-viewer-token";

std::filesystem::path fakeapi_binary() {
  if (const char* env = std::getenv("PODGAUGE_FAKEAPI_BIN")) return env;
#ifdef PODGAUGE_FAKEAPI_BIN
  return PODGAUGE_FAKEAPI_BIN;
#else
  throw std::runtime_error("set PODGAUGE_FAKEAPI_BIN to the podgauge-fakeapi binary");
#endif
}

json pod(const std::string& name, const std::string& ns, const std::string& node,
         json labels = json::object(), const std::string& phase = "Running") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
          {"status", {{"phase", phase}}}};
}

// An HTTPS client of the fake that verifies its certificate against the generated CA.
std::unique_ptr<httplib::SSLClient> client(std::uint16_t port, const std::filesystem::path& ca,
                                           const std::string& token) {
  auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  c->set_ca_cert_path(ca.c_str());
  c->enable_server_certificate_verification(true);
  if (!token.empty()) c->set_bearer_token_auth(token.c_str());
  c->set_read_timeout(30, 0);
  return c;
}

std::vector<json> lines_of(const std::string& body) {
  std::vector<json> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// ---------------------------------------------------------------------------------------
// Real kubectl against the podgauge-fakeapi process.

class KubectlFakeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kKubectl)) return;
    dir_ = new std::filesystem::path(make_temp_dir("podgauge-fakeapi-itest"));
    ProcessSpec spec;
    spec.argv = {fakeapi_binary().string(), "--dir", (*dir_ / "api").string(),
                 "--token", kAdminToken + "=admin:system:masters",
                 "--token", kViewerToken + "=viewer",
                 "--allow", "viewer=get,list,watch:pods:default"};
    server_ = new ChildProcess(spec);
    auto line = server_->wait_for_line(
        ChildProcess::Stream::Stdout,
        [](const std::string& l) { return l.find("listening on") != std::string::npos; }, 10s);
    ASSERT_TRUE(line) << "podgauge-fakeapi did not start:\n" << server_->stderr_text();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(*line, m, std::regex(R"(https://127\.0\.0\.1:(\d+))")));
    port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
    // The binary wrote kubeconfig-token.yaml with the first token; rewrite per identity.
    rewrite_token(*dir_ / "api" / "kubeconfig-token.yaml", *dir_ / "admin.yaml", kAdminToken);
    rewrite_token(*dir_ / "api" / "kubeconfig-token.yaml", *dir_ / "viewer.yaml", kViewerToken);
    rewrite_token(*dir_ / "api" / "kubeconfig-token.yaml", *dir_ / "wrong.yaml", "not-a-token");
    seed();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    if (dir_) std::filesystem::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!std::filesystem::exists(kKubectl)) GTEST_FAIL() << "kubectl not installed at " << kKubectl << ": these tests prove the fake API server with the real client";
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->running()) << "podgauge-fakeapi "
                                    << (server_->exit_status() ? server_->exit_status()->describe() : "")
                                    << "\n" << server_->stdout_text() << server_->stderr_text();
  }

  static void rewrite_token(const std::filesystem::path& from, const std::filesystem::path& to,
                            const std::string& token) {
    std::ifstream in(from);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text = std::regex_replace(text, std::regex("token: .*"), "token: " + token);
    std::ofstream(to) << text;
  }

  static std::unique_ptr<httplib::SSLClient> admin() {
    return client(port_, *dir_ / "api" / "ca.crt", kAdminToken);
  }

  static void post(const std::string& path, const json& body) {
    auto res = admin()->Post(path.c_str(), body.dump(), "application/json");
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    ASSERT_EQ(res->status, 201) << res->body;
  }

  static void seed() {
    post("/api/v1/namespaces", {{"metadata", {{"name", "shop"}}}});
    post("/api/v1/namespaces", {{"metadata", {{"name", "watchns"}}}});
    post("/api/v1/nodes",
         {{"metadata", {{"name", "n1"}, {"labels", {{"node-role.kubernetes.io/worker", ""}}}}},
          {"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                      {"nodeInfo", {{"kubeletVersion", "v1.32.0"}}}}}});
    post("/api/v1/namespaces/default/pods", pod("web-1", "default", "n1", {{"app", "web"}}));
    post("/api/v1/namespaces/default/pods", pod("web-2", "default", "n2", {{"app", "web"}}));
    post("/api/v1/namespaces/shop/pods", pod("db-1", "shop", "n1", {{"app", "db"}}));
  }

  RunResult kubectl(std::vector<std::string> args, const std::string& kubeconfig = "admin.yaml") {
    ProcessSpec spec;
    spec.argv = {kKubectl, "--cache-dir", (*dir_ / "kube-cache").string()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.env = {{"KUBECONFIG", (*dir_ / kubeconfig).string()},
                {"NO_PROXY", "127.0.0.1,localhost"}, {"HOME", dir_->string()}};
    ChildProcess p(spec);
    auto status = p.wait(30s);
    if (!status) status = p.stop();
    p.wait_for_output_end(5s);
    return {*status, p.stdout_text(), p.stderr_text()};
  }

  static ChildProcess* server_;
  static std::filesystem::path* dir_;
  static std::uint16_t port_;
};
ChildProcess* KubectlFakeApi::server_ = nullptr;
std::filesystem::path* KubectlFakeApi::dir_ = nullptr;
std::uint16_t KubectlFakeApi::port_ = 0;

TEST_F(KubectlFakeApi, get_pods_all_namespaces_prints_the_server_side_table) {
  auto r = kubectl({"get", "pods", "-A"});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(default\s+web-1\s+0/1\s+Running\s+0)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(shop\s+db-1\s)"))) << r.out;
}

TEST_F(KubectlFakeApi, get_pods_in_a_namespace_as_json_yaml_and_wide) {
  auto j = kubectl({"get", "pods", "-n", "default", "-o", "json"});
  ASSERT_TRUE(j.status.success()) << j.err;
  auto doc = json::parse(j.out);
  EXPECT_EQ(doc["kind"], "List");
  ASSERT_EQ(doc["items"].size(), 2u);
  EXPECT_EQ(doc["items"][0]["kind"], "Pod");
  EXPECT_FALSE(doc["items"][0]["metadata"]["uid"].get<std::string>().empty());

  auto y = kubectl({"get", "pods", "-n", "default", "-o", "yaml"});
  ASSERT_TRUE(y.status.success()) << y.err;
  EXPECT_NE(y.out.find("name: web-2"), std::string::npos) << y.out;
  EXPECT_NE(y.out.find("resourceVersion: \""), std::string::npos) << y.out;

  auto w = kubectl({"get", "pods", "-n", "default", "-o", "wide"});
  ASSERT_TRUE(w.status.success()) << w.err;
  EXPECT_TRUE(std::regex_search(w.out, std::regex(R"(IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES)"))) << w.out;
  EXPECT_TRUE(std::regex_search(w.out, std::regex(R"(web-2 .*\sn2\s)"))) << w.out;
}

TEST_F(KubectlFakeApi, get_nodes) {
  auto r = kubectl({"get", "nodes"});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(n1\s+Ready\s+worker\s+\S+\s+v1\.32\.0)"))) << r.out;
}

TEST_F(KubectlFakeApi, label_and_field_selectors_filter_on_the_server) {
  auto l = kubectl({"get", "pods", "-A", "-l", "app=web", "-o", "name"});
  ASSERT_TRUE(l.status.success()) << l.err;
  EXPECT_EQ(l.out, "pod/web-1\npod/web-2\n");
  auto f = kubectl({"get", "pods", "-A", "--field-selector", "spec.nodeName=n1", "-o", "name"});
  ASSERT_TRUE(f.status.success()) << f.err;
  EXPECT_EQ(f.out, "pod/web-1\npod/db-1\n");
}

TEST_F(KubectlFakeApi, create_from_a_file_with_validation_then_get_then_delete) {
  const auto file = *dir_ / "created.yaml";
  std::ofstream(file) << "apiVersion: v1\nkind: Pod\nmetadata:\n  name: made-by-kubectl\n"
                         "  namespace: shop\nspec:\n  containers:\n  - name: c\n    image: nginx\n";
  auto c = kubectl({"create", "-f", file.string()});  // default --validate=strict
  ASSERT_TRUE(c.status.success()) << c.err;
  EXPECT_EQ(c.out, "pod/made-by-kubectl created\n");

  auto g = kubectl({"get", "pod", "made-by-kubectl", "-n", "shop"});
  ASSERT_TRUE(g.status.success()) << g.err;
  EXPECT_TRUE(std::regex_search(g.out, std::regex(R"(made-by-kubectl\s+0/1\s+Pending)"))) << g.out;

  auto again = kubectl({"create", "-f", file.string()});
  EXPECT_FALSE(again.status.success());
  EXPECT_NE(again.err.find("AlreadyExists"), std::string::npos) << again.err;

  auto d = kubectl({"delete", "pod", "made-by-kubectl", "-n", "shop"});
  ASSERT_TRUE(d.status.success()) << d.err;
  EXPECT_EQ(d.out, "pod \"made-by-kubectl\" deleted\n");
  auto gone = kubectl({"get", "pod", "made-by-kubectl", "-n", "shop"});
  EXPECT_FALSE(gone.status.success());
  EXPECT_NE(gone.err.find("pods \"made-by-kubectl\" not found"), std::string::npos) << gone.err;
}

TEST_F(KubectlFakeApi, get_pods_watch_prints_changes_made_through_the_api) {
  ProcessSpec spec;
  spec.argv = {kKubectl, "--cache-dir", (*dir_ / "kube-cache").string(), "get", "pods", "-n",
               "watchns", "-w"};
  spec.env = {{"KUBECONFIG", (*dir_ / "admin.yaml").string()}, {"NO_PROXY", "127.0.0.1"},
              {"HOME", dir_->string()}};
  post("/api/v1/namespaces/watchns/pods", pod("first", "watchns", "n1"));
  ChildProcess watcher(spec);
  // The initial list; the watch then starts at the list's resourceVersion, so whatever
  // happens from here on reaches kubectl, however late its watch request comes.
  ASSERT_TRUE(watcher.wait_for_line(
      ChildProcess::Stream::Stdout,
      [](const std::string& l) { return l.find("first") != std::string::npos; }, 20s))
      << watcher.stdout_text() << watcher.stderr_text();

  post("/api/v1/namespaces/watchns/pods", pod("late", "watchns", "n1", {}, "Pending"));
  auto added = watcher.wait_for_line(
      ChildProcess::Stream::Stdout,
      [](const std::string& l) { return l.find("late") != std::string::npos; }, 15s);
  ASSERT_TRUE(added) << watcher.stdout_text() << watcher.stderr_text();
  EXPECT_NE(added->find("Pending"), std::string::npos) << *added;

  auto res = admin()->Patch("/api/v1/namespaces/watchns/pods/late/status",
                            json{{"status", {{"phase", "Running"}}}}.dump(),
                            "application/merge-patch+json");
  ASSERT_TRUE(res && res->status == 200);
  auto modified = watcher.wait_for_line(
      ChildProcess::Stream::Stdout,
      [](const std::string& l) {
        return l.find("late") != std::string::npos && l.find("Running") != std::string::npos;
      },
      15s);
  EXPECT_TRUE(modified) << watcher.stdout_text();
  watcher.stop();
}

TEST_F(KubectlFakeApi, get_raw_with_limit_returns_a_continue_token) {
  auto r = kubectl({"get", "--raw", "/api/v1/pods?limit=1"});
  ASSERT_TRUE(r.status.success()) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["kind"], "PodList");
  EXPECT_EQ(doc["items"].size(), 1u);
  EXPECT_FALSE(doc["metadata"]["continue"].get<std::string>().empty()) << r.out;
}

TEST_F(KubectlFakeApi, client_certificate_kubeconfig_authenticates) {
  std::filesystem::copy_file(*dir_ / "api" / "kubeconfig-cert.yaml", *dir_ / "cert.yaml",
                             std::filesystem::copy_options::overwrite_existing);
  auto r = kubectl({"get", "pods", "-A", "-o", "name"}, "cert.yaml");
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_NE(r.out.find("pod/db-1"), std::string::npos) << r.out;
}

TEST_F(KubectlFakeApi, a_wrong_token_is_unauthorized) {
  auto r = kubectl({"get", "pods"}, "wrong.yaml");
  EXPECT_FALSE(r.status.success());
  EXPECT_NE(r.err.find("Unauthorized"), std::string::npos) << r.err;
}

TEST_F(KubectlFakeApi, a_restricted_token_gets_the_servers_forbidden_message) {
  auto all = kubectl({"get", "pods", "-A"}, "viewer.yaml");
  EXPECT_FALSE(all.status.success());
  EXPECT_NE(all.err.find("Error from server (Forbidden): pods is forbidden: User \"viewer\" cannot "
                         "list resource \"pods\" in API group \"\" at the cluster scope"),
            std::string::npos)
      << all.err;
  auto allowed = kubectl({"get", "pods", "-n", "default", "-o", "name"}, "viewer.yaml");
  ASSERT_TRUE(allowed.status.success()) << allowed.err;
  EXPECT_NE(allowed.out.find("pod/web-1"), std::string::npos);
}

// The kinds the cluster side (k8s::ClusterCache) watches, through the real kubectl: discovery,
// short names, server-side Table columns as upstream's printers, and JSON lists.
TEST_F(KubectlFakeApi, get_every_kind_the_cluster_cache_watches) {
  post("/api/v1/namespaces/shop/resourcequotas",
       {{"metadata", {{"name", "compute"}}},
        {"spec", {{"hard", {{"pods", "100"}, {"requests.cpu", "20"}, {"limits.cpu", "40"}}}}},
        {"status", {{"hard", {{"pods", "100"}, {"requests.cpu", "20"}, {"limits.cpu", "40"}}},
                    {"used", {{"pods", "37"}, {"requests.cpu", "12750m"}, {"limits.cpu", "31"}}}}}});
  post("/api/v1/namespaces/shop/limitranges",
       {{"metadata", {{"name", "defaults"}}},
        {"spec", {{"limits", {{{"type", "Container"}, {"default", {{"cpu", "500m"}}}}}}}}});
  post("/apis/apps/v1/namespaces/shop/deployments",
       {{"metadata", {{"name", "checkout"}}},
        {"spec", {{"replicas", 3}, {"selector", {{"matchLabels", {{"app", "checkout"}}}}}}},
        {"status", {{"replicas", 3}, {"readyReplicas", 2}, {"updatedReplicas", 3}, {"availableReplicas", 2}}}});
  post("/apis/apps/v1/namespaces/shop/replicasets",
       {{"metadata", {{"name", "checkout-7d4b9c5f8"}}},
        {"spec", {{"replicas", 3},
                  {"selector", {{"matchLabels", {{"app", "checkout"}, {"pod-template-hash", "7d4b9c5f8"}}}}},
                  {"template", {{"spec", {{"containers", {{{"name", "app"}, {"image", "shop/checkout:1.4"}}}}}}}}}},
        {"status", {{"replicas", 3}, {"readyReplicas", 2}}}});
  json metrics = json::array();
  metrics.push_back({{"type", "Resource"},
                     {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 60}}}}}});
  metrics.push_back({{"type", "Pods"},
                     {"pods", {{"metric", {{"name", "pps"}}}, {"target", {{"type", "AverageValue"}, {"averageValue", "1k"}}}}}});
  metrics.push_back({{"type", "External"},
                     {"external", {{"metric", {{"name", "queue"}}}, {"target", {{"type", "Value"}, {"value", "30"}}}}}});
  json hpa = {{"metadata", {{"name", "checkout"}}}};
  hpa["spec"] = {{"scaleTargetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "checkout"}}},
                 {"minReplicas", 2},
                 {"maxReplicas", 10},
                 {"metrics", metrics}};
  json cpu_now = {{"type", "Resource"},
                  {"resource", {{"name", "cpu"}, {"current", {{"averageUtilization", 45}, {"averageValue", "450m"}}}}}};
  hpa["status"] = {{"currentReplicas", 3}, {"desiredReplicas", 3}, {"currentMetrics", json::array({cpu_now})}};
  post("/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers", hpa);

  const json job_pod = {{"restartPolicy", "Never"},
                        {"containers", {{{"name", "report"}, {"image", "shop/report:2"}}}}};
  post("/apis/batch/v1/namespaces/shop/jobs",
       {{"metadata", {{"name", "nightly-report-28745160"}}},
        {"spec", {{"parallelism", 2}, {"completions", 4}, {"template", {{"spec", job_pod}}}}},
        {"status", {{"active", 2}, {"succeeded", 1}, {"startTime", "2026-01-01T00:00:00Z"}}}});

  auto r = kubectl({"get", "nodes,namespaces,resourcequotas,limitranges,replicasets,deployments,jobs,hpa", "-A"});
  ASSERT_TRUE(r.status.success()) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(node/n1\s+Ready\s+worker)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(namespace/shop\s+Active)"))) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(shop\s+resourcequota/compute\s+\S+\s+pods: 37/100, requests\.cpu: 12750m/20\s+limits\.cpu: 31/40)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(shop\s+limitrange/defaults\s+\d{4}-\d\d-\d\dT)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(shop\s+replicaset\.apps/checkout-7d4b9c5f8\s+3\s+3\s+2\s)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(shop\s+deployment\.apps/checkout\s+2/3\s+3\s+2\s)"))) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(shop\s+horizontalpodautoscaler\.autoscaling/checkout\s+Deployment/checkout\s+cpu: 45%/60%, <unknown>/1k \+ 1 more\.\.\.\s+2\s+10\s+3\s)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE)"))) << r.out;
  // Running (no condition yet), 1 of 4 completions, running for months by now.
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(shop\s+job\.batch/nightly-report-28745160\s+Running\s+1/4\s+\d+d\s)")))
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(STATUS\s+COMPLETIONS\s+DURATION\s+AGE)"))) << r.out;

  auto wide = kubectl({"get", "rs", "-n", "shop", "-o", "wide"});
  ASSERT_TRUE(wide.status.success()) << wide.err;
  EXPECT_TRUE(std::regex_search(
      wide.out, std::regex(R"(checkout-7d4b9c5f8\s+3\s+3\s+2\s+\S+\s+app\s+shop/checkout:1\.4\s+app=checkout,pod-template-hash=7d4b9c5f8)")))
      << wide.out;

  auto j = kubectl({"get", "quota,limits,rs,deploy,jobs,hpa", "-n", "shop", "-o", "json"});
  ASSERT_TRUE(j.status.success()) << j.err;
  std::multiset<std::string> kinds;
  const json list = json::parse(j.out);
  for (const auto& item : list["items"]) kinds.insert(item["apiVersion"].get<std::string>() + " " + item["kind"].get<std::string>());
  EXPECT_EQ(kinds, (std::multiset<std::string>{"v1 ResourceQuota", "v1 LimitRange", "apps/v1 ReplicaSet",
                                               "apps/v1 Deployment", "batch/v1 Job",
                                               "autoscaling/v2 HorizontalPodAutoscaler"}))
      << j.out;
}

// The API server's pod proxy, the way the CLI reaches agents, through kubectl get --raw; RBAC
// on pods/proxy, which a pods rule does not cover.
TEST_F(KubectlFakeApi, get_raw_through_the_pod_proxy_reaches_the_pod_and_needs_pods_proxy) {
  httplib::Server agent;
  agent.Get("/v1/summary", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"node":"n1","source":"agent"})", "application/json");
  });
  const int port = agent.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { agent.listen_after_bind(); });
  json p = pod("podgauge-agent-n1", "default", "n1");
  p["status"]["podIP"] = "127.0.0.1";
  post("/api/v1/namespaces/default/pods", p);
  const std::string path = "/api/v1/namespaces/default/pods/podgauge-agent-n1:" + std::to_string(port) + "/proxy/v1/summary";
  auto r = kubectl({"get", "--raw", path});
  EXPECT_TRUE(r.status.success()) << r.err;
  EXPECT_EQ(json::parse(r.out.empty() ? "null" : r.out), json::parse(R"({"node":"n1","source":"agent"})")) << r.out;
  auto denied = kubectl({"get", "--raw", path}, "viewer.yaml");
  EXPECT_FALSE(denied.status.success());
  EXPECT_NE(denied.err.find("cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"default\""),
            std::string::npos)
      << denied.err;
  agent.stop();
  serving.join();
}

TEST_F(KubectlFakeApi, get_events_shows_what_the_event_writer_recorded) {
  namespace k8s = podgauge::k8s;
  auto pod_res = admin()->Get("/api/v1/namespaces/shop/pods/db-1");
  ASSERT_TRUE(pod_res && pod_res->status == 200);
  const std::string uid = json::parse(pod_res->body)["metadata"]["uid"];
  k8s::KubeconfigOptions ko;
  ko.kubeconfig = (*dir_ / "admin.yaml").string();
  k8s::ApiClient client(k8s::load_kubeconfig(ko));
  k8s::EventWriterOptions wo;
  wo.reporting_instance = "n1";
  k8s::EventWriter writer(client, wo);
  k8s::EventRecord r;
  r.regarding = {"Pod", "shop", "db-1", uid, "v1", ""};
  r.reason = "OOMKilled";
  r.action = "Killing";
  r.note = "container db: memory limit 128Mi, usage 128Mi";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(writer.record(r));
  ASSERT_TRUE(writer.flush(15s)) << writer.last_error();
  ASSERT_EQ(writer.stats().failed, 0u) << writer.last_error();

  // The server-side table of core/v1 events, across namespaces.
  auto table = kubectl({"get", "events", "-A"});
  ASSERT_TRUE(table.status.success()) << table.err;
  EXPECT_NE(table.out.find("LAST SEEN"), std::string::npos) << table.out;
  std::string row;
  for (std::istringstream in(table.out); std::getline(in, row);)
    if (row.find("pod/db-1") != std::string::npos) break;
  EXPECT_NE(row.find("shop"), std::string::npos) << table.out;
  EXPECT_NE(row.find("Warning"), std::string::npos) << row;
  EXPECT_NE(row.find("OOMKilled"), std::string::npos) << row;
  EXPECT_NE(row.find("container db: memory limit 128Mi"), std::string::npos) << row;

  // The same object in the events.k8s.io/v1 shape the writer sent.
  auto v1 = kubectl({"get", "events.v1.events.k8s.io", "-n", "shop", "-o", "json"});
  ASSERT_TRUE(v1.status.success()) << v1.err;
  auto list = json::parse(v1.out);
  ASSERT_EQ(list["items"].size(), 1u) << v1.out;
  const json& e = list["items"][0];
  EXPECT_EQ(e["apiVersion"], "events.k8s.io/v1");
  EXPECT_EQ(e["regarding"]["uid"], uid);
  EXPECT_EQ(e["reportingController"], "podgauge.io/agent");
  EXPECT_EQ(e["reportingInstance"], "n1");
  EXPECT_EQ(e["series"]["count"], 3);
  EXPECT_EQ(std::string(e["metadata"]["name"]).rfind("db-1.", 0), 0u);

  // And as core/v1 JSON, selected on the server by the fields kubectl describe uses.
  auto core = kubectl({"get", "events", "-n", "shop", "--field-selector",
                       "involvedObject.uid=" + uid + ",reason=OOMKilled", "-o", "json"});
  ASSERT_TRUE(core.status.success()) << core.err;
  auto core_list = json::parse(core.out);
  ASSERT_EQ(core_list["items"].size(), 1u);
  EXPECT_EQ(core_list["items"][0]["message"], r.note);
  EXPECT_EQ(core_list["items"][0]["series"]["count"], 3);

  // A token without create on events gets the server's Forbidden, which the writer reports.
  k8s::KubeconfigOptions vo;
  vo.kubeconfig = (*dir_ / "viewer.yaml").string();
  k8s::ApiClient viewer(k8s::load_kubeconfig(vo));
  k8s::EventWriter denied(viewer, wo);
  ASSERT_TRUE(denied.record(r));
  ASSERT_TRUE(denied.flush(15s));
  EXPECT_EQ(denied.stats().failed, 1u);
  EXPECT_NE(denied.last_error().find("User \"viewer\" cannot create resource \"events\" in API "
                                     "group \"events.k8s.io\" in the namespace \"shop\""),
            std::string::npos)
      << denied.last_error();
}

// ---------------------------------------------------------------------------------------
// The protocol itself, with an in-process server and plain HTTP clients.

class FakeApiProtocol : public ::testing::Test {
 protected:
  void SetUp() override {
    fa::FakeApiServer::Options o;
    o.history_window = 20;
    o.bookmark_interval = 200ms;
    api_ = std::make_unique<fa::FakeApiServer>(o);
    token_ = fa::FakeApiServer::kAdminToken;
  }
  std::unique_ptr<httplib::SSLClient> cli(const std::string& token) {
    return client(api_->port(), api_->ca_file(), token);
  }
  std::unique_ptr<httplib::SSLClient> cli() { return cli(token_); }
  json get_json(const std::string& path) {
    auto res = cli()->Get(path.c_str());
    EXPECT_TRUE(res) << path;
    if (!res) return nullptr;
    EXPECT_EQ(res->status, 200) << path << ": " << res->body;
    return json::parse(res->body);
  }
  std::vector<std::string> names(const json& list) {
    std::vector<std::string> out;
    for (const auto& i : list["items"]) out.push_back(i["metadata"]["name"]);
    return out;
  }
  std::unique_ptr<fa::FakeApiServer> api_;
  std::string token_;
};

TEST_F(FakeApiProtocol, starts_in_under_a_second) {
  auto t0 = std::chrono::steady_clock::now();
  fa::FakeApiServer another;
  EXPECT_TRUE(another.running());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}

TEST_F(FakeApiProtocol, list_pages_with_limit_and_continue) {
  for (int i = 0; i < 5; ++i) api_->create("pods", "default", pod("p" + std::to_string(i), "default", "n1"));
  std::vector<std::string> seen;
  auto page = get_json("/api/v1/namespaces/default/pods?limit=2");
  EXPECT_EQ(page["metadata"]["remainingItemCount"], 3);
  seen = names(page);
  for (int guard = 0; guard < 10 && page["metadata"].contains("continue"); ++guard) {
    page = get_json("/api/v1/namespaces/default/pods?limit=2&continue=" +
                    page["metadata"]["continue"].get<std::string>());
    for (auto& n : names(page)) seen.push_back(n);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4"}));
}

TEST_F(FakeApiProtocol, label_and_field_selectors) {
  api_->create("pods", "default", pod("a", "default", "n1", {{"app", "web"}, {"tier", "fe"}}));
  api_->create("pods", "default", pod("b", "default", "n2", {{"app", "web"}}, "Pending"));
  api_->create("pods", "default", pod("c", "default", "n1", {{"app", "db"}}));
  auto sel = [&](const std::string& q) {
    return names(get_json("/api/v1/pods?" + q));
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(sel("labelSelector=app%3Dweb"), (V{"a", "b"}));
  EXPECT_EQ(sel("labelSelector=app%3D%3Dweb"), (V{"a", "b"}));
  EXPECT_EQ(sel("labelSelector=app!%3Dweb"), (V{"c"}));
  EXPECT_EQ(sel("labelSelector=app%20in%20(db,cache)"), (V{"c"}));
  EXPECT_EQ(sel("labelSelector=app%20notin%20(db)"), (V{"a", "b"}));
  EXPECT_EQ(sel("labelSelector=tier"), (V{"a"}));
  EXPECT_EQ(sel("labelSelector=!tier"), (V{"b", "c"}));
  EXPECT_EQ(sel("labelSelector=app%3Dweb,!tier"), (V{"b"}));
  EXPECT_EQ(sel("fieldSelector=spec.nodeName%3Dn1"), (V{"a", "c"}));
  EXPECT_EQ(sel("fieldSelector=status.phase!%3DRunning"), (V{"b"}));
  EXPECT_EQ(sel("fieldSelector=metadata.name%3Db,metadata.namespace%3Ddefault"), (V{"b"}));
  auto bad = cli()->Get("/api/v1/pods?fieldSelector=spec.image%3Dx");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["message"], "field label not supported: spec.image");
}

TEST_F(FakeApiProtocol, watch_resumes_after_a_resource_version_and_ends_at_timeout) {
  api_->create("pods", "default", pod("before", "default", "n1"));
  const auto rv = api_->store().resource_version();
  api_->create("pods", "default", pod("after-1", "default", "n1"));
  api_->patch("pods", "default", "after-1", {{"metadata", {{"labels", {{"x", "y"}}}}}});
  api_->remove("pods", "default", "after-1");
  auto t0 = std::chrono::steady_clock::now();
  auto res = cli()->Get(("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1&resourceVersion=" +
                         std::to_string(rv)).c_str());
  ASSERT_TRUE(res);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_EQ(res->get_header_value("Transfer-Encoding"), "chunked");
  auto events = lines_of(res->body);
  ASSERT_EQ(events.size(), 3u) << res->body;
  EXPECT_EQ(events[0]["type"], "ADDED");
  EXPECT_EQ(events[1]["type"], "MODIFIED");
  EXPECT_EQ(events[2]["type"], "DELETED");
  std::uint64_t last = rv;
  for (const auto& e : events) {
    EXPECT_EQ(e["object"]["metadata"]["name"], "after-1");
    auto erv = std::stoull(e["object"]["metadata"]["resourceVersion"].get<std::string>());
    EXPECT_GT(erv, last);
    last = erv;
  }
}

TEST_F(FakeApiProtocol, watch_turns_selector_transitions_into_added_and_deleted) {
  api_->create("pods", "default", pod("p", "default", "n1", {{"app", "web"}}));
  const auto rv = api_->store().resource_version();
  api_->patch("pods", "default", "p", {{"metadata", {{"labels", {{"app", "db"}}}}}});
  api_->patch("pods", "default", "p", {{"metadata", {{"labels", {{"app", "web"}}}}}});
  auto res = cli()->Get(("/api/v1/pods?watch=1&timeoutSeconds=1&labelSelector=app%3Dweb&resourceVersion=" +
                         std::to_string(rv)).c_str());
  ASSERT_TRUE(res);
  auto events = lines_of(res->body);
  ASSERT_EQ(events.size(), 2u) << res->body;
  EXPECT_EQ(events[0]["type"], "DELETED");
  EXPECT_EQ(events[1]["type"], "ADDED");
}

TEST_F(FakeApiProtocol, watch_sends_bookmarks_carrying_only_the_resource_version) {
  api_->create("pods", "default", pod("p", "default", "n1"));
  const auto rv = std::to_string(api_->store().resource_version());
  auto res = cli()->Get(("/api/v1/pods?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=" + rv).c_str());
  ASSERT_TRUE(res);
  auto events = lines_of(res->body);
  ASSERT_GE(events.size(), 2u) << res->body;
  for (const auto& e : events) {
    EXPECT_EQ(e["type"], "BOOKMARK");
    EXPECT_EQ(e["object"]["kind"], "Pod");
    EXPECT_EQ(e["object"]["metadata"]["resourceVersion"], rv);
    EXPECT_FALSE(e["object"]["metadata"].contains("name"));
  }
}

TEST_F(FakeApiProtocol, too_old_resource_version_gives_410_expired) {
  const auto old_rv = std::to_string(api_->store().resource_version());
  for (int i = 0; i < 30; ++i) api_->create("pods", "default", pod("p" + std::to_string(i), "default", "n1"));
  auto res = cli()->Get(("/api/v1/pods?watch=true&resourceVersion=" + old_rv).c_str());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  auto events = lines_of(res->body);
  ASSERT_EQ(events.size(), 1u) << res->body;
  EXPECT_EQ(events[0]["type"], "ERROR");
  EXPECT_EQ(events[0]["object"]["kind"], "Status");
  EXPECT_EQ(events[0]["object"]["code"], 410);
  EXPECT_EQ(events[0]["object"]["reason"], "Expired");

  auto list = cli()->Get(("/api/v1/pods?resourceVersion=" + old_rv + "&resourceVersionMatch=Exact").c_str());
  ASSERT_TRUE(list);
  EXPECT_EQ(list->status, 410);

  api_->faults().expire_next_watches(1);
  const auto now_rv = std::to_string(api_->store().resource_version());
  auto forced = cli()->Get(("/api/v1/pods?watch=true&resourceVersion=" + now_rv).c_str());
  ASSERT_TRUE(forced);
  EXPECT_EQ(lines_of(forced->body).at(0)["object"]["code"], 410);
}

TEST_F(FakeApiProtocol, errors_are_status_objects) {
  auto anon = cli("")->Get("/api/v1/pods");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  auto s = json::parse(anon->body);
  EXPECT_EQ(s["kind"], "Status");
  EXPECT_EQ(s["reason"], "Unauthorized");

  auto missing = cli()->Get("/api/v1/namespaces/default/pods/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["message"], "pods \"nope\" not found");

  api_->create("pods", "default", pod("dup", "default", "n1"));
  auto dup = cli()->Post("/api/v1/namespaces/default/pods", pod("dup", "default", "n1").dump(),
                         "application/json");
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->status, 409);
  EXPECT_EQ(json::parse(dup->body)["reason"], "AlreadyExists");

  api_->add_token("t-ro", {"ro", {}});
  api_->allow("ro", {.verbs = {"get"}, .resources = {"pods"}});
  auto forbidden = cli("t-ro")->Get("/api/v1/namespaces/default/pods");
  ASSERT_TRUE(forbidden);
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_EQ(json::parse(forbidden->body)["message"],
            "pods is forbidden: User \"ro\" cannot list resource \"pods\" in API group \"\" in "
            "the namespace \"default\"");
}

TEST_F(FakeApiProtocol, events_can_be_created_and_patched_for_series_counting) {
  json ev = {{"metadata", {{"name", "oom.1"}, {"namespace", "default"}}},
             {"involvedObject", {{"kind", "Pod"}, {"name", "p"}, {"namespace", "default"}}},
             {"reason", "OOMKilled"}, {"type", "Warning"}, {"count", 1}};
  auto c = cli()->Post("/api/v1/namespaces/default/events", ev.dump(), "application/json");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->status, 201) << c->body;
  auto p = cli()->Patch("/api/v1/namespaces/default/events/oom.1", R"({"count":2})",
                        "application/strategic-merge-patch+json");
  ASSERT_TRUE(p);
  EXPECT_EQ(json::parse(p->body)["count"], 2);
  auto l = get_json("/api/v1/events?fieldSelector=involvedObject.name%3Dp,reason%3DOOMKilled");
  EXPECT_EQ(l["items"].size(), 1u);
}

TEST_F(FakeApiProtocol, events_k8s_io_is_a_view_of_core_events_with_watch_patch_and_faults) {
  auto disc = get_json("/apis/events.k8s.io/v1");
  ASSERT_EQ(disc["resources"][0]["name"], "events");
  json ev = {{"apiVersion", "events.k8s.io/v1"}, {"kind", "Event"},
             {"metadata", {{"name", "p.1"}, {"namespace", "default"}}},
             {"eventTime", "2026-01-01T00:00:00.000000Z"},
             {"regarding", {{"kind", "Pod"}, {"name", "p"}, {"namespace", "default"}}},
             {"reason", "OOMKilled"}, {"action", "Killing"}, {"type", "Warning"},
             {"note", "n"}, {"reportingController", "c"}, {"reportingInstance", "i"}};
  const std::string base = "/apis/events.k8s.io/v1/namespaces/default/events";
  // Validation as kube-apiserver's for this group.
  json bad = ev;
  bad.erase("action");
  auto r = cli()->Post(base.c_str(), bad.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422) << r->body;
  // An injected failure, then the create.
  api_->faults().fail_next_requests(1, 503);
  EXPECT_EQ(cli()->Post(base.c_str(), ev.dump(), "application/json")->status, 503);
  const auto rv = std::to_string(api_->store().resource_version());
  r = cli()->Post(base.c_str(), ev.dump(), "application/json");
  ASSERT_EQ(r->status, 201) << r->body;
  // Strategic-merge and merge patches of the series, as client-go sends them.
  r = cli()->Patch((base + "/p.1").c_str(),
                   R"({"series":{"count":2,"lastObservedTime":"2026-01-01T00:00:01.000000Z"}})",
                   "application/strategic-merge-patch+json");
  ASSERT_EQ(r->status, 200) << r->body;
  r = cli()->Patch((base + "/p.1").c_str(), R"({"series":{"count":3}})",
                   "application/merge-patch+json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["series"]["count"], 3);
  // The core/v1 view of the same object.
  auto core = get_json("/api/v1/namespaces/default/events/p.1");
  EXPECT_EQ(core["apiVersion"], "v1");
  EXPECT_EQ(core["involvedObject"]["name"], "p");
  EXPECT_EQ(core["message"], "n");
  EXPECT_EQ(core["reportingComponent"], "c");
  EXPECT_EQ(core["series"]["count"], 3);
  // Watch in the events.k8s.io shape from before the create.
  auto w = cli()->Get((base + "?watch=true&timeoutSeconds=1&resourceVersion=" + rv).c_str());
  ASSERT_TRUE(w);
  auto lines = lines_of(w->body);
  ASSERT_EQ(lines.size(), 3u) << w->body;
  EXPECT_EQ(lines[0]["type"], "ADDED");
  EXPECT_EQ(lines[0]["object"]["apiVersion"], "events.k8s.io/v1");
  EXPECT_EQ(lines[0]["object"]["regarding"]["name"], "p");
  EXPECT_EQ(lines[2]["type"], "MODIFIED");
  EXPECT_EQ(lines[2]["object"]["series"]["count"], 3);
  // RBAC on the group: allowed for core events only is not allowed here.
  api_->add_token("ev-core", {"ev-core", {}});
  api_->allow("ev-core", {{"create", "get", "list"}, {"events"}, {""}});
  EXPECT_EQ(cli("ev-core")->Get("/api/v1/namespaces/default/events")->status, 200);
  auto denied = cli("ev-core")->Post(base.c_str(), ev.dump(), "application/json");
  ASSERT_EQ(denied->status, 403);
  EXPECT_EQ(json::parse(denied->body)["message"],
            "events.events.k8s.io is forbidden: User \"ev-core\" cannot create resource "
            "\"events\" in API group \"events.k8s.io\" in the namespace \"default\"");
}

TEST_F(FakeApiProtocol, injected_failures_dropped_watches_and_restart) {
  api_->faults().fail_next_requests(2);
  EXPECT_EQ(cli()->Get("/api/v1/pods")->status, 500);
  EXPECT_EQ(cli()->Get("/api/v1/pods")->status, 500);
  EXPECT_EQ(cli()->Get("/api/v1/pods")->status, 200);

  // A watch cut off mid-stream: the client sees its body end early.
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    cli()->Get("/api/v1/pods?watch=true&timeoutSeconds=20");
    done = true;
  });
  std::this_thread::sleep_for(300ms);
  api_->faults().drop_watches();
  EXPECT_TRUE(wait_until([&] { return done.load(); }, 5s));
  watcher.join();

  api_->faults().truncate_next_watch();
  api_->create("pods", "default", pod("t", "default", "n1"));
  auto cut = cli()->Get("/api/v1/pods?watch=true&timeoutSeconds=5");
  EXPECT_TRUE(!cut || cut->body.find('\n') == std::string::npos);

  const auto port = api_->port();
  api_->restart(100ms);
  EXPECT_EQ(api_->port(), port);
  EXPECT_EQ(get_json("/api/v1/namespaces/default/pods/t")["metadata"]["name"], "t");
}

}  // namespace
