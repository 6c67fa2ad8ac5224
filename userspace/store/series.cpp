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

bool open_fits(const OpenChunk& o, const Row& r, SeriesKind kind, Tier tier) {
  if (o.sum.rows == 0) return true;
  const Layout l = layout(tier, kind);
  for (unsigned i = 0; i < l.n; ++i) {
    std::int64_t x;
    if (o.cols[i].k >= 0 && !scaled_integer(r.f[l.fields[i]], o.cols[i].k, x)) return false;
  }
  return true;
}

void open_add(OpenChunk& o, const Row& r, SeriesKind kind, Tier tier) {
  const Layout l = layout(tier, kind);
  time_write(o.w, o.ts, r.t);
  for (unsigned i = 0; i < l.n; ++i) {
    OpenColumn& c = o.cols[i];
    const double v = r.f[l.fields[i]];
    if (o.sum.rows == 0) {
      const int k = decimal_exponent(v);
      std::int64_t x = 0;
      if (k >= 0 && scaled_integer(v, k, x)) {
        c.k = static_cast<std::int8_t>(k);
        o.w.write(0x10u | static_cast<unsigned>(k), 5);
        write_signed(o.w, x);
        c.prev = x;
        c.delta = 0;
      } else {
        c.k = -1;
        o.w.write(0, 5);
        xor_write(o.w, c.x, v);
      }
      continue;
    }
    if (c.k < 0) {
      xor_write(o.w, c.x, v);
      continue;
    }
    std::int64_t x = 0;
    scaled_integer(v, c.k, x);  // open_fits() said it does
    const std::int64_t d = x - c.prev;
    write_signed(o.w, d - c.delta);
    c.prev = x;
    c.delta = d;
  }
  o.sum.add(r, kind, tier);
}

namespace {
void complete(Row& r, Tier tier) {
  if (tier == Tier::kRaw) r = raw_row(r.t, r.f[kLast]);
}
}  // namespace

bool decode_open_checked(const std::uint8_t* data, std::uint64_t bits, std::uint32_t rows,
                         SeriesKind kind, Tier tier, std::vector<Row>& out) {
  const Layout l = layout(tier, kind);
  BitReader rd(data, bits);
  TimeState ts;
  std::array<OpenColumn, 5> cols{};
  for (std::uint32_t i = 0; i < rows && !rd.overrun(); ++i) {
    Row r;
    r.t = time_read(rd, ts);
    for (unsigned j = 0; j < l.n; ++j) {
      OpenColumn& c = cols[j];
      if (i == 0) {
        const auto head = static_cast<unsigned>(rd.read(5));
        if (head == 0) {
          c.k = -1;
        } else if ((head & 0x10u) && (head & 0xfu) <= 9) {
          c.k = static_cast<std::int8_t>(head & 0xfu);
          c.prev = read_signed(rd);
          c.delta = 0;
          r.f[l.fields[j]] = from_scaled(c.prev, c.k);
          continue;
        } else {
          rd.fail();
          return false;
        }
      }
      if (c.k < 0) {
        r.f[l.fields[j]] = xor_read(rd, c.x);
        continue;
      }
      // Wrapping arithmetic: corrupt input must not be undefined behaviour.
      c.delta = static_cast<std::int64_t>(static_cast<std::uint64_t>(c.delta) +
                                          static_cast<std::uint64_t>(read_signed(rd)));
      c.prev = static_cast<std::int64_t>(static_cast<std::uint64_t>(c.prev) +
                                         static_cast<std::uint64_t>(c.delta));
      r.f[l.fields[j]] = from_scaled(c.prev, c.k);
    }
    complete(r, tier);
    out.push_back(r);
  }
  return !rd.overrun() && rd.position() == bits;
}

void decode_open(const OpenChunk& o, SeriesKind kind, Tier tier, std::vector<Row>& out) {
  decode_open_checked(o.w.bytes().data(), o.w.bit_size(), o.sum.rows, kind, tier, out);
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
                   SeriesKind kind, Tier tier, std::vector<Row>& out, unsigned fields) {
  const Layout l = layout(tier, kind);
  if (tier == Tier::kRaw) fields |= 1u << kLast;  // a raw row is all its value
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
    if (!(fields & (1u << l.fields[j]))) {
      rd.seek(start + len);
      continue;
    }
    if (!read_column(rd, rows, col) || rd.position() != start + len) {
      out.resize(base);
      return false;
    }
    for (std::uint32_t i = 0; i < rows; ++i) out[base + i].f[l.fields[j]] = col[i];
  }
  for (std::uint32_t i = 0; i < rows; ++i) complete(out[base + i], tier);
  return true;
}

bool decode_sealed_columns(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                           SeriesKind kind, Tier tier, unsigned fields, Columns& out) {
  const Layout l = layout(tier, kind);
  BitReader rd(data, bits);
  std::uint64_t len = rd.read(32);
  std::uint64_t start = rd.position();
  if (!read_times(rd, rows, out.t) || rd.position() != start + len) return false;
  for (unsigned j = 0; j < l.n; ++j) {
    len = rd.read(32);
    start = rd.position();
    if (!(fields & (1u << l.fields[j]))) {
      rd.seek(start + len);
      continue;
    }
    if (!read_column(rd, rows, out.f[l.fields[j]]) || rd.position() != start + len) return false;
  }
  return true;
}

namespace {
// A series holds a dozen sealed chunks for its day and sheds one from the front as it adds one:
// doubling growth would leave ~3 of every 16 88-byte slots empty in each of 6,000 series (3 MB).
void push_sealed(std::vector<SealedChunk>& v, SealedChunk c) {
  if (v.size() == v.capacity()) v.reserve(v.size() + 1);
  v.push_back(std::move(c));
}
}  // namespace

void add_row(TierData& tier, const Row& r, SeriesKind kind, Tier which, std::uint32_t chunk_rows) {
  if (!open_fits(tier.open, r, kind, which)) push_sealed(tier.sealed, seal(tier.open, kind, which));
  open_add(tier.open, r, kind, which);
  if (tier.open.sum.rows >= chunk_rows) push_sealed(tier.sealed, seal(tier.open, kind, which));
}

Row bucket_row(const Bucket& b) {
  Row r;
  r.t = b.t;
  r.f = {static_cast<double>(b.count), b.sum, b.min, b.max, b.last, b.corr};
  return r;
}

}  // namespace podgauge::store::detail
