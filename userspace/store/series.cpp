#include "series.h"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <cstring>
#include <new>

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
    if (o.col(i).k >= 0 && !scaled_integer(r.f[l.fields[i]], o.col(i).k, x)) return false;
  }
  return true;
}

void open_add(OpenChunk& o, const Row& r, SeriesKind kind, Tier tier) {
  const Layout l = layout(tier, kind);
  if (l.n > 1 && !o.more) o.more = std::make_unique<OpenColumn[]>(l.n - 1);
  time_write(o.w, o.ts, r.t);
  for (unsigned i = 0; i < l.n; ++i) {
    OpenColumn& c = o.col(i);
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
  double sv;
  if (tier == Tier::kRollup && sketch_value_of(r, o.sum, kind, tier, sv)) sketch_add(o.sketch, sketch_key(sv));
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

namespace {

// Appends `body` to `w` behind its bit length, so a reader can skip to the section it needs.
void with_length(BitWriter& w, const BitWriter& body) {
  write_length(w, body.bit_size());
  BitReader r(body.bytes().data(), body.bit_size());
  for (std::uint64_t left = body.bit_size(); left > 0;) {
    const unsigned n = static_cast<unsigned>(std::min<std::uint64_t>(left, 57));
    w.write(r.read(n), n);
    left -= n;
  }
}

std::uint64_t add_u(std::uint64_t a, std::uint64_t b) { return a + b; }

// A gauge bucket's min, max, last and sum move together: stored as min, max - min, last - min and
// sum - count * min (exact integers at a common decimal exponent), the last three are mostly 0
// or small for a container whose memory barely moves within 10 s, where four independent
// delta-of-delta columns pay each change four times.
bool write_relative(BitWriter& w, const std::vector<Row>& rows) {
  int k = 0;
  for (const Row& r : rows)
    for (Field f : {kSum, kMin, kMax, kLast}) {
      std::int64_t x;
      if (scaled_integer(r.f[f], k, x)) continue;
      const int kv = decimal_exponent(r.f[f]);
      if (kv < 0) return false;
      k = std::max(k, kv);
    }
  const std::size_t n = rows.size();
  thread_local std::vector<std::int64_t> mn, e, rg, ls;
  thread_local std::vector<double> cnt;
  for (auto* v : {&mn, &e, &rg, &ls}) v->resize(n);
  cnt.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Row& r = rows[i];
    std::int64_t c, su, mx, la;
    if (!scaled_integer(r.f[kCount], 0, c) || !scaled_integer(r.f[kSum], k, su) ||
        !scaled_integer(r.f[kMin], k, mn[i]) || !scaled_integer(r.f[kMax], k, mx) ||
        !scaled_integer(r.f[kLast], k, la))
      return false;
    std::int64_t cm;
    if (__builtin_mul_overflow(c, mn[i], &cm) || __builtin_sub_overflow(su, cm, &e[i])) return false;
    rg[i] = mx - mn[i];  // |values| <= 2^53: no overflow
    ls[i] = la - mn[i];
    cnt[i] = r.f[kCount];
  }
  w.write(static_cast<std::uint64_t>(k), 4);
  thread_local BitWriter b;
  b.clear();
  write_column(b, cnt);
  with_length(w, b);
  for (const auto* col : {&e, &mn, &rg, &ls}) {
    b.clear();
    write_int_column(b, *col);
    with_length(w, b);
  }
  return true;
}

bool uses_relative(SeriesKind kind, Tier tier) { return tier == Tier::kRollup && kind == SeriesKind::kGauge; }

}  // namespace

bool sketch_value_of(const Row& r, const Summary& before, SeriesKind kind, Tier tier, double& v) {
  if (kind == SeriesKind::kGauge) {
    v = r.f[kSum] / r.f[kCount];
    return true;
  }
  if (before.rows == 0) return false;  // the first row's rate needs the previous chunk
  const double inc = r.f[kLast] - before.last + corr_of(r, before.last, tier);
  v = inc / (static_cast<double>(r.t - before.t_last) / 1000.0);
  return true;
}

SealedChunk seal(OpenChunk& o, SeriesKind kind, Tier tier) {
  thread_local std::vector<Row> rows;
  thread_local std::vector<std::int64_t> t;
  thread_local std::vector<double> col;
  rows.clear();
  decode_open(o, kind, tier, rows);
  const Layout l = layout(tier, kind);
  // Scratch reused from chunk to chunk: a seal allocates only the chunk it returns, so sealing
  // 6,000 series leaves no trail of freed buffers between long-lived chunks.
  thread_local BitWriter w, body, rel, ind;
  w.clear();
  if (tier == Tier::kRollup) {
    // First, so a percentile reads it from the chunk's first cache lines without skipping columns.
    body.clear();
    write_sketch(body, o.sketch);
    with_length(w, body);
  }
  t.resize(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) t[i] = rows[i].t;
  col.resize(rows.size());
  body.clear();
  write_times(body, t);
  with_length(w, body);
  auto independent = [&](BitWriter& out) {
    for (unsigned j = 0; j < l.n; ++j) {
      for (std::size_t i = 0; i < rows.size(); ++i) col[i] = rows[i].f[l.fields[j]];
      body.clear();
      write_column(body, col);
      with_length(out, body);
    }
  };
  if (uses_relative(kind, tier)) {
    rel.clear();
    ind.clear();
    independent(ind);
    const bool ok = write_relative(rel, rows);
    const bool pick_rel = ok && rel.bit_size() < ind.bit_size();
    w.write_bit(pick_rel);
    with_length(w, pick_rel ? rel : ind);
  } else {
    independent(w);
  }
  SealedChunk c;
  c.bits = static_cast<std::uint32_t>(w.bit_size());
  const auto& bytes = w.bytes();
  c.data = std::make_unique<std::uint8_t[]>(bytes.size());
  std::memcpy(c.data.get(), bytes.data(), bytes.size());
  c.sum = o.sum;
  // The next chunk starts afresh but keeps the column state's allocation.
  auto more = std::move(o.more);
  for (unsigned j = 1; j < l.n && more; ++j) more[j - 1] = OpenColumn{};
  o = OpenChunk{};
  o.more = std::move(more);
  return c;
}

bool decode_sealed(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                   SeriesKind kind, Tier tier, std::vector<Row>& out, unsigned fields) {
  thread_local Columns cols;
  if (tier == Tier::kRaw) fields |= 1u << kLast;  // a raw row is all its value
  if (!decode_sealed_columns(data, bits, rows, kind, tier, fields, cols)) return false;
  const Layout l = layout(tier, kind);
  const std::size_t base = out.size();
  out.resize(base + rows);
  for (std::uint32_t i = 0; i < rows; ++i) {
    Row& r = out[base + i];
    r.t = cols.t[i];
    for (unsigned j = 0; j < l.n; ++j)
      if (fields & (1u << l.fields[j])) r.f[l.fields[j]] = cols.f[l.fields[j]][i];
    complete(r, tier);
  }
  return true;
}

namespace {

// `m` < rows: only the first m rows are decoded; a column read stops early and the reader skips
// to the next one (the length check is then the full decode's, done when the chunk was sealed or
// restored).
bool read_section_columns(BitReader& rd, std::uint32_t rows, const Layout& l, unsigned fields,
                          Columns& out, std::uint32_t m) {
  for (unsigned j = 0; j < l.n; ++j) {
    const std::uint64_t len = read_length(rd);
    const std::uint64_t start = rd.position();
    if (!(fields & (1u << l.fields[j]))) {
      rd.seek(start + len);
      continue;
    }
    if (!read_column(rd, rows, out.f[l.fields[j]], m)) return false;
    if (m < rows) {
      rd.seek(start + len);
    } else if (rd.position() != start + len) {
      return false;
    }
  }
  return !rd.overrun();
}

bool read_relative(BitReader& rd, std::uint32_t n, unsigned fields, Columns& out, std::uint32_t rows) {
  const auto k = static_cast<int>(rd.read(4));
  if (k > 9) return false;
  const bool need_min = fields & (1u << kSum | 1u << kMin | 1u << kMax | 1u << kLast);
  const bool need_count = fields & (1u << kCount | 1u << kSum);
  thread_local std::array<std::vector<std::int64_t>, 4> x;  // e, min, range, last - min
  thread_local std::vector<double> cnt;
  auto section = [&](bool want, auto&& read) {
    const std::uint64_t len = read_length(rd);
    const std::uint64_t start = rd.position();
    if (!want) {
      rd.seek(start + len);
      return !rd.overrun();
    }
    if (!read()) return false;
    if (rows < n) {
      rd.seek(start + len);
      return !rd.overrun();
    }
    return rd.position() == start + len;
  };
  if (!section(need_count, [&] { return read_column(rd, n, cnt, rows); })) return false;
  const bool want[4] = {static_cast<bool>(fields & (1u << kSum)), need_min,
                        static_cast<bool>(fields & (1u << kMax)), static_cast<bool>(fields & (1u << kLast))};
  for (unsigned j = 0; j < 4; ++j)
    if (!section(want[j], [&] { return read_int_column(rd, n, x[j], rows); })) return false;
  auto scaled = [k](std::uint64_t v) { return from_scaled(static_cast<std::int64_t>(v), k); };
  if (need_count && (fields & (1u << kCount))) out.f[kCount] = cnt;
  const auto& mn = x[1];
  if (fields & (1u << kMin)) {
    out.f[kMin].resize(rows);
    for (std::uint32_t i = 0; i < rows; ++i) out.f[kMin][i] = from_scaled(mn[i], k);
  }
  for (auto [f, j] : {std::pair{kMax, 2u}, std::pair{kLast, 3u}}) {
    if (!(fields & (1u << f))) continue;
    out.f[f].resize(rows);
    for (std::uint32_t i = 0; i < rows; ++i)
      out.f[f][i] = scaled(add_u(static_cast<std::uint64_t>(mn[i]), static_cast<std::uint64_t>(x[j][i])));
  }
  if (fields & (1u << kSum)) {
    out.f[kSum].resize(rows);
    for (std::uint32_t i = 0; i < rows; ++i) {
      const double c = cnt[i];
      if (!(c >= 0 && c <= 9007199254740992.0)) return false;
      const std::uint64_t cm = static_cast<std::uint64_t>(c) * static_cast<std::uint64_t>(mn[i]);
      out.f[kSum][i] = scaled(add_u(static_cast<std::uint64_t>(x[0][i]), cm));
    }
  }
  return true;
}

}  // namespace

bool decode_sealed_columns(const std::uint8_t* data, std::uint32_t bits, std::uint32_t rows,
                           SeriesKind kind, Tier tier, unsigned fields, Columns& out,
                           const PrefixOf* prefix) {
  const Layout l = layout(tier, kind);
  BitReader rd(data, bits);
  std::uint64_t len;
  if (tier == Tier::kRollup) {  // the sketch
    len = read_length(rd);
    rd.seek(rd.position() + len);
  }
  len = read_length(rd);
  std::uint64_t start = rd.position();
  if (!read_times(rd, rows, out.t) || rd.position() != start + len) return false;
  const std::uint32_t m = prefix ? std::min((*prefix)(out.t, fields), rows) : rows;
  if (!uses_relative(kind, tier)) return read_section_columns(rd, rows, l, fields, out, m);
  const bool relative = rd.read_bit();
  len = read_length(rd);
  start = rd.position();
  const bool ok = relative ? read_relative(rd, rows, fields, out, m)
                           : read_section_columns(rd, rows, l, fields, out, m);
  return ok && (m < rows || rd.position() == start + len) && !rd.overrun();
}

bool seek_sealed_sketch(const std::uint8_t* data, std::uint32_t bits, SeriesKind, Tier tier,
                        BitReader& rd) {
  rd = BitReader(data, bits);
  if (tier != Tier::kRollup) return false;
  read_length(rd);
  return !rd.overrun();
}

namespace {
constexpr std::size_t kFixedHeader = 8 + 4 * 4 + 2;
std::uint64_t bits_of(double v) { return std::bit_cast<std::uint64_t>(v); }
}  // namespace

void ChunkArena::push_back(const Summary& sum, const std::uint8_t* data, std::uint32_t bits) {
  // A chunk spans at most a day or so of a series; a longer one (samples days apart) would not
  // fit its 32-bit time span, and cannot happen: add_row seals before.
  const auto dt = static_cast<std::uint64_t>(sum.t_last - sum.t_first);
  if (dt > UINT32_MAX) throw std::length_error("store chunk spans more than 49 days");
  std::uint8_t head[kFixedHeader + 6 * 8];
  std::size_t n = 0;
  auto put = [&](const void* p, std::size_t len) {
    std::memcpy(head + n, p, len);
    n += len;
  };
  const auto dt32 = static_cast<std::uint32_t>(dt);
  put(&sum.t_first, 8);
  put(&dt32, 4);
  put(&sum.rows, 4);
  put(&sum.samples, 4);
  put(&bits, 4);
  const std::size_t codes_at = n;
  n += 2;
  std::uint16_t codes = 0;
  const double vals[5] = {sum.a, sum.b, sum.c, sum.first, sum.last};
  std::uint64_t prev = 0;
  for (unsigned i = 0; i < 5; ++i) {
    const std::uint64_t x = bits_of(vals[i]);
    const unsigned code = x == 0 ? 0 : i > 0 && x == prev ? 1 : 2;
    codes = static_cast<std::uint16_t>(codes | code << (2 * i));
    if (code == 2) put(&x, 8);
    prev = x;
  }
  if (bits_of(sum.first_corr) != 0) {
    codes |= 0x400;
    const std::uint64_t x = bits_of(sum.first_corr);
    put(&x, 8);
  }
  std::memcpy(head + codes_at, &codes, 2);
  const std::size_t len = (std::size_t{bits} + 7) / 8;
  if (std::size_t{bytes_} + n + len > UINT32_MAX) throw std::length_error("store tier exceeds 4 GiB");
  auto* grown = static_cast<std::uint8_t*>(std::realloc(buf_, bytes_ + n + len));
  if (!grown) throw std::bad_alloc();
  buf_ = grown;
  // The new header goes after the others, the bytes after all the bytes.
  std::memmove(buf_ + headers_ + n, buf_ + headers_, bytes_ - headers_);
  std::memcpy(buf_ + headers_, head, n);
  if (len > 0) std::memcpy(buf_ + bytes_ + n, data, len);
  headers_ += static_cast<std::uint32_t>(n);
  bytes_ += static_cast<std::uint32_t>(n + len);
  ++count_;
}

const std::uint8_t* ChunkArena::view(const std::uint8_t* p, const std::uint8_t* data, ChunkView& v) {
  const std::uint8_t* const start = p;
  auto get = [&](void* dst, std::size_t len) {
    std::memcpy(dst, p, len);
    p += len;
  };
  std::uint32_t dt;
  get(&v.sum.t_first, 8);
  get(&dt, 4);
  v.sum.t_last = v.sum.t_first + dt;
  get(&v.sum.rows, 4);
  get(&v.sum.samples, 4);
  get(&v.bits, 4);
  std::uint16_t codes;
  get(&codes, 2);
  double* vals[5] = {&v.sum.a, &v.sum.b, &v.sum.c, &v.sum.first, &v.sum.last};
  std::uint64_t prev = 0;
  for (unsigned i = 0; i < 5; ++i) {
    const unsigned code = (codes >> (2 * i)) & 3u;
    std::uint64_t x = code == 0 ? 0 : prev;
    if (code == 2) get(&x, 8);
    *vals[i] = std::bit_cast<double>(x);
    prev = x;
  }
  std::uint64_t corr = 0;
  if (codes & 0x400) get(&corr, 8);
  v.sum.first_corr = std::bit_cast<double>(corr);
  v.header_bytes = static_cast<std::uint32_t>(p - start);
  v.bytes = data;
  return p;
}

void ChunkArena::pop_front(std::size_t n) {
  if (n == 0) return;
  if (n >= count_) {
    std::free(buf_);
    buf_ = nullptr;
    bytes_ = headers_ = count_ = 0;
    return;
  }
  std::size_t hcut = 0, dcut = 0;
  auto it = begin();
  for (std::size_t i = 0; i < n; ++i, ++it) {
    hcut += it->header_bytes;
    dcut += (std::size_t{it->bits} + 7) / 8;
  }
  std::memmove(buf_, buf_ + hcut, headers_ - hcut);
  std::memmove(buf_ + headers_ - hcut, buf_ + headers_ + dcut, bytes_ - headers_ - dcut);
  headers_ -= static_cast<std::uint32_t>(hcut);
  bytes_ -= static_cast<std::uint32_t>(hcut + dcut);
  count_ -= static_cast<std::uint32_t>(n);
  // Shrinking in place gives the tail back to malloc without copying.
  if (auto* p = static_cast<std::uint8_t*>(std::realloc(buf_, bytes_))) buf_ = p;
}

void ChunkArena::replace_front(const std::vector<SealedChunk>& with) {
  ChunkArena out;
  for (const SealedChunk& c : with) out.push_back(c);
  bool first = true;
  for (const ChunkView& h : *this) {
    if (!first) out.push_back(h.sum, h.data(), h.bits);
    first = false;
  }
  *this = std::move(out);
}

void add_row(TierData& tier, const Row& r, SeriesKind kind, Tier which, std::uint32_t chunk_rows) {
  auto seal_open = [&] { tier.sealed.push_back(seal(tier.open, kind, which)); };
  // A sealed chunk's header holds its time span in 32 bits (49 days).
  if (!open_fits(tier.open, r, kind, which) ||
      (tier.open.sum.rows > 0 && static_cast<std::uint64_t>(r.t - tier.open.sum.t_first) > UINT32_MAX))
    seal_open();
  // The open chunk's buffer grows by an eighth at a time: a doubling vector leaves a quarter of
  // it unused on average, and reserving the previous chunk's size up front half of it, in each of
  // 12,000 open chunks. A row that needs more than the headroom makes the vector double once,
  // and the excess is handed back right after.
  BitWriter& w = tier.open.w;
  if (w.capacity() - w.bytes().size() < 16) w.reserve_bytes(w.bytes().size() + w.bytes().size() / 8 + 16);
  const std::size_t cap = w.capacity();
  open_add(tier.open, r, kind, which);
  if (w.capacity() != cap) w.shrink();
  if (tier.open.sum.rows >= chunk_rows) seal_open();
}

Row bucket_row(const Bucket& b) {
  Row r;
  r.t = b.t;
  r.f = {static_cast<double>(b.count), b.sum, b.min, b.max, b.last, b.corr};
  return r;
}

}  // namespace podgauge::store::detail
