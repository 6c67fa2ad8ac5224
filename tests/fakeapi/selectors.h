#pragma once
// labelSelector and fieldSelector as the API server parses and applies them.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::fakeapi {

/// Immutable once parsed. Thread-safety: safe from any thread.
class LabelSelector {
 public:
  /// Throws ApiError (400 BadRequest) for a malformed selector. "" selects everything.
  static LabelSelector parse(std::string_view text);
  bool matches(const nlohmann::json& object) const;  // object.metadata.labels
  bool empty() const { return requirements_.empty(); }

 private:
  enum class Op { Equals, NotEquals, In, NotIn, Exists, DoesNotExist, Gt, Lt };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

/// Immutable once parsed. Thread-safety: safe from any thread.
class FieldSelector {
 public:
  /// `kind` decides which fields are supported (metadata.name/namespace everywhere; pods:
  /// spec.nodeName, status.phase, ...). Throws ApiError 400 for anything else.
  static FieldSelector parse(std::string_view text, std::string_view kind);
  bool matches(const nlohmann::json& object) const;
  bool empty() const { return terms_.empty(); }

 private:
  struct Term {
    std::string field;
    bool negated;
    std::string value;
  };
  std::vector<Term> terms_;
};

}  // namespace podgauge::fakeapi
