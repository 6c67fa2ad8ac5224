// Recognises the cgroup paths kubelet and the container runtimes create for pods and containers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace podgauge::cgroup {

enum class CgroupKind : std::uint8_t {
  Pod,              ///< the pod's own cgroup (sum of its containers and overhead)
  Container,        ///< a container's cgroup, or any cgroup nested below it
  RuntimeOverhead,  ///< runtime processes serving the pod (CRI-O conmon), not the workload
};

enum class ContainerRuntime : std::uint8_t { Unknown, Containerd, Crio, Docker };

enum class QosClass : std::uint8_t { Guaranteed, Burstable, BestEffort };

/// "pod", "container", "runtime-overhead".
std::string_view to_string(CgroupKind kind) noexcept;
/// "unknown", "containerd", "cri-o", "docker".
std::string_view to_string(ContainerRuntime runtime) noexcept;
/// "Guaranteed", "Burstable", "BestEffort" (the spelling of PodStatus.qosClass).
std::string_view to_string(QosClass qos) noexcept;

/// A pod UID in the form the API server reports it: a lowercase 8-4-4-4-12 UUID, or, for static
/// pods, the 32 lowercase hex digits of the manifest hash (annotation kubernetes.io/config.hash).
/// Fixed-size storage: copying never allocates.
class PodUid {
 public:
  static constexpr std::size_t kUuidLength = 36;
  static constexpr std::size_t kStaticPodHashLength = 32;

  PodUid() = default;
  /// Accepts exactly the two canonical forms above; anything else (uppercase, wrong length or
  /// dash positions, systemd's underscores) yields nullopt.
  static std::optional<PodUid> parse(std::string_view text) noexcept;
  /// Accepts the systemd-escaped form kubelet uses in slice names (underscores for dashes).
  static std::optional<PodUid> parse_systemd_escaped(std::string_view text) noexcept;

  std::string_view view() const noexcept { return {chars_.data(), size_}; }
  std::string str() const { return std::string(view()); }
  bool empty() const noexcept { return size_ == 0; }

  friend bool operator==(const PodUid&, const PodUid&) = default;

 private:
  static std::optional<PodUid> parse_with_separator(std::string_view text, char separator) noexcept;

  std::array<char, kUuidLength> chars_{};
  std::uint8_t size_ = 0;
};

/// A container id as runtimes name cgroups: 64 lowercase hex digits. Fixed-size storage.
class ContainerId {
 public:
  static constexpr std::size_t kLength = 64;

  ContainerId() = default;
  /// Exactly 64 lowercase hex digits, else nullopt (uppercase is rejected: no runtime emits it).
  static std::optional<ContainerId> parse(std::string_view text) noexcept;

  std::string_view view() const noexcept { return {chars_.data(), empty_ ? 0 : kLength}; }
  std::string str() const { return std::string(view()); }
  bool empty() const noexcept { return empty_; }

  friend bool operator==(const ContainerId&, const ContainerId&) = default;

 private:
  std::array<char, kLength> chars_{};
  bool empty_ = true;
};

/// What a cgroup path says about the pod and container that own it.
struct CgroupIdentity {
  CgroupKind kind = CgroupKind::Pod;
  QosClass qos = QosClass::Guaranteed;
  /// Unknown when the layout does not name it (cgroupfs driver with containerd or docker).
  ContainerRuntime runtime = ContainerRuntime::Unknown;
  PodUid pod_uid;
  /// Empty for CgroupKind::Pod. For RuntimeOverhead: the container the runtime process serves.
  ContainerId container_id;
  /// Length of the prefix of the parsed path that is the identified pod or container cgroup
  /// itself; shorter than the path when it is nested below a container.
  std::size_t matched_length = 0;

  friend bool operator==(const CgroupIdentity&, const CgroupIdentity&) = default;
};

/// Parses a cgroup path relative to a hierarchy root (v1 or v2), e.g.
/// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope".
/// The kubelet tree may start at any depth (a cgroup-root or a nesting container before it); the
/// leftmost complete match wins, so paths below a container stay that container's.
/// Returns nullopt for anything that is not a pod, container or runtime-overhead cgroup, and for
/// non-canonical paths (empty, "." or ".." components, NUL bytes). Never allocates.
std::optional<CgroupIdentity> parse_kubelet_path(std::string_view cgroup_path) noexcept;

}  // namespace podgauge::cgroup

template <>
struct std::hash<podgauge::cgroup::PodUid> {
  std::size_t operator()(const podgauge::cgroup::PodUid& uid) const noexcept {
    return std::hash<std::string_view>{}(uid.view());
  }
};

template <>
struct std::hash<podgauge::cgroup::ContainerId> {
  std::size_t operator()(const podgauge::cgroup::ContainerId& id) const noexcept {
    return std::hash<std::string_view>{}(id.view());
  }
};
