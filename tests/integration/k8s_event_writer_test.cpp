// The Event writer against the fake API server over HTTPS with a bearer token: what objects it
// creates, how repeats become one series, rate limits, retries, RBAC denials, and the core/v1
// fallback for servers without events.k8s.io.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "fake_api_server.h"
#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/event_writer.h"
#include "podgauge/k8s/kubeconfig.h"

using namespace std::chrono_literals;
using namespace podgauge::k8s;
using nlohmann::json;
namespace fa = podgauge::fakeapi;
namespace fs = std::filesystem;

namespace {

RestConfig config_for(const fs::path& kubeconfig) {
  KubeconfigOptions o;
  o.kubeconfig = kubeconfig.string();
  return load_kubeconfig(o);
}

json make_pod(fa::FakeApiServer& api, const std::string& ns, const std::string& name) {
  try {
    api.create("namespaces", "", {{"metadata", {{"name", ns}}}});
  } catch (...) {
  }
  return api.create(
      "pods", ns,
      {{"metadata", {{"name", name}}},
       {"spec",
        {{"nodeName", "node-a"}, {"containers", {{{"name", "app"}, {"image", "busybox"}}}}}}});
}

EventRecord oom(const json& pod,
                const std::string& note = "container app: memory limit 64Mi, usage 64Mi") {
  EventRecord r;
  r.regarding.kind = "Pod";
  r.regarding.namespace_ = pod["metadata"]["namespace"];
  r.regarding.name = pod["metadata"]["name"];
  r.regarding.uid = pod["metadata"]["uid"];
  r.reason = "OOMKilled";
  r.action = "Killing";
  r.note = note;
  return r;
}

EventWriterOptions fast(EventWriterOptions::Api api = EventWriterOptions::Api::Auto) {
  EventWriterOptions o;
  o.reporting_instance = "node-a";
  o.api = api;
  o.initial_backoff = 20ms;
  o.max_backoff = 200ms;
  return o;
}

std::vector<json> events_v1(fa::FakeApiServer& api, const std::string& ns) {
  return api.list("events.events.k8s.io", ns);
}

}  // namespace

TEST(EventWriter, first_occurrence_creates_an_events_v1_event_with_every_field) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  const auto before = std::chrono::system_clock::now();
  EventWriter writer(client, fast());
  ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  EXPECT_EQ(writer.api_version(), "events.k8s.io/v1");

  auto items = events_v1(api, "prod");
  ASSERT_EQ(items.size(), 1u);
  const json& e = items[0];
  EXPECT_EQ(e["apiVersion"], "events.k8s.io/v1");
  EXPECT_EQ(e["reason"], "OOMKilled");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["action"], "Killing");
  EXPECT_EQ(e["note"], "container app: memory limit 64Mi, usage 64Mi");
  EXPECT_EQ(e["reportingController"], "podgauge.io/agent");
  EXPECT_EQ(e["reportingInstance"], "node-a");
  EXPECT_EQ(e["regarding"]["kind"], "Pod");
  EXPECT_EQ(e["regarding"]["namespace"], "prod");
  EXPECT_EQ(e["regarding"]["name"], "web-0");
  EXPECT_EQ(e["regarding"]["uid"], pod["metadata"]["uid"]);
  EXPECT_EQ(e["regarding"]["apiVersion"], "v1");
  EXPECT_FALSE(e.contains("series"));
  // Named <pod>.<hex nanoseconds> like client-go, within this test's time.
  const std::string name = e["metadata"]["name"];
  ASSERT_EQ(name.rfind("web-0.", 0), 0u) << name;
  const auto nanos = std::stoull(name.substr(6), nullptr, 16);
  const auto before_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(before.time_since_epoch()).count();
  EXPECT_GE(nanos, static_cast<unsigned long long>(before_ns));
  // eventTime is a MicroTime.
  const std::string t = e["eventTime"];
  EXPECT_EQ(t.size(), std::string("2026-01-01T00:00:00.000000Z").size()) << t;

  // The same object seen as a core/v1 Event (one storage, as kube-apiserver).
  auto core = api.list("events", "prod");
  ASSERT_EQ(core.size(), 1u);
  EXPECT_EQ(core[0]["involvedObject"]["name"], "web-0");
  EXPECT_EQ(core[0]["message"], e["note"]);
  EXPECT_EQ(core[0]["reportingComponent"], "podgauge.io/agent");
  auto s = writer.stats();
  EXPECT_EQ(s.created, 1u);
  EXPECT_EQ(s.patched, 0u);
  EXPECT_EQ(s.failed, 0u);
}

TEST(EventWriter, ten_repeats_are_one_event_with_series_count_ten) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  EventWriter writer(client, fast());
  ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  for (int i = 1; i < 10; ++i) {
    // Each repeat carries a different note; client-go keeps the first one in the series.
    ASSERT_TRUE(writer.record(oom(pod, "repeat " + std::to_string(i))));
    if (i % 3 == 0) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  auto items = events_v1(api, "prod");
  ASSERT_EQ(items.size(), 1u) << json(items).dump(2);
  const json& e = items[0];
  ASSERT_TRUE(e.contains("series")) << e.dump(2);
  EXPECT_EQ(e["series"]["count"], 10);
  EXPECT_GE(std::string(e["series"]["lastObservedTime"]), std::string(e["eventTime"]));
  EXPECT_EQ(e["note"], "container app: memory limit 64Mi, usage 64Mi");
  auto s = writer.stats();
  EXPECT_EQ(s.created, 1u);
  EXPECT_GE(s.patched, 1u);
  EXPECT_LE(s.patched, 9u);
}

TEST(EventWriter, different_pods_reasons_or_series_keys_are_separate_events) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto a = make_pod(api, "prod", "web-0");
  auto b = make_pod(api, "prod", "web-1");
  auto c = make_pod(api, "batch", "job-0");
  EventWriter writer(client, fast());
  for (int i = 0; i < 3; ++i) {
    writer.record(oom(a));
    writer.record(oom(b));
    writer.record(oom(c));
  }
  auto other_reason = oom(a);
  other_reason.reason = "MemoryPressure";
  writer.record(other_reason);
  auto other_container = oom(a);
  other_container.series_key = "sidecar";
  writer.record(other_container);
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  auto prod = events_v1(api, "prod");
  auto batch = events_v1(api, "batch");
  ASSERT_EQ(prod.size(), 4u);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0]["regarding"]["name"], "job-0");
  EXPECT_EQ(batch[0]["series"]["count"], 3);
  int web1 = 0;
  for (const auto& e : prod)
    if (e["regarding"]["name"] == "web-1") {
      ++web1;
      EXPECT_EQ(e["series"]["count"], 3);
    }
  EXPECT_EQ(web1, 1);
}

TEST(EventWriter, spam_filter_and_global_limit_drop_and_count) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto a = make_pod(api, "prod", "web-0");
  auto b = make_pod(api, "prod", "web-1");
  auto o = fast();
  o.per_object_burst = 3;
  o.per_object_refill = 300ms;
  o.global_burst = 100;
  o.global_qps = 100;
  EventWriter writer(client, o);
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += writer.record(oom(a));
  EXPECT_EQ(accepted, 3);
  EXPECT_TRUE(writer.record(oom(b)));  // another object has its own bucket
  EXPECT_EQ(writer.stats().dropped_rate_limited, 7u);
  std::this_thread::sleep_for(350ms);  // one token back
  EXPECT_TRUE(writer.record(oom(a)));
  EXPECT_FALSE(writer.record(oom(a)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  for (const auto& e : events_v1(api, "prod"))
    if (e["regarding"]["name"] == "web-0") EXPECT_EQ(e["series"]["count"], 4);

  auto g = fast();
  g.global_burst = 2;
  g.global_qps = 0.001;
  EventWriter limited(client, g);
  EXPECT_TRUE(limited.record(oom(a)));
  EXPECT_TRUE(limited.record(oom(b)));
  EXPECT_FALSE(limited.record(oom(b)));
  EXPECT_EQ(limited.stats().dropped_rate_limited, 1u);
}

TEST(EventWriter, a_full_queue_drops_and_counts_without_blocking) {
  // A server that accepts connections and never answers: the delivery thread hangs in its
  // first request while the caller keeps recording.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  RestConfig rc;
  rc.server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  rc.insecure_skip_tls_verify = true;
  rc.token = "t";
  ApiClientOptions co;
  co.read_timeout = 1500ms;
  co.connect_timeout = 1000ms;
  ApiClient client(rc, co);
  json pod = {{"metadata", {{"name", "web-0"}, {"namespace", "prod"}, {"uid", "u-1"}}}};
  auto o = fast();
  o.queue_capacity = 4;
  o.per_object_burst = 1000;
  o.global_burst = 1000;
  {
    EventWriter writer(client, o);
    ASSERT_TRUE(writer.record(oom(pod)));
    std::this_thread::sleep_for(100ms);  // the worker is now stuck in its request
    const auto start = std::chrono::steady_clock::now();
    int accepted = 1;
    for (int i = 1; i < 200; ++i) accepted += writer.record(oom(pod));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
    auto s = writer.stats();
    EXPECT_EQ(s.accepted + s.dropped_queue_full, 200u);
    EXPECT_EQ(s.dropped_queue_full, 200u - 1 - 4);
    EXPECT_EQ(static_cast<std::uint64_t>(accepted), s.accepted);
  }
  ::close(fd);
}

TEST(EventWriter, server_errors_are_retried_and_delivered_once) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  EventWriter writer(client, fast(EventWriterOptions::Api::EventsV1));
  api.faults().fail_next_requests(2, 500);
  ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  EXPECT_EQ(events_v1(api, "prod").size(), 1u);
  auto s = writer.stats();
  EXPECT_EQ(s.created, 1u);
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.failed, 0u);
  EXPECT_NE(writer.last_error().find("500"), std::string::npos) << writer.last_error();

  api.faults().fail_next_requests(1, 429);
  ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  auto items = events_v1(api, "prod");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["series"]["count"], 2);
  EXPECT_EQ(writer.stats().retries, 3u);
}

TEST(EventWriter, forbidden_is_not_retried_and_names_verb_and_resource) {
  fa::FakeApiServer api;
  api.add_token("agent-token", {"system:serviceaccount:podgauge:agent", {"system:authenticated"}});
  api.allow("system:serviceaccount:podgauge:agent", {{"get", "list", "watch"}, {"pods"}});
  auto kubeconfig = api.write_token_kubeconfig("agent-token", api.dir() / "agent.yaml");
  ApiClient client(config_for(kubeconfig));
  auto pod = make_pod(api, "prod", "web-0");
  EventWriter writer(client, fast());
  const auto requests_before = api.request_count();
  ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s));
  auto s = writer.stats();
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.retries, 0u);
  EXPECT_EQ(s.created, 0u);
  // discovery + one POST, no retry
  EXPECT_EQ(api.request_count() - requests_before, 2u);
  const std::string err = writer.last_error();
  EXPECT_NE(err.find("403"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot create resource \"events\" in API group \"events.k8s.io\""),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("RBAC"), std::string::npos) << err;
  EXPECT_TRUE(events_v1(api, "prod").empty());
}

TEST(EventWriter, falls_back_to_core_v1_when_the_server_has_no_events_k8s_io) {
  fa::FakeApiServer::Options so;
  so.serve_events_k8s_io = false;
  fa::FakeApiServer api(so);
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  EventWriter writer(client, fast());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer.record(oom(pod)));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  EXPECT_EQ(writer.api_version(), "v1");
  auto core = api.list("events", "prod");
  ASSERT_EQ(core.size(), 1u);
  const json& e = core[0];
  EXPECT_EQ(e["apiVersion"], "v1");
  EXPECT_EQ(e["reason"], "OOMKilled");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["involvedObject"]["uid"], pod["metadata"]["uid"]);
  EXPECT_EQ(e["source"]["host"], "node-a");
  EXPECT_EQ(e["count"], 5);
  EXPECT_FALSE(std::string(e["firstTimestamp"]).empty());
  EXPECT_FALSE(std::string(e["lastTimestamp"]).empty());
  EXPECT_EQ(writer.stats().failed, 0u);
}

TEST(EventWriter, a_deleted_series_event_is_created_again_with_its_count) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  EventWriter writer(client, fast());
  writer.record(oom(pod));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  const std::string name = events_v1(api, "prod").at(0)["metadata"]["name"];
  api.remove("events", "prod", name);
  writer.record(oom(pod));
  writer.record(oom(pod));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  auto items = events_v1(api, "prod");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["metadata"]["name"], name);
  EXPECT_EQ(items[0]["series"]["count"], 3);
  EXPECT_EQ(writer.stats().created, 2u);
}

TEST(EventWriter, refuses_to_start_without_a_reporting_instance) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  EventWriterOptions o;
  EXPECT_THROW(EventWriter(client, o), std::invalid_argument);
}

TEST(EventWriter, a_repeat_after_the_series_window_starts_a_new_event) {
  fa::FakeApiServer api;
  ApiClient client(config_for(api.token_kubeconfig()));
  auto pod = make_pod(api, "prod", "web-0");
  auto o = fast();
  o.series_window = 200ms;
  EventWriter writer(client, o);
  writer.record(oom(pod));
  writer.record(oom(pod));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  std::this_thread::sleep_for(300ms);
  writer.record(oom(pod));
  ASSERT_TRUE(writer.flush(10s)) << writer.last_error();
  EXPECT_EQ(events_v1(api, "prod").size(), 2u);
}
