// Internals of the history store: rows, chunks with summaries, tiers, one series.
#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "podgauge/store/codec.h"
#include "podgauge/store/store.h"
#include "sketch.h"

namespace podgauge::store::detail {

enum Field : unsigned { kCount = 0, kSum, kMin, kMax, kLast, kCorr, kFields };

/// A raw sample is a row with count 1 and sum = min = max = last = value.
struct Row {
  std::int64_t t = 0;
  std::array<double, kFields> f{};
};

/// Which fields a chunk of a tier stores, in order.
struct Layout {
  const Field* fields;
  unsigned n;
};
Layout layout(Tier tier, SeriesKind kind);

constexpr double kInf = std::numeric_limits<double>::infinity();

/// What queries need from a chunk without decoding it. For counters a/b/c are the increase and
/// the min/max per-step rate over rows 2..n (row 1's predecessor lives in the previous chunk);
/// for gauges the sum, min and max of values.
struct Summary {
  std::int64_t t_first = 0;
  std::int64_t t_last = 0;
  std::uint32_t rows = 0;
  std::uint32_t samples = 0;
  double a = 0, b = kInf, c = -kInf;
  double first = 0, last = 0, first_corr = 0;

  void add(const Row& r, SeriesKind kind, Tier tier);
};

/// Reset correction of a row: stored in the rollup tier, derived from the predecessor in the raw.
inline double corr_of(const Row& r, double prev_last, Tier tier) {
  if (tier == Tier::kRollup) return r.f[kCorr];
  return r.f[kLast] < prev_last ? prev_last : 0.0;
}

/// A sealed chunk's bytes, each section behind its bit length (write_length): the sketch (rollup
/// tier only), the times, then the columns in layout order; a gauge rollup chunk has one bit
/// choosing plain columns or min-relative ones (count, sum - count*min, min, max - min,
/// last - min) and one section holding them. What seal() returns; a tier keeps it in its arena.
struct SealedChunk {
  std::unique_ptr<std::uint8_t[]> data;
  std::uint32_t bits = 0;
  Summary sum;
};

/// A sealed chunk as a tier's arena holds it, decoded from its packed header: see ChunkArena.
struct ChunkView {
  Summary sum;
  std::uint32_t bits = 0;
  const std::uint8_t* bytes = nullptr;
  std::uint32_t header_bytes = 0;  // of the packed header (the index's share of the arena)
  const std::uint8_t* data() const { return bytes; }
};

/// A tier's sealed chunks, oldest first, in one heap block of exactly the size they need: no
/// per-chunk allocation (a malloc header and rounding apiece), no capacity slack. The block holds
/// the chunks' packed headers one after the other, then their bytes in the same order, so a query
/// walks a series' summaries through a few contiguous cache lines and touches a chunk's bytes only
/// when it decodes them. A seal appends (a realloc of a few KiB, every 15 min or 4 h per series);
/// expire drops from the front. A packed header: t_first (8 bytes), t_last - t_first, rows,
/// samples, bit length (4 each), two bytes telling for each of the summary's doubles a, b, c,
/// first, last whether it is +0.0, equal to the one before it or stored (8 bytes), and whether
/// first_corr (else +0.0) follows. A constant series' chunk (half a node's series are: swap,
/// limits, OOM kills, an idle container's throttling and PSI) has a 26- to 42-byte header where
/// an index entry took 88.
class ChunkArena {
 public:
  ChunkArena() = default;
  ChunkArena(ChunkArena&& o) noexcept
      : buf_(std::exchange(o.buf_, nullptr)),
        bytes_(std::exchange(o.bytes_, 0)),
        headers_(std::exchange(o.headers_, 0)),
        count_(std::exchange(o.count_, 0)) {}
  ChunkArena& operator=(ChunkArena&& o) noexcept {
    if (this != &o) {
      std::free(buf_);
      buf_ = std::exchange(o.buf_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      headers_ = std::exchange(o.headers_, 0);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  ~ChunkArena() { std::free(buf_); }

  /// Decodes the packed header at `h` of the chunk whose bytes start at `data`; returns the
  /// address after the header.
  static const std::uint8_t* view(const std::uint8_t* h, const std::uint8_t* data, ChunkView& v);

  class iterator {
   public:
    using value_type = ChunkView;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const std::uint8_t* h, const std::uint8_t* end, const std::uint8_t* data) : h_(h), end_(end), data_(data) {
      load();
    }
    const ChunkView& operator*() const { return v_; }
    const ChunkView* operator->() const { return &v_; }
    iterator& operator++() {
      h_ = next_;
      data_ += (std::size_t{v_.bits} + 7) / 8;
      load();
      return *this;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.h_ == b.h_; }

   private:
    void load() {
      if (h_ != end_) next_ = view(h_, data_, v_);
    }
    const std::uint8_t* h_ = nullptr;
    const std::uint8_t* end_ = nullptr;
    const std::uint8_t* data_ = nullptr;
    const std::uint8_t* next_ = nullptr;
    ChunkView v_;
  };
  iterator begin() const { return iterator(buf_, buf_ + headers_, buf_ + headers_); }
  iterator end() const { return iterator(buf_ + headers_, buf_ + headers_, nullptr); }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  std::size_t bytes() const { return bytes_; }
  ChunkView front() const { return *begin(); }

  void push_back(const Summary& sum, const std::uint8_t* data, std::uint32_t bits);
  void push_back(const SealedChunk& c) { push_back(c.sum, c.data.get(), c.bits); }
  /// Drops the `n` oldest chunks.
  void pop_front(std::size_t n);
  /// Replaces the oldest chunk by `with` (in order).
  void replace_front(const std::vector<SealedChunk>& with);

 private:
  std::uint8_t* buf_ = nullptr;
  std::uint32_t bytes_ = 0;    // headers and chunk bytes
  std::uint32_t headers_ = 0;  // the headers' share, at the front
  std::uint32_t count_ = 0;
};

/// The chunk being filled: rows interleaved (time dod, then Gorilla XOR per field); re-encoded
/// column by column, each in its smallest mode, when sealed.
/// One field of the open chunk: decimal values (v = x / 10^k) as delta-of-deltas of x, others
/// Gorilla XOR. The mode is chosen by the chunk's first row; a later value that does not fit it
/// seals the chunk early.
struct OpenColumn {
  XorState x;
  std::int64_t prev = 0;
  std::int64_t delta = 0;
  std::int8_t k = -1;  // -1: XOR
};

struct OpenChunk {
  BitWriter w;
  TimeState ts;
  // One column per field of the tier's layout. The first is kept in place: a raw chunk has only
  // that one, and each append would otherwise start with a cache miss on a separate block.
  OpenColumn col0;
  std::unique_ptr<OpenColumn[]> more;  // the rollup tier's other fields
  OpenColumn& col(unsigned i) { return i == 0 ? col0 : more[i - 1]; }
  const OpenColumn& col(unsigned i) const { return i == 0 ? col0 : more[i - 1]; }
  Summary sum;
  std::vector<SketchBin> sketch;  // rollup tier: the rows' values (see sketch_value_of)
};

struct TierData {
  ChunkArena sealed;
  OpenChunk open;
};

struct Bucket {
  std::uint32_t count = 0;
  std::int64_t t = 0;
  double sum = 0, min = kInf, max = -kInf, last = 0, corr = 0;
};

struct Series {
  SeriesKind kind = SeriesKind::kGauge;
  bool has_last = false;
  bool raw_evicted = false;  // the raw tier no longer reaches back to the first sample
  std::int64_t last_t = 0;
  double last_v = 0;
  TierData raw, rollup;
  Bucket bucket;
};

/// Whether `r` can be appended to `o` (else seal `o` first).
bool open_fits(const OpenChunk& o, const Row& r, SeriesKind kind, Tier tier);
void open_add(OpenChunk& o, const Row& r, SeriesKind kind, Tier tier);
/// Decodes an open chunk's rows; false (with `out` partly filled) on malformed bits.
bool decode_open_checked(const std::uint8_t* data, std::uint64_t bits, std::uint32_t rows,
                         SeriesKind kind, Tier tier, std::vector<Row>& out);
void decode_open(const OpenChunk& o, SeriesKind kind, Tier tier, std::vector<Row>& out);
SealedChunk seal(OpenChunk& o, SeriesKind kind, Tier tier);
/// False when the bytes do not decode into `rows` rows (corrupt input).
/// `fields` is a bit mask of the Fields wanted; the others are skipped, not decoded.
bool decode_sealed(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                   SeriesKind kind, Tier tier, std::vector<Row>& out, unsigned fields = ~0u);
/// A sealed chunk's columns, decoded without building rows. Reused from chunk to chunk so a
/// query over thousands of series allocates nothing per chunk.
struct Columns {
  std::vector<std::int64_t> t;
  std::array<std::vector<double>, kFields> f;
};
/// Decodes the times and the `fields` (bit mask of Fields) a sealed chunk stores into `out`;
/// fields not asked for or not stored are left untouched. False on corrupt bytes. With `prefix`,
/// only the first prefix(times, fields) rows of the fields are decoded, and the callback may
/// change which fields (a window's edge: the rest of the chunk is its summary minus that prefix).
using PrefixOf = std::function<std::uint32_t(const std::vector<std::int64_t>&, unsigned&)>;
bool decode_sealed_columns(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                           SeriesKind kind, Tier tier, unsigned fields, Columns& out,
                           const PrefixOf* prefix = nullptr);
Row bucket_row(const Bucket& b);
/// The value a rollup row adds to its chunk's sketch: a gauge bucket's mean, a counter bucket's
/// rate since the previous row (none for a chunk's first row). `before` is the chunk's summary
/// before the row.
bool sketch_value_of(const Row& r, const Summary& before, SeriesKind kind, Tier tier, double& v);
/// Positions `rd` at a sealed rollup chunk's sketch (see write_sketch); false for raw chunks and
/// malformed bytes.
bool seek_sealed_sketch(const std::uint8_t* data, std::uint32_t bits, SeriesKind kind, Tier tier,
                        BitReader& rd);
/// Appends a row to a tier, sealing the open chunk when it is full or the row does not fit it.
void add_row(TierData& tier, const Row& r, SeriesKind kind, Tier which, std::uint32_t chunk_rows);

}  // namespace podgauge::store::detail
