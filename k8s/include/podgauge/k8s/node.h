// core/v1 Node and Namespace.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

struct Taint {
  std::string key;
  std::string value;
  std::string effect;  ///< NoSchedule, PreferNoSchedule, NoExecute
};

/// Thread-safety: a value type; concurrent const use is safe.
struct Node {
  ObjectMeta metadata;
  bool unschedulable = false;
  std::vector<Taint> taints;
  ResourceList capacity;
  ResourceList allocatable;
  std::vector<Condition> conditions;  ///< Ready, MemoryPressure, DiskPressure, PIDPressure ...
  std::string kubelet_version;
  std::string container_runtime_version;
  std::string kernel_version;

  static constexpr std::string_view kKind = "Node";
  static Node from_json(const nlohmann::json& json);
  static Node parse(std::string_view json_text);

  /// The Ready condition is "True".
  bool ready() const noexcept;
};

struct Namespace {
  ObjectMeta metadata;
  std::string phase;  ///< Active, Terminating

  static constexpr std::string_view kKind = "Namespace";
  static Namespace from_json(const nlohmann::json& json);
  static Namespace parse(std::string_view json_text);
};

}  // namespace podgauge::k8s
