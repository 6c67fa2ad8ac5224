#include "podgauge/k8s/pod.h"

#include <nlohmann/json.hpp>

#include "decode.h"

namespace podgauge::k8s {

std::string_view to_string(QosClass qos) noexcept {
  switch (qos) {
    case QosClass::Guaranteed: return "Guaranteed";
    case QosClass::Burstable: return "Burstable";
    case QosClass::BestEffort: return "BestEffort";
  }
  return "BestEffort";
}

std::optional<QosClass> parse_qos_class(std::string_view text) noexcept {
  if (text == "Guaranteed") return QosClass::Guaranteed;
  if (text == "Burstable") return QosClass::Burstable;
  if (text == "BestEffort") return QosClass::BestEffort;
  return std::nullopt;
}

std::string_view to_string(ContainerStateKind kind) noexcept {
  switch (kind) {
    case ContainerStateKind::Unknown: return "unknown";
    case ContainerStateKind::Waiting: return "waiting";
    case ContainerStateKind::Running: return "running";
    case ContainerStateKind::Terminated: return "terminated";
  }
  return "unknown";
}

const ContainerStatus* Pod::container_status(std::string_view name) const noexcept {
  for (const auto& s : status.container_statuses) {
    if (s.name == name) return &s;
  }
  for (const auto& s : status.init_container_statuses) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const Container* Pod::container(std::string_view name) const noexcept {
  for (const auto& c : spec.containers) {
    if (c.name == name) return &c;
  }
  for (const auto& c : spec.init_containers) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

bool Pod::resize_infeasible() const noexcept {
  if (const Condition* c = find_condition(status.conditions, "PodResizePending")) {
    return c->reason == "Infeasible";
  }
  return status.resize == "Infeasible";
}

namespace detail {
namespace {

ResourceRequirements read_requirements(JsonValue v, const Path& path) {
  ResourceRequirements out;
  members(v, path, [&](std::string_view key, JsonValue value) {
    if (key == "requests") out.requests = read_resource_list(value, path / key);
    else if (key == "limits") out.limits = read_resource_list(value, path / key);
  });
  return out;
}

std::vector<Container> read_containers(JsonValue v, const Path& path) {
  std::vector<Container> out;
  out.reserve(count_elements(v));
  elements(v, path, [&](JsonValue e, std::size_t i) {
    const Path p = path[i];
    Container c;
    members(e, p, [&](std::string_view key, JsonValue value) {
      if (key == "name") c.name = read_interned(value, p / key);
      else if (key == "image") c.image = read_interned(value, p / key);
      else if (key == "resources") c.resources = read_requirements(value, p / key);
      else if (key == "restartPolicy") {
        if (!value.is_null()) c.restart_policy = read_interned(value, p / key);
      }
    });
    if (c.name.empty()) fail(p, "container has no name");
    out.push_back(std::move(c));
  });
  return out;
}

ContainerState read_state(JsonValue v, const Path& path) {
  ContainerState out;
  members(v, path, [&](std::string_view key, JsonValue value) {
    if (value.is_null()) return;
    const Path p = path / key;
    if (key == "waiting") {
      out.kind = ContainerStateKind::Waiting;
    } else if (key == "running") {
      out.kind = ContainerStateKind::Running;
    } else if (key == "terminated") {
      out.kind = ContainerStateKind::Terminated;
    } else {
      return;
    }
    members(value, p, [&](std::string_view k, JsonValue f) {
      if (k == "reason") out.reason = read_interned(f, p / k);
      else if (k == "message") out.message = read_string(f, p / k);
      else if (k == "startedAt") out.started_at = read_time(f, p / k);
      else if (k == "finishedAt") out.finished_at = read_time(f, p / k);
      else if (k == "exitCode") out.exit_code = read_int32(f, p / k);
      else if (k == "signal") out.signal = read_int32(f, p / k);
    });
  });
  return out;
}

std::vector<ContainerStatus> read_statuses(JsonValue v, const Path& path) {
  std::vector<ContainerStatus> out;
  out.reserve(count_elements(v));
  elements(v, path, [&](JsonValue e, std::size_t i) {
    const Path p = path[i];
    ContainerStatus s;
    members(e, p, [&](std::string_view key, JsonValue value) {
      const Path pk = p / key;
      if (key == "name") s.name = read_interned(value, pk);
      else if (key == "containerID") s.container_id = read_string(value, pk);
      else if (key == "restartCount") s.restart_count = read_int32(value, pk);
      else if (key == "ready") s.ready = read_bool(value, pk);
      else if (key == "started") s.started = value.is_null() ? std::nullopt : std::optional(read_bool(value, pk));
      else if (key == "state") s.state = read_state(value, pk);
      else if (key == "lastState") s.last_state = read_state(value, pk);
      else if (key == "resources" && !value.is_null()) s.resources = read_requirements(value, pk);
      else if (key == "allocatedResources" && !value.is_null()) s.allocated_resources = read_resource_list(value, pk);
    });
    if (s.name.empty()) fail(p, "container status has no name");
    out.push_back(std::move(s));
  });
  return out;
}

void read_spec(JsonValue v, const Path& path, PodSpec& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "nodeName") out.node_name = read_string(value, p);
    else if (key == "containers") out.containers = read_containers(value, p);
    else if (key == "initContainers") out.init_containers = read_containers(value, p);
    else if (key == "resources" && !value.is_null()) out.resources = read_requirements(value, p);
    else if (key == "overhead") out.overhead = read_resource_list(value, p);
    else if (key == "priority") out.priority = value.is_null() ? std::nullopt : std::optional(read_int32(value, p));
    else if (key == "priorityClassName") out.priority_class_name = read_interned(value, p);
    else if (key == "restartPolicy") out.restart_policy = read_interned(value, p);
  });
}

void read_status(JsonValue v, const Path& path, PodStatus& out) {
  members(v, path, [&](std::string_view key, JsonValue value) {
    const Path p = path / key;
    if (key == "phase") {
      out.phase = read_interned(value, p);
    } else if (key == "qosClass") {
      const std::string text = read_string(value, p);
      if (text.empty()) return;
      out.qos_class = parse_qos_class(text);
      if (!out.qos_class) fail(p, "unknown QoS class \"" + text.substr(0, 40) + "\"");
    } else if (key == "podIP") {
      out.pod_ip = read_string(value, p);
    } else if (key == "hostIP") {
      out.host_ip = read_interned(value, p);
    } else if (key == "startTime") {
      out.start_time = read_time(value, p);
    } else if (key == "reason") {
      out.reason = read_interned(value, p);
    } else if (key == "conditions") {
      out.conditions = read_conditions(value, p);
    } else if (key == "containerStatuses") {
      out.container_statuses = read_statuses(value, p);
    } else if (key == "initContainerStatuses") {
      out.init_container_statuses = read_statuses(value, p);
    } else if (key == "resize") {
      out.resize = read_interned(value, p);
    }
  });
}

}  // namespace

void decode(JsonValue v, const Path& path, Pod& out) {
  bool has_metadata = false;
  members(v, path, [&](std::string_view key, JsonValue value) {
    if (key == "metadata") {
      has_metadata = true;
      read_meta(value, path / key, out.metadata);
    } else if (key == "spec") {
      read_spec(value, path / key, out.spec);
    } else if (key == "status") {
      read_status(value, path / key, out.status);
    }
  });
  if (!has_metadata || out.metadata.name.empty()) fail(path / "metadata" / "name", "required field is missing");
}

}  // namespace detail

PODGAUGE_K8S_DEFINE_ENTRY_POINTS(Pod)

}  // namespace podgauge::k8s
