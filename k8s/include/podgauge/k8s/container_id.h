// Container ids as the kubelet reports them in status: "<runtime>://<id>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podgauge::k8s {

enum class ContainerRuntime : std::uint8_t { Containerd, Crio, Docker };
/// "containerd", "cri-o", "docker" (the URI schemes).
std::string_view to_string(ContainerRuntime runtime) noexcept;

struct RuntimeContainerId {
  ContainerRuntime runtime = ContainerRuntime::Containerd;
  std::string id;  ///< 64 lowercase hex digits
  friend bool operator==(const RuntimeContainerId&, const RuntimeContainerId&) = default;
};

/// "containerd://<64hex>", "cri-o://<64hex>", "docker://<64hex>"; nullopt for anything else
/// (empty, unknown scheme, id not 64 lowercase hex digits).
std::optional<RuntimeContainerId> parse_container_id(std::string_view text);

}  // namespace podgauge::k8s
