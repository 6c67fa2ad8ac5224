#pragma once
// meta.k8s.io/v1 Table output, the server-side printing `kubectl get` asks for, with the
// columns upstream's printers define (pkg/printers/internalversion/printers.go).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resource_catalog.h"

namespace podgauge::fakeapi {

enum class IncludeObject { None, Metadata, Object };

/// Stateless. Thread-safety: safe from any thread.
class TablePrinter {
 public:
  /// A Table of `objects` with `list_metadata` ({resourceVersion, continue}).
  static nlohmann::json table(const ResourceType& type, const std::vector<nlohmann::json>& objects,
                              IncludeObject include, nlohmann::json list_metadata,
                              bool with_headers = true);
  /// k8s.io/apimachinery/pkg/util/duration.HumanDuration of now − `rfc3339`.
  static std::string age(const std::string& rfc3339);

 private:
  static nlohmann::json columns(const ResourceType& type);
  static nlohmann::json cells(const ResourceType& type, const nlohmann::json& object);
};

}  // namespace podgauge::fakeapi
