#include "table_printer.h"

#include <algorithm>
#include <ctime>
#include <optional>

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

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// metav1.FormatLabelSelector: matchLabels and expressions, sorted by key as labels.Selector.
std::string format_selector(const json& sel) {
  if (!sel.is_object()) return "<none>";
  std::vector<std::pair<std::string, std::string>> terms;
  const json match_labels = sel.value("matchLabels", json::object());
  for (const auto& [k, v] : match_labels.items())
    terms.emplace_back(k, k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  for (const auto& e : sel.value("matchExpressions", json::array())) {
    const std::string key = e.value("key", ""), op = e.value("operator", "");
    std::vector<std::string> values;
    for (const auto& v : e.value("values", json::array())) values.push_back(v.get<std::string>());
    std::sort(values.begin(), values.end());
    std::string t;
    if (op == "In") t = key + " in (" + join(values, ",") + ")";
    else if (op == "NotIn") t = key + " notin (" + join(values, ",") + ")";
    else if (op == "Exists") t = key;
    else if (op == "DoesNotExist") t = "!" + key;
    terms.emplace_back(key, t);
  }
  if (terms.empty()) return "<none>";
  std::stable_sort(terms.begin(), terms.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (auto& t : terms) out.push_back(t.second);
  return join(out, ",");
}

std::string quantity_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number()) return j.dump();
  return "0";
}

json replica_set_cells(const json& rs) {
  std::vector<std::string> names, images;
  for (const auto& c : rs.value("/spec/template/spec/containers"_json_pointer, json::array())) {
    names.push_back(c.value("name", ""));
    images.push_back(c.value("image", ""));
  }
  return {rs["metadata"].value("name", ""),
          rs.value("/spec/replicas"_json_pointer, 1LL),
          rs.value("/status/replicas"_json_pointer, 0LL),
          rs.value("/status/readyReplicas"_json_pointer, 0LL),
          TablePrinter::age(str(rs, "/metadata/creationTimestamp"_json_pointer)),
          join(names, ","),
          join(images, ","),
          format_selector(rs.value("/spec/selector"_json_pointer, json()))};
}

// printers.go formatHPAMetrics: the first two metrics as current/target, then "+ N more...".
std::string hpa_targets(const json& hpa) {
  const json specs = hpa.value("/spec/metrics"_json_pointer, json::array());
  const json statuses = hpa.value("/status/currentMetrics"_json_pointer, json::array());
  if (specs.empty()) return "<none>";
  std::vector<std::string> list;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const json& spec = specs[i];
    const std::string type = spec.value("type", "");
    const json status = i < statuses.size() ? statuses[i] : json::object();
    auto cur = [&](const char* source, const char* field) -> std::string {
      const json::json_pointer p("/" + std::string(source) + "/current/" + field);
      if (!status.contains(p)) return "<unknown>";
      const json& v = status.at(p);
      return v.is_number_integer() ? std::to_string(v.get<long long>()) + "%" : quantity_text(v);
    };
    auto target = [&](const char* source, const char* field) {
      return quantity_text(spec.value(json::json_pointer("/" + std::string(source) + "/target/" + field), json()));
    };
    if (type == "External" || type == "Object") {
      const char* src = type == "External" ? "external" : "object";
      if (spec.contains(json::json_pointer("/" + std::string(src) + "/target/averageValue")))
        list.push_back(cur(src, "averageValue") + "/" + target(src, "averageValue") + " (avg)");
      else
        list.push_back(cur(src, "value") + "/" + target(src, "value"));
    } else if (type == "Pods") {
      list.push_back(cur("pods", "averageValue") + "/" + target("pods", "averageValue"));
    } else if (type == "Resource" || type == "ContainerResource") {
      const char* src = type == "Resource" ? "resource" : "containerResource";
      const std::string name = spec.value(json::json_pointer("/" + std::string(src) + "/name"), std::string());
      if (spec.contains(json::json_pointer("/" + std::string(src) + "/target/averageValue"))) {
        list.push_back(name + ": " + cur(src, "averageValue") + "/" + target(src, "averageValue"));
      } else {
        const json::json_pointer tp("/" + std::string(src) + "/target/averageUtilization");
        const std::string t = spec.contains(tp) ? std::to_string(spec.at(tp).get<long long>()) + "%" : "<auto>";
        list.push_back(name + ": " + cur(src, "averageUtilization") + "/" + t);
      }
    } else {
      list.push_back("<unknown type>");
    }
  }
  if (list.size() > 2) {
    const std::size_t more = list.size() - 2;
    list.resize(2);
    return join(list, ", ") + " + " + std::to_string(more) + " more...";
  }
  return join(list, ", ");
}

json hpa_cells(const json& hpa) {
  const json ref = hpa.value("/spec/scaleTargetRef"_json_pointer, json::object());
  const std::string min = hpa.contains("/spec/minReplicas"_json_pointer)
                              ? std::to_string(hpa.at("/spec/minReplicas"_json_pointer).get<long long>())
                              : "<unset>";
  return {hpa["metadata"].value("name", ""),
          ref.value("kind", "") + "/" + ref.value("name", ""),
          hpa_targets(hpa),
          min,
          hpa.value("/spec/maxReplicas"_json_pointer, 0LL),
          hpa.value("/status/currentReplicas"_json_pointer, 0LL),
          TablePrinter::age(str(hpa, "/metadata/creationTimestamp"_json_pointer))};
}

// "pods: 3/10, requests.cpu: 1/4" and the limits.* resources in their own column.
json resource_quota_cells(const json& rq) {
  const json hard = rq.value("/status/hard"_json_pointer, json::object());
  const json used = rq.value("/status/used"_json_pointer, json::object());
  std::vector<std::string> requests, limits;
  for (const auto& [name, h] : hard.items())  // nlohmann keeps keys sorted, as upstream sorts
    (name.rfind("limits.", 0) == 0 ? limits : requests)
        .push_back(name + ": " + quantity_text(used.value(name, json())) + "/" + quantity_text(h));
  return {rq["metadata"].value("name", ""),
          TablePrinter::age(str(rq, "/metadata/creationTimestamp"_json_pointer)),
          join(requests, ", "), join(limits, ", ")};
}

}  // namespace

namespace {

// Seconds since the epoch of an RFC 3339 time; nullopt when absent or unreadable.
std::optional<long long> epoch_seconds(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || !strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  return static_cast<long long>(timegm(&tm));
}

// apimachinery's duration.HumanDuration.
std::string human_duration(long long s) {
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

// printers.go printJob: status from the conditions, completions, and the run's duration.
json job_cells(const json& job) {
  std::string status = "Running";
  for (const auto& c : job.value("/status/conditions"_json_pointer, json::array())) {
    if (c.value("status", "") != "True") continue;
    const std::string type = c.value("type", "");
    if (type == "Complete" || type == "Failed" || type == "Suspended" ||
        type == "FailureTarget" || type == "SuccessCriteriaMet")
      status = type;
  }
  const long long succeeded = job.value("/status/succeeded"_json_pointer, 0LL);
  std::string completions;
  if (job.contains("/spec/completions"_json_pointer))
    completions = std::to_string(succeeded) + "/" +
                  std::to_string(job.value("/spec/completions"_json_pointer, 0LL));
  else if (job.value("/spec/parallelism"_json_pointer, 1LL) > 1)
    completions = std::to_string(succeeded) + "/1 of " +
                  std::to_string(job.value("/spec/parallelism"_json_pointer, 1LL));
  else
    completions = std::to_string(succeeded) + "/1";
  std::string duration;
  if (auto start = epoch_seconds(str(job, "/status/startTime"_json_pointer))) {
    const auto end = epoch_seconds(str(job, "/status/completionTime"_json_pointer));
    duration = human_duration(end.value_or(static_cast<long long>(std::time(nullptr))) - *start);
  }
  std::vector<std::string> names, images;
  for (const auto& c : job.value("/spec/template/spec/containers"_json_pointer, json::array())) {
    names.push_back(c.value("name", ""));
    images.push_back(c.value("image", ""));
  }
  return {job["metadata"].value("name", ""),
          status,
          completions,
          duration,
          TablePrinter::age(str(job, "/metadata/creationTimestamp"_json_pointer)),
          join(names, ","),
          join(images, ","),
          format_selector(job.value("/spec/selector"_json_pointer, json()))};
}

}  // namespace

std::string TablePrinter::age(const std::string& rfc3339) {
  const auto t = epoch_seconds(rfc3339);
  if (!t) return "<unknown>";
  return human_duration(static_cast<long long>(std::time(nullptr)) - *t);
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
  if (type.plural == "replicasets")
    return {column("Name", "string", 0, "name"), column("Desired", "integer"),
            column("Current", "integer"),        column("Ready", "integer"),
            column("Age", "string"),             column("Containers", "string", 1),
            column("Images", "string", 1),       column("Selector", "string", 1)};
  if (type.plural == "jobs")
    return {column("Name", "string", 0, "name"), column("Status", "string"),
            column("Completions", "string"),     column("Duration", "string"),
            column("Age", "string"),             column("Containers", "string", 1),
            column("Images", "string", 1),       column("Selector", "string", 1)};
  if (type.plural == "horizontalpodautoscalers")
    return {column("Name", "string", 0, "name"), column("Reference", "string"),
            column("Targets", "string"),         column("MinPods", "string"),
            column("MaxPods", "integer"),        column("Replicas", "integer"),
            column("Age", "string")};
  if (type.plural == "resourcequotas")
    return {column("Name", "string", 0, "name"), column("Age", "string"),
            column("Request", "string"),         column("Limit", "string")};
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
  if (type.plural == "replicasets") return replica_set_cells(o);
  if (type.plural == "jobs") return job_cells(o);
  if (type.plural == "horizontalpodautoscalers") return hpa_cells(o);
  if (type.plural == "resourcequotas") return resource_quota_cells(o);
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
