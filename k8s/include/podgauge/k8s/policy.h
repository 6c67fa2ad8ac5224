// ResourceQuota and LimitRange.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

struct ScopedResourceSelectorRequirement {
  std::string scope_name;  ///< Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass ...
  std::string operator_;   ///< In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
};

/// Thread-safety: a value type; concurrent const use is safe.
struct ResourceQuota {
  ObjectMeta metadata;
  ResourceList spec_hard;
  std::vector<std::string> scopes;
  std::vector<ScopedResourceSelectorRequirement> scope_selector;
  ResourceList status_hard;
  ResourceList used;

  static constexpr std::string_view kKind = "ResourceQuota";
  static ResourceQuota from_json(const nlohmann::json& json);
  static ResourceQuota parse(std::string_view json_text);
};

struct LimitRangeItem {
  std::string type;  ///< Container, Pod, PersistentVolumeClaim
  ResourceList max;
  ResourceList min;
  ResourceList default_limit;    ///< "default"
  ResourceList default_request;  ///< "defaultRequest"
  ResourceList max_limit_request_ratio;
};

struct LimitRange {
  ObjectMeta metadata;
  std::vector<LimitRangeItem> limits;

  static constexpr std::string_view kKind = "LimitRange";
  static LimitRange from_json(const nlohmann::json& json);
  static LimitRange parse(std::string_view json_text);
  /// The first item of `type`, or nullptr.
  const LimitRangeItem* item(std::string_view type) const noexcept;
};

}  // namespace podgauge::k8s
