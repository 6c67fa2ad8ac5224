// Lists and watch events of pods skip the subtrees no decoder reads (managedFields, env,
// probes ...): what is read must not change, and broken JSON in them must still be refused.
#include <gtest/gtest.h>

#include <string>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"

using podgauge::k8s::JsonSyntaxError;
using podgauge::k8s::ObjectList;
using podgauge::k8s::Pod;
using podgauge::k8s::WatchEvent;

namespace {

// A pod whose skipped subtrees hold brackets and quotes inside strings, escapes, nesting, and
// whose labels/annotations/resources use the skipped key names with string values.
std::string pod(const std::string& env_value = R"("a]}\"[{ b")") {
  return R"({"metadata":{"name":"web-0","namespace":"shop","uid":"u-1",)"
         R"("labels":{"env":"prod","ports":"80"},"annotations":{"command":"run"},)"
         R"("managedFields":[{"manager":"kubectl","fieldsV1":{"f:metadata":{"f:labels":{".":{}}}}}]},)"
         R"("spec":{"nodeName":"n1","containers":[{"name":"app","image":"img:1",)"
         R"("env":[{"name":"X","value":)" + env_value + R"(}],"command":["/bin/sh","-c","echo ]"],)"
         R"("livenessProbe":{"exec":{"command":["true"]},"periodSeconds":10},)"
         R"("resources":{"requests":{"cpu":"250m","memory":"64Mi"},"limits":{"memory":"128Mi"}}}],)"
         R"("tolerations":[{"key":"k","operator":"Exists"}],"affinity":{"nodeAffinity":{}}},)"
         R"("status":{"phase":"Running","podIPs":[{"ip":"10.0.0.1"}],"podIP":"10.0.0.1",)"
         R"("containerStatuses":[{"name":"app","ready":true,"restartCount":2,)"
         R"("volumeMounts":[{"name":"v","mountPath":"/v"}],"containerID":"containerd://abc",)"
         R"("state":{"running":{"startedAt":"2024-05-01T10:00:05Z"}}}]}})";
}

void expect_read_fields(const Pod& p) {
  EXPECT_EQ(p.metadata.name, "web-0");
  EXPECT_EQ(*p.metadata.label("env"), "prod");
  EXPECT_EQ(*p.metadata.label("ports"), "80");
  EXPECT_EQ(*p.metadata.annotation("command"), "run");
  ASSERT_EQ(p.spec.containers.size(), 1u);
  EXPECT_EQ(p.spec.containers[0].image, "img:1");
  EXPECT_EQ(p.spec.containers[0].resources.requests.get("cpu").milli_value(), 250);
  EXPECT_EQ(p.spec.containers[0].resources.limits.get("memory").value(), 128 << 20);
  EXPECT_EQ(p.status.phase, "Running");
  EXPECT_EQ(p.status.pod_ip, "10.0.0.1");
  ASSERT_EQ(p.status.container_statuses.size(), 1u);
  EXPECT_EQ(p.status.container_statuses[0].restart_count, 2);
  EXPECT_EQ(p.status.container_statuses[0].container_id, "containerd://abc");
}

}  // namespace

TEST(K8sUnreadSubtrees, list_and_watch_read_the_same_fields_as_a_full_parse) {
  const Pod full = Pod::parse(pod());  // the single-object entry point records every subtree
  expect_read_fields(full);
  const auto list = ObjectList<Pod>::parse(R"({"kind":"PodList","items":[)" + pod() + "," + pod() + "]}");
  ASSERT_EQ(list.items.size(), 2u);
  expect_read_fields(list.items[1]);
  const auto ev = WatchEvent<Pod>::parse(R"({"type":"MODIFIED","object":)" + pod() + "}");
  ASSERT_TRUE(ev.object);
  expect_read_fields(*ev.object);
}

TEST(K8sUnreadSubtrees, broken_json_inside_a_skipped_subtree_is_still_refused) {
  for (const std::string& bad : {std::string(R"("unterminated)"), std::string(R"("bad \q escape")"),
                                 std::string("\"control\x01char\""), std::string(R"(["x"})")}) {
    SCOPED_TRACE(bad);
    EXPECT_THROW(ObjectList<Pod>::parse(R"({"items":[)" + pod(bad) + "]}"), JsonSyntaxError);
    EXPECT_THROW(WatchEvent<Pod>::parse(R"({"type":"ADDED","object":)" + pod(bad) + "}"), JsonSyntaxError);
  }
  // Cut anywhere inside the skipped managedFields: never accepted.
  const std::string text = R"({"type":"ADDED","object":)" + pod() + "}";
  const auto at = text.find("managedFields");
  for (std::size_t cut = at; cut < text.find("\"spec\""); cut += 7) {
    EXPECT_THROW(WatchEvent<Pod>::parse(text.substr(0, cut)), JsonSyntaxError) << cut;
  }
}
