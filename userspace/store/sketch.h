// Quantile sketch of the rollup tier: one per sealed chunk (inside its bytes) and one kept up to
// date for the open chunk, so a 24 h percentile merges a few dozen bins per chunk instead of
// decoding every bucket.
//
// Bins are the top 18 bits of a double (sign, exponent, 6 mantissa bits): 64 bins per octave,
// found with a shift (no log() per value, as DDSketch's log mapping would need). A bin's
// representative r = 2ab/(a+b) of its edges a < b is within (b-a)/(a+b) <= 1/129 of every value in
// it, so each order statistic read from a merged sketch is within kSketchRelativeError of the true
// one (relative), and a quantile interpolated between two of them is too when both have the same
// sign (else within that bound times the larger magnitude). Values below 2^-1022 are one bin at 0.
#pragma once

#include <cstdint>
#include <vector>

#include "podgauge/store/codec.h"
#include "podgauge/store/store.h"

namespace podgauge::store::detail {

constexpr double kSketchRelativeError = kRollupPercentileRelativeError;

struct SketchBin {
  std::uint32_t key;
  std::uint32_t count;
};

/// Order-preserving bin key of a value (ascending keys = ascending values).
inline std::uint32_t sketch_key(double v) {
  std::uint64_t b;
  static_assert(sizeof b == sizeof v);
  __builtin_memcpy(&b, &v, sizeof b);
  const auto u = static_cast<std::uint32_t>(b >> 46);  // sign + 11 exponent + 6 mantissa bits
  return (u & 0x20000u) ? 0x1ffffu - (u & 0x1ffffu) : 0x20000u + u;
}
/// The value a bin stands for.
double sketch_value(std::uint32_t key);

/// Adds one value to a small sorted bin list (the open chunk's sketch).
void sketch_add(std::vector<SketchBin>& bins, std::uint32_t key);
/// Serialised form inside a sealed chunk: bin count, then keys as gaps and counts, prefix-coded.
void write_sketch(BitWriter& w, const std::vector<SketchBin>& bins);
/// Calls `add(key, count)` per bin; false on malformed input.
template <class F>
bool read_sketch(BitReader& r, F&& add) {
  const std::uint64_t n = read_length(r);
  if (n > (1u << 20)) return false;
  std::uint64_t key = 0;
  for (std::uint64_t i = 0; i < n && !r.overrun(); ++i) {
    const auto gap = static_cast<std::uint64_t>(read_signed(r));
    key = i == 0 ? gap : key + gap + 1;
    const auto count = static_cast<std::uint64_t>(read_signed(r)) + 1;
    if (key >= 0x40000u || count > 0xffffffffu) return false;
    add(static_cast<std::uint32_t>(key), static_cast<std::uint32_t>(count));
  }
  return !r.overrun();
}

/// Merges bins and values of one series' query, then answers a quantile. Counts live in a dense
/// table (one per thread, 1 MiB, calloc'd so only touched pages are resident; only the touched
/// entries are reset), so adding is an increment. Thread-safety: one live instance per thread.
class SketchAccumulator {
 public:
  SketchAccumulator();
  ~SketchAccumulator();
  void add(std::uint32_t key, std::uint64_t count = 1) {
    std::uint32_t& c = counts_[key];
    if (c == 0) touched_.push_back(key);
    c += static_cast<std::uint32_t>(count);
    total_ += count;
  }
  void add_value(double v) { add(sketch_key(v)); }
  /// Takes back one value added before (a chunk's sketch minus the rows before a window).
  void remove_value(double v) {
    --counts_[sketch_key(v)];
    --total_;
  }
  std::uint64_t total() const { return total_; }
  /// Quantile with linear interpolation between order statistics (as Prometheus'
  /// quantile_over_time); requires total() > 0.
  double quantile(double q);

 private:
  std::uint32_t* counts_;
  std::vector<std::uint32_t> touched_;
  std::uint64_t total_ = 0;
};

}  // namespace podgauge::store::detail
