#include "podgauge/cgroup/cpu_limit.h"

#include <charconv>
#include <fstream>
#include <stdexcept>
#include <string>

namespace podgauge::cgroup {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

template <typename T>
std::optional<T> number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}


}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
  text = trim(text);
  const auto sp = text.find(' ');
  if (sp == std::string_view::npos) throw std::invalid_argument("cpu.max: expected '<quota|max> <period>'");
  const auto quota = text.substr(0, sp);
  const auto period = number<uint64_t>(trim(text.substr(sp + 1)));
  if (!period || *period == 0) throw std::invalid_argument("cpu.max: bad period");
  if (quota == "max") return std::nullopt;
  const auto q = number<uint64_t>(quota);
  if (!q) throw std::invalid_argument("cpu.max: quota is neither 'max' nor a number");
  return double(*q) / double(*period);
}

std::optional<double> parse_cfs_quota(std::string_view quota_us, std::string_view period_us) {
  const auto q = number<int64_t>(trim(quota_us));
  const auto p = number<uint64_t>(trim(period_us));
  if (!q || !p || *p == 0) throw std::invalid_argument("cpu.cfs_quota_us/cpu.cfs_period_us: not numbers");
  if (*q < 0) return std::nullopt;
  return double(*q) / double(*p);
}

std::optional<double> read_cpu_limit_cores(FileReader& files, const CgroupDir& dir, bool v2) {
  if (v2) {
    auto t = files.read(dir, "cpu.max");
    return t ? parse_cpu_max(*t) : std::nullopt;
  }
  auto q = files.read(dir, "cpu.cfs_quota_us");
  if (!q) return std::nullopt;
  // No quota (-1): the period does not matter and is not read (a file less per container).
  if (const auto n = number<int64_t>(trim(*q)); n && *n < 0) return std::nullopt;
  const std::string quota(*q);  // the reader's view lasts until its next read
  auto p = files.read(dir, "cpu.cfs_period_us");
  if (!p) return std::nullopt;
  return parse_cfs_quota(quota, *p);
}

}  // namespace podgauge::cgroup
