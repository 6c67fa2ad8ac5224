#include "podgauge/k8s/policy.h"

#include <nlohmann/json.hpp>

#include "decode.h"

namespace podgauge::k8s {

const LimitRangeItem* LimitRange::item(std::string_view type) const noexcept {
  for (const auto& i : limits) {
    if (i.type == type) return &i;
  }
  return nullptr;
}

namespace detail {

void decode(JsonValue v, const Path& path, ResourceQuota& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "spec") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "hard") {
          out.spec_hard = read_resource_list(f, pk);
        } else if (k == "scopes") {
          out.scopes = read_string_array(f, pk);
        } else if (k == "scopeSelector") {
          members(f, pk, [&](std::string_view sk, JsonValue sf) {
            if (sk != "matchExpressions") return;
            const Path ps = pk / sk;
            elements(sf, ps, [&](JsonValue e, std::size_t i) {
              const Path pi = ps[i];
              ScopedResourceSelectorRequirement r;
              members(e, pi, [&](std::string_view rk, JsonValue rf) {
                if (rk == "scopeName") r.scope_name = read_string(rf, pi / rk);
                else if (rk == "operator") r.operator_ = read_string(rf, pi / rk);
                else if (rk == "values") r.values = read_string_array(rf, pi / rk);
              });
              out.scope_selector.push_back(std::move(r));
            });
          });
        }
      });
    } else if (key == "status") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        if (k == "hard") out.status_hard = read_resource_list(f, p / k);
        else if (k == "used") out.used = read_resource_list(f, p / k);
      });
    }
  });
  require_name(out.metadata, path);
}

void decode(JsonValue v, const Path& path, LimitRange& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "spec") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        if (k != "limits") return;
        const Path pl = p / k;
        elements(f, pl, [&](JsonValue e, std::size_t i) {
          const Path pi = pl[i];
          LimitRangeItem item;
          members(e, pi, [&](std::string_view ik, JsonValue iv) {
            const Path pk = pi / ik;
            if (ik == "type") item.type = read_string(iv, pk);
            else if (ik == "max") item.max = read_resource_list(iv, pk);
            else if (ik == "min") item.min = read_resource_list(iv, pk);
            else if (ik == "default") item.default_limit = read_resource_list(iv, pk);
            else if (ik == "defaultRequest") item.default_request = read_resource_list(iv, pk);
            else if (ik == "maxLimitRequestRatio") item.max_limit_request_ratio = read_resource_list(iv, pk);
          });
          out.limits.push_back(std::move(item));
        });
      });
    }
  });
  require_name(out.metadata, path);
}

}  // namespace detail

PODGAUGE_K8S_DEFINE_ENTRY_POINTS(ResourceQuota)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(LimitRange)

}  // namespace podgauge::k8s
