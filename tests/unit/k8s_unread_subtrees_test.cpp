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

// The skipper reads 64 bytes a step: escapes, quotes and brackets that straddle two steps, and
// the last partial step, must be judged as the full parse judges them. Strings built from valid
// and invalid escapes, control characters and brackets, at every offset around the step
// boundaries: the skipping parse refuses exactly what the recording one refuses.
TEST(K8sUnreadSubtrees, skipped_strings_are_judged_as_a_full_parse_judges_them) {
  const std::string pieces[] = {"a",     "]",     "{",     "[",         "}",
                                " ",     R"(\\)", R"(\")", R"(\n)",     R"(\u00e9)",
                                R"(\/)", R"(\q)", "\x01",  R"(\u12g4)", R"(\u)"};
  std::uint64_t x = 88172645463325252ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int refused = 0;
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string value = "\"" + std::string(next() % 140, 'p');  // moves the rest across steps
    const int n = static_cast<int>(next() % 12);
    for (int i = 0; i < n; ++i) {
      // Mostly valid pieces, so that acceptances are frequent too.
      const std::size_t k = next() % 40;
      value += pieces[k < std::size(pieces) ? k : k % 6];
    }
    if (next() % 8 == 0) value += "\\";  // escapes the closing quote: unterminated
    value += "\"";
    const std::string event = R"({"type":"MODIFIED","object":)" + pod(value) + "}";
    bool full_ok = true;
    try {
      (void)Pod::parse(pod(value));
    } catch (const JsonSyntaxError&) {
      full_ok = false;
    }
    bool skip_ok = true;
    try {
      const auto ev = WatchEvent<Pod>::parse(event);
      expect_read_fields(*ev.object);
    } catch (const JsonSyntaxError&) {
      skip_ok = false;
    }
    bool list_ok = true;
    try {
      (void)ObjectList<Pod>::parse(R"({"items":[)" + pod(value) + "]}");
    } catch (const JsonSyntaxError&) {
      list_ok = false;
    }
    ASSERT_EQ(full_ok, skip_ok) << value;
    ASSERT_EQ(full_ok, list_ok) << value;
    (full_ok ? accepted : refused)++;
  }
  EXPECT_GT(accepted, 300);
  EXPECT_GT(refused, 300);
}

TEST(K8sUnreadSubtrees, a_subtree_cut_at_any_byte_is_refused_and_whole_is_accepted) {
  // A skipped subtree longer than several steps, cut at every byte of it.
  std::string env = R"("x")";
  for (int i = 0; i < 40; ++i)
    env += R"(,{"name":"K)" + std::to_string(i) + R"(","value":"a\\\"]}[{"})";
  const std::string text = R"({"type":"ADDED","object":)" + pod(env.substr(0, 3)) + "}";
  const std::string big =
      R"({"type":"ADDED","object":)" + pod(R"("v"}, )" + env.substr(4) + R"(, {"value":"w")") + "}";
  ASSERT_NO_THROW(WatchEvent<Pod>::parse(text));
  ASSERT_NO_THROW(expect_read_fields(*WatchEvent<Pod>::parse(big).object));
  const auto from = big.find("\"env\"");
  const auto to = big.find(R"("command":[)");
  ASSERT_GT(to, from + 64 * 10);
  for (std::size_t cut = from; cut < to; ++cut) {
    EXPECT_THROW(WatchEvent<Pod>::parse(big.substr(0, cut)), JsonSyntaxError) << cut;
    if (HasFailure()) break;
  }
}
