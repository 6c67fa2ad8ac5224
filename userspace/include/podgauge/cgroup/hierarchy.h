// Finds the node's cgroup hierarchies (v1, v2, hybrid) and this process's place in them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "podgauge/cgroup/error.h"

namespace podgauge::cgroup {

enum class CgroupVersion : std::uint8_t { V1 = 1, V2 = 2 };

/// How the node mounts cgroups: only v1, only v2 (unified), or v1 controllers plus a v2 tree.
enum class CgroupMode : std::uint8_t { V1, V2, Hybrid };

/// "v1", "v2", "hybrid".
std::string_view to_string(CgroupMode mode) noexcept;

struct CgroupHierarchy {
  CgroupVersion version = CgroupVersion::V2;
  std::filesystem::path mount_point;
  /// The hierarchy directory shown at mount_point (mountinfo field 4): "/" on a host, a sub-tree
  /// such as "/kubepods/..." for an agent in a container without a cgroup namespace.
  std::string mount_root = "/";
  /// v1: from the super options ("cpu", "cpuacct"); v2: <mount_point>/cgroup.controllers.
  std::vector<std::string> controllers;
  /// v1 named hierarchy without controllers, e.g. "systemd" for name=systemd; empty otherwise.
  std::string name;

  bool has_controller(std::string_view controller) const noexcept;
  /// mount_point joined with a hierarchy-relative cgroup path ("/" is the mount point itself).
  std::filesystem::path absolute_path(std::string_view relative_cgroup_path) const;
};

/// Reads a v2 hierarchy's enabled controllers (contents of cgroup.controllers); nullopt if it
/// cannot be read, which leaves the controller list empty.
using ControllersReader = std::function<std::optional<std::string>(const std::filesystem::path& mount_point)>;

/// The reader used by default: <mount_point>/cgroup.controllers on the real filesystem.
std::optional<std::string> read_controllers_file(const std::filesystem::path& mount_point);

/// The cgroup hierarchies mounted in this mount namespace.
/// Immutable after construction: safe to share between threads.
class CgroupHierarchies {
 public:
  /// Reads mountinfo (normally /proc/self/mountinfo). Throws CgroupError when it cannot be read
  /// or lists no cgroup filesystem.
  static CgroupHierarchies discover(const std::filesystem::path& mountinfo_path = "/proc/self/mountinfo",
                                    const ControllersReader& read_controllers = read_controllers_file);
  /// Same, from mountinfo text (tests, fuzzing). Malformed lines are skipped.
  static CgroupHierarchies from_mountinfo(std::string_view mountinfo_text,
                                          const ControllersReader& read_controllers = read_controllers_file);

  CgroupMode mode() const noexcept { return mode_; }
  std::span<const CgroupHierarchy> hierarchies() const noexcept { return hierarchies_; }

  /// The v2 hierarchy, if mounted (ids from bpf_get_current_cgroup_id() belong to it).
  const CgroupHierarchy* default_hierarchy() const noexcept;
  /// Where per-cgroup CPU time is read: the v2 mount on a pure v2 node; otherwise the v1
  /// hierarchy with cpuacct, else cpu, else the v2 mount (its cpu.stat needs no controller).
  const CgroupHierarchy* cpu_accounting_hierarchy() const noexcept;
  /// v2 when it has the memory controller, else the v1 memory hierarchy; nullptr if neither.
  const CgroupHierarchy* memory_hierarchy() const noexcept;
  /// The v1 hierarchy carrying `controller`; nullptr if none.
  const CgroupHierarchy* find_v1(std::string_view controller) const noexcept;

 private:
  explicit CgroupHierarchies(std::vector<CgroupHierarchy> hierarchies);

  std::vector<CgroupHierarchy> hierarchies_;
  CgroupMode mode_ = CgroupMode::V2;
};

/// One line of /proc/<pid>/cgroup: "N:ctrl1,ctrl2:/path", "N:name=systemd:/path" or "0::/path".
struct ProcessCgroup {
  unsigned hierarchy_id = 0;
  std::vector<std::string> controllers;  ///< empty for v2 and for named v1 hierarchies
  std::string name;                      ///< "systemd" for name=systemd
  std::string path;                      ///< relative to the cgroup namespace root

  bool is_v2() const noexcept { return hierarchy_id == 0 && controllers.empty() && name.empty(); }
};

/// A cgroup path as /proc/<pid>/cgroup shows it, without the "/.." components the kernel puts
/// first when the reader's cgroup namespace root is below the process's cgroup (an agent in a pod
/// with a private cgroup namespace): "/../../kubepods.slice/x" -> "/kubepods.slice/x". The kubelet
/// names after them are intact, so the pod and container are still known. No cgroup is named "..".
std::string_view strip_namespace_ascent(std::string_view path) noexcept;

/// Parses /proc/<pid>/cgroup text; malformed lines are skipped.
std::vector<ProcessCgroup> parse_process_cgroups(std::string_view text);
/// Reads and parses /proc/self/cgroup (or another pid's file). Throws CgroupError if unreadable.
std::vector<ProcessCgroup> read_process_cgroups(const std::filesystem::path& path = "/proc/self/cgroup");

/// The process's cgroup in `hierarchy`, as a path relative to its mount point ("/" = the mount
/// point). nullopt when no line belongs to the hierarchy or the cgroup lies outside the mounted
/// sub-tree.
std::optional<std::string> process_cgroup_path(const CgroupHierarchy& hierarchy,
                                               std::span<const ProcessCgroup> process_cgroups);

}  // namespace podgauge::cgroup
