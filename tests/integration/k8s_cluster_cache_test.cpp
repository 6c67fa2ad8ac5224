// k8s::ClusterCache against the fake API server (in-process, real HTTPS protocol): every kind
// the cluster side watches syncs with the fixtures' content, follows watch updates/deletes and
// 410 re-lists, and a missing RBAC rule degrades exactly one kind with a 403 that says what to
// grant. The chart's RBAC rules (charts/podgauge/files/rbac/*.yaml) are fed to the fake's
// access control as they are, and each rule is shown to be needed.
#include <gtest/gtest.h>
#include <httplib.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "fake_api_server.h"
#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/cluster_cache.h"
#include "podgauge/k8s/event_writer.h"
#include "podgauge/k8s/kubeconfig.h"

using namespace std::chrono_literals;
using namespace podgauge::k8s;
using nlohmann::json;
namespace fa = podgauge::fakeapi;
namespace fs = std::filesystem;

namespace {

fs::path source_root() {
#ifdef PODGAUGE_SOURCE_DIR
  return PODGAUGE_SOURCE_DIR;
#else
  return fs::path(__FILE__).parent_path().parent_path().parent_path();
#endif
}

fs::path fixtures_dir() {
  // $PODGAUGE_FIXTURES_DIR where the source tree is not at its build path (vmtests).
  const char* dir = std::getenv("PODGAUGE_FIXTURES_DIR");
  return (dir && *dir ? fs::path(dir) : source_root() / "tests" / "fixtures") / "k8s";
}

fs::path chart_dir() {
  const char* dir = std::getenv("PODGAUGE_CHART_DIR");
  return dir && *dir ? fs::path(dir) : source_root() / "charts" / "podgauge";
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json fixture(const std::string& name) { return json::parse(read_text(fixtures_dir() / name)); }

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

InformerOptions fast_informers() {
  InformerOptions o;
  o.watch_timeout = [] { return std::chrono::seconds(5); };
  o.backoff = [](int attempt) { return std::chrono::milliseconds(10 * std::min(attempt, 10)); };
  o.log = [](const std::string&) {};  // 403 retries would flood the output
  return o;
}

std::shared_ptr<ApiClient> client_for(const fs::path& kubeconfig) {
  KubeconfigOptions o;
  o.kubeconfig = kubeconfig.string();
  return std::make_shared<ApiClient>(load_kubeconfig(o));
}

std::unique_ptr<ClusterCache> make_cache(const fs::path& kubeconfig, const std::string& ns = "") {
  ClusterCacheOptions o;
  o.namespace_ = ns;
  o.informer = fast_informers();
  return std::make_unique<ClusterCache>(client_for(kubeconfig), o);
}

std::unique_ptr<fa::FakeApiServer> make_server(bool events_k8s_io = true) {
  fa::FakeApiServer::Options o;
  o.bookmark_interval = 200ms;
  o.history_window = 5000;
  o.worker_threads = 256;  // many informers, some of them retrying
  o.serve_events_k8s_io = events_k8s_io;
  return std::make_unique<fa::FakeApiServer>(o);
}

const std::map<ClusterKind, std::string> kFakeResource = {
    {ClusterKind::Pods, "pods"},
    {ClusterKind::Nodes, "nodes"},
    {ClusterKind::Namespaces, "namespaces"},
    {ClusterKind::ResourceQuotas, "resourcequotas"},
    {ClusterKind::LimitRanges, "limitranges"},
    {ClusterKind::ReplicaSets, "replicasets.apps"},
    {ClusterKind::Deployments, "deployments.apps"},
    {ClusterKind::HorizontalPodAutoscalers, "horizontalpodautoscalers.autoscaling"},
    {ClusterKind::Jobs, "jobs.batch"}};

// What the seeded cluster holds, with the uids the server gave.
struct Seeded {
  std::string deployment_uid, replica_set_uid, job_uid;
};

// Every fixture of tests/fixtures/k8s, with owner references rewired to the uids the server
// assigns (it ignores those in the body, as a real one does).
Seeded seed_cluster(fa::FakeApiServer& api) {
  for (const char* ns : {"shop", "payments", "batch"})
    api.create("namespaces", "", {{"metadata", {{"name", ns}}}});
  api.create("nodes", "", fixture("node.json"));
  api.create("resourcequotas", "shop", fixture("resourcequota.json"));
  api.create("limitranges", "shop", fixture("limitrange.json"));
  api.create("horizontalpodautoscalers.autoscaling", "shop", fixture("hpa-v2-all-metrics.json"));
  const json workloads = fixture("workloads.json");
  Seeded s;
  s.deployment_uid =
      api.create("deployments.apps", "shop", workloads["deployment"])["metadata"]["uid"];
  json rs = workloads["replicaset"];
  rs["metadata"]["ownerReferences"][0]["uid"] = s.deployment_uid;
  s.replica_set_uid = api.create("replicasets.apps", "shop", rs)["metadata"]["uid"];
  json job = workloads["job"];  // owned by the CronJob "nightly-report"
  job["metadata"]["namespace"] = "batch";
  s.job_uid = api.create("jobs.batch", "batch", job)["metadata"]["uid"];
  json classic = fixture("pod-1.19-classic.json");
  classic["metadata"]["ownerReferences"][0]["uid"] = s.replica_set_uid;
  api.create("pods", "shop", classic);
  api.create("pods", "payments", fixture("pod-1.29-sidecar.json"));
  api.create("pods", "default", fixture("pod-1.32-pod-level-resources.json"));
  api.create("pods", "batch", fixture("pod-1.33-resize.json"));
  return s;
}

// namespace/name -> resourceVersion.
template <class T>
std::map<std::string, std::string> keyed(const std::vector<std::shared_ptr<const T>>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& o : objects)
    out[o->metadata.namespace_ + "/" + o->metadata.name] = o->metadata.resource_version;
  return out;
}

std::map<std::string, std::string> server_keyed(fa::FakeApiServer& api, ClusterKind kind) {
  std::map<std::string, std::string> out;
  for (const auto& o : api.list(kFakeResource.at(kind)))
    out[o["metadata"].value("namespace", "") + "/" + o["metadata"]["name"].get<std::string>()] =
        o["metadata"]["resourceVersion"].get<std::string>();
  return out;
}

std::map<std::string, std::string> cache_keyed(const ClusterCache& c, ClusterKind kind) {
  switch (kind) {
    case ClusterKind::Pods:
      return keyed(c.pods());
    case ClusterKind::Nodes:
      return keyed(c.nodes());
    case ClusterKind::Namespaces:
      return keyed(c.namespaces());
    case ClusterKind::ResourceQuotas:
      return keyed(c.resource_quotas());
    case ClusterKind::LimitRanges:
      return keyed(c.limit_ranges());
    case ClusterKind::ReplicaSets:
      return keyed(c.replica_sets());
    case ClusterKind::Deployments:
      return keyed(c.deployments());
    case ClusterKind::HorizontalPodAutoscalers:
      return keyed(c.horizontal_pod_autoscalers());
    case ClusterKind::Jobs:
      return keyed(c.jobs());
  }
  return {};
}

// The kinds whose cache differs from the server ("" when none).
std::string mismatched_kinds(const ClusterCache& c, fa::FakeApiServer& api) {
  std::string out;
  for (ClusterKind k : kClusterKinds)
    if (cache_keyed(c, k) != server_keyed(api, k)) out += std::string(to_string(k)) + " ";
  return out;
}

std::string describe(const std::vector<KindStatus>& statuses) {
  std::string out;
  for (const auto& s : statuses)
    out += std::string(to_string(s.kind)) + ": " + std::string(to_string(s.state)) +
           (s.synced ? " (synced)" : "") + " " + s.error + "\n";
  return out;
}

// The label "gen" of an object: nullopt when the object is not cached, "" without the label.
template <class Ptr>
std::optional<std::string> gen_label(const Ptr& o) {
  if (!o) return std::nullopt;
  const std::string* v = o->metadata.label("gen");
  return v ? *v : std::string();
}

std::optional<std::string> cached_gen(const ClusterCache& c, ClusterKind kind,
                                      const std::string& ns, const std::string& name) {
  switch (kind) {
    case ClusterKind::Pods:
      return gen_label(c.pod(ns, name));
    case ClusterKind::Nodes:
      return gen_label(c.node(name));
    case ClusterKind::Namespaces:
      return gen_label(c.namespace_(name));
    case ClusterKind::ResourceQuotas:
      return gen_label(c.resource_quota(ns, name));
    case ClusterKind::LimitRanges:
      return gen_label(c.limit_range(ns, name));
    case ClusterKind::ReplicaSets:
      return gen_label(c.replica_set(ns, name));
    case ClusterKind::Deployments:
      return gen_label(c.deployment(ns, name));
    case ClusterKind::HorizontalPodAutoscalers:
      return gen_label(c.horizontal_pod_autoscaler(ns, name));
    case ClusterKind::Jobs:
      return gen_label(c.job(ns, name));
  }
  return std::nullopt;
}

// A small valid object of each kind, named `name`.
json minimal_object(ClusterKind kind, const std::string& name) {
  json meta = {{"name", name}};
  switch (kind) {
    case ClusterKind::Pods:
      return {{"metadata", meta},
              {"spec",
               {{"nodeName", "node-a1"}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
    case ClusterKind::Nodes:
    case ClusterKind::Namespaces:
      return {{"metadata", meta}};
    case ClusterKind::ResourceQuotas:
      return {{"metadata", meta}, {"spec", {{"hard", {{"pods", "10"}}}}}};
    case ClusterKind::LimitRanges:
      return {{"metadata", meta},
              {"spec", {{"limits", {{{"type", "Container"}, {"default", {{"cpu", "500m"}}}}}}}}};
    case ClusterKind::ReplicaSets:
    case ClusterKind::Deployments:
      return {{"metadata", meta},
              {"spec", {{"replicas", 1}, {"selector", {{"matchLabels", {{"app", name}}}}}}}};
    case ClusterKind::HorizontalPodAutoscalers:
      return {{"metadata", meta},
              {"spec",
               {{"scaleTargetRef",
                 {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "checkout"}}},
                {"minReplicas", 1},
                {"maxReplicas", 3}}}};
    case ClusterKind::Jobs:
    {
      const json pod_spec = {{"restartPolicy", "Never"},
                             {"containers", {{{"name", "c"}, {"image", "busybox"}}}}};
      return {{"metadata", meta}, {"spec", {{"template", {{"spec", pod_spec}}}}}};
    }
  }
  return {};
}

bool cluster_scoped(ClusterKind k) {
  return k == ClusterKind::Nodes || k == ClusterKind::Namespaces;
}

// One object of each kind the fixtures seeded: {namespace, name}.
const std::map<ClusterKind, std::pair<std::string, std::string>> kSeededObject = {
    {ClusterKind::Pods, {"shop", "checkout-7d4b9c5f8-x2k9p"}},
    {ClusterKind::Nodes, {"", "node-a1"}},
    {ClusterKind::Namespaces, {"", "payments"}},
    {ClusterKind::ResourceQuotas, {"shop", "compute"}},
    {ClusterKind::LimitRanges, {"shop", "defaults"}},
    {ClusterKind::ReplicaSets, {"shop", "checkout-7d4b9c5f8"}},
    {ClusterKind::Deployments, {"shop", "checkout"}},
    {ClusterKind::HorizontalPodAutoscalers, {"shop", "web"}},
    {ClusterKind::Jobs, {"batch", "nightly-report-28745160"}}};

// ---------------------------------------------------------------------------------------
// The chart's RBAC rules, read as the chart ships them.

struct ChartRule {
  fa::PolicyRule rule;
  std::string comment;  // the comment lines right above the rule
};

std::vector<ChartRule> chart_rules(const std::string& file) {
  const fs::path path = chart_dir() / "files" / "rbac" / file;
  const std::string text = read_text(path);
  std::vector<ChartRule> out;
  // The comment block above each "- apiGroups" item, in order.
  std::vector<std::string> comments;
  std::string block;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("#", 0) == 0) {
      block += line + "\n";
    } else if (line.rfind("- apiGroups:", 0) == 0) {
      comments.push_back(block);
      block.clear();
    } else if (line.empty() || line.rfind("  ", 0) != 0) {
      block.clear();
    }
  }
  const YAML::Node doc = YAML::Load(text);
  if (!doc.IsSequence()) throw std::runtime_error(path.string() + ": not a list of rules");
  if (doc.size() != comments.size())
    throw std::runtime_error(path.string() + ": each rule must start with \"- apiGroups:\"");
  for (std::size_t i = 0; i < doc.size(); ++i) {
    ChartRule r;
    r.rule.api_groups = doc[i]["apiGroups"].as<std::vector<std::string>>();
    r.rule.resources = doc[i]["resources"].as<std::vector<std::string>>();
    r.rule.verbs = doc[i]["verbs"].as<std::vector<std::string>>();
    r.comment = comments[i];
    out.push_back(std::move(r));
  }
  return out;
}

std::string rule_text(const fa::PolicyRule& r) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  return "{groups=" + join(r.api_groups) + " resources=" + join(r.resources) +
         " verbs=" + join(r.verbs) + "}";
}

// A token for a fresh user holding exactly `rules`; returns its kubeconfig.
fs::path user_with(fa::FakeApiServer& api, const std::string& user,
                   const std::vector<fa::PolicyRule>& rules) {
  api.add_token(user + "-token", {user, {"system:authenticated"}});
  for (const auto& r : rules) api.allow(user, r);
  if (rules.empty())  // no rule at all must still mean "nothing allowed"
    api.allow(user,
              {.verbs = {"none"}, .resources = {"none"}, .api_groups = {"none"}, .namespaces = {}});
  return api.write_token_kubeconfig(user + "-token", api.dir() / (user + ".yaml"));
}

std::optional<ClusterKind> kind_of_rule(const fa::PolicyRule& r) {
  for (const auto& [k, res] : kFakeResource) {
    const std::string plural = res.substr(0, res.find('.'));
    const std::string group =
        res.find('.') == std::string::npos ? "" : res.substr(res.find('.') + 1);
    if (r.resources == std::vector<std::string>{plural} &&
        r.api_groups == std::vector<std::string>{group})
      return k;
  }
  return std::nullopt;
}

// A pod of the Job `job` (uid `uid`), as the Job controller creates it.
Pod job_pod(const std::string& job, const std::string& uid) {
  const json pod = {
      {"metadata",
       {{"name", job + "-abcde"},
        {"namespace", "batch"},
        {"ownerReferences",
         {{{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"name", job}, {"uid", uid},
           {"controller", true}}}}}},
      {"spec", {{"containers", {{{"name", "report"}, {"image", "busybox"}}}}}}};
  return Pod::parse(pod.dump());
}

class K8sClusterCache : public ::testing::Test {
 protected:
  void SetUp() override {
    api_ = make_server();
    seeded_ = seed_cluster(*api_);
  }
  std::unique_ptr<fa::FakeApiServer> api_;
  Seeded seeded_;
};

}  // namespace

TEST_F(K8sClusterCache, every_kind_syncs_with_the_fixtures_content) {
  auto cache = make_cache(api_->token_kubeconfig());
  cache->start();
  ASSERT_TRUE(cache->wait_for_sync(30s)) << describe(cache->status());
  EXPECT_TRUE(cache->has_synced());
  for (const auto& s : cache->status()) {
    EXPECT_EQ(s.state, KindState::Synced) << describe({s});
    EXPECT_TRUE(s.error.empty()) << s.error;
    EXPECT_TRUE(cache->has_synced(s.kind));
    EXPECT_EQ(s.objects, server_keyed(*api_, s.kind).size()) << to_string(s.kind);
  }
  EXPECT_EQ(mismatched_kinds(*cache, *api_), "");
  EXPECT_EQ(cache->pods().size(), 4u);
  EXPECT_EQ(cache->pods("shop").size(), 1u);
  EXPECT_EQ(cache->namespaces().size(), 7u);  // 4 seeded by the server + shop, payments, batch

  // Each kind decoded from the watch/list path holds what the fixture says.
  const Node want_node = Node::parse(read_text(fixtures_dir() / "node.json"));
  auto node = cache->node("node-a1");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->capacity, want_node.capacity);
  EXPECT_EQ(node->allocatable, want_node.allocatable);
  EXPECT_EQ(node->ready(), want_node.ready());
  EXPECT_FALSE(node->capacity.empty());

  const ResourceQuota want_rq =
      ResourceQuota::parse(read_text(fixtures_dir() / "resourcequota.json"));
  auto rq = cache->resource_quota("shop", "compute");
  ASSERT_NE(rq, nullptr);
  EXPECT_EQ(rq->spec_hard, want_rq.spec_hard);
  EXPECT_EQ(rq->used, want_rq.used);
  EXPECT_EQ(rq->scopes, want_rq.scopes);
  EXPECT_FALSE(rq->spec_hard.empty());

  const LimitRange want_lr = LimitRange::parse(read_text(fixtures_dir() / "limitrange.json"));
  auto lr = cache->limit_range("shop", "defaults");
  ASSERT_NE(lr, nullptr);
  ASSERT_EQ(lr->limits.size(), want_lr.limits.size());
  ASSERT_NE(lr->item("Container"), nullptr);
  EXPECT_EQ(lr->item("Container")->default_limit, want_lr.item("Container")->default_limit);
  EXPECT_EQ(lr->item("Container")->default_request, want_lr.item("Container")->default_request);

  const HorizontalPodAutoscaler want_hpa =
      HorizontalPodAutoscaler::parse(read_text(fixtures_dir() / "hpa-v2-all-metrics.json"));
  auto hpa = cache->horizontal_pod_autoscaler("shop", "web");
  ASSERT_NE(hpa, nullptr);
  EXPECT_EQ(hpa->scale_target_ref.name, want_hpa.scale_target_ref.name);
  EXPECT_EQ(hpa->min_replicas, want_hpa.min_replicas);
  EXPECT_EQ(hpa->max_replicas, want_hpa.max_replicas);
  EXPECT_EQ(hpa->metrics.size(), want_hpa.metrics.size());
  EXPECT_EQ(hpa->current_metrics.size(), want_hpa.current_metrics.size());
  EXPECT_GE(hpa->metrics.size(), 5u) << "the fixture has every metric source type";

  auto rs = cache->replica_set("shop", "checkout-7d4b9c5f8");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->replicas, 3);
  EXPECT_EQ(rs->status_ready_replicas, 2);
  auto deploy = cache->deployment("shop", "checkout");
  ASSERT_NE(deploy, nullptr);
  EXPECT_EQ(deploy->metadata.uid, seeded_.deployment_uid);

  auto sidecar = cache->pod("payments", "payments-api-0");
  ASSERT_NE(sidecar, nullptr);
  const Pod want_sidecar = Pod::parse(read_text(fixtures_dir() / "pod-1.29-sidecar.json"));
  EXPECT_EQ(sidecar->spec.init_containers.size(), want_sidecar.spec.init_containers.size());
  EXPECT_EQ(sidecar->spec.containers.size(), want_sidecar.spec.containers.size());

  // Owner resolution through the cached ReplicaSet, with the uids checked.
  auto classic = cache->pod("shop", "checkout-7d4b9c5f8-x2k9p");
  ASSERT_NE(classic, nullptr);
  EXPECT_EQ(cache->workload_of(*classic),
            (WorkloadRef{"Deployment", "checkout", seeded_.deployment_uid, false}));
  EXPECT_EQ(cache->deployment_of(*classic), deploy);
  EXPECT_EQ(cache->workload_of(*sidecar).kind, "StatefulSet");
  EXPECT_EQ(cache->deployment_of(*sidecar), nullptr);
  auto bare = cache->pod("default", "pod-level-demo");
  ASSERT_NE(bare, nullptr);
  EXPECT_EQ(cache->workload_of(*bare).kind, "Pod");
  // Its ReplicaSet is not in the cluster: named by the pod-template-hash convention only.
  auto resized = cache->pod("batch", "resizer-5f6d7c8b9-abcde");
  ASSERT_NE(resized, nullptr);
  EXPECT_EQ(cache->workload_of(*resized), (WorkloadRef{"Deployment", "resizer", "", true}));

  // A CronJob's run: Pod -> Job (cached) -> CronJob; a pod of a Job whose uid differs (the
  // Job was replaced by one of the same name) stays with the Job it names.
  auto job = cache->job("batch", "nightly-report-28745160");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(job->metadata.uid, seeded_.job_uid);
  EXPECT_EQ(job->status_succeeded, 1);
  EXPECT_EQ(job->completions, 4);
  const Pod run = job_pod("nightly-report-28745160", seeded_.job_uid);
  EXPECT_EQ(cache->workload_of(run), (WorkloadRef{"CronJob", "nightly-report", "cj-uid-1", false}));
  const Pod stale = job_pod("nightly-report-28745160", "some-older-uid");
  EXPECT_EQ(cache->workload_of(stale),
            (WorkloadRef{"Job", "nightly-report-28745160", "some-older-uid", false}));
}

TEST_F(K8sClusterCache, watch_adds_updates_and_deletes_of_every_kind_are_reflected) {
  auto cache = make_cache(api_->token_kubeconfig());
  cache->start();
  ASSERT_TRUE(cache->wait_for_sync(30s)) << describe(cache->status());
  for (ClusterKind k : kClusterKinds) {
    SCOPED_TRACE(std::string(to_string(k)));
    const std::string& res = kFakeResource.at(k);
    const auto& [ns, name] = kSeededObject.at(k);
    const std::string extra_ns = cluster_scoped(k) ? "" : "shop";
    api_->create(res, extra_ns, minimal_object(k, "extra"));
    EXPECT_TRUE(eventually([&] { return cached_gen(*cache, k, extra_ns, "extra").has_value(); }))
        << "ADDED not applied";
    api_->patch(res, ns, name, {{"metadata", {{"labels", {{"gen", "2"}}}}}});
    EXPECT_TRUE(eventually([&] { return cached_gen(*cache, k, ns, name) == "2"; }))
        << "MODIFIED not applied";
    api_->remove(res, extra_ns, "extra");
    EXPECT_TRUE(eventually([&] { return !cached_gen(*cache, k, extra_ns, "extra").has_value(); }))
        << "DELETED not applied";
  }
  // Deleting the ReplicaSet degrades owner resolution to the naming convention, not to "none".
  api_->remove("replicasets.apps", "shop", "checkout-7d4b9c5f8");
  ASSERT_TRUE(
      eventually([&] { return cache->replica_set("shop", "checkout-7d4b9c5f8") == nullptr; }));
  auto classic = cache->pod("shop", "checkout-7d4b9c5f8-x2k9p");
  ASSERT_NE(classic, nullptr);
  EXPECT_EQ(cache->workload_of(*classic), (WorkloadRef{"Deployment", "checkout", "", true}));
  EXPECT_EQ(mismatched_kinds(*cache, *api_), "");
}

TEST_F(K8sClusterCache, a_410_on_every_watch_relists_and_loses_nothing) {
  auto cache = make_cache(api_->token_kubeconfig());
  cache->start();
  ASSERT_TRUE(cache->wait_for_sync(30s)) << describe(cache->status());
  const auto lists_before = [&] {
    std::map<ClusterKind, std::uint64_t> m;
    for (const auto& s : cache->status()) m[s.kind] = s.stats.lists;
    return m;
  }();

  // A reader never sees a kind empty while it re-lists.
  std::atomic<bool> done{false};
  std::atomic<bool> saw_empty{false};
  std::thread reader([&] {
    while (!done) {
      std::this_thread::sleep_for(1ms);
      if (cache->pods().size() < 4 || cache->nodes().empty() || cache->deployments().empty() ||
          cache->horizontal_pod_autoscalers().empty() || cache->resource_quotas().empty() ||
          cache->limit_ranges().empty() || cache->replica_sets().empty() ||
          cache->namespaces().size() < 7)
        saw_empty = true;
    }
  });

  int round = 0;
  auto churn = [&] {
    for (ClusterKind k : kClusterKinds) {
      const std::string ns = cluster_scoped(k) ? "" : "shop";
      const std::string name = "churn-" + std::to_string(round);
      api_->create(kFakeResource.at(k), ns, minimal_object(k, name));
      if (round > 0) api_->remove(kFakeResource.at(k), ns, "churn-" + std::to_string(round - 1));
      const auto& [sns, sname] = kSeededObject.at(k);
      api_->patch(kFakeResource.at(k), sns, sname,
                  {{"metadata", {{"labels", {{"gen", std::to_string(round)}}}}}});
    }
    ++round;
  };
  // Every informer's next watch gets 410 Gone; changes land before and during the re-lists.
  churn();
  auto all_expired = [&] {
    for (const auto& s : cache->status())
      if (s.stats.expired < 1 || s.stats.lists <= lists_before.at(s.kind)) return false;
    return true;
  };
  api_->faults().expire_next_watches(static_cast<int>(kClusterKinds.size()));
  api_->faults().drop_watches();
  churn();
  // A watch reopened by a fast informer may take a slower one's 410: inject until each had one.
  ASSERT_TRUE(eventually(
      [&] {
        if (all_expired()) return true;
        api_->faults().expire_next_watches(1);
        api_->faults().drop_watches();
        std::this_thread::sleep_for(200ms);
        return all_expired();
      },
      30s))
      << describe(cache->status());
  churn();
  EXPECT_TRUE(eventually([&] { return mismatched_kinds(*cache, *api_).empty(); }))
      << "differs from the server: " << mismatched_kinds(*cache, *api_);
  done = true;
  reader.join();
  EXPECT_FALSE(saw_empty) << "a reader saw a kind (partly) empty during a re-list";
  for (ClusterKind k : kClusterKinds) {
    const auto& [ns, name] = kSeededObject.at(k);
    EXPECT_EQ(cached_gen(*cache, k, ns, name), std::to_string(round - 1)) << to_string(k);
  }
  EXPECT_TRUE(cache->has_synced());
}

TEST_F(K8sClusterCache, a_denied_kind_reports_a_clear_403_and_the_others_sync) {
  std::vector<fa::PolicyRule> rules;
  for (const auto& r : chart_rules("cluster-reader-rules.yaml"))
    if (kind_of_rule(r.rule) != ClusterKind::HorizontalPodAutoscalers) rules.push_back(r.rule);
  ASSERT_EQ(rules.size(), kClusterKinds.size());  // every other kind, plus pods/proxy
  auto cache = make_cache(user_with(*api_, "no-hpa", rules));
  cache->start();
  ASSERT_TRUE(cache->wait_until_settled(30s)) << describe(cache->status());
  ASSERT_TRUE(eventually([&] {
    for (ClusterKind k : kClusterKinds)
      if (k != ClusterKind::HorizontalPodAutoscalers && !cache->has_synced(k)) return false;
    return cache->status(ClusterKind::HorizontalPodAutoscalers).state == KindState::Forbidden;
  })) << describe(cache->status());
  EXPECT_FALSE(cache->has_synced());
  EXPECT_FALSE(cache->has_synced(ClusterKind::HorizontalPodAutoscalers));
  EXPECT_TRUE(cache->horizontal_pod_autoscalers().empty());
  EXPECT_EQ(cache->pods().size(), 4u);
  EXPECT_NE(cache->deployment_of(*cache->pod("shop", "checkout-7d4b9c5f8-x2k9p")), nullptr);

  const KindStatus s = cache->status(ClusterKind::HorizontalPodAutoscalers);
  EXPECT_NE(
      s.error.find("forbidden: list horizontalpodautoscalers.autoscaling at the cluster scope"),
      std::string::npos)
      << s.error;
  EXPECT_NE(s.error.find(
                "grant list, watch on \"horizontalpodautoscalers\" in API group \"autoscaling\""),
            std::string::npos)
      << s.error;
  // The server's own words are kept (user, verb, resource, group).
  EXPECT_NE(s.error.find("User \"no-hpa\" cannot list resource \"horizontalpodautoscalers\" in API "
                         "group \"autoscaling\""),
            std::string::npos)
      << s.error;
  for (const auto& o : cache->status())
    if (o.kind != ClusterKind::HorizontalPodAutoscalers) {
      EXPECT_EQ(o.state, KindState::Synced) << describe({o});
    }

  // Granting the rule later heals that view without a restart.
  for (const auto& r : chart_rules("cluster-reader-rules.yaml"))
    if (kind_of_rule(r.rule) == ClusterKind::HorizontalPodAutoscalers)
      api_->allow("no-hpa", r.rule);
  ASSERT_TRUE(eventually([&] { return cache->has_synced(); })) << describe(cache->status());
  EXPECT_EQ(cache->status(ClusterKind::HorizontalPodAutoscalers).state, KindState::Synced);
  EXPECT_EQ(cache->horizontal_pod_autoscalers().size(), 1u);
}

TEST_F(K8sClusterCache,
       a_namespace_restricted_cache_needs_only_namespace_rules_for_namespaced_kinds) {
  // A RoleBinding in "shop" to the reader's rules, minus resourcequotas: no cluster-scope rule.
  std::vector<fa::PolicyRule> rules;
  for (auto r : chart_rules("cluster-reader-rules.yaml")) {
    auto k = kind_of_rule(r.rule);
    if (!k || cluster_scoped(*k) || *k == ClusterKind::ResourceQuotas) continue;
    r.rule.namespaces = {"shop"};
    rules.push_back(r.rule);
  }
  auto cache = make_cache(user_with(*api_, "shop-reader", rules), "shop");
  cache->start();
  ASSERT_TRUE(eventually([&] {
    for (const auto& s : cache->status()) {
      const bool denied = cluster_scoped(s.kind) || s.kind == ClusterKind::ResourceQuotas;
      if (denied ? s.state != KindState::Forbidden : s.state != KindState::Synced) return false;
    }
    return true;
  })) << describe(cache->status());
  EXPECT_EQ(cache->pods().size(), 1u);
  EXPECT_EQ(cache->pods()[0]->metadata.namespace_, "shop");
  EXPECT_EQ(cache->limit_ranges().size(), 1u);
  EXPECT_EQ(cache->horizontal_pod_autoscalers().size(), 1u);
  const std::string rq = cache->status(ClusterKind::ResourceQuotas).error;
  EXPECT_NE(rq.find("forbidden: list resourcequotas in namespace \"shop\""), std::string::npos)
      << rq;
  EXPECT_NE(rq.find("Role + RoleBinding in \"shop\""), std::string::npos) << rq;
  const std::string nodes = cache->status(ClusterKind::Nodes).error;
  EXPECT_NE(nodes.find("forbidden: list nodes at the cluster scope"), std::string::npos) << nodes;

  // With cluster-scope nodes/namespaces rules too, everything syncs; namespaces narrows to shop.
  for (const auto& r : chart_rules("cluster-reader-rules.yaml")) {
    auto k = kind_of_rule(r.rule);
    if (k && (cluster_scoped(*k) || *k == ClusterKind::ResourceQuotas)) {
      auto rule = r.rule;
      if (*k == ClusterKind::ResourceQuotas) rule.namespaces = {"shop"};
      api_->allow("shop-reader", rule);
    }
  }
  ASSERT_TRUE(eventually([&] { return cache->has_synced(); })) << describe(cache->status());
  ASSERT_EQ(cache->namespaces().size(), 1u);
  EXPECT_EQ(cache->namespaces()[0]->metadata.name, "shop");
  EXPECT_EQ(cache->resource_quotas().size(), 1u);
  EXPECT_EQ(cache->nodes().size(), 1u);
}

// ---------------------------------------------------------------------------------------
// The chart's RBAC is minimal: exactly its rules make everything work, and each rule (and
// each verb of each rule) is needed by a code path.

TEST(ChartRbac, every_rule_has_a_comment_naming_the_code_path_that_needs_it) {
  for (const char* file : {"agent-rules.yaml", "cluster-reader-rules.yaml"}) {
    auto rules = chart_rules(file);
    ASSERT_FALSE(rules.empty()) << file;
    for (const auto& r : rules) {
      EXPECT_FALSE(r.comment.empty())
          << file << ": rule " << rule_text(r.rule) << " has no comment";
      // A code path: a source file or a C++ name.
      EXPECT_TRUE(r.comment.find(".cpp") != std::string::npos ||
                  r.comment.find(".h") != std::string::npos ||
                  r.comment.find("::") != std::string::npos ||
                  r.comment.find("CLI") != std::string::npos)
          << file << ": the comment of " << rule_text(r.rule) << " names no code path:\n"
          << r.comment;
    }
  }
  // The templates include exactly these files.
  EXPECT_NE(read_text(chart_dir() / "templates" / "clusterrole-agent.yaml")
                .find(".Files.Get \"files/rbac/agent-rules.yaml\""),
            std::string::npos);
  EXPECT_NE(read_text(chart_dir() / "templates" / "clusterrole-cluster-reader.yaml")
                .find(".Files.Get \"files/rbac/cluster-reader-rules.yaml\""),
            std::string::npos);
}

TEST_F(K8sClusterCache, chart_cluster_reader_rules_suffice_and_each_rule_and_verb_is_needed) {
  const auto chart = chart_rules("cluster-reader-rules.yaml");
  std::vector<fa::PolicyRule> all;
  for (const auto& r : chart) all.push_back(r.rule);
  {
    auto cache = make_cache(user_with(*api_, "reader", all));
    cache->start();
    ASSERT_TRUE(cache->wait_for_sync(30s)) << describe(cache->status());
    EXPECT_EQ(mismatched_kinds(*cache, *api_), "");
  }
  int checked = 0;
  for (std::size_t i = 0; i < chart.size(); ++i) {
    const auto kind = kind_of_rule(chart[i].rule);
    if (!kind) continue;  // pods/proxy: ChartRbac test below
    // Without the rule, and with the rule minus one verb: that kind only is forbidden, with
    // the verb that failed named.
    std::vector<std::pair<std::string, std::vector<fa::PolicyRule>>> variants;
    std::vector<fa::PolicyRule> without = all;
    without.erase(without.begin() + static_cast<long>(i));
    variants.push_back({"list", without});
    for (const auto& verb : chart[i].rule.verbs) {
      auto fewer = all;
      std::erase(fewer[i].verbs, verb);
      variants.push_back({verb, fewer});
    }
    for (const auto& [verb, rules] : variants) {
      const std::string user = "minus-" + std::to_string(checked++);
      SCOPED_TRACE(rule_text(chart[i].rule) + " without " + verb + " (" + user + ")");
      auto cache = make_cache(user_with(*api_, user, rules));
      cache->start();
      const std::string want = "forbidden: " + verb + " " + std::string(to_string(*kind));
      ASSERT_TRUE(eventually([&] {
        for (const auto& s : cache->status()) {
          if (s.kind == *kind) {
            if (s.state != KindState::Forbidden || s.error.find(want) == std::string::npos)
              return false;
          } else if (s.state != KindState::Synced) {
            return false;
          }
        }
        return true;
      })) << "want \""
          << want << "\" on " << to_string(*kind) << " only:\n"
          << describe(cache->status());
      // A missing watch still lets the list through: the view is there, but stale.
      EXPECT_EQ(cache->has_synced(*kind), verb == "watch");
    }
  }
  EXPECT_EQ(checked, static_cast<int>(kClusterKinds.size()) * 3);  // each kind's rule: whole, without list, without watch
}

TEST_F(K8sClusterCache, chart_pods_proxy_rule_is_what_reads_an_agent_through_the_api_server) {
  // An "agent" answering on loopback, reached through the API server's pod proxy.
  httplib::Server agent;
  agent.Get("/v1/summary", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(json{{"node", "node-a1"}, {"q", req.get_param_value("x")}}.dump(),
                    "application/json");
  });
  const int port = agent.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { agent.listen_after_bind(); });
  json pod = minimal_object(ClusterKind::Pods, "podgauge-agent-x");
  pod["status"] = {{"phase", "Running"}, {"podIP", "127.0.0.1"}};
  api_->create("pods", "shop", pod);
  const std::string path = "/api/v1/namespaces/shop/pods/podgauge-agent-x:" + std::to_string(port) +
                           "/proxy/v1/summary?x=1";

  const auto chart = chart_rules("cluster-reader-rules.yaml");
  std::vector<fa::PolicyRule> all, without_proxy;
  for (const auto& r : chart) {
    all.push_back(r.rule);
    if (r.rule.resources != std::vector<std::string>{"pods/proxy"}) without_proxy.push_back(r.rule);
  }
  ASSERT_EQ(without_proxy.size() + 1, all.size()) << "the chart has one pods/proxy rule";
  auto body = json::parse(client_for(user_with(*api_, "proxy-reader", all))->get(path));
  EXPECT_EQ(body["node"], "node-a1");
  EXPECT_EQ(body["q"], "1");
  // pods list/watch does not cover the proxy subresource (as upstream RBAC).
  try {
    client_for(user_with(*api_, "no-proxy", without_proxy))->get(path);
    ADD_FAILURE() << "the proxy was reachable without the pods/proxy rule";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Forbidden) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot get resource \"pods/proxy\""), std::string::npos)
        << e.what();
  }
  agent.stop();
  serving.join();
}

namespace {

// What the agent does against the API server with its rules: the node's pod informer and one
// OOM Event series (create, then a patch for the repeat). Returns "" or what failed.
std::string run_agent_paths(fa::FakeApiServer& api, const fs::path& kubeconfig) {
  InformerOptions io = fast_informers();
  io.field_selector = "spec.nodeName=node-a1";
  PodInformer pods(client_for(kubeconfig), io);
  pods.start();
  std::string failed;
  if (!pods.wait_for_sync(5s) || !eventually([&] { return pods.stats().watches >= 1; }, 5s)) {
    failed += "pods informer: " + pods.last_error() + "\n";
  } else {
    // Give the watch time to be refused, if it is.
    std::this_thread::sleep_for(300ms);
    if (auto f = pods.last_failure(); !f.message.empty())
      failed += "pods informer: " + f.message + "\n";
  }
  pods.stop();

  ApiClient client(load_kubeconfig([&] {
    KubeconfigOptions o;
    o.kubeconfig = kubeconfig.string();
    return o;
  }()));
  EventWriterOptions eo;
  eo.reporting_instance = "node-a1";
  eo.initial_backoff = 20ms;
  eo.max_backoff = 200ms;
  EventWriter writer(client, eo);
  const json pod = api.get("pods", "shop", "checkout-7d4b9c5f8-x2k9p");
  EventRecord r;
  r.regarding.namespace_ = "shop";
  r.regarding.name = pod["metadata"]["name"];
  r.regarding.uid = pod["metadata"]["uid"];
  r.reason = "OOMKilled";
  r.action = "Killing";
  r.note = "container app: memory limit 64Mi, usage 64Mi";
  writer.record(r);
  if (!writer.flush(10s)) failed += "event writer: no flush\n";
  r.note = "repeat";
  writer.record(r);
  if (!writer.flush(10s)) failed += "event writer: no flush\n";
  const auto s = writer.stats();
  if (s.failed > 0 || s.created != 1 || s.patched != 1)
    failed += "event writer (" + writer.api_version() + "): created " + std::to_string(s.created) +
              " patched " + std::to_string(s.patched) + ": " + writer.last_error() + "\n";
  return failed;
}

}  // namespace

TEST(ChartRbac, agent_rules_suffice_and_each_rule_and_verb_is_needed) {
  const auto chart = chart_rules("agent-rules.yaml");
  // Two servers: with events.k8s.io/v1 (1.19+) and without (the core/v1 fallback).
  for (bool events_k8s_io : {true, false}) {
    SCOPED_TRACE(events_k8s_io ? "events.k8s.io/v1 server" : "server without events.k8s.io");
    auto api = make_server(events_k8s_io);
    seed_cluster(*api);
    std::vector<fa::PolicyRule> all;
    for (const auto& r : chart) all.push_back(r.rule);
    EXPECT_EQ(run_agent_paths(*api, user_with(*api, "agent", all)), "");
    int n = 0;
    for (std::size_t i = 0; i < chart.size(); ++i) {
      const bool events_rule = chart[i].rule.resources == std::vector<std::string>{"events"};
      const bool core_events =
          events_rule && chart[i].rule.api_groups == std::vector<std::string>{""};
      // The events rule of the other API version is not used by this server.
      if (events_rule && core_events == events_k8s_io) continue;
      for (const auto& verb : chart[i].rule.verbs) {
        auto fewer = all;
        std::erase(fewer[i].verbs, verb);
        const std::string failed =
            run_agent_paths(*api, user_with(*api, "agent-" + std::to_string(n++), fewer));
        EXPECT_NE(
            failed.find("cannot " + verb + " resource \"" + chart[i].rule.resources[0] + "\""),
            std::string::npos)
            << rule_text(chart[i].rule) << " without " << verb << " broke nothing visible:\n"
            << failed;
      }
    }
  }
}
