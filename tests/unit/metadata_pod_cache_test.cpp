// PodMetadataCache and EventEnricher: the join of cgroup ids with API pods, tombstones of
// deleted pods, and events held until their pod is known.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "podgauge/metadata/event_enricher.h"
#include "podgauge/metadata/pod_metadata_cache.h"

using namespace std::chrono_literals;
using podgauge::k8s::Pod;
using podgauge::metadata::EventEnricher;
using podgauge::metadata::PodMetadataCache;

namespace {

const std::string kCid1(64, 'a');
const std::string kCid2(64, 'b');
const std::string kCidInit(64, 'c');
const std::string kCidRestarted(64, 'd');

Pod web_pod(const std::string& uid = "uid-1", const std::string& app_id = "containerd://" + kCid1) {
  return Pod::parse(R"({
    "metadata": {"name": "web-7d4b9c-x2x9z", "namespace": "shop", "uid": ")" +
                    uid + R"(",
                 "labels": {"pod-template-hash": "7d4b9c"},
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                      "name": "web-7d4b9c", "uid": "rs-1", "controller": true}]},
    "spec": {"nodeName": "n1", "priority": 1000,
             "initContainers": [{"name": "migrate", "image": "m"}],
             "containers": [{"name": "app", "image": "a",
                             "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                           "limits": {"memory": "128Mi"}}},
                            {"name": "proxy", "image": "p"}]},
    "status": {"phase": "Running", "qosClass": "Burstable",
               "initContainerStatuses": [{"name": "migrate", "containerID": "containerd://)" +
                    kCidInit + R"("}],
               "containerStatuses": [{"name": "app", "containerID": ")" +
                    app_id + R"("},
                                     {"name": "proxy", "containerID": "cri-o://)" +
                    kCid2 + R"("}]}})");
}

}  // namespace

TEST(PodMetadataCache, names_containers_by_runtime_id_and_owner_via_replicaset_name) {
  PodMetadataCache cache;
  cache.upsert(web_pod());
  auto n = cache.resolve("uid-1", kCid1);
  EXPECT_TRUE(n.pod_known);
  EXPECT_TRUE(n.container_known);
  EXPECT_EQ(n.namespace_, "shop");
  EXPECT_EQ(n.pod, "web-7d4b9c-x2x9z");
  EXPECT_EQ(n.container, "app");
  EXPECT_EQ(n.owner_kind, "Deployment");
  EXPECT_EQ(n.owner_name, "web");
  EXPECT_EQ(cache.resolve("uid-1", kCid2).container, "proxy") << "cri-o:// prefix stripped";
  EXPECT_EQ(cache.resolve("uid-1", kCidInit).container, "migrate") << "init container statuses";
  auto unknown = cache.resolve("uid-1", std::string(64, 'e'));
  EXPECT_TRUE(unknown.pod_known);
  EXPECT_FALSE(unknown.container_known);
  EXPECT_EQ(unknown.container, "");
  EXPECT_FALSE(cache.resolve("uid-2", kCid1).pod_known);

  auto p = cache.pod("uid-1");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->qos, "Burstable");
  EXPECT_EQ(p->priority, 1000);
  const auto* app = p->container_by_id(kCid1);
  ASSERT_TRUE(app);
  EXPECT_EQ(app->resources.requests.get("cpu").milli_value(), 250);
  EXPECT_EQ(app->resources.limits.get("memory").value(), 128 << 20);
}

TEST(PodMetadataCache, bare_statefulset_daemonset_and_job_owners) {
  auto with_owner = [](const std::string& kind, const std::string& name) {
    std::string owner = kind.empty() ? ""
                                     : R"(, "ownerReferences": [{"kind": ")" + kind +
                                           R"(", "name": ")" + name + R"(", "controller": true}])";
    return Pod::parse(R"({"metadata": {"name": "p", "namespace": "d", "uid": "u")" + owner +
                      R"(}, "spec": {"containers": [{"name": "c"}]}})");
  };
  EXPECT_EQ(podgauge::metadata::pod_metadata_of(with_owner("", "")).owner_kind, "<none>");
  for (const char* kind : {"StatefulSet", "DaemonSet", "Job"}) {
    auto m = podgauge::metadata::pod_metadata_of(with_owner(kind, "w"));
    EXPECT_EQ(m.owner_kind, kind);
    EXPECT_EQ(m.owner_name, "w");
  }
}

TEST(PodMetadataCache, deleted_pod_stays_resolvable_for_the_retention_then_goes) {
  PodMetadataCache cache(10min);
  const auto t0 = PodMetadataCache::Clock::now();
  cache.upsert(web_pod(), t0);
  cache.remove(web_pod(), t0);
  EXPECT_EQ(cache.live_pods(), 0u);
  EXPECT_EQ(cache.deleted_pods(), 1u);
  EXPECT_EQ(cache.resolve("uid-1", kCid1).container, "app")
      << "a pod deleted just now still resolves";
  cache.expire(t0 + 9min);
  EXPECT_TRUE(cache.resolve("uid-1", kCid1).pod_known);
  cache.expire(t0 + 10min + 1s);
  EXPECT_FALSE(cache.resolve("uid-1", kCid1).pod_known);
  EXPECT_EQ(cache.deleted_pods(), 0u);
}

TEST(PodMetadataCache, a_restarted_container_keeps_its_earlier_id) {
  PodMetadataCache cache;
  cache.upsert(web_pod());
  // OOM-killed, restarted: the status now names the new instance only.
  cache.upsert(web_pod("uid-1", "containerd://" + kCidRestarted));
  EXPECT_EQ(cache.resolve("uid-1", kCidRestarted).container, "app");
  EXPECT_EQ(cache.resolve("uid-1", kCid1).container, "app") << "the killed instance's id";
}

TEST(PodMetadataCache, a_recreated_deleted_pod_is_live_again) {
  PodMetadataCache cache;
  cache.remove(web_pod());
  EXPECT_EQ(cache.deleted_pods(), 1u);
  cache.upsert(web_pod());
  EXPECT_EQ(cache.deleted_pods(), 0u);
  EXPECT_EQ(cache.live_pods(), 1u);
}

TEST(PodMetadataCache, reads_race_writes_safely) {
  PodMetadataCache cache;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      cache.upsert(web_pod("uid-" + std::to_string(i % 50)));
      if (i % 3 == 0) cache.remove(web_pod("uid-" + std::to_string(i % 50)));
    }
    stop = true;
  });
  size_t named = 0;
  while (!stop)
    for (int i = 0; i < 50; ++i)
      if (cache.resolve("uid-" + std::to_string(i), kCid1).container == "app") ++named;
  writer.join();
  EXPECT_EQ(cache.resolve("uid-1", kCid1).container, "app");
  EXPECT_GT(named, 0u);
}

namespace {

struct Published {
  std::mutex m;
  std::vector<podgauge::v1::Event> events;
  size_t size() {
    std::lock_guard l(m);
    return events.size();
  }
  podgauge::v1::Event at(size_t i) {
    std::lock_guard l(m);
    return events.at(i);
  }
};

podgauge::v1::Event oom(const std::string& uid, const std::string& cid) {
  podgauge::v1::Event e;
  e.set_type("oom_kill");
  e.set_pod_uid(uid);
  e.set_container_id(cid);
  return e;
}

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds t = 3s) {
  const auto until = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return p();
}

}  // namespace

TEST(EventEnricher, names_known_pods_at_once_and_holds_unknown_until_the_pod_arrives) {
  PodMetadataCache cache;
  cache.upsert(web_pod());
  Published out;
  EventEnricher enricher(&cache, 10s, [&](podgauge::v1::Event e) {
    std::lock_guard l(out.m);
    out.events.push_back(std::move(e));
  });
  enricher.submit(oom("uid-1", kCid1));
  ASSERT_EQ(out.size(), 1u) << "a known container is published at once";
  EXPECT_EQ(out.at(0).namespace_(), "shop");
  EXPECT_EQ(out.at(0).pod(), "web-7d4b9c-x2x9z");
  EXPECT_EQ(out.at(0).container(), "app");

  enricher.submit(oom("uid-late", kCid1));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(out.size(), 1u) << "the pod is not known yet: the event waits";
  EXPECT_EQ(enricher.held(), 1u);
  cache.upsert(web_pod("uid-late"));
  enricher.notify();
  ASSERT_TRUE(eventually([&] { return out.size() == 2; }));
  EXPECT_EQ(out.at(1).container(), "app");
  EXPECT_EQ(out.at(1).pod(), "web-7d4b9c-x2x9z");
  EXPECT_EQ(enricher.resolved_late(), 1u);
  EXPECT_EQ(enricher.held(), 0u);

  enricher.submit(oom("", ""));
  EXPECT_EQ(out.size(), 3u) << "a host event needs no names";
}

TEST(EventEnricher, publishes_unnamed_when_the_wait_runs_out) {
  PodMetadataCache cache;
  Published out;
  EventEnricher enricher(&cache, 200ms, [&](podgauge::v1::Event e) {
    std::lock_guard l(out.m);
    out.events.push_back(std::move(e));
  });
  const auto t0 = std::chrono::steady_clock::now();
  enricher.submit(oom("uid-never", kCid1));
  ASSERT_TRUE(eventually([&] { return out.size() == 1; }));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 190ms);
  EXPECT_LT(waited, 2s);
  EXPECT_EQ(out.at(0).pod(), "");
  EXPECT_EQ(out.at(0).pod_uid(), "uid-never");
  EXPECT_EQ(enricher.expired_unnamed(), 1u);
}

TEST(EventEnricher, standalone_publishes_at_once_and_destruction_flushes_held_events) {
  Published out;
  {
    EventEnricher standalone(nullptr, 5s, [&](podgauge::v1::Event e) {
      std::lock_guard l(out.m);
      out.events.push_back(std::move(e));
    });
    standalone.submit(oom("uid-x", kCid1));
    EXPECT_EQ(out.size(), 1u);
  }
  PodMetadataCache cache;
  {
    EventEnricher enricher(&cache, 60s, [&](podgauge::v1::Event e) {
      std::lock_guard l(out.m);
      out.events.push_back(std::move(e));
    });
    enricher.submit(oom("uid-y", kCid1));
    EXPECT_EQ(out.size(), 1u);
  }
  EXPECT_EQ(out.size(), 2u) << "an agent stopping does not lose held events";
}

TEST(EventEnricher, holds_a_bounded_number_and_publishes_the_rest_unnamed_at_once) {
  PodMetadataCache cache;
  Published out;
  EventEnricher enricher(&cache, 60s, [&](podgauge::v1::Event e) {
    std::lock_guard l(out.m);
    out.events.push_back(std::move(e));
  });
  for (size_t i = 0; i < EventEnricher::kMaxHeld + 10; ++i)
    enricher.submit(oom("uid-" + std::to_string(i), kCid1));
  EXPECT_EQ(enricher.held(), EventEnricher::kMaxHeld);
  EXPECT_EQ(out.size(), 10u);
  EXPECT_EQ(enricher.expired_unnamed(), 10u);
}
