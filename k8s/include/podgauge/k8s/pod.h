// core/v1 Pod, reduced to what the profiler needs.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

enum class QosClass : std::uint8_t { Guaranteed, Burstable, BestEffort };
/// "Guaranteed", "Burstable", "BestEffort" (the spelling of status.qosClass).
std::string_view to_string(QosClass qos) noexcept;
std::optional<QosClass> parse_qos_class(std::string_view text) noexcept;

struct ResourceRequirements {
  ResourceList requests;
  ResourceList limits;
};

/// Names, images and enum-like strings of the pod types below are InternedString: they repeat
/// across the pods of a workload, and a cache of thousands of pods keeps one copy of each.
struct Container {
  InternedString name;
  InternedString image;
  ResourceRequirements resources;
  /// Only init containers carry one; "Always" makes an init container a sidecar (1.28+).
  std::optional<InternedString> restart_policy;

  bool is_sidecar() const noexcept { return restart_policy && *restart_policy == "Always"; }
};

enum class ContainerStateKind : std::uint8_t { Unknown, Waiting, Running, Terminated };
std::string_view to_string(ContainerStateKind kind) noexcept;

/// One of waiting / running / terminated (none set: Unknown).
struct ContainerState {
  ContainerStateKind kind = ContainerStateKind::Unknown;
  InternedString reason;  ///< waiting or terminated reason: "CrashLoopBackOff", "OOMKilled" ...
  std::string message;
  std::int64_t started_at = 0;   ///< running or terminated; Unix seconds
  std::int64_t finished_at = 0;  ///< terminated; Unix seconds
  std::int32_t exit_code = 0;  ///< terminated
  std::int32_t signal = 0;     ///< terminated
};

struct ContainerStatus {
  InternedString name;
  std::string container_id;  ///< "containerd://<64hex>"; empty before the container exists
  std::int32_t restart_count = 0;
  bool ready = false;
  std::optional<bool> started;
  ContainerState state;
  ContainerState last_state;
  /// In-place resize (1.27+): what is applied to the running container ...
  std::optional<ResourceRequirements> resources;
  /// ... and what the kubelet has admitted.
  std::optional<ResourceList> allocated_resources;

  bool oom_killed_last() const noexcept {
    return last_state.kind == ContainerStateKind::Terminated && last_state.reason == "OOMKilled";
  }
};

struct PodSpec {
  std::string node_name;
  std::vector<Container> init_containers;
  std::vector<Container> containers;
  /// Pod-level resources (1.32+, PodLevelResources).
  std::optional<ResourceRequirements> resources;
  ResourceList overhead;
  std::optional<std::int32_t> priority;
  InternedString priority_class_name;
  InternedString restart_policy;
};

struct PodStatus {
  InternedString phase;  ///< Pending, Running, Succeeded, Failed, Unknown
  std::optional<QosClass> qos_class;
  std::string pod_ip;
  InternedString host_ip;
  std::int64_t start_time = 0;  ///< Unix seconds
  InternedString reason;  ///< e.g. "Evicted"
  std::vector<Condition> conditions;
  std::vector<ContainerStatus> init_container_statuses;
  std::vector<ContainerStatus> container_statuses;
  /// Deprecated resize state (1.27-1.32: Proposed, InProgress, Deferred, Infeasible).
  InternedString resize;
};

/// Thread-safety: a value type; concurrent const use is safe.
struct Pod {
  ObjectMeta metadata;
  PodSpec spec;
  PodStatus status;

  static constexpr std::string_view kKind = "Pod";
  /// Throws ObjectError (kind, namespace/name, field and problem) on a malformed object.
  static Pod from_json(const nlohmann::json& json);
  /// Parses JSON text; throws JsonSyntaxError or ObjectError.
  static Pod parse(std::string_view json_text);

  /// Succeeded or Failed: the scheduler no longer counts its requests.
  bool is_terminal() const noexcept { return status.phase == "Succeeded" || status.phase == "Failed"; }
  /// The status of the (init) container called `name`, or nullptr.
  const ContainerStatus* container_status(std::string_view name) const noexcept;
  /// The spec of the (init) container called `name`, or nullptr.
  const Container* container(std::string_view name) const noexcept;
  /// The PodResizePending condition says Infeasible, or (pre-1.33) status.resize does.
  bool resize_infeasible() const noexcept;
};

}  // namespace podgauge::k8s
