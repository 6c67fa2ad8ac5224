#include "sketch.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>

namespace podgauge::store::detail {

namespace {
constexpr std::uint32_t kKeys = 0x40000;

struct FreeDeleter {
  void operator()(std::uint32_t* p) const { std::free(p); }
};
}  // namespace

double sketch_value(std::uint32_t key) {
  const bool negative = key < 0x20000u;
  const std::uint64_t u = negative ? 0x1ffffu - key : key - 0x20000u;
  const double a = std::bit_cast<double>(u << 46);
  if (!std::isfinite(a)) return negative ? -a : a;  // the ±Inf bin
  const double b = std::bit_cast<double>((u + 1) << 46);
  double r = a == 0 ? 0.0 : std::isfinite(b) ? 2 * a * (b / (a + b)) : a;
  return negative ? -r : r;
}

void sketch_add(std::vector<SketchBin>& bins, std::uint32_t key) {
  auto it = std::lower_bound(bins.begin(), bins.end(), key,
                             [](const SketchBin& b, std::uint32_t k) { return b.key < k; });
  if (it != bins.end() && it->key == key) {
    ++it->count;
    return;
  }
  bins.insert(it, SketchBin{key, 1});
}

void write_sketch(BitWriter& w, const std::vector<SketchBin>& bins) {
  write_length(w, bins.size());
  std::uint32_t prev = 0;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    write_signed(w, i == 0 ? bins[i].key : bins[i].key - prev - 1);
    write_signed(w, std::int64_t{bins[i].count} - 1);
    prev = bins[i].key;
  }
}

SketchAccumulator::SketchAccumulator() {
  thread_local std::unique_ptr<std::uint32_t, FreeDeleter> table(
      static_cast<std::uint32_t*>(std::calloc(kKeys, sizeof(std::uint32_t))));
  if (!table) throw std::bad_alloc();
  counts_ = table.get();
}

SketchAccumulator::~SketchAccumulator() {
  for (std::uint32_t k : touched_) counts_[k] = 0;
}

double SketchAccumulator::quantile(double q) {
  std::sort(touched_.begin(), touched_.end());
  // A bin emptied by remove_value() and filled again is listed twice.
  touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(total_ - 1);
  const auto lo = static_cast<std::uint64_t>(std::floor(rank));
  // The bins holding order statistics lo and lo + 1 (0-based).
  std::uint64_t seen = 0;
  double v_lo = 0, v_hi = 0;
  bool have_lo = false;
  for (std::uint32_t k : touched_) {
    seen += counts_[k];
    if (!have_lo && seen > lo) {
      v_lo = sketch_value(k);
      have_lo = true;
    }
    if (seen > lo + 1 || seen == total_) {
      v_hi = sketch_value(k);
      break;
    }
  }
  return v_lo + (v_hi - v_lo) * (rank - static_cast<double>(lo));
}

}  // namespace podgauge::store::detail
