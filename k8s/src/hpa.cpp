#include "podgauge/k8s/hpa.h"

#include <nlohmann/json.hpp>

#include "decode.h"

namespace podgauge::k8s {

std::string_view to_string(MetricSourceType type) noexcept {
  switch (type) {
    case MetricSourceType::Resource: return "Resource";
    case MetricSourceType::ContainerResource: return "ContainerResource";
    case MetricSourceType::Pods: return "Pods";
    case MetricSourceType::Object: return "Object";
    case MetricSourceType::External: return "External";
  }
  return "Resource";
}

std::string_view to_string(MetricTargetType type) noexcept {
  switch (type) {
    case MetricTargetType::Utilization: return "Utilization";
    case MetricTargetType::Value: return "Value";
    case MetricTargetType::AverageValue: return "AverageValue";
  }
  return "Utilization";
}

namespace detail {
namespace {

MetricSourceType read_source_type(JsonValue v, const Path& path) {
  const std::string text = read_string(v, path);
  if (text == "Resource") return MetricSourceType::Resource;
  if (text == "ContainerResource") return MetricSourceType::ContainerResource;
  if (text == "Pods") return MetricSourceType::Pods;
  if (text == "Object") return MetricSourceType::Object;
  if (text == "External") return MetricSourceType::External;
  fail(path, "unknown metric source type \"" + text.substr(0, 40) +
                 "\" (expected Resource, ContainerResource, Pods, Object or External)");
}

std::string_view source_key(MetricSourceType type) {
  switch (type) {
    case MetricSourceType::Resource: return "resource";
    case MetricSourceType::ContainerResource: return "containerResource";
    case MetricSourceType::Pods: return "pods";
    case MetricSourceType::Object: return "object";
    case MetricSourceType::External: return "external";
  }
  return "resource";
}

CrossVersionObjectReference read_reference(JsonValue v, const Path& path) {
  CrossVersionObjectReference out;
  members(v, path, [&](std::string_view k, JsonValue f) {
    if (k == "apiVersion") out.api_version = read_string(f, path / k);
    else if (k == "kind") out.kind = read_string(f, path / k);
    else if (k == "name") out.name = read_string(f, path / k);
  });
  return out;
}

MetricIdentifier read_identifier(JsonValue v, const Path& path) {
  MetricIdentifier out;
  members(v, path, [&](std::string_view k, JsonValue f) {
    if (k == "name") out.name = read_string(f, path / k);
    else if (k == "selector" && !f.is_null()) out.selector = read_label_selector(f, path / k);
  });
  return out;
}

// The value fields shared by MetricTarget and MetricValueStatus.
template <class T>
bool read_value_field(std::string_view k, JsonValue f, const Path& path, T& out) {
  if (k == "value") {
    if (!f.is_null()) out.value = read_quantity(f, path / k);
  } else if (k == "averageValue") {
    if (!f.is_null()) out.average_value = read_quantity(f, path / k);
  } else if (k == "averageUtilization") {
    if (!f.is_null()) out.average_utilization = read_int32(f, path / k);
  } else {
    return false;
  }
  return true;
}

MetricTarget read_target(JsonValue v, const Path& path) {
  MetricTarget out;
  bool has_type = false;
  members(v, path, [&](std::string_view k, JsonValue f) {
    if (read_value_field(k, f, path, out)) return;
    if (k != "type") return;
    const std::string text = read_string(f, path / k);
    has_type = true;
    if (text == "Utilization") out.type = MetricTargetType::Utilization;
    else if (text == "Value") out.type = MetricTargetType::Value;
    else if (text == "AverageValue") out.type = MetricTargetType::AverageValue;
    else fail(path / k, "unknown metric target type \"" + text.substr(0, 40) +
                            "\" (expected Utilization, Value or AverageValue)");
  });
  if (!has_type) fail(path / "type", "required field is missing");
  return out;
}

// Reads spec.metrics[i] (Spec = MetricSpec, "target") or status.currentMetrics[i] ("current").
template <class Spec, class ReadValue>
Spec read_metric(JsonValue v, const Path& path, std::string_view value_key, ReadValue read_value) {
  Spec out;
  bool has_type = false;
  members(v, path, [&](std::string_view k, JsonValue f) {
    if (k == "type") {
      out.type = read_source_type(f, path / k);
      has_type = true;
    }
  });
  if (!has_type) fail(path / "type", "required field is missing");
  const std::string_view source = source_key(out.type);
  bool has_source = false;
  members(v, path, [&](std::string_view k, JsonValue f) {
    if (k != source || f.is_null()) return;
    has_source = true;
    const Path ps = path / k;
    members(f, ps, [&](std::string_view sk, JsonValue sf) {
      const Path pk = ps / sk;
      if (sk == "name") out.resource_name = read_string(sf, pk);
      else if (sk == "container") out.container = read_string(sf, pk);
      else if (sk == "metric") out.metric = read_identifier(sf, pk);
      else if (sk == "describedObject") out.described_object = read_reference(sf, pk);
      else if (sk == value_key) read_value(sf, pk, out);
    });
  });
  if (!has_source) {
    fail(path / source, "required for a metric of type " + std::string(to_string(out.type)));
  }
  return out;
}

HpaScalingRules read_rules(JsonValue v, const Path& path) {
  HpaScalingRules out;
  members(v, path, [&](std::string_view k, JsonValue f) {
    const Path pk = path / k;
    if (k == "stabilizationWindowSeconds") {
      if (!f.is_null()) out.stabilization_window_seconds = read_int32(f, pk);
    } else if (k == "selectPolicy") {
      out.select_policy = read_string(f, pk);
    } else if (k == "tolerance") {
      if (!f.is_null()) out.tolerance = read_quantity(f, pk);
    } else if (k == "policies") {
      elements(f, pk, [&](JsonValue e, std::size_t i) {
        const Path pi = pk[i];
        HpaScalingPolicy policy;
        members(e, pi, [&](std::string_view pk2, JsonValue pf) {
          if (pk2 == "type") policy.type = read_string(pf, pi / pk2);
          else if (pk2 == "value") policy.value = read_int32(pf, pi / pk2);
          else if (pk2 == "periodSeconds") policy.period_seconds = read_int32(pf, pi / pk2);
        });
        out.policies.push_back(std::move(policy));
      });
    }
  });
  return out;
}

}  // namespace

void decode(JsonValue v, const Path& path, HorizontalPodAutoscaler& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "spec") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "scaleTargetRef") {
          out.scale_target_ref = read_reference(f, pk);
        } else if (k == "minReplicas") {
          if (!f.is_null()) out.min_replicas = read_int32(f, pk);
        } else if (k == "maxReplicas") {
          out.max_replicas = read_int32(f, pk);
        } else if (k == "metrics") {
          elements(f, pk, [&](JsonValue e, std::size_t i) {
            out.metrics.push_back(read_metric<MetricSpec>(
                e, pk[i], "target",
                [](JsonValue t, const Path& pt, MetricSpec& m) { m.target = read_target(t, pt); }));
          });
        } else if (k == "behavior" && !f.is_null()) {
          HpaBehavior behavior;
          members(f, pk, [&](std::string_view bk, JsonValue bf) {
            if (bf.is_null()) return;
            if (bk == "scaleUp") behavior.scale_up = read_rules(bf, pk / bk);
            else if (bk == "scaleDown") behavior.scale_down = read_rules(bf, pk / bk);
          });
          out.behavior = std::move(behavior);
        }
      });
    } else if (key == "status") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "currentReplicas") {
          out.current_replicas = read_int32(f, pk);
        } else if (k == "desiredReplicas") {
          out.desired_replicas = read_int32(f, pk);
        } else if (k == "lastScaleTime") {
          out.last_scale_time = read_time(f, pk);
        } else if (k == "conditions") {
          out.conditions = read_conditions(f, pk);
        } else if (k == "currentMetrics") {
          elements(f, pk, [&](JsonValue e, std::size_t i) {
            out.current_metrics.push_back(read_metric<MetricStatus>(
                e, pk[i], "current", [](JsonValue c, const Path& pc, MetricStatus& m) {
                  members(c, pc, [&](std::string_view ck, JsonValue cf) {
                    read_value_field(ck, cf, pc, m.current);
                  });
                }));
          });
        }
      });
    }
  });
  require_name(out.metadata, path);
}

}  // namespace detail

PODGAUGE_K8S_DEFINE_ENTRY_POINTS(HorizontalPodAutoscaler)

}  // namespace podgauge::k8s
