// The kernel side of podgauge: feature probes, BPF skeletons, map reads, ring buffers.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace podgauge::loader {

/// A BPF program could not be loaded or attached; what() says why and what to do.
class LoaderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Which cgroup hierarchy's ids key per-cgroup data.
enum class CgroupKeying {
  DefaultHierarchy,  // cgroup v2 (pure v2 nodes)
  V1Cpuacct,         // v1 cpuacct hierarchy (v1-only and hybrid nodes)
  V1Cpu,             // v1 cpu hierarchy when cpuacct is not mounted
};
std::string to_string(CgroupKeying keying);

enum class AttachKind { TpBtf, RawTracepoint, NotLoaded, Fentry, Kprobe };
std::string to_string(AttachKind kind);

struct LoaderOptions {
  CgroupKeying keying = CgroupKeying::DefaultHierarchy;
  bool force_raw_tracepoints = false;  // tests and kernels whose tp_btf misbehaves
  bool enable_bpf_stats = false;       // kernel.bpf_stats_enabled for run_time_ns
  bool enable_oom = true;
  // How to catch OOM kills; NotLoaded: the best this kernel offers (tp_btf/raw_tp on
  // mark_victim, else fentry, else kprobe on mark_oom_victim). Tests force one.
  AttachKind oom_attach = AttachKind::NotLoaded;
};

/// What the feature probes found on this kernel.
struct KernelFeatures {
  bool btf = false;               // /sys/kernel/btf/vmlinux
  bool tp_btf = false;            // BTF-typed tracepoints (btf_trace_* typedefs)
  bool mark_victim_task = false;  // mark_victim passes the victim task_struct
  bool mark_oom_victim_btf = false;  // mark_oom_victim() has BTF: fentry can attach to it
  bool fentry = false;            // a minimal fentry program on mark_oom_victim() loads
  bool sched_info = false;        // task_struct::sched_info (CONFIG_SCHED_INFO): run-queue latency
  bool any_context_alloc = false;  // bpf_mem_alloc (6.1): non-preallocated maps in tracing
  int cpu_subsys_id = -1;         // enum cgroup_subsys_id values on this kernel
  int cpuacct_subsys_id = -1;
  int memory_subsys_id = -1;
};

/// Probes the running kernel through its BTF. Throws LoaderError when BTF is missing.
KernelFeatures probe_kernel_features();

struct ProgramStatus {
  std::string family;  // "cpu", "oom"
  std::string name;    // e.g. "sched_switch"
  AttachKind attach = AttachKind::NotLoaded;
  std::string reason;  // why it is not loaded, if it is not
  uint64_t run_time_ns = 0;  // only with bpf stats enabled
  uint64_t run_count = 0;
};

/// Sum over CPUs of the per-CPU self-counters of one family (see bpf/stats.h).
struct FamilyCounters {
  std::string family;
  uint64_t events = 0;
  uint64_t ringbuf_drops = 0;
  uint64_t map_full = 0;
  uint64_t read_errors = 0;
  uint64_t pair_map_full = 0;  // preemptions lost: the pair map was full
  uint64_t rate_limited = 0;   // records held back by a per-cgroup rate limit
};

struct CgroupCpuUsage {
  uint64_t cgroup_id = 0;
  uint64_t on_cpu_ns = 0;  // includes the slice in progress on each CPU
  uint64_t slices = 0;
};

/// Run-queue latency histogram layout (bpf/cpu.h): slot 0 counts delays up to 2^10 ns, slot k
/// delays in (2^(9+k), 2^(10+k)] ns, the last slot everything above 2^30 ns.
inline constexpr std::size_t kRunqueueLatencySlots = 22;
inline constexpr int kRunqueueLatencyFirstShift = 10;
/// The finite upper bounds of the slots in seconds (kRunqueueLatencySlots - 1 of them).
std::array<double, kRunqueueLatencySlots - 1> runqueue_latency_bounds_seconds();

/// Cumulative run-queue latency of one cgroup, summed over CPUs.
struct CgroupRunqueueLatency {
  uint64_t cgroup_id = 0;
  std::array<uint64_t, kRunqueueLatencySlots> slots{};  // per slot, not cumulative
  uint64_t sum_ns = 0;
  uint64_t count = 0;
};

/// Cumulative preemptions of tasks of `victim` by tasks of `preemptor` (cgroup ids).
struct CgroupPreemptions {
  uint64_t victim_cgroup_id = 0;
  uint64_t preemptor_cgroup_id = 0;
  uint64_t count = 0;
};

/// One OOM kill, decoded from bpf/oom.h's record, in bytes.
struct OomKill {
  uint64_t ktime_ns = 0;  // CLOCK_MONOTONIC
  uint64_t memcg_id = 0;
  uint64_t dfl_cgroup_id = 0;
  uint64_t cpu_cgroup_id = 0;
  uint64_t rss_bytes = 0;
  uint64_t memcg_usage_bytes = 0;
  uint64_t memcg_limit_bytes = 0;  // 0: unlimited
  uint32_t pid = 0;
  uint32_t tgid = 0;
  int32_t oom_score_adj = 0;
  std::string comm;
};

/// Owns every loaded BPF object. Not copyable.
/// Thread-safety: read_cpu_usage/counters/programs may run concurrently with poll_oom_kills
/// (they touch different maps); each method must not be called from two threads at once.
class KernelProbes {
 public:
  struct State;
  /// Probes, opens, configures rodata, loads and attaches. Throws LoaderError with the
  /// verifier log tail or an actionable message.
  explicit KernelProbes(const LoaderOptions& options);
  ~KernelProbes();
  KernelProbes(const KernelProbes&) = delete;
  KernelProbes& operator=(const KernelProbes&) = delete;

  const KernelFeatures& features() const;
  std::vector<ProgramStatus> programs() const;
  std::vector<FamilyCounters> counters() const;

  /// Every cgroup's cumulative on-CPU time so far.
  std::vector<CgroupCpuUsage> read_cpu_usage() const;
  /// Every cgroup's cumulative run-queue latency histogram.
  std::vector<CgroupRunqueueLatency> read_runqueue_latency() const;
  /// Every {victim, preemptor} pair's cumulative preemptions.
  std::vector<CgroupPreemptions> read_preemptions() const;
  /// Drops cgroups that no longer exist from the in-kernel maps (keeps them bounded).
  void forget_cgroups(const std::vector<uint64_t>& cgroup_ids);

  /// Waits up to timeout_ms for OOM kills and hands each to on_kill. Returns the number
  /// handled, 0 on timeout. No-op when the OOM family is not loaded.
  int poll_oom_kills(int timeout_ms, const std::function<void(const OomKill&)>& on_kill);
  bool oom_loaded() const;
  /// Cgroups removed on the host since the probes loaded, plus those made that could not be
  /// recorded in full (cgroup_mkdir/rmdir tracepoints; a plain memory read): a walk of the trees
  /// is due when it moves. nullopt when those programs could not attach.
  std::optional<uint64_t> cgroup_changes() const;
  /// The cgroups made since the previous call, each as its path relative to its hierarchy's root
  /// ("/kubepods/pod<uid>/<id>"), in the order they were made, appended to `paths`. Does not
  /// wait. Returns how many were appended; 0 when the programs are not attached.
  size_t take_cgroups_made(std::vector<std::string>& paths);
  /// Thread-group ids of the processes moved to another cgroup (any hierarchy) since the
  /// previous call (cgroup_attach_task), taken out of the kernel's set. nullopt when unknown:
  /// the tracepoint is not attached, or moves were lost because the set was full.
  std::optional<std::vector<int32_t>> take_cgroup_moves();

 private:
  std::unique_ptr<State> state_;
};

/// Loads (and unloads) one family with the given attach kind, without attaching, for the
/// "loads under this kernel's verifier" tests. Returns "" on success, else the error and
/// verifier log.
/// `loaded`, when given, receives the names of the programs that loaded.
std::string try_load_family(const std::string& family, AttachKind kind,
                            std::vector<std::string>* loaded = nullptr);
/// The same for the mem family (defined in memory_probes.cpp).
std::string try_load_memory_family(AttachKind kind, std::vector<std::string>* loaded = nullptr);

}  // namespace podgauge::loader
