#include "resource_catalog.h"

#include <stdexcept>

#include "api_error.h"

namespace podgauge::fakeapi {

using nlohmann::json;

std::string ResourceType::path_prefix() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

ResourceCatalog::ResourceCatalog(bool events_k8s_io) {
  types_ = {
      {"", "v1", "pods", "pod", "Pod", true, {"po"}, {"all"}},
      {"", "v1", "nodes", "node", "Node", false, {"no"}, {}},
      {"", "v1", "namespaces", "namespace", "Namespace", false, {"ns"}, {}},
      {"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true, {"quota"}, {}},
      {"", "v1", "limitranges", "limitrange", "LimitRange", true, {"limits"}, {}},
      {"", "v1", "events", "event", "Event", true, {"ev"}, {}},
      {"apps", "v1", "deployments", "deployment", "Deployment", true, {"deploy"}, {"all"}},
      {"apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, {"rs"}, {"all"}},
      {"batch", "v1", "jobs", "job", "Job", true, {}, {"all"}},
      {"autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
       "HorizontalPodAutoscaler", true, {"hpa"}, {"all"}},
  };
  if (events_k8s_io)
    types_.push_back({"events.k8s.io", "v1", "events", "event", "Event", true, {"ev"}, {}});
}

const std::vector<std::string>& ResourceCatalog::verbs() {
  static const std::vector<std::string> v{"create", "delete", "deletecollection", "get",
                                          "list",   "patch",  "update",           "watch"};
  return v;
}

const ResourceType* ResourceCatalog::find(std::string_view group, std::string_view version,
                                          std::string_view plural) const {
  for (const auto& t : types_)
    if (t.group == group && t.version == version && t.plural == plural) return &t;
  return nullptr;
}

const ResourceType& ResourceCatalog::resolve(std::string_view name) const {
  for (const auto& t : types_) {
    if (name == t.plural || name == t.qualified() || name == t.singular || name == t.kind)
      return t;
    for (const auto& s : t.short_names)
      if (name == s) return t;
  }
  throw std::invalid_argument("fakeapi: unknown resource \"" + std::string(name) + "\"");
}

std::vector<std::pair<std::string, std::string>> ResourceCatalog::group_versions() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& t : types_) {
    std::pair<std::string, std::string> gv{t.group, t.version};
    if (std::find(out.begin(), out.end(), gv) == out.end()) out.push_back(gv);
  }
  return out;
}

json ResourceCatalog::api_versions(const std::string& server_address) const {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

json ResourceCatalog::api_group_list() const {
  json groups = json::array();
  for (const auto& [g, v] : group_versions()) {
    if (g.empty()) continue;
    json gv = {{"groupVersion", g + "/" + v}, {"version", v}};
    groups.push_back({{"name", g}, {"versions", {gv}}, {"preferredVersion", gv}});
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<json> ResourceCatalog::api_resource_list(std::string_view group,
                                                       std::string_view version) const {
  json resources = json::array();
  for (const auto& t : types_) {
    if (t.group != group || t.version != version) continue;
    json r = {{"name", t.plural},          {"singularName", t.singular},
              {"namespaced", t.namespaced}, {"kind", t.kind},
              {"verbs", verbs()}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    if (!t.categories.empty()) r["categories"] = t.categories;
    resources.push_back(r);
    if (t.plural == "pods" || t.plural == "namespaces" || t.plural == "nodes" ||
        t.plural == "deployments" || t.plural == "replicasets" || t.plural == "jobs" ||
        t.plural == "horizontalpodautoscalers" || t.plural == "resourcequotas") {
      resources.push_back({{"name", t.plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  if (resources.empty()) return std::nullopt;
  std::string gv = group.empty() ? std::string(version)
                                 : std::string(group) + "/" + std::string(version);
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", gv},
              {"resources", resources}};
}

json ResourceCatalog::aggregated_discovery(bool core) const {
  json items = json::array();
  for (const auto& [g, v] : group_versions()) {
    if (core != g.empty()) continue;
    json resources = json::array();
    for (const auto& t : types_) {
      if (t.group != g || t.version != v) continue;
      json r = {{"resource", t.plural},
                {"responseKind", {{"group", t.group}, {"version", t.version}, {"kind", t.kind}}},
                {"scope", t.namespaced ? "Namespaced" : "Cluster"},
                {"singularResource", t.singular},
                {"verbs", verbs()}};
      if (!t.short_names.empty()) r["shortNames"] = t.short_names;
      if (!t.categories.empty()) r["categories"] = t.categories;
      r["subresources"] = {{{"subresource", "status"},
                            {"responseKind", {{"group", t.group}, {"version", t.version},
                                              {"kind", t.kind}}},
                            {"verbs", {"get", "patch", "update"}}}};
      resources.push_back(r);
    }
    json metadata = {{"creationTimestamp", nullptr}};
    if (!g.empty()) metadata["name"] = g;
    items.push_back({{"metadata", metadata},
                     {"versions", {{{"version", v}, {"resources", resources},
                                    {"freshness", "Current"}}}}});
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/v2"},
          {"metadata", json::object()},
          {"items", items}};
}

namespace {
std::string gv_path(const std::string& g, const std::string& v) {
  return g.empty() ? "api/" + v : "apis/" + g + "/" + v;
}
}  // namespace

json ResourceCatalog::openapi_v3_index() const {
  json paths = json::object();
  for (const auto& [g, v] : group_versions()) {
    auto p = gv_path(g, v);
    // The hash lets client-go cache a document for good; ours never change within a build.
    paths[p] = {{"serverRelativeURL", "/openapi/v3/" + p + "?hash=podgauge-fakeapi-1"}};
  }
  return {{"paths", paths}};
}

std::optional<json> ResourceCatalog::openapi_v3_document(std::string_view group,
                                                         std::string_view version) const {
  json paths = json::object();
  const json params = json::array(
      {{{"name", "dryRun"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
       {{"name", "fieldManager"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
       {{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
       {{"name", "force"}, {"in", "query"}, {"schema", {{"type", "boolean"}}}}});
  for (const auto& t : types_) {
    if (t.group != group || t.version != version) continue;
    json gvk = {{"group", t.group}, {"version", t.version}, {"kind", t.kind}};
    std::string item = t.path_prefix() + (t.namespaced ? "/namespaces/{namespace}/" : "/") +
                       t.plural + "/{name}";
    std::string collection =
        t.path_prefix() + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural;
    auto op = [&](const std::string& verb, const std::string& id) {
      return json{{"operationId", id + t.kind},
                  {"parameters", params},
                  {"responses", {{"200", {{"description", "OK"}}}}},
                  {"x-kubernetes-action", verb},
                  {"x-kubernetes-group-version-kind", gvk}};
    };
    paths[item] = {{"get", op("get", "read")}, {"put", op("put", "replace")},
                   {"patch", op("patch", "patch")}, {"delete", op("delete", "delete")}};
    paths[collection] = {{"get", op("list", "list")}, {"post", op("post", "create")}};
  }
  if (paths.empty()) return std::nullopt;
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
              {"paths", paths},
              {"components", {{"schemas", json::object()}}}};
}

}  // namespace podgauge::fakeapi
