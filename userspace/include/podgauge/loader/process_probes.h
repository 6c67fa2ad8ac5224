// The process lifecycle BPF family (bpf/proc.bpf.c): fork/exec/exit counters per cgroup and
// one record per process exit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "podgauge/loader/kernel_probes.h"

namespace podgauge::loader {

struct ProcessProbeOptions {
  CgroupKeying keying = CgroupKeying::DefaultHierarchy;  // as the cpu family's, so ids join
  bool force_raw_tracepoints = false;
  uint64_t exit_rate_per_sec = 100;  // exit records per cgroup per second, after the burst
  uint64_t exit_burst = 200;         // pid-namespace inits (container main processes) are exempt
};

/// Cumulative lifecycle counters of one cgroup, summed over CPUs.
struct CgroupProcessCounts {
  uint64_t cgroup_id = 0;
  uint64_t forks = 0;  // processes created (threads are not counted)
  uint64_t execs = 0;
  uint64_t exits = 0;  // processes ended (their last thread exited)
  uint64_t exits_signaled = 0;
};

/// One process exit, decoded from bpf/proc.h's record.
struct ProcessExit {
  uint64_t ktime_ns = 0;        // CLOCK_MONOTONIC
  uint64_t start_ktime_ns = 0;  // when the exiting thread started (CLOCK_MONOTONIC)
  uint64_t cgroup_id = 0;
  uint64_t cpu_ns = 0;  // all threads of the process
  uint32_t pid = 0;
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  int exit_code = 0;  // (status >> 8) & 0xff; meaningful when signal == 0
  int signal = 0;     // status & 0x7f
  bool core_dumped = false;
  uint32_t pid_ns_inum = 0;  // inode of its pid namespace
  uint32_t ns_pid = 0;       // its pid inside that namespace
  uint32_t ns_level = 0;     // 0: the host's pid namespace
  bool pid_ns_init = false;  // pid 1 of a non-initial pid namespace: a container's main process
  std::string comm;
};

/// Decodes a raw wait status as the kernel stores it in task->exit_code.
void decode_exit_status(uint32_t raw, ProcessExit& out);

/// Owns the loaded proc family. Not copyable.
/// Thread-safety: poll_exits on one thread at a time (it holds the ring's callback state); the
/// other methods only read or delete map entries through syscalls and may run from any thread.
class ProcessProbes {
 public:
  /// Opens, configures rodata, loads and attaches. Throws LoaderError with the verifier log
  /// tail or an actionable message.
  explicit ProcessProbes(const ProcessProbeOptions& options);
  ~ProcessProbes();
  ProcessProbes(const ProcessProbes&) = delete;
  ProcessProbes& operator=(const ProcessProbes&) = delete;

  /// sched_process_fork, sched_process_exec, sched_process_exit with their attach kind.
  std::vector<ProgramStatus> programs() const;
  FamilyCounters counters() const;
  std::vector<CgroupProcessCounts> read_counts() const;
  void forget_cgroups(const std::vector<uint64_t>& cgroup_ids);
  /// Waits up to timeout_ms for exit records, then takes every pending one (most arrive
  /// without a wakeup: at most one poll late); returns how many were handed to on_exit.
  int poll_exits(int timeout_ms, const std::function<void(const ProcessExit&)>& on_exit);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// try_load_family("proc", ...): loads the flavour without attaching.
std::string try_load_process_family(AttachKind kind, std::vector<std::string>* loaded);

}  // namespace podgauge::loader
