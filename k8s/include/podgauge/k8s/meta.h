// ObjectMeta and the other small structures every kind shares.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/k8s/resources.h"

namespace podgauge::k8s {

struct OwnerReference {
  InternedString api_version;
  InternedString kind;
  std::string name;
  std::string uid;
  bool controller = false;
  friend bool operator==(const OwnerReference&, const OwnerReference&) = default;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
  std::int64_t creation_timestamp = 0;              ///< Unix seconds (0: absent)
  std::optional<std::int64_t> deletion_timestamp;  ///< Unix seconds; set while terminating
  StringMap labels;
  StringMap annotations;
  std::vector<OwnerReference> owner_references;

  /// The owner reference with controller: true (there is at most one).
  const OwnerReference* controller() const noexcept;
  const std::string* label(std::string_view key) const noexcept { return labels.find(key); }
  const std::string* annotation(std::string_view key) const noexcept { return annotations.find(key); }
  bool terminating() const noexcept { return deletion_timestamp.has_value(); }
};

/// A requirement of a LabelSelector: key In/NotIn/Exists/DoesNotExist values.
struct LabelSelectorRequirement {
  std::string key;
  std::string operator_;
  std::vector<std::string> values;
};

/// metav1.LabelSelector. An empty selector matches everything; an absent one (nullopt at the
/// use site) matches nothing, as in apps/v1.
struct LabelSelector {
  StringMap match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;

  /// Whether `labels` satisfy every term; an unknown operator never matches.
  bool matches(const StringMap& labels) const;
};

/// A status condition (pods, nodes, HPAs ...).
/// type, status and reason come from small fixed vocabularies: interned.
struct Condition {
  InternedString type;
  InternedString status;  ///< "True", "False", "Unknown"
  InternedString reason;
  std::string message;
  std::int64_t last_transition_time = 0;  ///< Unix seconds (0: absent)
};

/// Parses an RFC 3339 time ("2024-05-01T10:00:00Z", fractions and offsets allowed) to Unix
/// seconds (fractions truncated); nullopt when malformed.
std::optional<std::int64_t> parse_rfc3339(std::string_view text) noexcept;

/// The condition of `type`, or nullptr.
const Condition* find_condition(const std::vector<Condition>& conditions, std::string_view type) noexcept;

}  // namespace podgauge::k8s
