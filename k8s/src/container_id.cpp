#include "podgauge/k8s/container_id.h"

namespace podgauge::k8s {

std::string_view to_string(ContainerRuntime runtime) noexcept {
  switch (runtime) {
    case ContainerRuntime::Containerd: return "containerd";
    case ContainerRuntime::Crio: return "cri-o";
    case ContainerRuntime::Docker: return "docker";
  }
  return "containerd";
}

std::optional<RuntimeContainerId> parse_container_id(std::string_view text) {
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = text.substr(0, sep);
  const std::string_view id = text.substr(sep + 3);
  RuntimeContainerId out;
  if (scheme == "containerd") {
    out.runtime = ContainerRuntime::Containerd;
  } else if (scheme == "cri-o") {
    out.runtime = ContainerRuntime::Crio;
  } else if (scheme == "docker") {
    out.runtime = ContainerRuntime::Docker;
  } else {
    return std::nullopt;
  }
  if (id.size() != 64) return std::nullopt;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  out.id = std::string(id);
  return out;
}

}  // namespace podgauge::k8s
