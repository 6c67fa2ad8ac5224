#include "podgauge/store/store.h"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <thread>

#include "series.h"

namespace podgauge::store {

using detail::Row;
using detail::Series;
using detail::Summary;
using detail::TierData;
using namespace detail;  // Field names

Store::Store(Options options) : options_(options) {
  if (options_.rollup_step_ms <= 0 || options_.raw_chunk_samples == 0 ||
      options_.rollup_chunk_rows == 0 || options_.history_ms <= 0 ||
      options_.raw_retention_ms <= 0 || options_.expire_lock_budget_us < 0) {
    throw StoreError("store options: steps, retentions and chunk sizes must be positive");
  }
}

Store::~Store() = default;

void Store::set_kind(std::uint16_t metric, SeriesKind kind) {
  std::unique_lock lock(mutex_);
  if (kinds_.size() <= metric) kinds_.resize(std::size_t{metric} + 1, 0);
  kinds_[metric] = static_cast<std::uint8_t>(kind);
}

void Store::set_precision(std::uint16_t metric, int decimals) {
  if (decimals < -1 || decimals > 9) throw StoreError("store precision must be -1 (exact) or 0..9 decimals");
  std::unique_lock lock(mutex_);
  if (precision_.size() <= metric) precision_.resize(std::size_t{metric} + 1, -1);
  precision_[metric] = static_cast<std::int8_t>(decimals);
}

SeriesKind Store::kind(std::uint16_t metric) const {
  std::shared_lock lock(mutex_);
  return metric < kinds_.size() ? static_cast<SeriesKind>(kinds_[metric]) : SeriesKind::kGauge;
}

namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

AppendStatus Store::append(const SeriesKey& key, std::int64_t t_ms, double value) {
  if (!std::isfinite(value)) return AppendStatus::kNotFinite;
  std::unique_lock lock(mutex_);
  return append_locked(key, t_ms, value);
}

std::size_t Store::append_batch(std::int64_t t_ms, std::span<const AppendItem> items, AppendStatus* statuses) {
  std::size_t ok = 0;
  std::unique_lock lock(mutex_);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const AppendStatus st = std::isfinite(items[i].value)
                                ? append_locked(items[i].key, t_ms, items[i].value, items[i].handle)
                                : AppendStatus::kNotFinite;
    ok += st == AppendStatus::kOk;
    if (statuses) statuses[i] = st;
  }
  return ok;
}

std::size_t Store::append_timed(std::span<const TimedAppendItem> items) {
  std::size_t ok = 0;
  std::unique_lock lock(mutex_);
  for (const auto& item : items)
    ok += std::isfinite(item.value) &&
          append_locked(item.key, item.t_ms, item.value, item.handle) == AppendStatus::kOk;
  return ok;
}

AppendStatus Store::append_locked(const SeriesKey& key, std::int64_t t_ms, double value,
                                  SeriesHandle* handle) {
  if (key.metric < precision_.size() && precision_[key.metric] >= 0) {
    static constexpr double kPow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    const double p = kPow10[precision_[key.metric]];
    if (std::fabs(value * p) < 9007199254740992.0) value = std::nearbyint(value * p) / p;
  }
  Series* found = nullptr;
  if (handle && handle->epoch == epoch_ && handle->key == key) {
    found = handle->series;
  } else {
    auto& slot = series_[key];
    if (!slot) {
      slot = std::make_unique<Series>();
      slot->kind = key.metric < kinds_.size() ? static_cast<SeriesKind>(kinds_[key.metric])
                                              : SeriesKind::kGauge;
    }
    found = slot.get();
    if (handle) *handle = {key, found, epoch_};
  }
  Series& s = *found;
  if (s.has_last) {
    if (t_ms < s.last_t) return AppendStatus::kOutOfOrder;
    if (t_ms == s.last_t) return AppendStatus::kDuplicate;
  }
  Row r;
  r.t = t_ms;
  r.f = {1, value, value, value, value, 0};
  detail::add_row(s.raw, r, s.kind, Tier::kRaw, options_.raw_chunk_samples);

  const std::int64_t step = options_.rollup_step_ms;
  detail::Bucket& b = s.bucket;
  if (b.count > 0 && floor_div(b.t, step) != floor_div(t_ms, step)) {
    detail::add_row(s.rollup, detail::bucket_row(b), s.kind, Tier::kRollup, options_.rollup_chunk_rows);
    b = detail::Bucket{};
  }
  ++b.count;
  b.t = t_ms;
  b.sum += value;
  b.min = std::min(b.min, value);
  b.max = std::max(b.max, value);
  b.last = value;
  if (s.kind == SeriesKind::kCounter && s.has_last && value < s.last_v) b.corr += s.last_v;

  s.has_last = true;
  s.last_t = t_ms;
  s.last_v = value;
  return AppendStatus::kOk;
}

namespace {

/// Folds rows and whole-chunk summaries of one tier, in time order, into one answer.
class Aggregator {
 public:
  Aggregator(SeriesKind kind, Tier tier, Agg agg) : kind_(kind), tier_(tier), agg_(agg) {
    if (uses_sketch()) sketch_.emplace();
  }

  bool wants_values() const { return agg_ == Agg::kPercentile; }
  /// Rollup percentiles merge per-chunk sketches (see sketch.h for the error bound); raw ones are
  /// exact.
  bool uses_sketch() const { return agg_ == Agg::kPercentile && tier_ == Tier::kRollup; }
  Agg agg() const { return agg_; }
  void reserve_values(std::size_t n) {
    if (wants_values() && !uses_sketch()) values_.reserve(n);
  }
  /// A whole chunk's values, as sketch bins (after chunk(), which adds a counter chunk's first rate).
  void sketch_bin(std::uint32_t key, std::uint32_t count) { sketch_->add(key, count); }
  /// The row fields this aggregation reads (the rest need not be decoded).
  unsigned fields() const {
    constexpr unsigned kAlways = 1u << kCount;  // samples behind the answer
    if (kind_ == SeriesKind::kCounter) return kAlways | 1u << kLast | 1u << kCorr;
    switch (agg_) {
      case Agg::kMin: return kAlways | 1u << kMin;
      case Agg::kMax: return kAlways | 1u << kMax;
      case Agg::kLast:
      case Agg::kRate: return kAlways | 1u << kLast;
      case Agg::kAvg:
      case Agg::kPercentile: return kAlways | 1u << kSum;
    }
    return ~0u;
  }
  /// Whether a whole chunk can be folded from its summary (counters need a predecessor).
  bool can_take_summary() const {
    return (!wants_values() || uses_sketch()) && (kind_ == SeriesKind::kGauge || any_);
  }
  /// Whether a chunk cut by the window's start can be folded as its summary minus the rows before
  /// the window: what is summed (count, sum, increase, sketch bins) subtracts; min and max do not.
  bool can_take_tail() const {
    return !any_ && (agg_ != Agg::kPercentile || uses_sketch());
  }
  /// Values to take out of the sketch once the chunk's bins are in (a bin must be non-empty
  /// before it is decremented).
  void sketch_remove_later(double v) { removals_.push_back(v); }
  void apply_sketch_removals() {
    for (double v : removals_) sketch_->remove_value(v);
    removals_.clear();
  }

  void row(const Row& r) {
    samples_ += static_cast<std::uint64_t>(r.f[kCount]);
    if (kind_ == SeriesKind::kGauge) {
      if (!any_) first_ = r.f[kLast];
      sum_ += r.f[kSum];
      min_ = std::min(min_, r.f[kMin]);
      max_ = std::max(max_, r.f[kMax]);
      if (wants_values()) value(r.f[kSum] / r.f[kCount]);
    } else if (any_) {
      step(r.t, r.f[kLast] - last_ + detail::corr_of(r, last_, tier_));
    }
    if (!any_) t_first_ = r.t;
    any_ = true;
    t_last_ = r.t;
    last_ = r.f[kLast];
  }

  void chunk(const Summary& s) {
    samples_ += s.samples;
    if (kind_ == SeriesKind::kGauge) {
      if (!any_) first_ = s.first;
      sum_ += s.a;
      min_ = std::min(min_, s.b);
      max_ = std::max(max_, s.c);
    } else {
      if (any_) {
        const double corr = tier_ == Tier::kRollup ? s.first_corr : (s.first < last_ ? last_ : 0.0);
        step(s.t_first, s.first - last_ + corr);
      }
      inc_ += s.a;
      min_ = std::min(min_, s.b);
      max_ = std::max(max_, s.c);
    }
    if (!any_) t_first_ = s.t_first;
    any_ = true;
    t_last_ = s.t_last;
    last_ = s.last;
  }

  std::optional<QueryResult> result(double q) {
    if (!any_) return std::nullopt;
    QueryResult res{0, samples_, tier_};
    const double seconds = static_cast<double>(t_last_ - t_first_) / 1000.0;
    const bool counter = kind_ == SeriesKind::kCounter;
    switch (agg_) {
      case Agg::kLast:
        res.value = last_;
        return res;
      case Agg::kAvg:
        if (!counter) {
          res.value = sum_ / static_cast<double>(samples_);
          return res;
        }
        [[fallthrough]];
      case Agg::kRate:
        if (seconds <= 0) return std::nullopt;
        res.value = (counter ? inc_ : last_ - first_) / seconds;
        return res;
      case Agg::kMin:
      case Agg::kMax:
        if (counter && max_ < min_) return std::nullopt;  // one sample: no rate yet
        res.value = agg_ == Agg::kMin ? min_ : max_;
        return res;
      case Agg::kPercentile: {
        if (sketch_) {
          if (sketch_->total() == 0) return std::nullopt;
          res.value = sketch_->quantile(q);
          return res;
        }
        if (values_.empty()) return std::nullopt;
        q = std::clamp(q, 0.0, 1.0);
        const double rank = q * static_cast<double>(values_.size() - 1);
        const auto lo = static_cast<std::size_t>(std::floor(rank));
        std::nth_element(values_.begin(), values_.begin() + static_cast<std::ptrdiff_t>(lo),
                         values_.end());
        double v = values_[lo];
        if (lo + 1 < values_.size() && rank > static_cast<double>(lo)) {
          const double hi = *std::min_element(values_.begin() + static_cast<std::ptrdiff_t>(lo) + 1,
                                              values_.end());
          v += (hi - v) * (rank - static_cast<double>(lo));
        }
        res.value = v;
        return res;
      }
    }
    return std::nullopt;
  }

 private:
  void step(std::int64_t t, double inc) {
    inc_ += inc;
    if (agg_ != Agg::kMin && agg_ != Agg::kMax && !wants_values()) return;  // per-step rates unused
    const double rate = inc / (static_cast<double>(t - t_last_) / 1000.0);
    min_ = std::min(min_, rate);
    max_ = std::max(max_, rate);
    if (wants_values()) value(rate);
  }
  void value(double v) {
    if (sketch_) {
      sketch_->add_value(v);
    } else {
      values_.push_back(v);
    }
  }

  SeriesKind kind_;
  Tier tier_;
  Agg agg_;
  bool any_ = false;
  std::uint64_t samples_ = 0;
  std::int64_t t_first_ = 0, t_last_ = 0;
  double first_ = 0, last_ = 0, sum_ = 0, inc_ = 0;
  double min_ = detail::kInf, max_ = -detail::kInf;
  std::vector<double> values_;
  std::vector<double> removals_;
  std::optional<detail::SketchAccumulator> sketch_;
};

/// Row membership in a window: raw rows by time; rollup rows by their bucket overlapping it.
/// A row's bucket overlaps [start, end] exactly when lo <= t <= hi, with lo the start of the
/// start's bucket and hi the end of the end's: two compares a row instead of a 64-bit division.
struct WindowTest {
  WindowTest(Window w, Tier tier, std::int64_t step) : lo(w.start_ms), hi(w.end_ms) {
    if (tier == Tier::kRaw) return;
    std::int64_t b;
    lo = __builtin_mul_overflow(floor_div(w.start_ms, step), step, &b) ? INT64_MIN : b;
    if (__builtin_mul_overflow(floor_div(w.end_ms, step), step, &b) || __builtin_add_overflow(b, step - 1, &hi))
      hi = INT64_MAX;
  }
  std::int64_t lo, hi;
  bool in(std::int64_t t) const { return t >= lo && t <= hi; }
  bool before(std::int64_t t) const { return t < lo; }
  bool after(std::int64_t t) const { return t > hi; }
};

void fold_columns(const detail::Columns& cols, SeriesKind kind, Tier tier, const WindowTest& wt,
                  Aggregator& agg, std::size_t first);

/// Folds the rows of a sealed chunk that lie in the window, decoding only the columns the
/// aggregation reads, straight from column buffers (no row vector per chunk).
void fold_sealed_columns(const detail::ChunkView& c, SeriesKind kind, Tier tier,
                         const WindowTest& wt, Aggregator& agg) {
  thread_local detail::Columns cols;
  unsigned want = agg.fields();
  if (tier == Tier::kRaw) want = 1u << kLast;  // a raw row is all its value
  if (!detail::decode_sealed_columns(c.data(), c.bits, c.sum.rows, kind, tier, want, cols))
    return;  // cannot happen for chunks sealed here or verified on restore
  const auto& t = cols.t;
  // Rows are in time order: skip those before the window by binary search, stop after it.
  const auto first = static_cast<std::size_t>(
      std::partition_point(t.begin(), t.end(), [&](std::int64_t x) { return wt.before(x); }) -
      t.begin());
  fold_columns(cols, kind, tier, wt, agg, first);
}

/// Folds decoded columns' rows from `first` while they are in the window.
void fold_columns(const detail::Columns& cols, SeriesKind kind, Tier tier, const WindowTest& wt,
                  Aggregator& agg, std::size_t first) {
  const detail::Layout l = detail::layout(tier, kind);
  const unsigned want = tier == Tier::kRaw ? 1u << kLast : agg.fields();
  unsigned present[kFields];
  unsigned np = 0;
  for (unsigned j = 0; j < l.n; ++j)
    if (want & (1u << l.fields[j])) present[np++] = l.fields[j];
  const auto& t = cols.t;
  for (std::size_t i = first; i < t.size(); ++i) {
    if (!wt.in(t[i])) break;
    Row r;
    r.t = t[i];
    if (tier == Tier::kRaw) {
      const double v = cols.f[kLast][i];
      r.f = {1, v, v, v, v, 0};
    } else {
      for (unsigned j = 0; j < np; ++j) r.f[present[j]] = cols.f[present[j]][i];
    }
    agg.row(r);
  }
}

/// Folds the rows in the window of a chunk cut by the window's start (rows i..n-1) as its summary
/// minus rows 0..i-1, decoding only rows 0..i of the columns needed: half a chunk on average
/// instead of all of it. Sums of integers (bytes, counts) subtract exactly.
void fold_tail(const detail::ChunkView& c, SeriesKind kind, Tier tier, const WindowTest& wt,
               Aggregator& agg) {
  thread_local detail::Columns cols;
  // What the prefix must give: its sample count; a gauge's sum (avg, percentile) or the value
  // the window starts at (rate); a counter's increase (avg, rate, percentile). kLast needs only
  // the count; then the sums below are of unread columns and unused.
  const bool counter = kind == SeriesKind::kCounter;
  unsigned want = 0;
  if (agg.agg() != Agg::kLast) {
    if (counter || agg.agg() == Agg::kRate) want |= 1u << kLast;
    if (counter && tier == Tier::kRollup) want |= 1u << kCorr;
    if (!counter && agg.agg() != Agg::kRate) {
      const Agg a = agg.agg();
      want |= tier == Tier::kRaw ? 1u << kLast : a == Agg::kMin ? 1u << kMin : a == Agg::kMax ? 1u << kMax : 1u << kSum;
    }
  }
  if (tier == Tier::kRollup) want |= 1u << kCount;
  if (tier == Tier::kRaw && want == 0) want = 1u << kLast;  // the times are all a raw kLast needs
  std::uint32_t first = 0;  // the first row in the window
  // Decoding runs from the chunk's start: only the prefix, wherever the window starts (what sums
  // subtracts; min and max decode the rest only when the chunk's extreme lies in the prefix).
  const detail::PrefixOf prefix = [&](const std::vector<std::int64_t>& t, unsigned&) {
    first = static_cast<std::uint32_t>(
        std::partition_point(t.begin(), t.end(), [&](std::int64_t x) { return wt.before(x); }) - t.begin());
    return first + 1;
  };
  if (!detail::decode_sealed_columns(c.data(), c.bits, c.sum.rows, kind, tier, want, cols, &prefix) ||
      first == 0 || first >= c.sum.rows)
    return;  // cannot happen: the chunk starts before the window and ends inside it
  // The rows before the window, summed as the chunk's summary was built (same order, so a
  // counter's increase is the same partial sum); a counter's row `first` steps from outside.
  const auto& t = cols.t;
  const bool rollup = tier == Tier::kRollup;
  const bool sketch = agg.uses_sketch();
  double pre_a = 0, pre_samples = 0;
  // Min and max do not subtract, but when the chunk's extreme is not in the rows before the
  // window it is in the window (the rest of the chunk): the prefix tells which.
  const bool extreme = agg.agg() == Agg::kMin || agg.agg() == Agg::kMax;
  double pre_min = detail::kInf, pre_max = -detail::kInf;
  if (extreme && !counter) {
    const double* v = cols.f[tier == Tier::kRaw ? kLast : agg.agg() == Agg::kMin ? kMin : kMax].data();
    for (std::uint32_t i = 0; i < first; ++i) {
      pre_samples += rollup ? cols.f[kCount][i] : 1.0;
      pre_min = std::min(pre_min, v[i]);
      pre_max = std::max(pre_max, v[i]);
    }
  } else if (!(want & (1u << kLast)) && !(want & (1u << kSum))) {
    for (std::uint32_t i = 0; i < first; ++i) pre_samples += rollup ? cols.f[kCount][i] : 1.0;
  } else if (kind == SeriesKind::kGauge && agg.agg() != Agg::kRate) {
    const double* sum = rollup ? cols.f[kSum].data() : cols.f[kLast].data();
    for (std::uint32_t i = 0; i < first; ++i) {
      const double n = rollup ? cols.f[kCount][i] : 1.0;
      pre_a += sum[i];
      pre_samples += n;
      if (sketch) agg.sketch_remove_later(sum[i] / n);
    }
  } else if (kind == SeriesKind::kGauge) {  // rate: only where the window starts
    for (std::uint32_t i = 0; i < first; ++i) pre_samples += rollup ? cols.f[kCount][i] : 1.0;
  } else {
    const double* last = cols.f[kLast].data();
    const double* corr = rollup ? cols.f[kCorr].data() : nullptr;
    for (std::uint32_t i = 0; i < first; ++i) pre_samples += rollup ? cols.f[kCount][i] : 1.0;
    for (std::uint32_t i = 1; i <= first; ++i) {
      const double inc = last[i] - last[i - 1] + (rollup ? corr[i] : (last[i] < last[i - 1] ? last[i - 1] : 0.0));
      pre_a += inc;
      if (sketch || extreme) {
        const double rate = inc / (static_cast<double>(t[i] - t[i - 1]) / 1000.0);
        if (sketch) agg.sketch_remove_later(rate);
        pre_min = std::min(pre_min, rate);
        pre_max = std::max(pre_max, rate);
      }
    }
  }
  // A chunk whose values (rates) are all equal has its extreme everywhere (an idle series).
  const bool flat = c.sum.b == c.sum.c && (kind == SeriesKind::kGauge || first + 1 < c.sum.rows);
  const bool extreme_before = !flat && ((agg.agg() == Agg::kMin && !(pre_min > c.sum.b)) ||
                                        (agg.agg() == Agg::kMax && !(pre_max < c.sum.c)));
  Summary tail = c.sum;
  if (extreme_before) {
    // The extreme of the values (a counter's per-step rates) in the window, in one pass over the
    // whole chunk's decoded columns.
    if (!detail::decode_sealed_columns(c.data(), c.bits, c.sum.rows, kind, tier, want, cols)) return;
    const bool is_min = agg.agg() == Agg::kMin;
    double m = is_min ? detail::kInf : -detail::kInf;
    if (kind == SeriesKind::kGauge) {
      const double* v = cols.f[tier == Tier::kRaw ? kLast : is_min ? kMin : kMax].data();
      for (std::uint32_t i = first; i < c.sum.rows; ++i) m = is_min ? std::min(m, v[i]) : std::max(m, v[i]);
    } else {
      // The window's first row steps from outside it: its rates start at the row after.
      const double* last = cols.f[kLast].data();
      const double* corr = rollup ? cols.f[kCorr].data() : nullptr;
      for (std::uint32_t i = first + 1; i < c.sum.rows; ++i) {
        const double inc = last[i] - last[i - 1] + (rollup ? corr[i] : (last[i] < last[i - 1] ? last[i - 1] : 0.0));
        const double rate = inc / (static_cast<double>(t[i] - t[i - 1]) / 1000.0);
        m = is_min ? std::min(m, rate) : std::max(m, rate);
      }
    }
    (is_min ? tail.b : tail.c) = m;
  }
  tail.t_first = t[first];
  tail.rows = c.sum.rows - first;
  tail.samples = c.sum.samples - static_cast<std::uint32_t>(pre_samples);
  tail.a = c.sum.a - pre_a;
  // Read only by a gauge's rate (where it starts) and a counter's next step (never: its
  // successors in the window are whole chunks, which step from `last`).
  tail.first = want & (1u << kLast) ? cols.f[kLast][first] : 0.0;
  tail.first_corr = 0.0;
  agg.chunk(tail);
  if (agg.uses_sketch()) {
    BitReader rd(nullptr, 0);
    if (detail::seek_sealed_sketch(c.data(), c.bits, kind, tier, rd))
      detail::read_sketch(rd, [&](std::uint32_t k, std::uint32_t n) { agg.sketch_bin(k, n); });
    agg.apply_sketch_removals();
  }
}

void fold_tier(const TierData& td, const detail::Bucket* bucket, SeriesKind kind, Tier tier,
               const WindowTest& wt, Aggregator& agg) {
  if (agg.wants_values()) {
    std::size_t n = td.open.sum.rows + 1;
    for (const auto& c : td.sealed) n += c.sum.rows;
    agg.reserve_values(n);  // one growth-free buffer per series instead of ~14 reallocations
  }
  std::vector<Row> rows;
  auto fold_rows = [&](const std::vector<Row>& rs) {
    for (const Row& r : rs)
      if (wt.in(r.t)) agg.row(r);
  };
  const bool sketches = agg.uses_sketch();
  (void)sketches;
  for (const detail::ChunkView& c : td.sealed) {
    if (wt.before(c.sum.t_last)) continue;
    if (wt.after(c.sum.t_first)) return;
    if (wt.before(c.sum.t_first) && wt.in(c.sum.t_last) && agg.can_take_tail()) {
      fold_tail(c, kind, tier, wt, agg);
      continue;
    }
    if (wt.in(c.sum.t_first) && wt.in(c.sum.t_last) && agg.can_take_summary()) {
      agg.chunk(c.sum);
      if (agg.uses_sketch()) {
        BitReader rd(nullptr, 0);
        if (detail::seek_sealed_sketch(c.data(), c.bits, kind, tier, rd))
          detail::read_sketch(rd, [&](std::uint32_t k, std::uint32_t n) { agg.sketch_bin(k, n); });
      }
      continue;
    }
    fold_sealed_columns(c, kind, tier, wt, agg);
  }
  const Summary& os = td.open.sum;
  if (os.rows > 0 && !wt.before(os.t_last) && !wt.after(os.t_first)) {
    if (wt.in(os.t_first) && wt.in(os.t_last) && agg.can_take_summary()) {
      agg.chunk(os);
      if (agg.uses_sketch())
        for (const auto& b : td.open.sketch) agg.sketch_bin(b.key, b.count);
    } else {
      rows.clear();
      detail::decode_open(td.open, kind, tier, rows);
      fold_rows(rows);
    }
  }
  if (bucket && bucket->count > 0 && wt.in(bucket->t)) agg.row(detail::bucket_row(*bucket));
}

std::int64_t raw_first_t(const Series& s) {
  if (!s.raw.sealed.empty()) return s.raw.sealed.front().sum.t_first;
  if (s.raw.open.sum.rows > 0) return s.raw.open.sum.t_first;
  return INT64_MAX;
}

}  // namespace

std::optional<QueryResult> Store::query_locked(const Series& s, Window w, Agg agg,
                                               double quantile) const {
  if (w.end_ms < w.start_ms) return std::nullopt;
  const std::int64_t raw_first = raw_first_t(s);
  const bool use_raw = raw_first != INT64_MAX && (!s.raw_evicted || w.start_ms >= raw_first);
  const Tier tier = use_raw ? Tier::kRaw : Tier::kRollup;
  Aggregator a(s.kind, tier, agg);
  const WindowTest wt{w, tier, options_.rollup_step_ms};
  if (use_raw) {
    fold_tier(s.raw, nullptr, s.kind, tier, wt, a);
  } else {
    fold_tier(s.rollup, &s.bucket, s.kind, tier, wt, a);
  }
  return a.result(quantile);
}

std::optional<QueryResult> Store::query(const SeriesKey& key, Window w, Agg agg,
                                        double quantile) const {
  std::shared_lock lock(mutex_);
  auto it = series_.find(key);
  if (it == series_.end()) return std::nullopt;
  return query_locked(*it->second, w, agg, quantile);
}

std::vector<std::pair<SeriesKey, QueryResult>> Store::query_all(const Selector& sel, Window w,
                                                                Agg agg, double quantile) const {
  std::vector<std::pair<SeriesKey, QueryResult>> out;
  std::shared_lock lock(mutex_);
  for (const auto& [key, s] : series_) {
    if (!sel.matches(key)) continue;
    if (auto r = query_locked(*s, w, agg, quantile)) out.emplace_back(key, *r);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  return out;
}

namespace {
// A rollup chunk is dropped only once its last row is older than the history: until then it
// holds up to a chunk (4 h) more than the 24 h asked for. Once `slack` of its front has expired,
// it is re-encoded without the rows older than `keep_from` (an eighth of a chunk every half hour per
// series), so the tier holds the history plus at most `slack`. Its sketch and summary are rebuilt
// by the same code that built them, so queries see a chunk like any other.
void trim_oldest(TierData& td, SeriesKind kind, std::int64_t keep_from, std::int64_t slack) {
  if (td.sealed.empty() || td.sealed.front().sum.t_first >= keep_from - slack) return;
  const detail::ChunkView& c = td.sealed.front();
  thread_local std::vector<Row> rows;
  rows.clear();
  if (!detail::decode_sealed(c.data(), c.bits, c.sum.rows, kind, Tier::kRollup, rows)) return;
  std::erase_if(rows, [&](const Row& r) { return r.t < keep_from; });
  std::vector<detail::SealedChunk> out;
  detail::OpenChunk o;
  for (const Row& r : rows) {
    if (!detail::open_fits(o, r, kind, Tier::kRollup)) out.push_back(detail::seal(o, kind, Tier::kRollup));
    detail::open_add(o, r, kind, Tier::kRollup);
  }
  if (o.sum.rows > 0) out.push_back(detail::seal(o, kind, Tier::kRollup));
  td.sealed.replace_front(out);
}
}  // namespace

ExpireResult Store::expire(std::int64_t now_ms) {
  ExpireResult res;
  const std::int64_t raw_cut = now_ms - options_.raw_retention_ms;
  const std::int64_t hist_cut = now_ms - options_.history_ms;
  // Series are taken a slice at a time under the exclusive lock, a slice ending once the budget
  // is spent (after at least one series): trimming every series of a restored, untrimmed file
  // takes half a second, which appends and queries must not wait for in one piece. A series
  // appended meanwhile is new (nothing to expire); one dropped meanwhile is skipped.
  std::vector<SeriesKey> order;
  {
    std::shared_lock lock(mutex_);
    order.reserve(series_.size());
    for (const auto& entry : series_) order.push_back(entry.first);
  }
  const auto budget = std::chrono::microseconds(options_.expire_lock_budget_us);
  for (std::size_t i = 0; i < order.size();) {
    std::unique_lock lock(mutex_);
    const auto held_from = std::chrono::steady_clock::now();
    ++res.lock_holds;
    do {
      auto it = series_.find(order[i++]);
      if (it == series_.end()) continue;
      Series& s = *it->second;
      if (!s.has_last || s.last_t < hist_cut) {
        series_.erase(it);
        ++epoch_;
        ++res.series_dropped;
        continue;
      }
      auto drop_old = [&](TierData& td, std::int64_t cut) {
        std::size_t n = 0;
        for (const detail::ChunkView& c : td.sealed) {
          if (c.sum.t_last >= cut) break;
          ++n;
        }
        td.sealed.pop_front(n);
        res.chunks_dropped += n;
        bool dropped = n > 0;
        if (td.sealed.empty() && td.open.sum.rows > 0 && td.open.sum.t_last < cut) {
          td.open = detail::OpenChunk{};
          ++res.chunks_dropped;
          dropped = true;
        }
        return dropped;
      };
      if (drop_old(s.raw, raw_cut)) s.raw_evicted = true;
      drop_old(s.rollup, hist_cut);
      trim_oldest(s.rollup, s.kind, hist_cut - options_.rollup_step_ms,
                  options_.rollup_step_ms * std::max<std::int64_t>(1, options_.rollup_chunk_rows / 8));
    } while (i < order.size() && std::chrono::steady_clock::now() - held_from < budget);
    const auto held = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - held_from);
    res.longest_lock_hold_us = std::max<std::int64_t>(res.longest_lock_hold_us, held.count());
    lock.unlock();
    if (i < order.size()) std::this_thread::yield();  // let a waiting append in before the next slice
  }
#ifdef __GLIBC__
  // Dropped chunks and re-encoded ones leave free blocks all over the heap that glibc keeps
  // resident (a full store: ~9 MiB of 50); handing back their whole pages takes a few ms a
  // minute, outside the lock.
  if (res.chunks_dropped > 0 && options_.trim_heap_after_expire) ::malloc_trim(0);
#endif
  return res;
}

StoreStats Store::stats(const Selector& sel) const {
  StoreStats st;
  std::shared_lock lock(mutex_);
  for (const auto& [key, s] : series_) {
    if (!sel.matches(key)) continue;
    ++st.series;
    for (const auto& c : s->raw.sealed) {
      st.raw_samples += c.sum.rows;
      st.sealed_raw_samples += c.sum.rows;
      st.raw_bytes += (c.bits + 7) / 8;
      st.sealed_raw_bytes += (c.bits + 7) / 8;
    }
    st.raw_samples += s->raw.open.sum.rows;
    st.raw_bytes += s->raw.open.w.bytes().size();
    for (const auto& c : s->rollup.sealed) {
      st.rollup_rows += c.sum.rows;
      st.rollup_bytes += (c.bits + 7) / 8;
    }
    st.rollup_rows += s->rollup.open.sum.rows + (s->bucket.count > 0 ? 1 : 0);
    st.rollup_bytes += s->rollup.open.w.bytes().size();
    st.chunks += s->raw.sealed.size() + s->rollup.sealed.size() + 2;
    for (const auto& c : s->rollup.sealed) {
      BitReader rd(nullptr, 0);
      if (detail::seek_sealed_sketch(c.data(), c.bits, s->kind, Tier::kRollup, rd)) {
        BitReader len_rd(c.data(), c.bits);
        st.sketch_bytes += (read_length(len_rd) + 7) / 8;
      }
    }
    // The chunks' packed headers in the tiers' arenas.
    for (const detail::TierData* td : {&s->raw, &s->rollup})
      for (const auto& c : td->sealed) st.chunk_index_bytes += c.header_bytes;
    st.series_struct_bytes += sizeof(Series) + sizeof(key) + 2 * sizeof(void*) + sizeof(std::size_t) +
                              s->rollup.open.sketch.size() * sizeof(detail::SketchBin) +
                              (s->rollup.open.more ? (detail::layout(Tier::kRollup, s->kind).n - 1) * sizeof(detail::OpenColumn) : 0);
    st.open_slack_bytes += s->raw.open.w.capacity() - s->raw.open.w.bytes().size() +
                           s->rollup.open.w.capacity() - s->rollup.open.w.bytes().size() +
                           (s->rollup.open.sketch.capacity() - s->rollup.open.sketch.size()) * sizeof(detail::SketchBin);
    st.sealed_allocations += (s->raw.sealed.empty() ? 0 : 1) + (s->rollup.sealed.empty() ? 0 : 1);
  }
  return st;
}

std::vector<SeriesKey> Store::keys() const {
  std::shared_lock lock(mutex_);
  std::vector<SeriesKey> out;
  out.reserve(series_.size());
  for (const auto& [key, s] : series_) out.push_back(key);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
std::vector<Row> all_rows(const TierData& td, SeriesKind kind, Tier tier) {
  std::vector<Row> rows;
  for (const auto& c : td.sealed) detail::decode_sealed(c.data(), c.bits, c.sum.rows, kind, tier, rows);
  detail::decode_open(td.open, kind, tier, rows);
  return rows;
}
}  // namespace

std::vector<Sample> Store::raw_samples(const SeriesKey& key) const {
  std::shared_lock lock(mutex_);
  std::vector<Sample> out;
  auto it = series_.find(key);
  if (it == series_.end()) return out;
  for (const Row& r : all_rows(it->second->raw, it->second->kind, Tier::kRaw))
    out.push_back({r.t, r.f[kLast]});
  return out;
}

std::vector<RollupRow> Store::rollup_rows(const SeriesKey& key) const {
  std::shared_lock lock(mutex_);
  std::vector<RollupRow> out;
  auto it = series_.find(key);
  if (it == series_.end()) return out;
  const Series& s = *it->second;
  std::vector<Row> rows = all_rows(s.rollup, s.kind, Tier::kRollup);
  if (s.bucket.count > 0) rows.push_back(detail::bucket_row(s.bucket));
  for (const Row& r : rows) {
    RollupRow o{r.t, r.f[kCount], r.f[kSum], r.f[kMin], r.f[kMax], r.f[kLast], r.f[kCorr]};
    if (s.kind == SeriesKind::kCounter) o.sum = o.min = o.max = 0;  // not kept for counters
    out.push_back(o);
  }
  return out;
}

}  // namespace podgauge::store
