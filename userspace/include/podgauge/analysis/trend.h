// The least-squares trend of a series: how fast memory grows before an OOM kill, and when it
// will reach its limit.
#pragma once

#include <cstddef>
#include <optional>

namespace podgauge::analysis {

/// Least-squares line through points added one by one. Give x as offsets from a point near
/// the data (seconds since the first sample, say): the sums lose precision far from zero.
/// Thread-safety: none (a value type).
class LinearTrend {
 public:
  void add(double x, double y) noexcept {
    n_ += 1, sx_ += x, sy_ += y, sxx_ += x * x, sxy_ += x * y;
  }
  /// Slope in y units per x unit; nullopt with fewer than two distinct x.
  std::optional<double> slope() const noexcept {
    const double den = n_ * sxx_ - sx_ * sx_;
    if (n_ < 2 || den <= 0) return std::nullopt;
    return (n_ * sxy_ - sx_ * sy_) / den;
  }
  std::size_t size() const noexcept { return std::size_t(n_); }

 private:
  double n_ = 0, sx_ = 0, sy_ = 0, sxx_ = 0, sxy_ = 0;
};

}  // namespace podgauge::analysis
