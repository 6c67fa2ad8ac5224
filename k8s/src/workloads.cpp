#include "podgauge/k8s/workloads.h"

#include <nlohmann/json.hpp>

#include "decode.h"

namespace podgauge::k8s::detail {

namespace {

enum class Shape { ReplicaSet, Deployment, StatefulSet, DaemonSet, Job };

void decode_workload(JsonValue v, const Path& path, Workload& out, Shape shape) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "spec") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "selector") {
          if (!f.is_null()) out.selector = read_label_selector(f, pk);
        } else if ((k == "replicas" && shape != Shape::Job && shape != Shape::DaemonSet) ||
                   (k == "parallelism" && shape == Shape::Job)) {
          if (!f.is_null()) out.replicas = read_int32(f, pk);
        } else if (k == "completions" && shape == Shape::Job) {
          if (!f.is_null()) out.completions = read_int32(f, pk);
        }
      });
    } else if (key == "status") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        switch (shape) {
          case Shape::DaemonSet:
            if (k == "currentNumberScheduled") out.status_replicas = read_int32(f, pk);
            else if (k == "numberReady") out.status_ready_replicas = read_int32(f, pk);
            else if (k == "numberAvailable") out.status_available_replicas = read_int32(f, pk);
            else if (k == "desiredNumberScheduled") out.status_desired = read_int32(f, pk);
            break;
          case Shape::Job:
            if (k == "active") out.status_replicas = read_int32(f, pk);
            else if (k == "ready") out.status_ready_replicas = read_int32(f, pk);
            else if (k == "succeeded") out.status_succeeded = read_int32(f, pk);
            else if (k == "failed") out.status_failed = read_int32(f, pk);
            break;
          default:
            if (k == "replicas") out.status_replicas = read_int32(f, pk);
            else if (k == "readyReplicas") out.status_ready_replicas = read_int32(f, pk);
            else if (k == "availableReplicas") out.status_available_replicas = read_int32(f, pk);
            break;
        }
      });
    }
  });
  require_name(out.metadata, path);
}

}  // namespace

void decode(JsonValue v, const Path& path, ReplicaSet& out) { decode_workload(v, path, out, Shape::ReplicaSet); }
void decode(JsonValue v, const Path& path, Deployment& out) { decode_workload(v, path, out, Shape::Deployment); }
void decode(JsonValue v, const Path& path, StatefulSet& out) { decode_workload(v, path, out, Shape::StatefulSet); }
void decode(JsonValue v, const Path& path, DaemonSet& out) { decode_workload(v, path, out, Shape::DaemonSet); }
void decode(JsonValue v, const Path& path, Job& out) { decode_workload(v, path, out, Shape::Job); }

}  // namespace podgauge::k8s::detail

namespace podgauge::k8s {
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(ReplicaSet)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(Deployment)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(StatefulSet)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(DaemonSet)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(Job)
}  // namespace podgauge::k8s
