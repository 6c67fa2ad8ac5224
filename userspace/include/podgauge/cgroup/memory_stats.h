// Memory and pressure statistics read from cgroupfs and /proc/pressure: PSI (per cgroup on v2,
// per node), v2 memory.events, v1 memory.failcnt and memory.oom_control.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "podgauge/cgroup/error.h"
#include "podgauge/cgroup/file_reader.h"

namespace podgauge::cgroup {

/// One line of a PSI file: `some|full avg10=<pct> avg60=<pct> avg300=<pct> total=<us>`.
struct PressureLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;  // percent of wall time stalled
  std::uint64_t total_us = 0;               // cumulative stall time
  bool operator==(const PressureLine&) const = default;
};

/// A PSI file (cpu.pressure, memory.pressure, io.pressure, /proc/pressure/*). `full` is absent
/// from cpu pressure before Linux 5.13.
struct Pressure {
  PressureLine some;
  std::optional<PressureLine> full;
  bool operator==(const Pressure&) const = default;
};

/// Parses a PSI file. Throws CgroupError naming the line and what was expected.
Pressure parse_pressure(std::string_view text);

/// cgroup v2 memory.events (hierarchical: the cgroup and its descendants).
struct MemoryEvents {
  std::uint64_t low = 0;       // reclaimed below memory.low
  std::uint64_t high = 0;      // over memory.high: throttled and forced to reclaim
  std::uint64_t max = 0;       // at memory.max: an allocation had to reclaim or fail
  std::uint64_t oom = 0;       // memory.max could not be kept: the OOM killer was invoked
  std::uint64_t oom_kill = 0;  // processes killed by the OOM killer
  std::optional<std::uint64_t> oom_group_kill;  // memory.oom.group kills (Linux 5.16+)
  bool operator==(const MemoryEvents&) const = default;
};

/// Parses memory.events. Keys this version does not know are ignored (kernels add some); the
/// five that every kernel with cgroup v2 writes must be present. Throws CgroupError.
MemoryEvents parse_memory_events(std::string_view text);

/// cgroup v1 memory.oom_control.
struct MemoryOomControl {
  bool oom_kill_disable = false;
  bool under_oom = false;                 // tasks are waiting for memory right now
  std::optional<std::uint64_t> oom_kill;  // processes killed (Linux 4.13+)
  bool operator==(const MemoryOomControl&) const = default;
};

MemoryOomControl parse_memory_oom_control(std::string_view text);

/// A file holding one unsigned integer and a newline (v1 memory.failcnt).
std::uint64_t parse_single_counter(std::string_view text);

/// Readers: nullopt when the file does not exist (controller or PSI off, cgroup gone); throw
/// CgroupError on any other error or on content that does not parse.
std::optional<Pressure> read_pressure(FileReader& files, const std::filesystem::path& file);
/// The same for the file `name` in `dir` (no path built per file).
std::optional<Pressure> read_pressure(FileReader& files, const CgroupDir& dir, std::string_view name);
std::optional<MemoryEvents> read_memory_events(FileReader& files, const CgroupDir& cgroup_dir);
std::optional<MemoryOomControl> read_memory_oom_control(FileReader& files,
                                                        const CgroupDir& cgroup_dir);
std::optional<std::uint64_t> read_memory_failcnt(FileReader& files, const CgroupDir& cgroup_dir);

}  // namespace podgauge::cgroup
