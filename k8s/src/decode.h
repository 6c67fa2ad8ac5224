// Typed readers over the JSON tape; every failure names the JSON path of the field.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "json.h"
#include "podgauge/k8s/error.h"
#include "podgauge/k8s/meta.h"
#include "podgauge/k8s/resources.h"
#include "podgauge/k8s/hpa.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/node.h"
#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/policy.h"
#include "podgauge/k8s/workloads.h"

namespace podgauge::k8s::detail {

/// Keys whose object or array values the decoder of T (and of its list and watch event) never
/// reads, at any depth: the tape skips them (see JsonDocument::parse_at). A key that names a
/// user's data (a label, an annotation) has a string value and is never skipped. Adding a
/// reader for one of these keys means removing it here.
template <class T>
inline constexpr std::span<const std::string_view> kUnreadSubtrees{};

inline constexpr std::string_view kPodUnreadSubtrees[] = {
    "managedFields", "volumes", "env", "envFrom", "volumeMounts", "volumeDevices", "ports",
    "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "securityContext",
    "tolerations", "affinity", "topologySpreadConstraints", "dnsConfig", "readinessGates",
    "podIPs", "hostIPs", "hostAliases", "imagePullSecrets", "schedulingGates", "resourceClaims",
    "ephemeralContainers", "ephemeralContainerStatuses", "command", "args"};
template <>
inline constexpr std::span<const std::string_view> kUnreadSubtrees<Pod>{kPodUnreadSubtrees};

/// A JSON path kept on the stack: only rendered when something fails.
struct Path {
  const Path* parent = nullptr;
  std::string_view key;
  std::int64_t index = -1;

  Path operator/(std::string_view k) const { return Path{this, k, -1}; }
  Path operator[](std::size_t i) const { return Path{this, {}, static_cast<std::int64_t>(i)}; }
  std::string str() const;
};

/// Thrown by the readers; the entry points turn it into an ObjectError naming the object.
struct FieldError {
  std::string path;
  std::string problem;
};

[[noreturn]] void fail(const Path& path, std::string problem);
[[noreturn]] void fail_type(const Path& path, std::string_view expected, JsonValue got);

std::string read_string(JsonValue v, const Path& path);          // null -> ""
InternedString read_interned(JsonValue v, const Path& path);     // null -> ""
std::int64_t read_time(JsonValue v, const Path& path);            // null -> 0
/// The number of elements of an array (0 for anything else), to reserve exactly.
inline std::size_t count_elements(JsonValue v) {
  std::size_t n = 0;
  if (v.is_array()) v.for_each_element([&](JsonValue, std::size_t) { ++n; });
  return n;
}
inline std::size_t count_members(JsonValue v) {
  std::size_t n = 0;
  v.for_each_member([&](std::string_view, JsonValue) { ++n; });
  return n;
}
std::optional<std::string> read_optional_string(JsonValue v, const Path& path);
bool read_bool(JsonValue v, const Path& path);                   // null -> false
std::int64_t read_int64(JsonValue v, const Path& path);          // null -> 0
std::int32_t read_int32(JsonValue v, const Path& path);          // null -> 0
Quantity read_quantity(JsonValue v, const Path& path);           // string or number
ResourceList read_resource_list(JsonValue v, const Path& path);  // null -> {}
StringMap read_string_map(JsonValue v, const Path& path);        // null -> {}
std::vector<std::string> read_string_array(JsonValue v, const Path& path);
void read_meta(JsonValue v, const Path& path, ObjectMeta& out);
/// Fails unless metadata.name was present.
void require_name(const ObjectMeta& meta, const Path& path);
LabelSelector read_label_selector(JsonValue v, const Path& path);
std::vector<Condition> read_conditions(JsonValue v, const Path& path);

/// Calls f(key, value) for each member; null is an empty object, anything else fails.
template <class F>
void members(JsonValue v, const Path& path, F&& f) {
  if (v.is_null()) return;
  if (!v.is_object()) fail_type(path, "object", v);
  v.for_each_member(std::forward<F>(f));
}

/// Calls f(value, index) for each element; null is an empty array, anything else fails.
template <class F>
void elements(JsonValue v, const Path& path, F&& f) {
  if (v.is_null()) return;
  if (!v.is_array()) fail_type(path, "array", v);
  v.for_each_element(std::forward<F>(f));
}

/// The namespace/name of an object, read leniently, to name it in an error.
struct Identity {
  std::string namespace_;
  std::string name;
};
Identity peek_identity(JsonValue object);

/// Runs `decode` on the document root; FieldError becomes ObjectError for kind + identity.
template <class T, class Decode>
T decode_root(JsonValue root, std::string_view kind, Decode&& decode) {
  T out{};
  try {
    if (!root.is_object()) fail_type(Path{}, "object", root);
    decode(root, Path{}, out);
  } catch (FieldError& e) {
    Identity id = root.is_object() ? peek_identity(root) : Identity{};
    throw ObjectError(std::string(kind), std::move(id.namespace_), std::move(id.name),
                      std::move(e.path), std::move(e.problem));
  }
  return out;
}

/// Serialises an nlohmann value so the tape reader can take it (one decoder for both inputs).
std::string dump(const nlohmann::json& json);

// Decoders of each kind (a list's items use them too).
void decode(JsonValue v, const Path& path, Pod& out);
void decode(JsonValue v, const Path& path, Node& out);
void decode(JsonValue v, const Path& path, Namespace& out);
void decode(JsonValue v, const Path& path, ResourceQuota& out);
void decode(JsonValue v, const Path& path, LimitRange& out);
void decode(JsonValue v, const Path& path, ReplicaSet& out);
void decode(JsonValue v, const Path& path, Deployment& out);
void decode(JsonValue v, const Path& path, StatefulSet& out);
void decode(JsonValue v, const Path& path, DaemonSet& out);
void decode(JsonValue v, const Path& path, Job& out);
void decode(JsonValue v, const Path& path, HorizontalPodAutoscaler& out);
void decode(JsonValue v, const Path& path, Status& out);

}  // namespace podgauge::k8s::detail

/// Defines T::from_json and T::parse in terms of detail::decode.
#define PODGAUGE_K8S_DEFINE_ENTRY_POINTS(T)                                            \
  T T::parse(std::string_view json_text) {                                             \
    const ::podgauge::k8s::detail::JsonDocument doc(json_text);                        \
    return ::podgauge::k8s::detail::decode_root<T>(                                    \
        doc.root(), T::kKind,                                                          \
        [](auto v, const auto& p, T& out) { ::podgauge::k8s::detail::decode(v, p, out); }); \
  }                                                                                    \
  T T::from_json(const nlohmann::json& json) { return parse(::podgauge::k8s::detail::dump(json)); }
