#include "podgauge/cgroup/kubelet_layout.h"

#include <algorithm>

namespace podgauge::cgroup {
namespace {

constexpr bool is_lower_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

constexpr bool all_lower_hex(std::string_view text) noexcept {
  return std::all_of(text.begin(), text.end(), is_lower_hex);
}

// Splits off `suffix` if present.
constexpr bool strip_suffix(std::string_view& text, std::string_view suffix) noexcept {
  if (!text.ends_with(suffix)) return false;
  text.remove_suffix(suffix.size());
  return true;
}

constexpr bool strip_prefix(std::string_view& text, std::string_view prefix) noexcept {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

// One path component and the offset just past it in the whole path.
struct Component {
  std::string_view name;
  std::size_t end = 0;
};

// Components of an already validated path, read left to right without allocating.
class ComponentCursor {
 public:
  ComponentCursor(std::string_view path, std::size_t pos) noexcept : path_(path), pos_(pos) {}

  std::optional<Component> next() noexcept {
    if (pos_ >= path_.size()) return std::nullopt;
    std::size_t slash = path_.find('/', pos_);
    std::size_t end = slash == std::string_view::npos ? path_.size() : slash;
    Component component{path_.substr(pos_, end - pos_), end};
    pos_ = end + 1;
    return component;
  }

  std::size_t position() const noexcept { return pos_; }

 private:
  std::string_view path_;
  std::size_t pos_;
};

// Kernel cgroup paths are canonical; anything else could smuggle a pod shape past the parser
// ("kubepods/pod<uid>/../<id>") so it is refused outright.
bool is_canonical(std::string_view relative) noexcept {
  if (relative.empty()) return false;
  if (relative.find('\0') != std::string_view::npos) return false;
  ComponentCursor cursor(relative, 0);
  while (auto component = cursor.next()) {
    if (component->name.empty() || component->name == "." || component->name == "..") return false;
  }
  return !relative.ends_with('/');
}

// kubelet names systemd slices after their parent: "<stem>.slice", "<stem>-burstable.slice",
// "<stem>-burstable-pod<uid>.slice", where the stem is "kubepods" or "<cgroup-root>-kubepods".
bool is_kubepods_stem(std::string_view stem) noexcept {
  if (stem == "kubepods") return true;
  return stem.size() > std::string_view("-kubepods").size() && stem.ends_with("-kubepods");
}

std::optional<QosClass> strip_qos_suffix(std::string_view& head) noexcept {
  if (strip_suffix(head, "-burstable")) return QosClass::Burstable;
  if (strip_suffix(head, "-besteffort")) return QosClass::BestEffort;
  return std::nullopt;
}

struct PodSlice {
  std::string_view stem;
  QosClass qos = QosClass::Guaranteed;
  PodUid uid;
};

// "<stem>[-<qos>]-pod<uid_with_underscores>.slice"
std::optional<PodSlice> parse_pod_slice(std::string_view name) noexcept {
  if (!strip_suffix(name, ".slice")) return std::nullopt;
  for (std::size_t uid_length : {PodUid::kUuidLength, PodUid::kStaticPodHashLength}) {
    if (name.size() < uid_length) continue;
    std::string_view head = name.substr(0, name.size() - uid_length);
    if (!strip_suffix(head, "-pod")) continue;
    auto uid = PodUid::parse_systemd_escaped(name.substr(name.size() - uid_length));
    if (!uid) continue;
    PodSlice slice{head, QosClass::Guaranteed, *uid};
    if (auto qos = strip_qos_suffix(slice.stem)) slice.qos = *qos;
    if (!is_kubepods_stem(slice.stem)) continue;
    return slice;
  }
  return std::nullopt;
}

struct ContainerScope {
  CgroupKind kind = CgroupKind::Container;
  ContainerRuntime runtime = ContainerRuntime::Unknown;
  ContainerId id;
};

std::optional<ContainerScope> container_with_prefix(std::string_view name) noexcept {
  struct Prefix {
    std::string_view text;
    CgroupKind kind;
    ContainerRuntime runtime;
  };
  static constexpr std::array<Prefix, 4> kPrefixes{{
      {"crio-conmon-", CgroupKind::RuntimeOverhead, ContainerRuntime::Crio},
      {"cri-containerd-", CgroupKind::Container, ContainerRuntime::Containerd},
      {"crio-", CgroupKind::Container, ContainerRuntime::Crio},
      {"docker-", CgroupKind::Container, ContainerRuntime::Docker},
  }};
  for (const Prefix& prefix : kPrefixes) {
    std::string_view rest = name;
    if (!strip_prefix(rest, prefix.text)) continue;
    if (auto id = ContainerId::parse(rest)) return ContainerScope{prefix.kind, prefix.runtime, *id};
  }
  return std::nullopt;
}

// Children of a systemd pod slice: "<runtime>-<id>.scope".
std::optional<ContainerScope> parse_systemd_container(std::string_view name) noexcept {
  if (!strip_suffix(name, ".scope")) return std::nullopt;
  return container_with_prefix(name);
}

// Children of a cgroupfs pod directory: "<id>" (containerd, docker) or "crio[-conmon]-<id>".
std::optional<ContainerScope> parse_cgroupfs_container(std::string_view name) noexcept {
  if (auto id = ContainerId::parse(name)) return ContainerScope{CgroupKind::Container, ContainerRuntime::Unknown, *id};
  auto scope = container_with_prefix(name);
  if (scope && scope->runtime == ContainerRuntime::Crio) return scope;
  return std::nullopt;
}

CgroupIdentity pod_identity(QosClass qos, const PodUid& uid, std::size_t end) noexcept {
  CgroupIdentity identity;
  identity.kind = CgroupKind::Pod;
  identity.qos = qos;
  identity.pod_uid = uid;
  identity.matched_length = end;
  return identity;
}

std::optional<CgroupIdentity> finish_with_container(CgroupIdentity identity, std::optional<Component> child,
                                                    std::optional<ContainerScope> scope) noexcept {
  if (!child) return identity;  // the path ends at the pod
  if (!scope) return std::nullopt;
  identity.kind = scope->kind;
  identity.runtime = scope->runtime;
  identity.container_id = scope->id;
  identity.matched_length = child->end;
  return identity;
}

// kubepods.slice/[kubepods-<qos>.slice/]kubepods[-<qos>]-pod<uid>.slice/<rt>-<id>.scope
std::optional<CgroupIdentity> match_systemd(ComponentCursor cursor, std::string_view stem) noexcept {
  auto first = cursor.next();
  if (!first) return std::nullopt;
  std::optional<Component> pod_component = first;
  QosClass qos = QosClass::Guaranteed;
  std::string_view name = first->name;
  if (strip_prefix(name, stem) && strip_prefix(name, "-") && strip_suffix(name, ".slice")) {
    if (name == "burstable") {
      qos = QosClass::Burstable;
      pod_component = cursor.next();
    } else if (name == "besteffort") {
      qos = QosClass::BestEffort;
      pod_component = cursor.next();
    }
  }
  if (!pod_component) return std::nullopt;
  auto pod = parse_pod_slice(pod_component->name);
  if (!pod || pod->stem != stem || pod->qos != qos) return std::nullopt;

  auto child = cursor.next();
  std::optional<ContainerScope> scope;
  if (child) scope = parse_systemd_container(child->name);
  return finish_with_container(pod_identity(qos, pod->uid, pod_component->end), child, scope);
}

// kubepods/[<qos>/]pod<uid>/<id>
std::optional<CgroupIdentity> match_cgroupfs(ComponentCursor cursor) noexcept {
  auto pod_component = cursor.next();
  if (!pod_component) return std::nullopt;
  QosClass qos = QosClass::Guaranteed;
  if (pod_component->name == "burstable" || pod_component->name == "besteffort") {
    qos = pod_component->name == "burstable" ? QosClass::Burstable : QosClass::BestEffort;
    pod_component = cursor.next();
    if (!pod_component) return std::nullopt;
  }
  std::string_view uid_text = pod_component->name;
  if (!strip_prefix(uid_text, "pod")) return std::nullopt;
  auto uid = PodUid::parse(uid_text);
  if (!uid) return std::nullopt;

  auto child = cursor.next();
  std::optional<ContainerScope> scope;
  if (child) scope = parse_cgroupfs_container(child->name);
  return finish_with_container(pod_identity(qos, *uid, pod_component->end), child, scope);
}

// containerd given a systemd-style cgroupsPath without the systemd driver makes it one
// directory: "kubepods-<qos>-pod<uid>.slice:cri-containerd:<id>".
std::optional<CgroupIdentity> match_colon_form(const Component& component) noexcept {
  std::string_view name = component.name;
  std::size_t first_colon = name.find(':');
  if (first_colon == std::string_view::npos) return std::nullopt;
  std::size_t second_colon = name.find(':', first_colon + 1);
  if (second_colon == std::string_view::npos) return std::nullopt;
  auto pod = parse_pod_slice(name.substr(0, first_colon));
  if (!pod) return std::nullopt;
  std::string_view runtime_text = name.substr(first_colon + 1, second_colon - first_colon - 1);
  ContainerRuntime runtime;
  if (runtime_text == "cri-containerd") {
    runtime = ContainerRuntime::Containerd;
  } else if (runtime_text == "crio") {
    runtime = ContainerRuntime::Crio;
  } else if (runtime_text == "docker") {
    runtime = ContainerRuntime::Docker;
  } else {
    return std::nullopt;
  }
  auto id = ContainerId::parse(name.substr(second_colon + 1));
  if (!id) return std::nullopt;
  CgroupIdentity identity = pod_identity(pod->qos, pod->uid, component.end);
  identity.kind = CgroupKind::Container;
  identity.runtime = runtime;
  identity.container_id = *id;
  return identity;
}

}  // namespace

std::string_view to_string(CgroupKind kind) noexcept {
  switch (kind) {
    case CgroupKind::Pod: return "pod";
    case CgroupKind::Container: return "container";
    case CgroupKind::RuntimeOverhead: return "runtime-overhead";
  }
  return "unknown";
}

std::string_view to_string(ContainerRuntime runtime) noexcept {
  switch (runtime) {
    case ContainerRuntime::Containerd: return "containerd";
    case ContainerRuntime::Crio: return "cri-o";
    case ContainerRuntime::Docker: return "docker";
    case ContainerRuntime::Unknown: break;
  }
  return "unknown";
}

std::string_view to_string(QosClass qos) noexcept {
  switch (qos) {
    case QosClass::Guaranteed: return "Guaranteed";
    case QosClass::Burstable: return "Burstable";
    case QosClass::BestEffort: return "BestEffort";
  }
  return "unknown";
}

std::optional<PodUid> PodUid::parse_with_separator(std::string_view text, char separator) noexcept {
  PodUid uid;
  if (text.size() == kStaticPodHashLength) {
    if (!all_lower_hex(text)) return std::nullopt;
  } else if (text.size() == kUuidLength) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_position ? text[i] != separator : !is_lower_hex(text[i])) return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  std::transform(text.begin(), text.end(), uid.chars_.begin(), [separator](char c) { return c == separator ? '-' : c; });
  uid.size_ = static_cast<std::uint8_t>(text.size());
  return uid;
}

std::optional<PodUid> PodUid::parse(std::string_view text) noexcept { return parse_with_separator(text, '-'); }

std::optional<PodUid> PodUid::parse_systemd_escaped(std::string_view text) noexcept {
  return parse_with_separator(text, '_');
}

std::optional<ContainerId> ContainerId::parse(std::string_view text) noexcept {
  if (text.size() != kLength || !all_lower_hex(text)) return std::nullopt;
  ContainerId id;
  std::copy(text.begin(), text.end(), id.chars_.begin());
  id.empty_ = false;
  return id;
}

std::optional<CgroupIdentity> parse_kubelet_path(std::string_view cgroup_path) noexcept {
  std::size_t start = cgroup_path.starts_with('/') ? 1 : 0;
  if (!is_canonical(cgroup_path.substr(start))) return std::nullopt;

  ComponentCursor cursor(cgroup_path, start);
  while (true) {
    ComponentCursor after = cursor;
    auto component = after.next();
    if (!component) return std::nullopt;

    std::optional<CgroupIdentity> identity;
    std::string_view stem = component->name;
    if (component->name == "kubepods") {
      identity = match_cgroupfs(after);
    } else if (strip_suffix(stem, ".slice") && is_kubepods_stem(stem)) {
      identity = match_systemd(after, stem);
    } else if (component->name.find(':') != std::string_view::npos) {
      identity = match_colon_form(*component);
    }
    if (identity) return identity;
    cursor = after;
  }
}

}  // namespace podgauge::cgroup
