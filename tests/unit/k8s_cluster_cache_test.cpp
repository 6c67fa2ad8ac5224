// Where the cluster kinds are listed and watched, and ClusterCache's per-kind state without a
// server (the fake API server cases are in tests/integration/k8s_cluster_cache_test.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "podgauge/k8s/cluster_cache.h"

using namespace podgauge::k8s;
using namespace std::chrono_literals;

namespace {

template <class T>
std::string qualified() {
  const std::string group = ResourcePath<T>::group;
  return group.empty() ? ResourcePath<T>::resource
                       : std::string(ResourcePath<T>::resource) + "." + group;
}

}  // namespace

TEST(K8sResourcePath, every_cluster_kind_has_its_upstream_collection_path) {
  EXPECT_EQ(resource_path<Pod>(), "/api/v1/pods");
  EXPECT_EQ(resource_path<Node>(), "/api/v1/nodes");
  EXPECT_EQ(resource_path<Namespace>(), "/api/v1/namespaces");
  EXPECT_EQ(resource_path<ResourceQuota>(), "/api/v1/resourcequotas");
  EXPECT_EQ(resource_path<LimitRange>(), "/api/v1/limitranges");
  EXPECT_EQ(resource_path<ReplicaSet>(), "/apis/apps/v1/replicasets");
  EXPECT_EQ(resource_path<Deployment>(), "/apis/apps/v1/deployments");
  EXPECT_EQ(resource_path<HorizontalPodAutoscaler>(),
            "/apis/autoscaling/v2/horizontalpodautoscalers");
  EXPECT_EQ(resource_path<Job>(), "/apis/batch/v1/jobs");
}

TEST(K8sResourcePath, namespaced_kinds_narrow_to_a_namespace_and_cluster_kinds_do_not) {
  EXPECT_EQ(resource_path<Pod>("shop"), "/api/v1/namespaces/shop/pods");
  EXPECT_EQ(resource_path<ResourceQuota>("shop"), "/api/v1/namespaces/shop/resourcequotas");
  EXPECT_EQ(resource_path<LimitRange>("shop"), "/api/v1/namespaces/shop/limitranges");
  EXPECT_EQ(resource_path<ReplicaSet>("shop"), "/apis/apps/v1/namespaces/shop/replicasets");
  EXPECT_EQ(resource_path<Deployment>("shop"), "/apis/apps/v1/namespaces/shop/deployments");
  EXPECT_EQ(resource_path<HorizontalPodAutoscaler>("shop"),
            "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers");
  EXPECT_EQ(resource_path<Job>("shop"), "/apis/batch/v1/namespaces/shop/jobs");
  EXPECT_EQ(resource_path<Node>("shop"), "/api/v1/nodes");
  EXPECT_EQ(resource_path<Namespace>("shop"), "/api/v1/namespaces");
}

TEST(K8sClusterKind, names_are_the_rbac_resource_and_group_of_each_informer) {
  EXPECT_EQ(to_string(ClusterKind::Pods), qualified<Pod>());
  EXPECT_EQ(to_string(ClusterKind::Nodes), qualified<Node>());
  EXPECT_EQ(to_string(ClusterKind::Namespaces), qualified<Namespace>());
  EXPECT_EQ(to_string(ClusterKind::ResourceQuotas), qualified<ResourceQuota>());
  EXPECT_EQ(to_string(ClusterKind::LimitRanges), qualified<LimitRange>());
  EXPECT_EQ(to_string(ClusterKind::ReplicaSets), qualified<ReplicaSet>());
  EXPECT_EQ(to_string(ClusterKind::Deployments), qualified<Deployment>());
  EXPECT_EQ(to_string(ClusterKind::HorizontalPodAutoscalers),
            "horizontalpodautoscalers.autoscaling");
  EXPECT_EQ(to_string(ClusterKind::Jobs), qualified<Job>());
  EXPECT_EQ(to_string(ClusterKind::Jobs), "jobs.batch");
  std::set<std::string_view> distinct;
  for (ClusterKind k : kClusterKinds) distinct.insert(to_string(k));
  EXPECT_EQ(distinct.size(), kClusterKinds.size());
  EXPECT_EQ(kClusterKinds.size(), 9u);
}

TEST(K8sClusterCache, an_unreachable_server_fails_every_kind_with_its_address_and_never_syncs) {
  RestConfig rc;
  rc.server = "https://127.0.0.1:1";  // nothing listens on port 1: connection refused at once
  rc.insecure_skip_tls_verify = true;
  rc.token = "t";
  ClusterCacheOptions o;
  o.informer.backoff = [](int) { return 20ms; };
  o.informer.log = [](const std::string&) {};
  ClusterCache cache(std::make_shared<ApiClient>(rc), o);
  for (const auto& s : cache.status()) {
    EXPECT_EQ(s.state, KindState::Syncing);
    EXPECT_FALSE(s.synced);
    EXPECT_EQ(s.objects, 0u);
  }
  cache.start();
  ASSERT_TRUE(cache.wait_until_settled(10s));
  EXPECT_FALSE(cache.has_synced());
  EXPECT_FALSE(cache.wait_for_sync(50ms));
  for (const auto& s : cache.status()) {
    SCOPED_TRACE(std::string(to_string(s.kind)));
    EXPECT_EQ(s.state, KindState::Failing);
    EXPECT_FALSE(s.synced);
    EXPECT_NE(s.error.find("127.0.0.1:1"), std::string::npos) << s.error;
    EXPECT_GE(s.stats.errors, 1u);
    EXPECT_TRUE(cache.pods().empty());
  }
  const auto t0 = std::chrono::steady_clock::now();
  cache.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}
