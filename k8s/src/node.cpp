#include "podgauge/k8s/node.h"

#include <nlohmann/json.hpp>

#include "decode.h"

namespace podgauge::k8s {

bool Node::ready() const noexcept {
  const Condition* c = find_condition(conditions, "Ready");
  return c != nullptr && c->status == "True";
}

namespace detail {

void decode(JsonValue v, const Path& path, Node& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "spec") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "unschedulable") {
          out.unschedulable = read_bool(f, pk);
        } else if (k == "taints") {
          elements(f, pk, [&](JsonValue e, std::size_t i) {
            const Path pi = pk[i];
            Taint t;
            members(e, pi, [&](std::string_view tk, JsonValue tf) {
              if (tk == "key") t.key = read_string(tf, pi / tk);
              else if (tk == "value") t.value = read_string(tf, pi / tk);
              else if (tk == "effect") t.effect = read_string(tf, pi / tk);
            });
            out.taints.push_back(std::move(t));
          });
        }
      });
    } else if (key == "status") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        const Path pk = p / k;
        if (k == "capacity") {
          out.capacity = read_resource_list(f, pk);
        } else if (k == "allocatable") {
          out.allocatable = read_resource_list(f, pk);
        } else if (k == "conditions") {
          out.conditions = read_conditions(f, pk);
        } else if (k == "nodeInfo") {
          members(f, pk, [&](std::string_view nk, JsonValue nf) {
            if (nk == "kubeletVersion") out.kubelet_version = read_string(nf, pk / nk);
            else if (nk == "containerRuntimeVersion") out.container_runtime_version = read_string(nf, pk / nk);
            else if (nk == "kernelVersion") out.kernel_version = read_string(nf, pk / nk);
          });
        }
      });
    }
  });
  require_name(out.metadata, path);
}

void decode(JsonValue v, const Path& path, Namespace& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "metadata") {
      read_meta(value, p, out.metadata);
    } else if (key == "status") {
      members(value, p, [&](std::string_view k, JsonValue f) {
        if (k == "phase") out.phase = read_string(f, p / k);
      });
    }
  });
  require_name(out.metadata, path);
}

}  // namespace detail

PODGAUGE_K8S_DEFINE_ENTRY_POINTS(Node)
PODGAUGE_K8S_DEFINE_ENTRY_POINTS(Namespace)

}  // namespace podgauge::k8s
