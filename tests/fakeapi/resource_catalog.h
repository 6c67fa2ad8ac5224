#pragma once
// The API resources the fake serves, and the discovery documents describing them.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::fakeapi {

struct ResourceType {
  std::string group;  // "" for core
  std::string version;
  std::string plural;  // "pods"
  std::string singular;
  std::string kind;
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;

  std::string group_version() const { return group.empty() ? version : group + "/" + version; }
  /// "/api/v1" or "/apis/apps/v1".
  std::string path_prefix() const;
  /// "pods" or "deployments.apps": the resource as error messages and RBAC name it.
  std::string qualified() const { return group.empty() ? plural : plural + "." + group; }
};

/// Immutable after construction. Thread-safety: safe from any thread.
class ResourceCatalog {
 public:
  /// The built-in set: core v1, apps/v1, autoscaling/v2 and (unless `events_k8s_io` is false,
  /// as on servers before 1.19) events.k8s.io/v1.
  explicit ResourceCatalog(bool events_k8s_io = true);

  const std::vector<ResourceType>& types() const { return types_; }
  const ResourceType* find(std::string_view group, std::string_view version,
                           std::string_view plural) const;
  /// "pods", "po", "deployments.apps", "Pod": what a test would type.
  const ResourceType& resolve(std::string_view name) const;
  /// Distinct group/versions in serving order, core first.
  std::vector<std::pair<std::string, std::string>> group_versions() const;

  // Legacy discovery.
  nlohmann::json api_versions(const std::string& server_address) const;  // /api
  nlohmann::json api_group_list() const;                                  // /apis
  std::optional<nlohmann::json> api_resource_list(std::string_view group,
                                                  std::string_view version) const;
  // Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList): core or the groups.
  nlohmann::json aggregated_discovery(bool core) const;
  // OpenAPI v3: the index and one group/version's document (PATCH operations declaring the
  // fieldValidation parameter, so kubectl validates on the server side).
  nlohmann::json openapi_v3_index() const;
  std::optional<nlohmann::json> openapi_v3_document(std::string_view group,
                                                    std::string_view version) const;

  static const std::vector<std::string>& verbs();

 private:
  std::vector<ResourceType> types_;
};

}  // namespace podgauge::fakeapi
