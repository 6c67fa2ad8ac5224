// Live processes from /proc: CPU, RSS, cgroup, pid namespace; and container-runtime helpers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "podgauge/cgroup/kubelet_layout.h"

namespace podgauge::agent {

struct ProcessSample {
  int32_t pid = 0;
  int32_t ppid = 0;
  std::string comm;
  uint64_t cpu_ns = 0;  // utime + stime of all threads
  uint64_t rss_bytes = 0;
  uint64_t start_ticks = 0;  // with pid: identity across scans (pids are reused)
  uint64_t pid_ns = 0;       // inode of /proc/<pid>/ns/pid; 0 if unreadable
  uint32_t ns_pid = 0;       // pid in its innermost pid namespace (NSpid's last)
  std::optional<cgroup::CgroupIdentity> identity;  // from the first kubelet-layout cgroup path
  std::string runtime_process;  // "containerd-shim", "conmon", ... (see runtime_process_kind)
};

/// The container-runtime helper a process is, by its comm or executable's basename:
/// "containerd-shim" (containerd-shim*, docker-containerd-shim), "conmon", "runc", "crun",
/// "dockerd"; "" for anything else. comm is truncated to 15 bytes by the kernel.
std::string runtime_process_kind(std::string_view comm, std::string_view exe_basename);

/// Reads every process under `proc_root` (normally /proc). Processes that vanish mid-read are
/// skipped. Never throws for one process's files.
std::vector<ProcessSample> scan_processes(const std::filesystem::path& proc_root = "/proc");

/// Processes the kernel moved to another cgroup since the previous scan (the cgroup_attach_task
/// tracepoint). `complete` false means unknown (tracepoint not attached, or more moves than
/// were kept): then every process's cgroup file is read.
struct CgroupMoves {
  bool complete = false;
  std::vector<int32_t> tgids;
};

/// scan_processes for repeated scans: what cannot change while a process keeps its pid, start
/// time and comm (its pid namespace, pid in it, executable and so runtime-helper kind) is read
/// once, so a later scan reads only stat; its cgroup file only when `moves` names it or is not
/// complete, and every kFullCgroupEvery-th scan (a renamed cgroup changes paths without a move).
/// exec that keeps the comm keeps the old executable's kind until the process exits.
/// Each process's stat file stays open between scans (up to kMaxOpenStat of them) and is re-read
/// with pread: opening "<pid>/stat" walks procfs, about as much as the read itself. A file of
/// a process that exited reads as an error (even when its pid is reused: the file belongs to
/// the old process), and the new one is opened.
/// Thread-safety: none; one scanner per thread.
class ProcessScanner {
 public:
  static constexpr unsigned kFullCgroupEvery = 6;
  static constexpr std::size_t kMaxOpenStat = 8192;
  explicit ProcessScanner(std::filesystem::path proc_root = "/proc") : proc_root_(std::move(proc_root)) {}
  ~ProcessScanner();
  ProcessScanner(const ProcessScanner&) = delete;
  ProcessScanner& operator=(const ProcessScanner&) = delete;
  std::vector<ProcessSample> scan(const CgroupMoves& moves = {});
  /// Stat files kept open for the next scan.
  std::size_t open_stat_files() const noexcept { return stat_fds_.size(); }

 private:
  struct Known {
    uint64_t start_ticks = 0;
    std::string comm;
    uint64_t pid_ns = 0;
    uint32_t ns_pid = 0;
    std::string runtime_process;
    std::optional<cgroup::CgroupIdentity> identity;
  };
  std::filesystem::path proc_root_;
  std::unordered_map<int32_t, Known> known_;
  std::unordered_map<int32_t, int> stat_fds_;  // pid -> its open stat file
  unsigned scans_ = 0;
};

/// Inode of the host's pid namespace: `proc_root`/1/ns/pid, else the agent's own when it is in
/// the namespace of that /proc (one NSpid entry). 0 when neither can be read.
uint64_t host_pid_namespace(const std::filesystem::path& proc_root = "/proc");

}  // namespace podgauge::agent
