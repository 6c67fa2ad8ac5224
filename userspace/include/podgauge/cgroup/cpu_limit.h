// The CFS bandwidth limit of a cgroup (what a container's CPU limit becomes in the kernel).
#pragma once

#include <filesystem>
#include <optional>
#include <string_view>

#include "podgauge/cgroup/file_reader.h"

namespace podgauge::cgroup {

/// v2 cpu.max ("max 100000" or "<quota> <period>") -> cores; nullopt when unlimited.
/// Throws std::invalid_argument on malformed text.
std::optional<double> parse_cpu_max(std::string_view text);
/// v1 cpu.cfs_quota_us and cpu.cfs_period_us -> cores; nullopt when the quota is -1.
std::optional<double> parse_cfs_quota(std::string_view quota_us, std::string_view period_us);
/// Reads the limit of a cgroup directory of the cpu hierarchy (v1 cpu controller or v2 with
/// cpu enabled); nullopt when unlimited or when the files are absent (gone, no controller).
std::optional<double> read_cpu_limit_cores(FileReader& files, const CgroupDir& dir, bool v2);

}  // namespace podgauge::cgroup
