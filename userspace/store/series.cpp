#include "series.h"

#include <algorithm>
#include <cstring>

namespace podgauge::store::detail {

namespace {
constexpr Field kRawFields[] = {kLast};
constexpr Field kGaugeRollupFields[] = {kCount, kSum, kMin, kMax, kLast};
constexpr Field kCounterRollupFields[] = {kCount, kLast, kCorr};

Row raw_row(std::int64_t t, double v) {
  Row r;
  r.t = t;
  r.f = {1, v, v, v, v, 0};
  return r;
}
}  // namespace

Layout layout(Tier tier, SeriesKind kind) {
  if (tier == Tier::kRaw) return {kRawFields, 1};
  if (kind == SeriesKind::kGauge) return {kGaugeRollupFields, 5};
  return {kCounterRollupFields, 3};
}

void Summary::add(const Row& r, SeriesKind kind, Tier tier) {
  if (rows == 0) {
    t_first = r.t;
    first = r.f[kLast];
    first_corr = tier == Tier::kRollup ? r.f[kCorr] : 0.0;
  }
  if (kind == SeriesKind::kGauge) {
    a += r.f[kSum];
    b = std::min(b, r.f[kMin]);
    c = std::max(c, r.f[kMax]);
  } else if (rows > 0) {
    const double inc = r.f[kLast] - last + corr_of(r, last, tier);
    a += inc;
    const double rate = inc / (static_cast<double>(r.t - t_last) / 1000.0);
    b = std::min(b, rate);
    c = std::max(c, rate);
  }
  t_last = r.t;
  last = r.f[kLast];
  ++rows;
  samples += static_cast<std::uint32_t>(r.f[kCount]);
}

void open_add(OpenChunk& o, const Row& r, SeriesKind kind, Tier tier) {
  const Layout l = layout(tier, kind);
  time_write(o.w, o.ts, r.t);
  for (unsigned i = 0; i < l.n; ++i) xor_write(o.w, o.xs[i], r.f[l.fields[i]]);
  o.sum.add(r, kind, tier);
}

namespace {
void complete(Row& r, Tier tier) {
  if (tier == Tier::kRaw) r = raw_row(r.t, r.f[kLast]);
}
}  // namespace

void decode_open(const OpenChunk& o, SeriesKind kind, Tier tier, std::vector<Row>& out) {
  const Layout l = layout(tier, kind);
  BitReader rd(o.w.bytes().data(), o.w.bit_size());
  TimeState ts;
  std::array<XorState, 5> xs{};
  for (std::uint32_t i = 0; i < o.sum.rows; ++i) {
    Row r;
    r.t = time_read(rd, ts);
    for (unsigned j = 0; j < l.n; ++j) r.f[l.fields[j]] = xor_read(rd, xs[j]);
    complete(r, tier);
    out.push_back(r);
  }
}

SealedChunk seal(OpenChunk& o, SeriesKind kind, Tier tier) {
  std::vector<Row> rows;
  rows.reserve(o.sum.rows);
  decode_open(o, kind, tier, rows);
  const Layout l = layout(tier, kind);
  BitWriter w;
  std::vector<std::int64_t> t(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) t[i] = rows[i].t;
  std::vector<double> col(rows.size());
  // Each column is prefixed by its bit length so a reader can skip to the one it needs.
  auto with_length = [&w](auto&& write_body) {
    BitWriter body;
    write_body(body);
    w.write(body.bit_size(), 32);
    BitReader r(body.bytes().data(), body.bit_size());
    for (std::uint64_t left = body.bit_size(); left > 0;) {
      const unsigned n = static_cast<unsigned>(std::min<std::uint64_t>(left, 57));
      w.write(r.read(n), n);
      left -= n;
    }
  };
  with_length([&](BitWriter& b) { write_times(b, t); });
  for (unsigned j = 0; j < l.n; ++j) {
    for (std::size_t i = 0; i < rows.size(); ++i) col[i] = rows[i].f[l.fields[j]];
    with_length([&](BitWriter& b) { write_column(b, col); });
  }
  SealedChunk c;
  c.bits = static_cast<std::uint32_t>(w.bit_size());
  const auto& bytes = w.bytes();
  c.data = std::make_unique<std::uint8_t[]>(bytes.size());
  std::memcpy(c.data.get(), bytes.data(), bytes.size());
  c.sum = o.sum;
  o = OpenChunk{};
  return c;
}

bool decode_sealed(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                   SeriesKind kind, Tier tier, std::vector<Row>& out) {
  const Layout l = layout(tier, kind);
  BitReader rd(data, bits);
  const std::size_t base = out.size();
  std::vector<std::int64_t> t;
  std::uint64_t len = rd.read(32);
  std::uint64_t start = rd.position();
  if (!read_times(rd, rows, t) || rd.position() != start + len) return false;
  out.resize(base + rows);
  for (std::uint32_t i = 0; i < rows; ++i) out[base + i].t = t[i];
  std::vector<double> col;
  for (unsigned j = 0; j < l.n; ++j) {
    len = rd.read(32);
    start = rd.position();
    if (!read_column(rd, rows, col) || rd.position() != start + len) {
      out.resize(base);
      return false;
    }
    for (std::uint32_t i = 0; i < rows; ++i) out[base + i].f[l.fields[j]] = col[i];
  }
  for (std::uint32_t i = 0; i < rows; ++i) complete(out[base + i], tier);
  return true;
}

Row bucket_row(const Bucket& b) {
  Row r;
  r.t = b.t;
  r.f = {static_cast<double>(b.count), b.sum, b.min, b.max, b.last, b.corr};
  return r;
}

}  // namespace podgauge::store::detail
