// The k8s client and informers against the fake API server (in-process, real HTTPS protocol):
// paginated lists, watches, 410s, dropped connections, restarts, malformed events, selectors
// and every kind of credential.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "fake_api_server.h"
#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/informer.h"
#include "podgauge/k8s/kubeconfig.h"

using namespace std::chrono_literals;
using namespace podgauge::k8s;
using nlohmann::json;
namespace fa = podgauge::fakeapi;
namespace fs = std::filesystem;

namespace {

json pod(const std::string& name, const std::string& ns, const std::string& node) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", {{"app", "load"}}}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
          {"status", {{"phase", "Running"}}}};
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 20s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

KubeconfigOptions options_for(const fs::path& kubeconfig) {
  KubeconfigOptions o;
  o.kubeconfig = kubeconfig.string();
  return o;
}

std::shared_ptr<ApiClient> client_for(const fs::path& kubeconfig) {
  return std::make_shared<ApiClient>(load_kubeconfig(options_for(kubeconfig)));
}

InformerOptions fast_options() {
  InformerOptions o;
  o.watch_timeout = [] { return std::chrono::seconds(5); };
  o.backoff = [](int attempt) { return std::chrono::milliseconds(10 * std::min(attempt, 10)); };
  o.log = [](const std::string& m) { std::fprintf(stderr, "[informer] %s\n", m.c_str()); };
  return o;
}

// namespace/name -> resourceVersion, as the server has them.
std::map<std::string, std::string> server_pods(fa::FakeApiServer& api,
                                               const std::string& node = "") {
  std::map<std::string, std::string> out;
  for (const auto& p : api.list("pods")) {
    if (!node.empty() && p["spec"].value("nodeName", "") != node) continue;
    out[p["metadata"]["namespace"].get<std::string>() + "/" +
        p["metadata"]["name"].get<std::string>()] =
        p["metadata"]["resourceVersion"].get<std::string>();
  }
  return out;
}

std::map<std::string, std::string> cached_pods(const PodInformer& inf) {
  std::map<std::string, std::string> out;
  for (const auto& p : inf.list())
    out[p->metadata.namespace_ + "/" + p->metadata.name] = p->metadata.resource_version;
  return out;
}

class K8sInformer : public ::testing::Test {
 protected:
  void SetUp() override {
    fa::FakeApiServer::Options o;
    o.bookmark_interval = 200ms;
    o.history_window = 5000;
    api_ = std::make_unique<fa::FakeApiServer>(o);
  }
  void seed(int n) {
    for (int i = 0; i < n; ++i)
      api_->create("pods", "default",
                   pod("p-" + std::to_string(i), "default", "n" + std::to_string(i % 3)));
  }
  std::unique_ptr<fa::FakeApiServer> api_;
};

}  // namespace

TEST_F(K8sInformer, lists_1200_pods_across_pages_then_applies_creates_updates_deletes) {
  seed(1200);
  auto before = api_->request_count();
  std::vector<std::string> added, deleted;
  std::mutex m;
  PodInformer::Handlers h;
  h.on_add = [&](const Pod& p) {
    std::lock_guard l(m);
    added.push_back(p.metadata.name);
  };
  h.on_delete = [&](const Pod& p) {
    std::lock_guard l(m);
    deleted.push_back(p.metadata.name);
  };
  PodInformer inf(client_for(api_->token_kubeconfig()), fast_options(), h);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();
  EXPECT_EQ(inf.size(), 1200u);
  EXPECT_GE(api_->request_count() - before, 3u) << "1200 pods at limit=500 take three pages";
  EXPECT_EQ(inf.stats().lists, 1u);

  api_->create("pods", "default", pod("new-1", "default", "n1"));
  api_->patch("pods", "default", "p-7", {{"metadata", {{"labels", {{"tier", "gold"}}}}}});
  api_->remove("pods", "default", "p-8");
  ASSERT_TRUE(eventually([&] {
    auto p7 = inf.get("default", "p-7");
    return inf.get("default", "new-1") && !inf.get("default", "p-8") && p7 &&
           p7->metadata.label("tier");
  })) << inf.last_error();
  auto fresh = inf.get("default", "new-1");
  EXPECT_EQ(inf.get_by_uid(fresh->metadata.uid), fresh);
  EXPECT_EQ(inf.get_by_uid(api_->get("pods", "default", "p-0")["metadata"]["uid"]),
            inf.get("default", "p-0"));
  EXPECT_EQ(cached_pods(inf), server_pods(*api_));
  std::lock_guard l(m);
  EXPECT_EQ(added.size(), 1201u);
  EXPECT_EQ(deleted, std::vector<std::string>{"p-8"});
}

TEST_F(K8sInformer, dropped_and_expired_watches_lose_no_update_and_never_show_an_empty_cache) {
  seed(300);
  PodInformer inf(client_for(api_->token_kubeconfig()), fast_options());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();

  std::atomic<bool> done{false};
  std::atomic<std::size_t> min_seen{SIZE_MAX};
  std::atomic<std::uint64_t> reads{0};
  std::thread reader([&] {
    while (!done) {
      auto n = inf.list().size();
      if (n < min_seen) min_seen = n;
      if (!inf.get("default", "p-0")) min_seen = 0;
      ++reads;
    }
  });

  int next = 0;
  auto churn = [&] {
    for (int i = 0; i < 20; ++i, ++next) {
      api_->create("pods", "default", pod("churn-" + std::to_string(next), "default", "n1"));
      api_->patch("pods", "default", "p-" + std::to_string(1 + next % 299),
                  {{"metadata", {{"annotations", {{"gen", std::to_string(next)}}}}}});
    }
  };
  churn();
  api_->faults().drop_watches();
  churn();
  ASSERT_TRUE(eventually([&] { return cached_pods(inf) == server_pods(*api_); }))
      << inf.last_error();
  EXPECT_TRUE(eventually([&] { return inf.stats().watches >= 2; }))
      << "the dropped watch was reopened";

  // The next watch opened gets a 410: the informer re-lists.
  api_->faults().expire_next_watches(1);
  api_->faults().drop_watches();
  churn();
  ASSERT_TRUE(eventually([&] { return inf.stats().expired >= 1 && inf.stats().lists >= 2; }))
      << inf.last_error();
  churn();
  api_->remove("pods", "default", "churn-3");
  ASSERT_TRUE(eventually([&] { return cached_pods(inf) == server_pods(*api_); }))
      << inf.last_error();

  // A 410 answered as HTTP status (the watch request itself fails) re-lists too.
  auto expired = inf.stats().expired;
  api_->faults().fail_next_requests(1, 410);
  api_->faults().drop_watches();
  churn();
  ASSERT_TRUE(eventually([&] { return inf.stats().expired > expired; })) << inf.last_error();
  ASSERT_TRUE(eventually([&] { return cached_pods(inf) == server_pods(*api_); }))
      << inf.last_error();

  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GE(min_seen.load(), 300u) << "a reader saw a partial or empty cache";
}

TEST_F(K8sInformer, recovers_when_the_server_restarts_mid_watch) {
  seed(50);
  PodInformer inf(client_for(api_->token_kubeconfig()), fast_options());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();
  std::thread changer([&] {
    std::this_thread::sleep_for(100ms);
    api_->create("pods", "default", pod("during-downtime", "default", "n2"));
  });
  api_->restart(400ms);
  changer.join();
  api_->create("pods", "default", pod("after-restart", "default", "n2"));
  api_->remove("pods", "default", "p-1");
  ASSERT_TRUE(eventually([&] { return cached_pods(inf) == server_pods(*api_); }))
      << inf.last_error();
  EXPECT_EQ(inf.size(), 51u);
  EXPECT_GE(inf.stats().watches, 2u);
}

TEST_F(K8sInformer, skips_a_malformed_event_and_keeps_applying_later_ones) {
  seed(10);
  std::vector<std::string> logs;
  std::mutex m;
  auto o = fast_options();
  o.log = [&](const std::string& s) {
    std::lock_guard l(m);
    logs.push_back(s);
  };
  PodInformer inf(client_for(api_->token_kubeconfig()), o);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();
  api_->faults().malform_next_watch();
  api_->faults().drop_watches();
  ASSERT_TRUE(eventually([&] { return inf.stats().malformed >= 1; })) << inf.last_error();
  api_->create("pods", "default", pod("later", "default", "n1"));
  api_->remove("pods", "default", "p-2");
  ASSERT_TRUE(eventually([&] { return cached_pods(inf) == server_pods(*api_); }))
      << inf.last_error();
  EXPECT_EQ(inf.size(), 10u);
  std::lock_guard l(m);
  bool named = false;
  for (const auto& s : logs)
    named |= s.find("malformed watch event") != std::string::npos &&
             s.find("metadata") != std::string::npos;
  EXPECT_TRUE(named) << "the log says what was wrong";
}

TEST_F(K8sInformer, field_selector_restricts_to_one_nodes_pods_with_a_client_certificate) {
  seed(90);
  auto o = fast_options();
  o.field_selector = "spec.nodeName=n2";
  PodInformer inf(client_for(api_->cert_kubeconfig()), o);
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();
  EXPECT_EQ(inf.size(), 30u);
  api_->create("pods", "default", pod("on-n2", "default", "n2"));
  api_->create("pods", "default", pod("on-n1", "default", "n1"));
  ASSERT_TRUE(eventually([&] { return inf.get("default", "on-n2") != nullptr; }))
      << inf.last_error();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(inf.get("default", "on-n1"), nullptr);
  EXPECT_EQ(cached_pods(inf), server_pods(*api_, "n2"));
  for (const auto& p : inf.list()) EXPECT_EQ(p->spec.node_name, "n2");
}

TEST_F(K8sInformer, node_informer_tracks_nodes) {
  for (int i = 0; i < 3; ++i)
    api_->create("nodes", "",
                 {{"apiVersion", "v1"},
                  {"kind", "Node"},
                  {"metadata", {{"name", "node-" + std::to_string(i)}}}});
  NodeInformer inf(client_for(api_->token_kubeconfig()), fast_options());
  inf.start();
  ASSERT_TRUE(inf.wait_for_sync(30s)) << inf.last_error();
  EXPECT_EQ(inf.size(), 3u);
  ASSERT_NE(inf.get("", "node-1"), nullptr);
  api_->remove("nodes", "", "node-1");
  ASSERT_TRUE(eventually([&] { return inf.size() == 2 && !inf.get("", "node-1"); }));
}

TEST_F(K8sInformer, wrong_token_names_401_and_what_to_check) {
  auto bad = api_->write_token_kubeconfig("not-a-token", api_->dir() / "bad.yaml");
  auto c = client_for(bad);
  try {
    c->get("/api/v1/pods?limit=1");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Unauthorized);
    std::string m = e.what();
    EXPECT_NE(m.find("401"), std::string::npos) << m;
    EXPECT_NE(m.find("token"), std::string::npos) << m;
    EXPECT_NE(m.find(bad.string()), std::string::npos) << m;
  }
  // The informer reports it and keeps retrying.
  PodInformer inf(c, fast_options());
  inf.start();
  EXPECT_FALSE(inf.wait_for_sync(300ms));
  EXPECT_NE(inf.last_error().find("401"), std::string::npos) << inf.last_error();
}

TEST_F(K8sInformer, forbidden_surfaces_the_servers_verb_and_resource) {
  api_->add_token("viewer-token", {"viewer", {"system:authenticated"}});
  api_->allow(
      "viewer",
      {.verbs = {"get", "list", "watch"}, .resources = {"pods"}, .namespaces = {"default"}});
  auto c = client_for(api_->write_token_kubeconfig("viewer-token", api_->dir() / "viewer.yaml"));
  EXPECT_NO_THROW(c->get("/api/v1/namespaces/default/pods"));
  try {
    c->get("/api/v1/nodes");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Forbidden);
    std::string m = e.what();
    EXPECT_NE(m.find("403"), std::string::npos) << m;
    EXPECT_NE(m.find("cannot list resource \"nodes\""), std::string::npos) << m;
    EXPECT_NE(m.find("RBAC"), std::string::npos) << m;
  }
}

TEST_F(K8sInformer, not_found_and_server_errors_are_typed) {
  auto c = client_for(api_->token_kubeconfig());
  try {
    c->get("/api/v1/namespaces/default/pods/ghost");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::NotFound);
    EXPECT_NE(std::string(e.what()).find("ghost"), std::string::npos) << e.what();
  }
  api_->faults().fail_next_requests(1, 503);
  try {
    c->get("/api/v1/pods");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::ServerError);
    EXPECT_TRUE(e.retryable());
  }
}

TEST_F(K8sInformer, post_and_patch) {
  auto c = client_for(api_->token_kubeconfig());
  auto created = json::parse(
      c->post("/api/v1/namespaces/default/pods", pod("posted", "default", "n1").dump()));
  EXPECT_EQ(created["metadata"]["name"], "posted");
  auto patched = json::parse(
      c->patch("/api/v1/namespaces/default/pods/posted", R"({"metadata":{"labels":{"x":"y"}}})"));
  EXPECT_EQ(patched["metadata"]["labels"]["x"], "y");
}

TEST_F(K8sInformer, token_file_is_reread_when_it_rotates) {
  auto rc = load_kubeconfig(options_for(api_->token_kubeconfig()));
  fs::path token_file = api_->dir() / "rotating-token";
  std::ofstream(token_file) << "stale-token\n";
  rc.token.clear();
  rc.token_file = token_file;
  ApiClient c(rc);
  EXPECT_THROW(c.get("/api/v1/pods?limit=1"), ApiError);
  std::this_thread::sleep_for(20ms);  // a distinct mtime
  std::ofstream(token_file) << fa::FakeApiServer::kAdminToken << "\n";
  EXPECT_NO_THROW(c.get("/api/v1/pods?limit=1"));
}

TEST_F(K8sInformer, stop_ends_an_idle_watch_promptly) {
  seed(5);
  auto o = fast_options();
  o.watch_timeout = [] { return std::chrono::seconds(300); };
  auto inf = std::make_unique<PodInformer>(client_for(api_->token_kubeconfig()), o);
  inf->start();
  ASSERT_TRUE(inf->wait_for_sync(30s));
  std::this_thread::sleep_for(200ms);
  auto t0 = std::chrono::steady_clock::now();
  inf.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST_F(K8sInformer, tls_server_name_is_the_name_verified) {
  auto rc = load_kubeconfig(options_for(api_->token_kubeconfig()));
  rc.tls_server_name = "localhost";  // in the server certificate; the URL says 127.0.0.1
  EXPECT_NO_THROW(ApiClient(rc).get("/api/v1/pods?limit=1"));
  rc.tls_server_name = "api.elsewhere.example";
  try {
    ApiClient(rc).get("/api/v1/pods?limit=1");
    FAIL() << "a name missing from the certificate was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.kind(), ApiErrorKind::Unreachable) << e.what();
  }
}
