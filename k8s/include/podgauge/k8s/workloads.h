// The workload controllers pods belong to: ReplicaSet, Deployment, StatefulSet, DaemonSet, Job.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>

#include "podgauge/k8s/meta.h"

namespace podgauge::k8s {

/// The fields the kinds share. `replicas` is spec.replicas (spec.parallelism for a Job, absent
/// for a DaemonSet); the status counts are those the kind reports (others stay 0).
struct Workload {
  ObjectMeta metadata;
  std::optional<std::int32_t> replicas;
  std::optional<LabelSelector> selector;
  std::int32_t status_replicas = 0;          ///< status.replicas / currentNumberScheduled / active
  std::int32_t status_ready_replicas = 0;    ///< readyReplicas / numberReady / ready
  std::int32_t status_available_replicas = 0;
  std::int32_t status_desired = 0;           ///< DaemonSet desiredNumberScheduled
  std::int32_t status_succeeded = 0;         ///< Job
  std::int32_t status_failed = 0;            ///< Job
  std::optional<std::int32_t> completions;   ///< Job spec.completions
};

// Distinct types so that ObjectList<ReplicaSet> and friends are distinct too.
struct ReplicaSet : Workload {
  static constexpr std::string_view kKind = "ReplicaSet";
  static ReplicaSet from_json(const nlohmann::json& json);
  static ReplicaSet parse(std::string_view json_text);
};
struct Deployment : Workload {
  static constexpr std::string_view kKind = "Deployment";
  static Deployment from_json(const nlohmann::json& json);
  static Deployment parse(std::string_view json_text);
};
struct StatefulSet : Workload {
  static constexpr std::string_view kKind = "StatefulSet";
  static StatefulSet from_json(const nlohmann::json& json);
  static StatefulSet parse(std::string_view json_text);
};
struct DaemonSet : Workload {
  static constexpr std::string_view kKind = "DaemonSet";
  static DaemonSet from_json(const nlohmann::json& json);
  static DaemonSet parse(std::string_view json_text);
};
struct Job : Workload {
  static constexpr std::string_view kKind = "Job";
  static Job from_json(const nlohmann::json& json);
  static Job parse(std::string_view json_text);
};

}  // namespace podgauge::k8s
