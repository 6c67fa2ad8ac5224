// The mem BPF family (bpf/mem.bpf.c): time tasks stall in memory reclaim, per memory cgroup.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "podgauge/loader/kernel_probes.h"

namespace podgauge::loader {

/// Which hierarchy's cgroup ids key the reclaim stalls.
enum class MemoryKeying {
  DefaultHierarchy,  // cgroup v2 with the memory controller
  V1Memory,          // the v1 memory hierarchy (v1-only and hybrid nodes)
};

struct MemoryProbeOptions {
  MemoryKeying keying = MemoryKeying::DefaultHierarchy;
  bool force_raw_tracepoints = false;
};

/// Stall histogram layout (bpf/mem.h): slot 0 counts stalls up to 2^12 ns, slot k stalls in
/// (2^(11+k), 2^(12+k)] ns, the last slot everything above 2^30 ns.
inline constexpr std::size_t kReclaimStallSlots = 20;
inline constexpr int kReclaimStallFirstShift = 12;
/// The finite upper bounds of the slots in seconds (kReclaimStallSlots - 1 of them).
std::array<double, kReclaimStallSlots - 1> reclaim_stall_bounds_seconds();

/// Cumulative stalls of one kind of reclaim.
struct ReclaimStalls {
  std::array<uint64_t, kReclaimStallSlots> slots{};  // per slot, not cumulative
  uint64_t stall_ns = 0;
  uint64_t count = 0;
  bool operator==(const ReclaimStalls&) const = default;
};

/// Cumulative reclaim stalls of the tasks of one memory cgroup.
struct CgroupReclaimStalls {
  uint64_t cgroup_id = 0;
  ReclaimStalls memcg;   // the cgroup (or an ancestor) at memory.high / memory.max
  ReclaimStalls direct;  // global direct reclaim: the node short of free pages
};

/// Loads and attaches the mem family. A kernel without a vmscan tracepoint loses that kind of
/// stall only (programs() says why); only a verifier refusal or missing privileges throw.
/// Thread-safety: const methods may run concurrently with each other; forget_cgroups must not
/// run concurrently with anything.
class MemoryProbes {
 public:
  /// Throws LoaderError when the family cannot be loaded at all.
  MemoryProbes(const MemoryProbeOptions& options, const KernelFeatures& features);
  ~MemoryProbes();
  MemoryProbes(const MemoryProbes&) = delete;
  MemoryProbes& operator=(const MemoryProbes&) = delete;

  /// memcg_reclaim and direct_reclaim, each with its attach kind (or why it is not loaded).
  std::vector<ProgramStatus> programs() const;
  FamilyCounters counters() const;
  /// Whether either kind of reclaim is being measured.
  bool measuring() const;
  /// Every memory cgroup's cumulative stalls, one batch read of the map.
  std::vector<CgroupReclaimStalls> read_reclaim_stalls() const;
  /// Drops cgroups that no longer exist from the in-kernel map (keeps it bounded).
  void forget_cgroups(const std::vector<uint64_t>& cgroup_ids);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace podgauge::loader
