// Effective pod requests/limits (sidecars, init containers, overhead, pod-level resources,
// in-place resize), QoS derivation and workload-owner resolution.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "podgauge/k8s/pod_resources.h"
#include "podgauge/k8s/workload_owner.h"
#include "k8s_fixture.h"
#include <nlohmann/json.hpp>

namespace {

using namespace podgauge::k8s;

using podgauge::k8s::testing::fixture;

ResourceList rl(std::initializer_list<std::pair<const char*, const char*>> entries) {
  ResourceList out;
  for (const auto& [k, v] : entries) out.set(k, Quantity::parse(v));
  return out;
}

Container container(const char* name, ResourceList requests, ResourceList limits = {}, bool sidecar = false) {
  Container c;
  c.name = name;
  c.resources.requests = std::move(requests);
  c.resources.limits = std::move(limits);
  if (sidecar) c.restart_policy = "Always";
  return c;
}

Pod pod_of(std::vector<Container> app, std::vector<Container> init = {}) {
  Pod p;
  p.metadata.name = "p";
  p.spec.containers = std::move(app);
  p.spec.init_containers = std::move(init);
  return p;
}

TEST(K8sPodResources, sums_app_containers_and_takes_the_larger_init_container) {
  const Pod pod = Pod::parse(fixture("pod-1.19-classic.json"));
  EXPECT_EQ(pod_requests(pod).to_string(), "cpu=500m, memory=832Mi");
  EXPECT_EQ(pod_limits(pod).to_string(), "cpu=2, memory=1152Mi");
}

TEST(K8sPodResources, counts_sidecars_started_before_each_init_container_and_overhead) {
  const Pod pod = Pod::parse(fixture("pod-1.29-sidecar.json"));
  // app+sidecars = 650m/704Mi; wait-db peaks at 1+100m / 900Mi+128Mi; init-certs at 2 cpu.
  EXPECT_EQ(pod_requests(pod).to_string(), "cpu=2250m, ephemeral-storage=1Gi, memory=1148Mi");
  EXPECT_EQ(pod_requests(pod, {.exclude_overhead = true}).to_string(), "cpu=2, ephemeral-storage=1Gi, memory=1028Mi");
  // Limits: app+sidecars = 3/2304Mi beats wait-db's 3/1924Mi; overhead on both (non-zero).
  EXPECT_EQ(pod_limits(pod).to_string(), "cpu=3250m, memory=2424Mi");
}

TEST(K8sPodResources, sidecar_after_an_init_container_does_not_count_towards_it) {
  const Pod before = pod_of({container("app", rl({{"cpu", "100m"}}))},
                            {container("side", rl({{"cpu", "1"}}), {}, true), container("init", rl({{"cpu", "2"}}))});
  EXPECT_EQ(pod_requests(before).get("cpu"), Quantity::parse("3"));
  const Pod after = pod_of({container("app", rl({{"cpu", "100m"}}))},
                           {container("init", rl({{"cpu", "2"}})), container("side", rl({{"cpu", "1"}}), {}, true)});
  EXPECT_EQ(pod_requests(after).get("cpu"), Quantity::parse("2"));
  // A lone sidecar counts like an app container.
  const Pod only = pod_of({container("app", rl({{"cpu", "100m"}}))}, {container("side", rl({{"cpu", "1"}}), {}, true)});
  EXPECT_EQ(pod_requests(only).to_string(), "cpu=1100m");
}

TEST(K8sPodResources, overhead_goes_to_every_request_but_only_to_nonzero_limits) {
  Pod pod = pod_of({container("app", rl({{"cpu", "1"}}), rl({{"cpu", "2"}, {"memory", "0"}}))});
  pod.spec.overhead = rl({{"cpu", "250m"}, {"memory", "64Mi"}});
  EXPECT_EQ(pod_requests(pod).to_string(), "cpu=1250m, memory=64Mi");
  EXPECT_EQ(pod_limits(pod).to_string(), "cpu=2250m, memory=0");
}

TEST(K8sPodResources, pod_level_resources_replace_cpu_and_memory_only) {
  const Pod pod = Pod::parse(fixture("pod-1.32-pod-level-resources.json"));
  EXPECT_EQ(pod_requests(pod).to_string(), "cpu=1100m, ephemeral-storage=1Gi, memory=200Mi");
  EXPECT_EQ(pod_limits(pod).to_string(), "cpu=1100m, memory=200Mi");
  EXPECT_EQ(pod_requests(pod, {.exclude_overhead = true, .skip_pod_level_resources = true}).to_string(),
            "cpu=700m, ephemeral-storage=1Gi, memory=100Mi");
  EXPECT_EQ(qos_class(pod), QosClass::Guaranteed);
}

TEST(K8sPodResources, in_place_resize_takes_the_larger_of_spec_actuated_and_allocated) {
  Pod pod = Pod::parse(fixture("pod-1.33-resize.json"));
  pod.spec.containers[0].resources.requests.set("cpu", Quantity::parse("3"));
  EXPECT_EQ(pod_requests(pod).get("cpu"), Quantity::parse("3"));
  EXPECT_EQ(pod_requests(pod, {.use_status_resources = true}).get("cpu"), Quantity::parse("3"));
  // An infeasible resize never happens: only what is allocated/actuated counts.
  pod.status.conditions.push_back(Condition{"PodResizePending", "True", "Infeasible", "", 0});
  EXPECT_TRUE(pod.resize_infeasible());
  EXPECT_EQ(pod_requests(pod, {.use_status_resources = true}).get("cpu"), Quantity::parse("1500m"));
  EXPECT_EQ(pod_limits(pod, {.use_status_resources = true}).get("cpu"), Quantity::parse("1"));
  // Pre-1.33 clusters report it in status.resize.
  Pod old = Pod::parse(fixture("pod-1.33-resize.json"));
  old.status.conditions.clear();
  old.status.resize = "Infeasible";
  EXPECT_TRUE(old.resize_infeasible());
}

TEST(K8sQos, derives_the_class_like_the_kubelet) {
  const ResourceList both = rl({{"cpu", "1"}, {"memory", "1Gi"}});
  EXPECT_EQ(compute_qos_class(pod_of({container("a", {}, {})})), QosClass::BestEffort);
  EXPECT_EQ(compute_qos_class(pod_of({container("a", both, both)})), QosClass::Guaranteed);
  EXPECT_EQ(compute_qos_class(pod_of({container("a", both, both), container("b", both, both)})), QosClass::Guaranteed);
  EXPECT_EQ(compute_qos_class(pod_of({container("a", both, both), container("b", {}, {})})), QosClass::Burstable);
  EXPECT_EQ(compute_qos_class(pod_of({container("a", rl({{"cpu", "500m"}, {"memory", "1Gi"}}), both)})),
            QosClass::Burstable);
  EXPECT_EQ(compute_qos_class(pod_of({container("a", rl({{"cpu", "1"}}), rl({{"cpu", "1"}}))})), QosClass::Burstable);
  // Only cpu and memory count; zero requests count as absent.
  EXPECT_EQ(compute_qos_class(pod_of({container("a", rl({{"ephemeral-storage", "1Gi"}, {"cpu", "0"}}))})),
            QosClass::BestEffort);
  // Init containers take part.
  EXPECT_EQ(compute_qos_class(pod_of({container("a", both, both)}, {container("i", rl({{"cpu", "1"}}))})),
            QosClass::Burstable);
  // status.qosClass wins when present.
  const Pod classic = Pod::parse(fixture("pod-1.19-classic.json"));
  EXPECT_EQ(qos_class(classic), QosClass::Burstable);
  EXPECT_EQ(compute_qos_class(classic), QosClass::Burstable);
  EXPECT_EQ(compute_qos_class(Pod::parse(fixture("pod-1.33-resize.json"))), QosClass::Guaranteed);
}

class MapLookup : public OwnerLookup {
 public:
  std::map<std::string, ReplicaSet> replica_sets;
  std::map<std::string, Job> jobs;
  const ReplicaSet* replica_set(std::string_view ns, std::string_view name) const override {
    auto it = replica_sets.find(std::string(ns) + "/" + std::string(name));
    return it == replica_sets.end() ? nullptr : &it->second;
  }
  const Job* job(std::string_view ns, std::string_view name) const override {
    auto it = jobs.find(std::string(ns) + "/" + std::string(name));
    return it == jobs.end() ? nullptr : &it->second;
  }
};

TEST(K8sWorkloadOwner, resolves_deployments_through_the_replicaset_or_its_name) {
  const Pod pod = Pod::parse(fixture("pod-1.19-classic.json"));
  EXPECT_EQ(resolve_workload(pod), (WorkloadRef{"Deployment", "checkout", "", true}));

  const auto all = nlohmann::json::parse(fixture("workloads.json"));
  MapLookup lookup;
  lookup.replica_sets["shop/checkout-7d4b9c5f8"] = ReplicaSet::from_json(all["replicaset"]);
  EXPECT_EQ(resolve_workload(pod, &lookup),
            (WorkloadRef{"Deployment", "checkout", "d3d3d3d3-0000-0000-0000-000000000001", false}));

  // A bare ReplicaSet (no Deployment owner) stays a ReplicaSet.
  lookup.replica_sets["shop/checkout-7d4b9c5f8"].metadata.owner_references.clear();
  EXPECT_EQ(resolve_workload(pod, &lookup).kind, "ReplicaSet");

  // Without the hash label the name cannot be split.
  Pod unlabeled = pod;
  unlabeled.metadata.labels.erase("pod-template-hash");
  EXPECT_EQ(resolve_workload(unlabeled), (WorkloadRef{"ReplicaSet", "checkout-7d4b9c5f8",
                                                      "c3a1d7e2-55b0-4b8f-9f61-0d2f3f1a7b42", false}));
}

TEST(K8sWorkloadOwner, resolves_statefulsets_jobs_cronjobs_and_bare_pods) {
  EXPECT_EQ(resolve_workload(Pod::parse(fixture("pod-1.29-sidecar.json"))),
            (WorkloadRef{"StatefulSet", "payments-api", "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", false}));
  EXPECT_EQ(resolve_workload(Pod::parse(fixture("pod-1.32-pod-level-resources.json"))),
            (WorkloadRef{"Pod", "pod-level-demo", "11112222-3333-4444-5555-666677778888", false}));

  Pod job_pod = pod_of({});
  job_pod.metadata.namespace_ = "reports";
  job_pod.metadata.owner_references.push_back({"batch/v1", "Job", "nightly-report-28745160", "job-uid-1", true});
  EXPECT_EQ(resolve_workload(job_pod), (WorkloadRef{"Job", "nightly-report-28745160", "job-uid-1", false}));
  MapLookup lookup;
  lookup.jobs["reports/nightly-report-28745160"] = Job::from_json(nlohmann::json::parse(fixture("workloads.json"))["job"]);
  EXPECT_EQ(resolve_workload(job_pod, &lookup), (WorkloadRef{"CronJob", "nightly-report", "cj-uid-1", false}));
  // A recreated Job of the same name (other uid) is not trusted.
  lookup.jobs["reports/nightly-report-28745160"].metadata.uid = "other";
  EXPECT_EQ(resolve_workload(job_pod, &lookup).kind, "Job");

  Pod ds_pod = pod_of({});
  ds_pod.metadata.owner_references.push_back({"apps/v1", "DaemonSet", "podgauge", "ds-1", true});
  ds_pod.metadata.owner_references.push_back({"v1", "ConfigMap", "not-a-controller", "cm", false});
  EXPECT_EQ(resolve_workload(ds_pod).kind, "DaemonSet");
}

}  // namespace
