// Decoding a 5,000-pod LIST response, and what one cached Pod costs in memory.
// Targets: < 150 ms per list, < 4 KiB per Pod (sizeof + heap).
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "podgauge/k8s/informer.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"

namespace {

constexpr int kPods = 5000;

std::string hex(unsigned seed, int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  unsigned x = seed * 2654435761u + 12345;
  for (int i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345;
    out.push_back(kHex[(x >> 16) & 15]);
  }
  return out;
}

// A pod as `kubectl get pods -o json` returns it from a 1.30 cluster: managedFields, env,
// probes, volumes, three containers (one init, one sidecar-style shipper), full statuses.
std::string pod_json(int i) {
  const std::string app = "svc-" + std::to_string(i % 97);
  const std::string hash = "7d4b9c5f8";
  const std::string name = app + "-" + hash + "-" + hex(i, 5);
  auto container = [&](const std::string& c, const char* cpu, const char* mem, const char* lcpu, const char* lmem) {
    return R"({"name":")" + c + R"(","image":"registry.example.com/team/)" + app + "-" + c +
           R"(:v1.)" + std::to_string(i % 10) +
           R"(.3","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],)"
           R"("env":[{"name":"LOG_LEVEL","value":"info"},{"name":"POD_NAME","valueFrom":{"fieldRef":{"apiVersion":"v1","fieldPath":"metadata.name"}}}],)"
           R"("resources":{"requests":{"cpu":")" + cpu + R"(","memory":")" + mem + R"("},"limits":{"cpu":")" + lcpu +
           R"(","memory":")" + lmem + R"("}},)"
           R"("volumeMounts":[{"name":"kube-api-access-9x7qz","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],)"
           R"("livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3},)"
           R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"})";
  };
  auto status = [&](const std::string& c, bool init) {
    const std::string id = hex(i * 7 + static_cast<unsigned>(c.size()), 64);
    std::string state = init ? R"({"terminated":{"exitCode":0,"reason":"Completed","startedAt":"2024-05-01T10:00:01Z","finishedAt":"2024-05-01T10:00:04Z","containerID":"containerd://)" + id + R"("}})"
                             : R"({"running":{"startedAt":"2024-05-01T10:00:05Z"}})";
    std::string last = (!init && i % 5 == 0)
                           ? R"({"terminated":{"exitCode":137,"reason":"OOMKilled","startedAt":"2024-05-01T09:00:00Z","finishedAt":"2024-05-01T09:59:00Z","containerID":"containerd://)" + hex(i * 3, 64) + R"("}})"
                           : "{}";
    return R"({"name":")" + c + R"(","state":)" + state + R"(,"lastState":)" + last +
           R"(,"ready":true,"restartCount":)" + std::to_string(i % 5 == 0 ? 1 : 0) +
           R"(,"image":"registry.example.com/team/)" + app + "-" + c + R"(:v1.3","imageID":"registry.example.com/team/)" + app +
           "@sha256:" + hex(i + 99, 64) + R"(","containerID":"containerd://)" + id + R"(","started":)" +
           (init ? "false" : "true") + "}";
  };
  std::string s;
  s.reserve(6000);
  s += R"({"metadata":{"name":")" + name + R"(","generateName":")" + app + "-" + hash + R"(-","namespace":"ns-)" +
       std::to_string(i % 20) + R"(","uid":")" + hex(i, 8) + "-" + hex(i + 1, 4) + "-" + hex(i + 2, 4) + "-" +
       hex(i + 3, 4) + "-" + hex(i + 4, 12) + R"(","resourceVersion":")" + std::to_string(100000 + i) +
       R"(","creationTimestamp":"2024-05-01T10:00:00Z",)"
       R"("labels":{"app.kubernetes.io/name":")" + app + R"(","pod-template-hash":")" + hash +
       R"(","app.kubernetes.io/part-of":"payments","tier":"backend","version":"v1"},)"
       R"("annotations":{"prometheus.io/scrape":"true","prometheus.io/port":"8080"},)"
       R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":")" + app + "-" + hash +
       R"(","uid":")" + hex(i % 97, 8) + R"(-0000-4000-8000-000000000000","controller":true,"blockOwnerDeletion":true}],)"
       R"("managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app.kubernetes.io/name":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{}}},"f:spec":{"f:containers":{}}}},)"
       R"({"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2024-05-01T10:00:06Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:podIP":{},"f:startTime":{}}},"subresource":"status"}]},)";
  s += R"("spec":{"volumes":[{"name":"kube-api-access-9x7qz","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}],"defaultMode":420}}],)";
  s += R"("initContainers":[)" + container("migrate", "100m", "64Mi", "500m", "128Mi") + "],";
  s += R"("containers":[)" + container("app", "250m", "256Mi", "1", "512Mi") + "," +
       container("log-shipper", "50m", "64Mi", "200m", "128Mi") + "],";
  s += R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default",)"
       R"("nodeName":"node-)" + std::to_string(i % 50) +
       R"(","securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},)";
  s += R"("status":{"phase":"Running","conditions":[)";
  const char* types[] = {"PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"};
  for (int t = 0; t < 5; ++t) {
    if (t) s += ",";
    s += R"({"type":")" + std::string(types[t]) + R"(","status":"True","lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:06Z"})";
  }
  s += R"(],"hostIP":"192.168.1.)" + std::to_string(i % 250) + R"(","podIP":"10.0.)" + std::to_string(i % 250) + "." +
       std::to_string(i % 200) + R"(","podIPs":[{"ip":"10.0.0.1"}],"startTime":"2024-05-01T10:00:00Z",)";
  s += R"("initContainerStatuses":[)" + status("migrate", true) + "],";
  s += R"("containerStatuses":[)" + status("app", false) + "," + status("log-shipper", false) + "],";
  s += R"("qosClass":"Burstable"}})";
  return s;
}

const std::string& pod_list() {
  static const std::string text = [] {
    std::string s = R"({"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123456"},"items":[)";
    for (int i = 0; i < kPods; ++i) {
      if (i) s += ",";
      s += pod_json(i);
    }
    s += "]}";
    return s;
  }();
  return text;
}

// Memory of the decoded pods once the JSON is gone: heap growth (mallinfo2) over the parse of
// the list, which includes the vector<Pod> itself (sizeof(Pod) each) and every string/list.
// Registered first, so its first parse also grows the process-wide InternedString table from
// empty: bytes_per_pod is that first parse, the pods' share of the table included;
// bytes_per_pod_warm is a later parse, which only adds references to texts already interned.
void BM_PodMemory(benchmark::State& state) {
  const std::string& text = pod_list();
  double first = 0;
  double warm = 0;
  bool cold = true;
  for (auto _ : state) {
    malloc_trim(0);
    const auto before = mallinfo2().uordblks;
    auto list = podgauge::k8s::ObjectList<podgauge::k8s::Pod>::parse(text);
    list.items.shrink_to_fit();
    const auto after = mallinfo2().uordblks;
    const double per_pod = static_cast<double>(after - before) / static_cast<double>(list.items.size());
    if (cold) first = per_pod;
    cold = false;
    warm = per_pod;
    benchmark::DoNotOptimize(list);
  }
  const auto table = podgauge::k8s::InternedString::table_stats();
  state.counters["bytes_per_pod"] = first;
  state.counters["bytes_per_pod_warm"] = warm;
  state.counters["interned_texts"] = static_cast<double>(table.entries);
  state.counters["interned_bytes"] = static_cast<double>(table.bytes);
  state.counters["sizeof_Pod"] = sizeof(podgauge::k8s::Pod);
  state.counters["json_bytes_per_pod"] = static_cast<double>(text.size()) / kPods;
}
BENCHMARK(BM_PodMemory)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_ParsePodList5000(benchmark::State& state) {
  const std::string& text = pod_list();
  for (auto _ : state) {
    auto list = podgauge::k8s::ObjectList<podgauge::k8s::Pod>::parse(text);
    if (list.items.size() != kPods) state.SkipWithError("wrong item count");
    benchmark::DoNotOptimize(list);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text.size()));
  state.counters["pods"] = kPods;
  state.counters["json_MiB"] = static_cast<double>(text.size()) / (1 << 20);
}
BENCHMARK(BM_ParsePodList5000)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Applying one watch event to a cache of 5,000 pods, the work Informer::apply does per line:
// decode the MODIFIED event, make the shared object, swap it into the informer's ObjectIndex
// under the cache lock (the old object is freed). Target: < 20 us.
void BM_ApplyWatchEvent(benchmark::State& state) {
  using podgauge::k8s::Pod;
  podgauge::k8s::ObjectIndex<Pod> index;
  std::shared_mutex mutex;
  for (int i = 0; i < kPods; ++i)
    index.upsert(std::make_shared<const Pod>(Pod::parse(pod_json(i))));
  std::vector<std::string> lines;
  for (int i = 0; i < 256; ++i)
    lines.push_back(R"({"type":"MODIFIED","object":)" + pod_json(i * 17 % kPods) + "}");
  std::size_t n = 0;
  for (auto _ : state) {
    auto ev = podgauge::k8s::WatchEvent<Pod>::parse(lines[n++ % lines.size()]);
    auto obj = std::make_shared<const Pod>(std::move(*ev.object));
    std::shared_ptr<const Pod> old;
    {
      std::unique_lock lock(mutex);
      old = index.upsert(std::move(obj));
      index.resource_version = std::move(ev.resource_version);
    }
    if (!old) state.SkipWithError("a MODIFIED pod was not in the cache");
    benchmark::DoNotOptimize(old);
  }
  state.counters["line_bytes"] = static_cast<double>(lines[0].size());
}
BENCHMARK(BM_ApplyWatchEvent)->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// One small quantity, the hot path of every resource list.
void BM_ParseQuantity(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(podgauge::k8s::Quantity::parse("1536Mi"));
    benchmark::DoNotOptimize(podgauge::k8s::Quantity::parse("250m"));
  }
}
BENCHMARK(BM_ParseQuantity);

}  // namespace

BENCHMARK_MAIN();
