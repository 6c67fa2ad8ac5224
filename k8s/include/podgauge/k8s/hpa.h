// autoscaling/v2 HorizontalPodAutoscaler.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/quantity.h"

namespace podgauge::k8s {

struct CrossVersionObjectReference {
  std::string api_version;
  std::string kind;
  std::string name;
};

enum class MetricSourceType : std::uint8_t { Resource, ContainerResource, Pods, Object, External };
std::string_view to_string(MetricSourceType type) noexcept;

enum class MetricTargetType : std::uint8_t { Utilization, Value, AverageValue };
std::string_view to_string(MetricTargetType type) noexcept;

struct MetricTarget {
  MetricTargetType type = MetricTargetType::Utilization;
  std::optional<Quantity> value;
  std::optional<Quantity> average_value;
  std::optional<std::int32_t> average_utilization;  ///< percent of the request
};

struct MetricIdentifier {
  std::string name;
  std::optional<LabelSelector> selector;
};

/// One entry of spec.metrics. Which fields are set depends on `type`:
/// Resource: resource_name; ContainerResource: resource_name, container; Pods/External: metric;
/// Object: metric, described_object.
struct MetricSpec {
  MetricSourceType type = MetricSourceType::Resource;
  std::string resource_name;
  std::string container;
  MetricIdentifier metric;
  CrossVersionObjectReference described_object;
  MetricTarget target;
};

struct MetricValueStatus {
  std::optional<Quantity> value;
  std::optional<Quantity> average_value;
  std::optional<std::int32_t> average_utilization;
};

/// One entry of status.currentMetrics, shaped like MetricSpec.
struct MetricStatus {
  MetricSourceType type = MetricSourceType::Resource;
  std::string resource_name;
  std::string container;
  MetricIdentifier metric;
  CrossVersionObjectReference described_object;
  MetricValueStatus current;
};

struct HpaScalingPolicy {
  std::string type;  ///< Pods, Percent
  std::int32_t value = 0;
  std::int32_t period_seconds = 0;
};

struct HpaScalingRules {
  std::optional<std::int32_t> stabilization_window_seconds;
  std::string select_policy;  ///< Max, Min, Disabled (empty: Max)
  std::vector<HpaScalingPolicy> policies;
  std::optional<Quantity> tolerance;  ///< 1.33+ (HPAConfigurableTolerance)
};

struct HpaBehavior {
  std::optional<HpaScalingRules> scale_up;
  std::optional<HpaScalingRules> scale_down;
};

/// Thread-safety: a value type; concurrent const use is safe.
struct HorizontalPodAutoscaler {
  ObjectMeta metadata;
  CrossVersionObjectReference scale_target_ref;
  std::int32_t min_replicas = 1;  ///< the API default when absent
  std::int32_t max_replicas = 0;
  std::vector<MetricSpec> metrics;
  std::optional<HpaBehavior> behavior;
  std::int32_t current_replicas = 0;
  std::int32_t desired_replicas = 0;
  std::int64_t last_scale_time = 0;  ///< Unix seconds
  std::vector<MetricStatus> current_metrics;
  std::vector<Condition> conditions;

  static constexpr std::string_view kKind = "HorizontalPodAutoscaler";
  static HorizontalPodAutoscaler from_json(const nlohmann::json& json);
  static HorizontalPodAutoscaler parse(std::string_view json_text);
};

}  // namespace podgauge::k8s
