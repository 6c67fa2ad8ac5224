#include "table_printer.h"

#include <ctime>

namespace podgauge::fakeapi {

using nlohmann::json;

namespace {

json column(const char* name, const char* type, int priority = 0, const char* format = "") {
  return {{"name", name}, {"type", type}, {"format", format}, {"description", ""},
          {"priority", priority}};
}

std::string str(const json& j, const json::json_pointer& p) {
  if (!j.contains(p)) return "";
  const auto& v = j.at(p);
  return v.is_string() ? v.get<std::string>() : "";
}

std::string none_if_empty(const std::string& s) { return s.empty() ? "<none>" : s; }

json pod_cells(const json& pod) {
  const json containers = pod.value("/spec/containers"_json_pointer, json::array());
  const json statuses = pod.value("/status/containerStatuses"_json_pointer, json::array());
  int ready = 0;
  long long restarts = 0;
  std::string reason = str(pod, "/status/phase"_json_pointer);
  if (!str(pod, "/status/reason"_json_pointer).empty()) reason = str(pod, "/status/reason"_json_pointer);
  for (const auto& cs : statuses) {
    if (cs.value("ready", false)) ++ready;
    restarts += cs.value("restartCount", 0LL);
    std::string waiting = str(cs, "/state/waiting/reason"_json_pointer);
    std::string terminated = str(cs, "/state/terminated/reason"_json_pointer);
    if (!waiting.empty()) reason = waiting;
    else if (!terminated.empty()) reason = terminated;
  }
  if (pod.contains("/metadata/deletionTimestamp"_json_pointer)) reason = "Terminating";
  std::string gates = "<none>";
  if (auto g = pod.value("/spec/readinessGates"_json_pointer, json::array()); !g.empty())
    gates = "0/" + std::to_string(g.size());
  return {pod["metadata"].value("name", ""),
          std::to_string(ready) + "/" + std::to_string(containers.size()),
          reason,
          std::to_string(restarts),
          TablePrinter::age(str(pod, "/metadata/creationTimestamp"_json_pointer)),
          none_if_empty(str(pod, "/status/podIP"_json_pointer)),
          none_if_empty(str(pod, "/spec/nodeName"_json_pointer)),
          none_if_empty(str(pod, "/status/nominatedNodeName"_json_pointer)),
          gates};
}

// Either shape: core/v1 or events.k8s.io/v1 (the server prints both from one internal type).
json event_cells(const json& e) {
  auto first_of = [&](std::initializer_list<const char*> ptrs) {
    for (const char* p : ptrs)
      if (auto v = str(e, json::json_pointer(p)); !v.empty()) return v;
    return std::string();
  };
  const std::string first = first_of({"/firstTimestamp", "/deprecatedFirstTimestamp", "/eventTime",
                                      "/metadata/creationTimestamp"});
  const std::string last = first_of({"/series/lastObservedTime", "/lastTimestamp",
                                     "/deprecatedLastTimestamp", "/eventTime",
                                     "/metadata/creationTimestamp"});
  const json ref = e.contains("involvedObject") ? e["involvedObject"] : e.value("regarding", json::object());
  std::string kind = ref.value("kind", "");
  for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  long long count = e.value("/series/count"_json_pointer, 0LL);
  if (count == 0) count = e.contains("count") ? e.value("count", 1LL) : e.value("deprecatedCount", 1LL);
  std::string source = first_of({"/source/component", "/deprecatedSource/component",
                                 "/reportingComponent", "/reportingController"});
  if (auto inst = first_of({"/reportingInstance", "/source/host"}); !inst.empty())
    source += ", " + inst;
  return {TablePrinter::age(last),
          e.value("type", ""),
          e.value("reason", ""),
          kind + "/" + ref.value("name", ""),
          ref.value("fieldPath", ""),
          source,
          e.contains("message") ? e.value("message", "") : e.value("note", ""),
          TablePrinter::age(first),
          std::to_string(count),
          e["metadata"].value("name", "")};
}

json node_cells(const json& node) {
  std::string status = "Unknown";
  for (const auto& c : node.value("/status/conditions"_json_pointer, json::array()))
    if (c.value("type", "") == "Ready") status = c.value("status", "") == "True" ? "Ready" : "NotReady";
  if (node.value("/spec/unschedulable"_json_pointer, false)) status += ",SchedulingDisabled";
  std::string roles;
  const json labels = node.value("/metadata/labels"_json_pointer, json::object());
  for (const auto& [k, v] : labels.items()) {
    const std::string prefix = "node-role.kubernetes.io/";
    if (k.rfind(prefix, 0) == 0) roles += (roles.empty() ? "" : ",") + k.substr(prefix.size());
  }
  std::string internal, external;
  for (const auto& a : node.value("/status/addresses"_json_pointer, json::array())) {
    if (a.value("type", "") == "InternalIP" && internal.empty()) internal = a.value("address", "");
    if (a.value("type", "") == "ExternalIP" && external.empty()) external = a.value("address", "");
  }
  return {node["metadata"].value("name", ""),
          status,
          none_if_empty(roles),
          TablePrinter::age(str(node, "/metadata/creationTimestamp"_json_pointer)),
          str(node, "/status/nodeInfo/kubeletVersion"_json_pointer),
          none_if_empty(internal),
          none_if_empty(external),
          none_if_empty(str(node, "/status/nodeInfo/osImage"_json_pointer)),
          none_if_empty(str(node, "/status/nodeInfo/kernelVersion"_json_pointer)),
          none_if_empty(str(node, "/status/nodeInfo/containerRuntimeVersion"_json_pointer))};
}

}  // namespace

std::string TablePrinter::age(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || !strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return "<unknown>";
  long long s = static_cast<long long>(std::time(nullptr) - timegm(&tm));
  if (s < -1) return "<invalid>";
  if (s < 0) return "0s";
  auto n = [](long long v) { return std::to_string(v); };
  if (s < 120) return n(s) + "s";
  long long m = s / 60;
  if (m < 10) return s % 60 == 0 ? n(m) + "m" : n(m) + "m" + n(s % 60) + "s";
  if (m < 180) return n(m) + "m";
  long long h = m / 60;
  if (h < 8) return m % 60 == 0 ? n(h) + "h" : n(h) + "h" + n(m % 60) + "m";
  if (h < 48) return n(h) + "h";
  if (h < 192) return h % 24 == 0 ? n(h / 24) + "d" : n(h / 24) + "d" + n(h % 24) + "h";
  if (h < 24 * 365 * 2) return n(h / 24) + "d";
  long long d = h / 24;
  if (h < 24 * 365 * 8) return d % 365 == 0 ? n(d / 365) + "y" : n(d / 365) + "y" + n(d % 365) + "d";
  return n(d / 365) + "y";
}

json TablePrinter::columns(const ResourceType& type) {
  if (type.plural == "pods")
    return {column("Name", "string", 0, "name"), column("Ready", "string"),
            column("Status", "string"),          column("Restarts", "string"),
            column("Age", "string"),             column("IP", "string", 1),
            column("Node", "string", 1),         column("Nominated Node", "string", 1),
            column("Readiness Gates", "string", 1)};
  if (type.plural == "nodes")
    return {column("Name", "string", 0, "name"),  column("Status", "string"),
            column("Roles", "string"),            column("Age", "string"),
            column("Version", "string"),          column("Internal-IP", "string", 1),
            column("External-IP", "string", 1),   column("OS-Image", "string", 1),
            column("Kernel-Version", "string", 1), column("Container-Runtime", "string", 1)};
  if (type.plural == "namespaces")
    return {column("Name", "string", 0, "name"), column("Status", "string"), column("Age", "string")};
  if (type.plural == "deployments")
    return {column("Name", "string", 0, "name"), column("Ready", "string"),
            column("Up-to-date", "integer"), column("Available", "integer"),
            column("Age", "string")};
  if (type.plural == "events")  // pkg/printers/internalversion: eventColumnDefinitions
    return {column("Last Seen", "string"),   column("Type", "string"),
            column("Reason", "string"),      column("Object", "string"),
            column("Subobject", "string", 1), column("Source", "string", 1),
            column("Message", "string"),     column("First Seen", "string", 1),
            column("Count", "string", 1),    column("Name", "string", 1)};
  // The default table convertor (k8s.io/apiserver/pkg/registry/rest/table.go).
  return {column("Name", "string", 0, "name"), column("Created At", "date")};
}

json TablePrinter::cells(const ResourceType& type, const json& o) {
  if (type.plural == "pods") return pod_cells(o);
  if (type.plural == "nodes") return node_cells(o);
  const std::string name = o["metadata"].value("name", "");
  const std::string created = str(o, "/metadata/creationTimestamp"_json_pointer);
  if (type.plural == "events") return event_cells(o);
  if (type.plural == "namespaces")
    return {name, str(o, "/status/phase"_json_pointer), age(created)};
  if (type.plural == "deployments") {
    long long replicas = o.value("/spec/replicas"_json_pointer, 1LL);
    return {name,
            std::to_string(o.value("/status/readyReplicas"_json_pointer, 0LL)) + "/" +
                std::to_string(replicas),
            o.value("/status/updatedReplicas"_json_pointer, 0LL),
            o.value("/status/availableReplicas"_json_pointer, 0LL), age(created)};
  }
  return {name, created};
}

json TablePrinter::table(const ResourceType& type, const std::vector<json>& objects,
                         IncludeObject include, json list_metadata, bool with_headers) {
  json rows = json::array();
  for (const auto& o : objects) {
    json row = {{"cells", cells(type, o)}};
    if (include == IncludeObject::Object) {
      row["object"] = o;
    } else if (include == IncludeObject::Metadata) {
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", o.value("metadata", json::object())}};
    }
    rows.push_back(std::move(row));
  }
  json t = {{"kind", "Table"},
            {"apiVersion", "meta.k8s.io/v1"},
            {"metadata", std::move(list_metadata)},
            {"columnDefinitions", with_headers ? columns(type) : json(nullptr)},
            {"rows", rows}};
  return t;
}

}  // namespace podgauge::fakeapi
