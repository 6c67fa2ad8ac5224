// Decoding API objects from the fixtures of several Kubernetes versions, and malformed ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "podgauge/k8s/container_id.h"
#include "podgauge/k8s/error.h"
#include "podgauge/k8s/hpa.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/node.h"
#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/policy.h"
#include "podgauge/k8s/workloads.h"
#include "k8s_fixture.h"

namespace {

using namespace podgauge::k8s;

using podgauge::k8s::testing::fixture;

Quantity q(std::string_view s) { return Quantity::parse(s); }

// The message of the ObjectError `f` throws ("" when it does not throw one).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ObjectError& e) {
    return e.what();
  }
  return "";
}

TEST(K8sObjects, decodes_a_1_19_pod_with_init_container_and_oom_history) {
  const Pod pod = Pod::parse(fixture("pod-1.19-classic.json"));
  EXPECT_EQ(pod.metadata.name, "checkout-7d4b9c5f8-x2k9p");
  EXPECT_EQ(pod.metadata.namespace_, "shop");
  EXPECT_EQ(pod.metadata.uid, "1f0e2a6c-9a53-4c1e-8d4e-3b1e5f9c0a11");
  EXPECT_EQ(pod.metadata.resource_version, "48213377");
  EXPECT_EQ(*pod.metadata.label("pod-template-hash"), "7d4b9c5f8");
  EXPECT_EQ(*pod.metadata.annotation("prometheus.io/port"), "9102");
  ASSERT_NE(pod.metadata.controller(), nullptr);
  EXPECT_EQ(pod.metadata.controller()->kind, "ReplicaSet");
  EXPECT_FALSE(pod.metadata.terminating());

  EXPECT_EQ(pod.spec.node_name, "ip-10-0-3-17.ec2.internal");
  ASSERT_EQ(pod.spec.init_containers.size(), 1u);
  EXPECT_FALSE(pod.spec.init_containers[0].is_sidecar());
  ASSERT_EQ(pod.spec.containers.size(), 2u);
  EXPECT_EQ(pod.spec.containers[0].resources.requests.get("cpu"), q("250m"));
  EXPECT_EQ(pod.spec.containers[0].resources.limits.get("memory"), q("1Gi"));
  EXPECT_FALSE(pod.spec.containers[1].resources.limits.contains("cpu"));
  EXPECT_EQ(pod.spec.priority, 0);

  EXPECT_EQ(pod.status.phase, "Running");
  EXPECT_EQ(pod.status.qos_class, QosClass::Burstable);
  EXPECT_EQ(pod.status.pod_ip, "10.0.3.201");
  const ContainerStatus* app = pod.container_status("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->restart_count, 3);
  EXPECT_EQ(app->state.kind, ContainerStateKind::Running);
  EXPECT_TRUE(app->oom_killed_last());
  EXPECT_EQ(app->last_state.exit_code, 137);
  const auto id = parse_container_id(app->container_id);
  ASSERT_TRUE(id);
  EXPECT_EQ(id->runtime, ContainerRuntime::Containerd);
  EXPECT_EQ(id->id, "4f1e8a2b9c3d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f");
  const ContainerStatus* migrate = pod.container_status("migrate");
  ASSERT_NE(migrate, nullptr);
  EXPECT_EQ(migrate->state.kind, ContainerStateKind::Terminated);
  EXPECT_EQ(migrate->state.reason, "Completed");
}

TEST(K8sObjects, decodes_sidecars_overhead_and_priority_of_a_1_29_pod) {
  const Pod pod = Pod::parse(fixture("pod-1.29-sidecar.json"));
  ASSERT_EQ(pod.spec.init_containers.size(), 4u);
  EXPECT_FALSE(pod.spec.init_containers[0].is_sidecar());
  EXPECT_TRUE(pod.spec.init_containers[1].is_sidecar());
  EXPECT_TRUE(pod.spec.init_containers[3].is_sidecar());
  EXPECT_EQ(pod.spec.overhead.get("cpu"), q("250m"));
  EXPECT_EQ(pod.spec.priority, 100000);
  EXPECT_EQ(pod.spec.priority_class_name, "business-critical");
  EXPECT_EQ(pod.status.init_container_statuses.size(), 4u);
  EXPECT_EQ(parse_container_id(pod.status.container_statuses[0].container_id)->runtime, ContainerRuntime::Crio);
  EXPECT_EQ(pod.metadata.controller()->kind, "StatefulSet");
}

TEST(K8sObjects, decodes_in_place_resize_status_of_a_1_33_pod) {
  const Pod pod = Pod::parse(fixture("pod-1.33-resize.json"));
  const ContainerStatus& s = pod.status.container_statuses.at(0);
  ASSERT_TRUE(s.allocated_resources);
  EXPECT_EQ(s.allocated_resources->get("cpu"), q("1500m"));
  ASSERT_TRUE(s.resources);
  EXPECT_EQ(s.resources->requests.get("cpu"), q("1"));
  EXPECT_NE(find_condition(pod.status.conditions, "PodResizeInProgress"), nullptr);
  EXPECT_FALSE(pod.resize_infeasible());
}

TEST(K8sObjects, decodes_pod_level_resources) {
  const Pod pod = Pod::parse(fixture("pod-1.32-pod-level-resources.json"));
  ASSERT_TRUE(pod.spec.resources);
  EXPECT_EQ(pod.spec.resources->limits.get("memory"), q("200Mi"));
  EXPECT_FALSE(pod.status.qos_class);
}

TEST(K8sObjects, nlohmann_and_text_inputs_decode_the_same) {
  const std::string text = fixture("pod-1.29-sidecar.json");
  const Pod a = Pod::parse(text);
  const Pod b = Pod::from_json(nlohmann::json::parse(text));
  EXPECT_EQ(a.metadata.uid, b.metadata.uid);
  EXPECT_EQ(a.spec.init_containers.size(), b.spec.init_containers.size());
  EXPECT_EQ(a.spec.containers[0].resources.requests, b.spec.containers[0].resources.requests);
}

TEST(K8sObjects, decodes_an_hpa_v2_with_every_metric_type) {
  const auto hpa = HorizontalPodAutoscaler::parse(fixture("hpa-v2-all-metrics.json"));
  EXPECT_EQ(hpa.scale_target_ref.kind, "Deployment");
  EXPECT_EQ(hpa.scale_target_ref.name, "web");
  EXPECT_EQ(hpa.min_replicas, 2);
  EXPECT_EQ(hpa.max_replicas, 20);
  ASSERT_EQ(hpa.metrics.size(), 5u);
  EXPECT_EQ(hpa.metrics[0].type, MetricSourceType::Resource);
  EXPECT_EQ(hpa.metrics[0].resource_name, "cpu");
  EXPECT_EQ(hpa.metrics[0].target.type, MetricTargetType::Utilization);
  EXPECT_EQ(hpa.metrics[0].target.average_utilization, 60);
  EXPECT_EQ(hpa.metrics[1].type, MetricSourceType::ContainerResource);
  EXPECT_EQ(hpa.metrics[1].container, "app");
  EXPECT_EQ(*hpa.metrics[1].target.average_value, q("500Mi"));
  EXPECT_EQ(hpa.metrics[2].type, MetricSourceType::Pods);
  EXPECT_EQ(hpa.metrics[2].metric.name, "packets-per-second");
  EXPECT_EQ(hpa.metrics[3].type, MetricSourceType::Object);
  EXPECT_EQ(hpa.metrics[3].described_object.kind, "Ingress");
  EXPECT_EQ(hpa.metrics[3].target.type, MetricTargetType::Value);
  EXPECT_EQ(*hpa.metrics[3].target.value, q("10k"));
  EXPECT_EQ(hpa.metrics[4].type, MetricSourceType::External);
  ASSERT_TRUE(hpa.metrics[4].metric.selector);
  EXPECT_EQ(*hpa.metrics[4].metric.selector->match_labels.find("queue"), "worker_tasks");
  ASSERT_TRUE(hpa.behavior && hpa.behavior->scale_down && hpa.behavior->scale_up);
  EXPECT_EQ(hpa.behavior->scale_down->stabilization_window_seconds, 300);
  EXPECT_EQ(hpa.behavior->scale_up->policies.size(), 2u);
  EXPECT_EQ(*hpa.behavior->scale_up->tolerance, q("50m"));
  EXPECT_EQ(hpa.current_replicas, 4);
  EXPECT_EQ(hpa.desired_replicas, 5);
  ASSERT_EQ(hpa.current_metrics.size(), 5u);
  EXPECT_EQ(hpa.current_metrics[0].current.average_utilization, 73);
  EXPECT_EQ(*hpa.current_metrics[2].current.average_value, q("866m"));
  EXPECT_EQ(*hpa.current_metrics[3].current.value, q("12500"));
  EXPECT_EQ(hpa.conditions.size(), 2u);
}

TEST(K8sObjects, decodes_node_quota_limitrange_and_workloads) {
  const Node node = Node::parse(fixture("node.json"));
  EXPECT_TRUE(node.ready());
  EXPECT_EQ(node.allocatable.get("cpu"), q("3920m"));
  EXPECT_EQ(node.capacity.get("memory").value(), 16073648LL * 1024);
  ASSERT_EQ(node.taints.size(), 1u);
  EXPECT_EQ(node.taints[0].effect, "NoSchedule");
  EXPECT_EQ(node.kubelet_version, "v1.30.2");

  const auto quota = ResourceQuota::parse(fixture("resourcequota.json"));
  EXPECT_EQ(quota.spec_hard.get("requests.cpu"), q("20"));
  EXPECT_EQ(quota.used.get("requests.cpu"), q("12750m"));
  ASSERT_EQ(quota.scope_selector.size(), 1u);
  EXPECT_EQ(quota.scope_selector[0].scope_name, "PriorityClass");
  EXPECT_EQ(quota.scope_selector[0].values.size(), 2u);

  const auto lr = LimitRange::parse(fixture("limitrange.json"));
  ASSERT_NE(lr.item("Container"), nullptr);
  EXPECT_EQ(lr.item("Container")->default_request.get("cpu"), q("100m"));
  EXPECT_EQ(lr.item("Container")->max_limit_request_ratio.get("cpu"), q("10"));
  EXPECT_EQ(lr.item("Pod")->max.get("memory"), q("16Gi"));

  const auto all = nlohmann::json::parse(fixture("workloads.json"));
  const auto rs = ReplicaSet::from_json(all["replicaset"]);
  EXPECT_EQ(rs.replicas, 3);
  EXPECT_EQ(rs.status_ready_replicas, 2);
  EXPECT_EQ(rs.metadata.controller()->name, "checkout");
  EXPECT_TRUE(rs.selector->matches(StringMap{{"app", "checkout"}, {"pod-template-hash", "7d4b9c5f8"}}));
  EXPECT_FALSE(rs.selector->matches(StringMap{{"app", "checkout"}}));
  const auto ds = DaemonSet::from_json(all["daemonset"]);
  EXPECT_FALSE(ds.replicas);
  EXPECT_EQ(ds.status_desired, 6);
  EXPECT_TRUE(ds.selector->matches(StringMap{{"app", "podgauge"}}));
  const auto job = Job::from_json(all["job"]);
  EXPECT_EQ(job.replicas, 2);
  EXPECT_EQ(job.completions, 4);
  EXPECT_EQ(job.status_succeeded, 1);
  EXPECT_EQ(StatefulSet::from_json(all["statefulset"]).replicas, 3);
  EXPECT_EQ(Deployment::from_json(all["deployment"]).status_available_replicas, 2);
}

TEST(K8sObjects, list_carries_continue_token_and_reports_or_skips_bad_items) {
  const std::string text = fixture("podlist-page.json");
  const std::string message = error_of([&] { ObjectList<Pod>::parse(text); });
  EXPECT_NE(message.find("Pod \"ns1/b\""), std::string::npos) << message;
  EXPECT_NE(message.find("spec.containers[0].resources.requests.cpu"), std::string::npos) << message;
  EXPECT_NE(message.find("\"2 cores\""), std::string::npos) << message;

  std::vector<std::string> skipped;
  const auto list = ObjectList<Pod>::parse(text, &skipped);
  EXPECT_EQ(list.resource_version, "48213400");
  EXPECT_FALSE(list.continue_token.empty());
  EXPECT_EQ(list.remaining_item_count, 1);
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_EQ(list.items[0].metadata.name, "a");
  EXPECT_EQ(list.items[1].metadata.name, "c");
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("items[1]"), std::string::npos) << skipped[0];
}

TEST(K8sObjects, decodes_every_watch_event_type_including_410_expired) {
  std::istringstream lines(fixture("watch-pods.ndjson"));
  std::vector<WatchEvent<Pod>> events;
  for (std::string line; std::getline(lines, line);) events.push_back(WatchEvent<Pod>::parse(line));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, WatchEventType::Added);
  EXPECT_EQ(events[0].object->metadata.name, "web-1");
  EXPECT_EQ(events[0].resource_version, "500");
  EXPECT_EQ(events[1].type, WatchEventType::Modified);
  EXPECT_EQ(events[1].object->spec.node_name, "node-a1");
  EXPECT_EQ(events[2].type, WatchEventType::Bookmark);
  EXPECT_FALSE(events[2].object);
  EXPECT_EQ(events[2].resource_version, "510");
  EXPECT_TRUE(events[2].initial_events_end);
  EXPECT_EQ(events[3].type, WatchEventType::Deleted);
  EXPECT_TRUE(events[3].object->metadata.terminating());
  EXPECT_EQ(events[4].type, WatchEventType::Error);
  ASSERT_TRUE(events[4].error);
  EXPECT_EQ(events[4].error->code, 410);
  EXPECT_EQ(events[4].error->reason, "Expired");
  EXPECT_TRUE(events[4].error->expired());
  EXPECT_EQ(to_string(events[4].type), "ERROR");
}

TEST(K8sObjects, malformed_objects_name_the_object_the_field_and_the_problem) {
  struct Case {
    const char* json;
    const char* expect[3];
  };
  const Case cases[] = {
      {R"({"metadata":{"name":"p","namespace":"n"},"spec":{"containers":{"name":"x"}}})",
       {"Pod \"n/p\"", "spec.containers", "expected array, got object"}},
      {R"({"metadata":{"name":"p","namespace":"n"},"status":{"containerStatuses":[{"name":"a","restartCount":"3"}]}})",
       {"Pod \"n/p\"", "status.containerStatuses[0].restartCount", "expected integer, got string \"3\""}},
      {R"({"metadata":{"name":"p","namespace":"n"},"status":{"containerStatuses":[{"name":"a","restartCount":99999999999}]}})",
       {"Pod \"n/p\"", "restartCount", "out of range for int32"}},
      {R"({"metadata":{"name":"p"},"status":{"containerStatuses":[{"name":"a","restartCount":1e3}]}})",
       {"Pod \"p\"", "restartCount", "expected an integer, got 1e3"}},
      {R"({"metadata":{"name":"p"},"spec":{"priority":123456789012345678901234567890}})",
       {"Pod \"p\"", "spec.priority", "out of range for int64"}},
      {R"({"metadata":{"name":"p","labels":{"a":1}}})", {"Pod \"p\"", "metadata.labels.a", "expected string, got number 1"}},
      {R"({"metadata":{"namespace":"n"},"spec":{}})", {"Pod (unnamed)", "metadata.name", "required field is missing"}},
      {R"({"metadata":{"name":"p"},"spec":{"containers":[{"image":"x"}]}})", {"Pod \"p\"", "spec.containers[0]", "no name"}},
      {R"({"metadata":{"name":"p"},"spec":{"overhead":{"cpu":true}}})", {"Pod \"p\"", "spec.overhead.cpu", "expected quantity string, got boolean"}},
      {R"({"metadata":{"name":"p"},"spec":{"overhead":{"memory":"1e40"}}})", {"Pod \"p\"", "spec.overhead.memory", "supported range"}},
      {R"({"metadata":{"name":"p"},"status":{"qosClass":"Platinum"}})", {"Pod \"p\"", "status.qosClass", "unknown QoS class"}},
      {R"([1,2])", {"Pod (unnamed)", "(root)", "expected object, got array"}},
      {R"({"metadata":"p"})", {"Pod (unnamed)", "metadata", "expected object, got string"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    const std::string message = error_of([&] { Pod::parse(c.json); });
    for (const char* part : c.expect) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
  // The structured fields are there too.
  try {
    Pod::parse(R"({"metadata":{"name":"p","namespace":"n"},"spec":{"nodeName":7}})");
    FAIL();
  } catch (const ObjectError& e) {
    EXPECT_EQ(e.kind(), "Pod");
    EXPECT_EQ(e.namespace_(), "n");
    EXPECT_EQ(e.name(), "p");
    EXPECT_EQ(e.field(), "spec.nodeName");
  }
  EXPECT_NE(error_of([] {
              HorizontalPodAutoscaler::parse(
                  R"({"metadata":{"name":"h"},"spec":{"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Percent"}}}]}})");
            }).find("spec.metrics[0].resource.target.type: unknown metric target type \"Percent\""),
            std::string::npos);
  EXPECT_NE(error_of([] {
              HorizontalPodAutoscaler::parse(R"({"metadata":{"name":"h"},"spec":{"metrics":[{"type":"Pods"}]}})");
            }).find("spec.metrics[0].pods: required"),
            std::string::npos);
  EXPECT_NE(error_of([] { WatchEvent<Pod>::parse(R"({"type":"CHANGED","object":{}})"); }).find("unknown watch event type"),
            std::string::npos);
  EXPECT_NE(error_of([] { ObjectList<Node>::parse(R"({"items":{}})"); }).find("NodeList"), std::string::npos);
  EXPECT_THROW(Pod::parse("{\"metadata\":"), JsonSyntaxError);
  EXPECT_THROW(Pod::parse(std::string(2000, '[')), JsonSyntaxError);
}

TEST(K8sObjects, tolerates_nulls_unknown_fields_and_escapes) {
  const Pod pod = Pod::parse(
      R"({"metadata":{"name":"p\u00e9\ud83d\ude00","labels":null,"ownerReferences":null,"x":{"y":[1,2,{}]}},)"
      R"("spec":{"containers":null,"overhead":null,"priority":null},"status":null})");
  EXPECT_EQ(pod.metadata.name, "p\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_FALSE(pod.spec.priority);
  // Quantities may arrive as JSON numbers and with surrounding spaces, as UnmarshalJSON allows.
  const Pod numbers = Pod::parse(R"({"metadata":{"name":"p"},"spec":{"overhead":{"cpu":2,"memory":" 1Gi "}}})");
  EXPECT_EQ(numbers.spec.overhead.get("cpu"), q("2"));
  EXPECT_EQ(numbers.spec.overhead.get("memory"), q("1Gi"));
}

TEST(K8sObjects, container_ids_of_each_runtime) {
  const std::string hex(64, 'a');
  EXPECT_EQ(parse_container_id("containerd://" + hex), (RuntimeContainerId{ContainerRuntime::Containerd, hex}));
  EXPECT_EQ(parse_container_id("cri-o://" + hex), (RuntimeContainerId{ContainerRuntime::Crio, hex}));
  EXPECT_EQ(parse_container_id("docker://" + hex), (RuntimeContainerId{ContainerRuntime::Docker, hex}));
  EXPECT_FALSE(parse_container_id(""));
  EXPECT_FALSE(parse_container_id(hex));
  EXPECT_FALSE(parse_container_id("rkt://" + hex));
  EXPECT_FALSE(parse_container_id("containerd://" + std::string(63, 'a')));
  EXPECT_FALSE(parse_container_id("containerd://" + std::string(64, 'A')));
}

}  // namespace

namespace {
TEST(K8sObjects, times_are_unix_seconds_and_bad_times_are_reported) {
  using podgauge::k8s::parse_rfc3339;
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2020-11-02T09:14:03Z"), 1604308443);
  EXPECT_EQ(parse_rfc3339("2020-11-02T10:14:03.123456+01:00"), 1604308443);
  EXPECT_FALSE(parse_rfc3339("2020-11-02 09:14:03"));
  EXPECT_FALSE(parse_rfc3339("2020-13-02T09:14:03Z"));
  const auto pod = podgauge::k8s::Pod::parse(
      R"({"metadata":{"name":"p","creationTimestamp":"2020-11-02T09:14:03Z","deletionTimestamp":"2020-11-02T09:15:03Z"}})");
  EXPECT_EQ(pod.metadata.creation_timestamp, 1604308443);
  EXPECT_EQ(pod.metadata.deletion_timestamp, 1604308503);
  EXPECT_NE(error_of([] { podgauge::k8s::Pod::parse(R"({"metadata":{"name":"p","creationTimestamp":"yesterday"}})"); })
                .find("metadata.creationTimestamp: invalid RFC 3339 time \"yesterday\""),
            std::string::npos);
}
}  // namespace
