#pragma once
// A private, self-cleaning cgroup subtree for integration tests, in every chosen hierarchy
// (hybrid v1+v2, co-mounted v1 controllers, or pure v2), below this process's own cgroups.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::itest {

/// One mounted cgroup hierarchy as this process sees it.
struct CgroupHierarchy {
  std::string name;  // "cpu,cpuacct", "memory", "pids", "unified"
  bool v2 = false;
  std::vector<std::string> controllers;  // v1: the mount's; v2: cgroup.controllers (own dir;
                                         // in a CgroupSandbox: the sandbox root's)
  std::filesystem::path mount_point;     // e.g. /sys/fs/cgroup/memory
  std::filesystem::path mount_root;      // root of the mount inside the hierarchy ("/" mostly)
  std::string own_path;                  // this process's path there, from /proc/self/cgroup
  std::filesystem::path own_dir;         // mount_point joined with own_path

  bool has_controller(std::string_view controller) const;
};

/// Every cgroup hierarchy mounted in this mount namespace that this process belongs to
/// (from /proc/self/mountinfo and /proc/self/cgroup). A hierarchy mounted twice is listed once.
std::vector<CgroupHierarchy> discover_cgroup_hierarchies();

enum class QosClass { Guaranteed, Burstable, BestEffort };

/// Cgroup relpaths exactly as kubelet + container runtimes create them (DESIGN.md "Kubelet
/// cgroup layouts"), for building realistic trees inside a CgroupSandbox.
struct KubeletNames {
  static std::string qos_name(QosClass qos);  // "guaranteed", "burstable", "besteffort"
  static std::string random_pod_uid();        // UUIDv4, e.g. "3f0c...-...-4...-8...-..."
  static std::string random_container_id();   // 64 lowercase hex digits

  // systemd driver:
  //   kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice
  //   (guaranteed: kubepods.slice/kubepods-pod<uid_>.slice); '-' in the uid becomes '_'.
  static std::string systemd_pod(QosClass qos, std::string_view pod_uid);
  //   <systemd_pod>/<runtime>-<id>.scope; runtime: "cri-containerd", "crio", "docker".
  static std::string systemd_container(QosClass qos, std::string_view pod_uid,
                                       std::string_view runtime, std::string_view container_id);
  //   <systemd_pod>/crio-conmon-<id>.scope (CRI-O runtime overhead, not the container).
  static std::string systemd_crio_conmon(QosClass qos, std::string_view pod_uid,
                                         std::string_view container_id);
  //   containerd without systemd cgroups, given a systemd-style cgroupsPath:
  //   kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice:cri-containerd:<id>
  static std::string containerd_colon_container(QosClass qos, std::string_view pod_uid,
                                                std::string_view container_id);

  // cgroupfs driver: kubepods/burstable/pod<uid> (guaranteed: kubepods/pod<uid>).
  static std::string cgroupfs_pod(QosClass qos, std::string_view pod_uid);
  //   <cgroupfs_pod>/<id>
  static std::string cgroupfs_container(QosClass qos, std::string_view pod_uid,
                                        std::string_view container_id);
};

/// Creates `podgauge-test-<pid>-<random>` below this process's own cgroup in each chosen
/// hierarchy and removes it, with everything below, on destruction (SIGKILLing processes still
/// inside, deepest directory first). All relpaths are relative to that sandbox root, identical
/// in every hierarchy; "" is the sandbox root itself. Errors throw std::runtime_error /
/// std::system_error with the path; the destructor logs to stderr and never throws.
/// Thread-safety: not thread-safe; use from one thread.
class CgroupSandbox {
 public:
  struct Options {
    // v1 hierarchies holding any of these controllers are used (co-mounts count once).
    std::vector<std::string> controllers{"cpu", "cpuacct", "memory", "pids"};
    // Also use the v2 mount (the controller-less /sys/fs/cgroup/unified on hybrid hosts, or
    // the only hierarchy on pure v2 hosts, which is always used).
    bool include_unified = true;
    // Bound on waiting for killed processes to leave and for rmdir to succeed.
    std::chrono::milliseconds cleanup_timeout{10000};
  };

  CgroupSandbox();
  explicit CgroupSandbox(Options options);
  ~CgroupSandbox();
  CgroupSandbox(const CgroupSandbox&) = delete;
  CgroupSandbox& operator=(const CgroupSandbox&) = delete;

  /// Directory name of the sandbox root, e.g. "podgauge-test-1234-9f3a0c12".
  const std::string& name() const { return name_; }
  /// The hierarchies the sandbox lives in.
  const std::vector<CgroupHierarchy>& hierarchies() const { return hierarchies_; }
  /// Whether a hierarchy answering to `hierarchy` (see path_in) is part of the sandbox.
  bool has(std::string_view hierarchy) const;

  /// mkdir -p of `relpath` in every hierarchy. On v2 the controllers of the parent are enabled
  /// in cgroup.subtree_control along the way (inside the sandbox only), so limits work on pure
  /// v2; on v1 cpuset, cpus/mems are copied from the parent.
  void create(std::string_view relpath);

  /// Absolute directory of `relpath`. `hierarchy` is a hierarchy name ("cpu,cpuacct"), a
  /// controller name ("cpuacct", "memory": the v1 hierarchy holding it, else the v2 mount if it
  /// has that controller), or "unified"/"v2" for the v2 mount.
  std::filesystem::path path_in(std::string_view hierarchy, std::string_view relpath = "") const;
  /// The cgroup id (= inode number of the directory), what BPF reports.
  std::uint64_t id_in(std::string_view hierarchy, std::string_view relpath = "") const;
  /// Path as seen from the hierarchy's mount point, with a leading '/', e.g.
  /// "/process_api/<hex>/podgauge-test-../kubepods.slice/..." — what a resolver sees.
  std::string path_relative_to_mount(std::string_view hierarchy,
                                     std::string_view relpath = "") const;
  /// The directory of `relpath` in every hierarchy (e.g. for ChildProcess placement).
  std::vector<std::filesystem::path> dirs(std::string_view relpath = "") const;

  /// Writes `value` into a control file; throws std::system_error naming the file on failure.
  void write(std::string_view hierarchy, std::string_view relpath, std::string_view file,
             std::string_view value) const;
  /// Reads a control file, trailing whitespace removed.
  std::string read(std::string_view hierarchy, std::string_view relpath,
                   std::string_view file) const;
  /// Reads one "key value" line of a flat-keyed file (memory.stat, cpu.stat, memory.events,
  /// memory.oom_control). Throws if the key is absent.
  std::uint64_t read_key(std::string_view hierarchy, std::string_view relpath,
                         std::string_view file, std::string_view key) const;

  /// A container of a new Burstable pod as kubelet's systemd driver with containerd lays it out,
  /// created in every hierarchy: its relpath, and its pod uid and container id if asked for.
  std::string create_container(std::string* pod_uid = nullptr, std::string* container_id = nullptr);

  /// v1: memory.limit_in_bytes (+ memory.memsw.limit_in_bytes when present, so swap cannot
  /// absorb the overrun); v2 with the memory controller: memory.max (+ memory.swap.max = 0).
  void set_memory_limit(std::string_view relpath, std::uint64_t bytes) const;
  /// CFS bandwidth limit: v1 cpu.cfs_period_us + cpu.cfs_quota_us, v2 cpu.max. A negative quota
  /// removes the limit.
  void set_cpu_quota(std::string_view relpath, std::int64_t quota_us, std::uint64_t period_us = 100000) const;
  /// OOM kills inside the cgroup: v1 memory.oom_control "oom_kill", v2 memory.events "oom_kill".
  std::uint64_t memory_oom_kills(std::string_view relpath) const;
  /// CPU time of the cgroup in ns: v1 cpuacct.usage, else v2 cpu.stat usage_usec × 1000.
  std::uint64_t cpuacct_usage_ns(std::string_view relpath) const;

  /// Moves `pid` into `relpath` in every hierarchy (cgroup.procs).
  void add_pid(std::string_view relpath, pid_t pid) const;
  /// Pids in cgroup.procs of `relpath` (not recursive) in one hierarchy.
  std::vector<pid_t> pids(std::string_view hierarchy, std::string_view relpath = "") const;

 private:
  const CgroupHierarchy& find(std::string_view hierarchy) const;
  std::filesystem::path dir_of(const CgroupHierarchy& h, std::string_view relpath) const;
  void cleanup() noexcept;

  Options options_;
  std::string name_;
  std::vector<CgroupHierarchy> hierarchies_;
};

}  // namespace podgauge::itest
