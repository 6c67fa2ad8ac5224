// Every field of a decoded Pod as text, so that two decoders' results compare with one ==
// and a difference prints readably (k8s_pod_direct_test, k8s_pod_direct_fuzz).
#pragma once

#include <optional>
#include <string>

#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"

namespace podgauge::k8s::testing {

inline void put(std::string& out, const char* name, const std::string& value) {
  out += name;
  out += "=\"";
  out += value;
  out += "\" ";
}
inline void put(std::string& out, const char* name, std::int64_t value) {
  out += name;
  out += '=';
  out += std::to_string(value);
  out += ' ';
}
template <class V>
void put(std::string& out, const char* name, const FlatMap<V>& map) {
  out += name;
  out += "={";
  for (const auto& [k, v] : map) {
    out += k.str() + ":";
    if constexpr (std::is_same_v<V, std::string>) {
      out += "\"" + v + "\",";
    } else {
      out += v.to_string() + ",";
    }
  }
  out += "} ";
}
inline void put(std::string& out, const char* name, const ResourceRequirements& r) {
  out += name;
  out += "{ ";
  put(out, "requests", r.requests);
  put(out, "limits", r.limits);
  out += "} ";
}
inline void put(std::string& out, const char* name, const ContainerState& s) {
  out += name;
  out += "{ ";
  put(out, "kind", static_cast<std::int64_t>(s.kind));
  put(out, "reason", s.reason.str());
  put(out, "message", s.message);
  put(out, "started_at", s.started_at);
  put(out, "finished_at", s.finished_at);
  put(out, "exit_code", s.exit_code);
  put(out, "signal", s.signal);
  out += "} ";
}

inline std::string pod_text(const Pod& pod) {
  std::string out;
  const ObjectMeta& m = pod.metadata;
  put(out, "name", m.name);
  put(out, "namespace", m.namespace_);
  put(out, "uid", m.uid);
  put(out, "resourceVersion", m.resource_version);
  put(out, "creation", m.creation_timestamp);
  put(out, "deletion", m.deletion_timestamp ? *m.deletion_timestamp : -1);
  put(out, "has_deletion", m.deletion_timestamp.has_value());
  put(out, "labels", m.labels);
  put(out, "annotations", m.annotations);
  for (const auto& o : m.owner_references) {
    out += "owner{ ";
    put(out, "apiVersion", o.api_version.str());
    put(out, "kind", o.kind.str());
    put(out, "name", o.name);
    put(out, "uid", o.uid);
    put(out, "controller", o.controller);
    out += "} ";
  }
  const PodSpec& s = pod.spec;
  put(out, "nodeName", s.node_name);
  for (const auto* list : {&s.init_containers, &s.containers}) {
    out += list == &s.containers ? "containers[ " : "initContainers[ ";
    for (const Container& c : *list) {
      out += "{ ";
      put(out, "name", c.name.str());
      put(out, "image", c.image.str());
      put(out, "resources", c.resources);
      put(out, "restartPolicy",
          c.restart_policy ? "set:" + c.restart_policy->str() : std::string("unset"));
      out += "} ";
    }
    out += "] ";
  }
  if (s.resources) put(out, "podResources", *s.resources);
  put(out, "overhead", s.overhead);
  put(out, "priority", s.priority ? *s.priority : -1);
  put(out, "has_priority", s.priority.has_value());
  put(out, "priorityClassName", s.priority_class_name.str());
  put(out, "restartPolicy", s.restart_policy.str());
  const PodStatus& st = pod.status;
  put(out, "phase", st.phase.str());
  put(out, "qos", st.qos_class ? static_cast<std::int64_t>(*st.qos_class) : -1);
  put(out, "podIP", st.pod_ip);
  put(out, "hostIP", st.host_ip.str());
  put(out, "startTime", st.start_time);
  put(out, "reason", st.reason.str());
  for (const Condition& c : st.conditions) {
    out += "condition{ ";
    put(out, "type", c.type.str());
    put(out, "status", c.status.str());
    put(out, "reason", c.reason.str());
    put(out, "message", c.message);
    put(out, "lastTransition", c.last_transition_time);
    out += "} ";
  }
  for (const auto* list : {&st.init_container_statuses, &st.container_statuses}) {
    out += list == &st.container_statuses ? "containerStatuses[ " : "initContainerStatuses[ ";
    for (const ContainerStatus& c : *list) {
      out += "{ ";
      put(out, "name", c.name.str());
      put(out, "containerID", c.container_id);
      put(out, "restartCount", c.restart_count);
      put(out, "ready", c.ready);
      put(out, "started", c.started ? static_cast<std::int64_t>(*c.started) : -1);
      put(out, "state", c.state);
      put(out, "lastState", c.last_state);
      if (c.resources) put(out, "resources", *c.resources);
      if (c.allocated_resources) put(out, "allocated", *c.allocated_resources);
      out += "} ";
    }
    out += "] ";
  }
  put(out, "resize", st.resize.str());
  return out;
}

inline std::string event_text(const WatchEvent<Pod>& ev) {
  std::string out =
      "type=" + std::string(to_string(ev.type)) + " rv=\"" + ev.resource_version + "\" ";
  out += ev.object ? pod_text(*ev.object) : std::string("no-object");
  out += ev.error ? " error" : "";
  out += ev.initial_events_end ? " initial-events-end" : "";
  return out;
}

}  // namespace podgauge::k8s::testing
