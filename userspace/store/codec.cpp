#include "podgauge/store/codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace podgauge::store::detail {

void BitWriter::write(std::uint64_t value, unsigned bits) {
  if (bits == 0) return;
  if (bits < 64) value &= (std::uint64_t{1} << bits) - 1;
  const unsigned used = static_cast<unsigned>(bits_ & 7);
  bits_ += bits;
  if (used != 0) {
    const unsigned room = 8 - used;
    if (bits <= room) {  // the common 1- and 2-bit codes end here
      buf_.back() = static_cast<std::uint8_t>(buf_.back() | (value << (room - bits)));
      return;
    }
    bits -= room;
    buf_.back() = static_cast<std::uint8_t>(buf_.back() | (value >> bits));
    if (bits < 64) value &= (std::uint64_t{1} << bits) - 1;
  }
  std::uint8_t tmp[8];
  unsigned n = 0;
  while (bits >= 8) {
    bits -= 8;
    tmp[n++] = static_cast<std::uint8_t>(value >> bits);
  }
  buf_.insert(buf_.end(), tmp, tmp + n);
  if (bits > 0) buf_.push_back(static_cast<std::uint8_t>(value << (8 - bits)));
}

BitWriter BitWriter::resume(std::vector<std::uint8_t> bytes, std::uint64_t bits) {
  BitWriter w;
  bytes.resize((bits + 7) / 8);
  if (bits % 8 != 0) {
    // Bits past the end must be zero: write() ORs into the last byte.
    bytes.back() = static_cast<std::uint8_t>(bytes.back() & (0xff00u >> (bits % 8)));
  }
  w.buf_ = std::move(bytes);
  w.bits_ = bits;
  return w;
}

std::uint64_t BitReader::read_slow(unsigned bits) {
  if (bits == 0) return 0;
  if (pos_ + bits > size_ || pos_ + bits < pos_) {
    overrun_ = true;
    pos_ = size_;
    return 0;
  }
  const std::uint64_t byte = pos_ >> 3;
  const unsigned shift = static_cast<unsigned>(pos_ & 7);
  // Fast path: one unaligned big-endian load covers up to 57 bits.
  if (bits <= 57 && byte + 8 <= (size_ + 7) / 8) {
    std::uint64_t word;
    std::memcpy(&word, data_ + byte, 8);
    if constexpr (std::endian::native == std::endian::little) word = __builtin_bswap64(word);
    pos_ += bits;
    return (word << shift) >> (64 - bits);
  }
  std::uint64_t v = 0;
  while (bits > 0) {
    const unsigned used = static_cast<unsigned>(pos_ & 7);
    const unsigned room = 8 - used;
    const unsigned take = std::min(room, bits);
    const std::uint8_t b = data_[pos_ >> 3];
    v = (take == 64 ? 0 : (v << take)) | ((b >> (room - take)) & ((1u << take) - 1));
    bits -= take;
    pos_ += take;
  }
  return v;
}

namespace {

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t unzigzag(std::uint64_t z) {
  return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
}

}  // namespace

namespace {
// Widths of the prefix buckets: '0' is zero, then '10' + 6 bits, '110' + 9, ... The small ones
// fit sampling jitter and idle counters; 9 and 13 bits fit a busy counter's per-second noise.
constexpr unsigned kWidth[] = {6, 9, 13, 20, 32, 64};
constexpr unsigned kBuckets = sizeof kWidth / sizeof kWidth[0];
}  // namespace

void write_signed(BitWriter& w, std::int64_t v) {
  const std::uint64_t z = zigzag(v);
  if (z == 0) {
    w.write(0, 1);
    return;
  }
  for (unsigned i = 0; i < kBuckets; ++i) {
    if (kWidth[i] == 64 || z < (std::uint64_t{1} << kWidth[i])) {
      // i+1 ones then a zero, except the last bucket which needs no terminator.
      const unsigned ones = i + 1;
      if (i + 1 < kBuckets) {
        w.write(((std::uint64_t{1} << ones) - 1) << 1, ones + 1);
      } else {
        w.write((std::uint64_t{1} << ones) - 1, ones);
      }
      w.write(z, kWidth[i]);
      return;
    }
  }
}

std::int64_t read_signed(BitReader& r) {
  unsigned ones = 0;
  while (ones < kBuckets && r.read_bit()) ++ones;
  if (ones == 0) return 0;
  return unzigzag(r.read(kWidth[ones - 1]));
}

void xor_write(BitWriter& w, XorState& s, double v) {
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(v);
  if (!s.started) {
    w.write(bits, 64);
    s.prev = bits;
    s.started = true;
    return;
  }
  const std::uint64_t x = bits ^ s.prev;
  s.prev = bits;
  if (x == 0) {
    w.write(0, 1);
    return;
  }
  const unsigned lz = std::min(31u, static_cast<unsigned>(std::countl_zero(x)));
  const unsigned tz = static_cast<unsigned>(std::countr_zero(x));
  if (s.leading != 0xff && lz >= s.leading && tz >= s.trailing) {
    w.write(0b10, 2);
    w.write(x >> s.trailing, 64 - s.leading - s.trailing);
    return;
  }
  const unsigned sig = 64 - lz - tz;
  w.write(0b11, 2);
  w.write(lz, 5);
  w.write(sig - 1, 6);
  w.write(x >> tz, sig);
  s.leading = static_cast<std::uint8_t>(lz);
  s.trailing = static_cast<std::uint8_t>(tz);
}

double xor_read(BitReader& r, XorState& s) {
  if (!s.started) {
    s.prev = r.read(64);
    s.started = true;
    return std::bit_cast<double>(s.prev);
  }
  if (!r.read_bit()) return std::bit_cast<double>(s.prev);
  if (!r.read_bit()) {
    if (s.leading == 0xff) {  // reuse of a window never set: corrupt input
      r.fail();
      return 0;
    }
    const unsigned sig = 64 - s.leading - s.trailing;
    s.prev ^= r.read(sig) << s.trailing;
  } else {
    const unsigned lz = static_cast<unsigned>(r.read(5));
    const unsigned sig = static_cast<unsigned>(r.read(6)) + 1;
    if (lz + sig > 64) {
      r.fail();
      return 0;
    }
    const unsigned tz = 64 - lz - sig;
    s.prev ^= r.read(sig) << tz;
    s.leading = static_cast<std::uint8_t>(lz);
    s.trailing = static_cast<std::uint8_t>(tz);
  }
  return std::bit_cast<double>(s.prev);
}

void time_write(BitWriter& w, TimeState& s, std::int64_t t) {
  if (!s.started) {
    w.write(static_cast<std::uint64_t>(t), 64);
    s.prev = t;
    s.started = true;
    return;
  }
  const auto d = static_cast<std::int64_t>(static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(s.prev));
  write_signed(w, static_cast<std::int64_t>(static_cast<std::uint64_t>(d) - static_cast<std::uint64_t>(s.delta)));
  s.delta = d;
  s.prev = t;
}

std::int64_t time_read(BitReader& r, TimeState& s) {
  if (!s.started) {
    s.prev = static_cast<std::int64_t>(r.read(64));
    s.started = true;
    return s.prev;
  }
  const std::int64_t dod = read_signed(r);
  s.delta = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.delta) + static_cast<std::uint64_t>(dod));
  s.prev = static_cast<std::int64_t>(static_cast<std::uint64_t>(s.prev) + static_cast<std::uint64_t>(s.delta));
  return s.prev;
}

namespace {

constexpr std::array<double, 10> kPow10 = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
constexpr double kMaxExact = 9007199254740992.0;  // 2^53

bool same_bits(double a, double b) {
  return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

void append_bits(BitWriter& dst, const BitWriter& src) {
  BitReader r(src.bytes().data(), src.bit_size());
  std::uint64_t left = src.bit_size();
  while (left > 0) {
    const unsigned n = static_cast<unsigned>(std::min<std::uint64_t>(left, 57));
    dst.write(r.read(n), n);
    left -= n;
  }
}

// Rice codes (Golomb with a power-of-two divisor): the quotient in unary, then `kr` low bits. A
// busy counter's per-step noise is roughly two-sided geometric around its typical step, which is
// what Rice codes fit: ~17 bits a 10 s CPU bucket where the fixed prefix buckets spend 25.
constexpr unsigned kRiceEscape = 32;  // this many ones: the value follows in 64 bits

void write_rice(BitWriter& w, std::uint64_t z, unsigned kr) {
  const std::uint64_t q = kr >= 64 ? 0 : z >> kr;
  if (q < kRiceEscape) {
    w.write(((std::uint64_t{1} << q) - 1) << 1, static_cast<unsigned>(q) + 1);
    w.write(z, kr);
  } else {
    w.write((std::uint64_t{1} << kRiceEscape) - 1, kRiceEscape);
    w.write(z, 64);
  }
}

std::uint64_t read_rice(BitReader& r, unsigned kr) {
  // Common case in one read: the unary quotient, its stop bit and the kr low bits within 57 bits.
  if (kr < 24 && r.remaining() >= 57) {
    const std::uint64_t at = r.position();
    const std::uint64_t bits = r.read(57) << 7;  // left-aligned
    const auto q = static_cast<unsigned>(std::countl_one(bits));
    if (q < kRiceEscape) {
      const std::uint64_t low = kr == 0 ? 0 : (bits << (q + 1)) >> (64 - kr);
      r.seek(at + q + 1 + kr);
      return (std::uint64_t{q} << kr) | low;
    }
    r.seek(at);
  }
  unsigned q = 0;
  while (q < kRiceEscape && r.read_bit()) ++q;
  if (q == kRiceEscape) return r.read(64);
  return (kr >= 64 ? 0 : std::uint64_t{q} << kr) | r.read(kr);
}

std::uint64_t rice_cost(const std::vector<std::uint64_t>& z, unsigned kr) {
  std::uint64_t bits = 0;
  for (std::uint64_t v : z) {
    const std::uint64_t q = v >> kr;
    bits += q < kRiceEscape ? q + 1 + kr : kRiceEscape + 64;
  }
  return bits;
}

enum Coder : unsigned { kPrefix = 0, kPrefixRle = 1, kRice = 2 };

// Codes of x[1..] for an order (0: values, 1: deltas, 2: delta-of-deltas), divided by their
// common factor `g` (4096 for page-multiple byte counts). Wrapping arithmetic throughout.
std::int64_t int_codes(std::span<const std::int64_t> x, unsigned order, std::vector<std::int64_t>& c) {
  c.clear();
  std::uint64_t g = 0;
  for (std::size_t i = 1; i < x.size(); ++i) {
    const std::uint64_t v = order == 0 ? static_cast<std::uint64_t>(x[i])
                                       : static_cast<std::uint64_t>(x[i]) - static_cast<std::uint64_t>(x[i - 1]);
    const auto sv = static_cast<std::int64_t>(v);
    c.push_back(sv);
    if (g == 1) continue;
    const std::uint64_t mag = sv < 0 ? std::uint64_t{0} - v : v;
    g = std::gcd(g, mag);
  }
  if (g == 0 || g > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) g = 1;
  if (g == 1 && order < 2) return 1;
  std::int64_t prev = 0;
  for (auto& v : c) {
    if (g != 1) v /= static_cast<std::int64_t>(g);
    if (order == 2) {
      const std::int64_t d = v;
      v = static_cast<std::int64_t>(static_cast<std::uint64_t>(d) - static_cast<std::uint64_t>(prev));
      prev = d;
    }
  }
  return static_cast<std::int64_t>(g);
}

unsigned signed_bits(std::int64_t v) {
  const std::uint64_t z = zigzag(v);
  if (z == 0) return 1;
  for (unsigned i = 0; i < kBuckets; ++i)
    if (kWidth[i] == 64 || z < (std::uint64_t{1} << kWidth[i])) return (i + 1 < kBuckets ? i + 2 : i + 1) + kWidth[i];
  return 70;
}

// Rice parameters of a column: offset (median) and kr, with the bits the codes take.
struct RicePlan {
  std::int64_t offset = 0;
  unsigned kr = 0;
  std::uint64_t bits = 0;
};

RicePlan plan_rice(const std::vector<std::int64_t>& c, std::vector<std::uint64_t>& z) {
  RicePlan p;
  thread_local std::vector<std::int64_t> sorted;
  sorted.assign(c.begin(), c.end());
  if (!sorted.empty()) {
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    p.offset = sorted[sorted.size() / 2];
  }
  z.clear();
  for (std::int64_t v : c)
    z.push_back(zigzag(static_cast<std::int64_t>(static_cast<std::uint64_t>(v) - static_cast<std::uint64_t>(p.offset))));
  // The optimum is near log2 of the mean: try a few around it, not all 63.
  double mean = 0;
  for (std::uint64_t v : z) mean += static_cast<double>(v);
  mean /= static_cast<double>(std::max<std::size_t>(1, z.size()));
  const int k0 = mean >= 1 ? static_cast<int>(std::log2(mean)) : 0;
  p.kr = static_cast<unsigned>(std::max(0, k0 - 2));
  p.bits = rice_cost(z, p.kr);
  for (unsigned kr = p.kr + 1; kr <= static_cast<unsigned>(std::min(62, k0 + 2)); ++kr) {
    const std::uint64_t b = rice_cost(z, kr);
    if (b < p.bits) {
      p.bits = b;
      p.kr = kr;
    }
  }
  p.bits += signed_bits(p.offset) + 6;
  return p;
}

std::uint64_t prefix_cost(const std::vector<std::int64_t>& c, bool rle) {
  std::uint64_t bits = 0;
  std::int64_t zeros = 0;
  for (std::int64_t code : c) {
    if (rle && code == 0) {
      ++zeros;
      continue;
    }
    if (zeros > 0) {
      bits += 1 + signed_bits(zeros - 1);
      zeros = 0;
    }
    bits += signed_bits(code);
  }
  if (zeros > 0) bits += 1 + signed_bits(zeros - 1);
  return bits;
}

void write_codes(BitWriter& w, const std::vector<std::int64_t>& c, unsigned coder,
                 std::vector<std::uint64_t>& z) {
  if (coder == kRice) {
    const RicePlan p = plan_rice(c, z);
    write_signed(w, p.offset);
    w.write(p.kr, 6);
    for (std::uint64_t v : z) write_rice(w, v, p.kr);
    return;
  }
  std::int64_t zeros = 0;
  for (std::int64_t code : c) {
    if (coder == kPrefixRle && code == 0) {
      ++zeros;
      continue;
    }
    if (zeros > 0) {
      write_signed(w, 0);
      write_signed(w, zeros - 1);
      zeros = 0;
    }
    write_signed(w, code);
  }
  if (zeros > 0) {
    write_signed(w, 0);
    write_signed(w, zeros - 1);
  }
}

}  // namespace

unsigned write_int_column(BitWriter& w, std::span<const std::int64_t> x) {
  thread_local std::vector<std::int64_t> codes;
  thread_local std::vector<std::uint64_t> z;
  // Sizes are computed, not written: only the winner is encoded.
  unsigned best_order = 0, best_coder = kPrefix;
  std::uint64_t best = UINT64_MAX;
  for (unsigned order = 0; order < 3; ++order) {
    const std::int64_t g = int_codes(x, order, codes);
    const std::uint64_t head = signed_bits(g);
    const std::uint64_t cost[3] = {prefix_cost(codes, false), prefix_cost(codes, true), plan_rice(codes, z).bits};
    for (unsigned coder : {kPrefix, kPrefixRle, kRice}) {
      if (head + cost[coder] < best) {
        best = head + cost[coder];
        best_order = order;
        best_coder = coder;
      }
    }
  }
  const std::int64_t g = int_codes(x, best_order, codes);
  w.write(best_order, 2);
  w.write(best_coder, 2);
  write_signed(w, g);
  write_signed(w, x.empty() ? 0 : x[0]);
  write_codes(w, codes, best_coder, z);
  return best_order;
}

bool read_int_column(BitReader& r, std::size_t n, std::vector<std::int64_t>& out, std::size_t m) {
  m = std::min(m, n);
  out.clear();
  const auto order = static_cast<unsigned>(r.read(2));
  const auto coder = static_cast<unsigned>(r.read(2));
  if (order > 2 || coder > kRice) return false;
  const std::int64_t g = read_signed(r);
  if (g <= 0) return false;
  auto x = static_cast<std::uint64_t>(read_signed(r));
  std::uint64_t offset = 0;
  unsigned kr = 0;
  if (coder == kRice) {
    offset = static_cast<std::uint64_t>(read_signed(r));
    kr = static_cast<unsigned>(r.read(6));
  }
  if (r.overrun()) return false;
  out.reserve(m);
  if (m > 0) out.push_back(static_cast<std::int64_t>(x));
  std::uint64_t d = 0;
  std::uint64_t zeros = 0;
  const auto ug = static_cast<std::uint64_t>(g);
  for (std::size_t i = 1; i < m && !r.overrun(); ++i) {
    std::uint64_t code = 0;
    if (coder == kRice) {
      code = static_cast<std::uint64_t>(unzigzag(read_rice(r, kr))) + offset;
    } else if (zeros > 0) {
      --zeros;
    } else {
      code = static_cast<std::uint64_t>(read_signed(r));
      if (coder == kPrefixRle && code == 0) {
        zeros = static_cast<std::uint64_t>(read_signed(r));  // this zero plus `zeros` more
        if (zeros > n - 1 - i) return false;
      }
    }
    // Wrapping arithmetic: corrupt input must not be undefined behaviour.
    if (order == 0) {
      x = code * ug;
    } else {
      d = order == 2 ? d + code : code;
      x += d * ug;
    }
    out.push_back(static_cast<std::int64_t>(x));
  }
  return out.size() == m && !r.overrun();
}

namespace {
void write_len_impl(BitWriter& w, std::uint64_t len) {
  const unsigned width = len == 0 ? 0 : static_cast<unsigned>(std::bit_width(len));
  w.write(width, 6);
  w.write(len, width);
}
}  // namespace

void write_length(BitWriter& w, std::uint64_t len) { write_len_impl(w, len); }

std::uint64_t read_length(BitReader& r) {
  const auto width = static_cast<unsigned>(r.read(6));
  if (width > 40) {  // no chunk is a terabit long: corrupt
    r.fail();
    return 0;
  }
  return r.read(width);
}

bool scaled_integer(double v, int k, std::int64_t& x) {
  if (k < 0 || k >= static_cast<int>(kPow10.size())) return false;
  const double s = std::nearbyint(v * kPow10[static_cast<std::size_t>(k)]);
  if (!(std::fabs(s) <= kMaxExact)) return false;  // NaN fails here too
  x = static_cast<std::int64_t>(s);
  // Through int64 and back, as the decoder does: -0.0 must fail here, not decode as +0.0.
  return same_bits(static_cast<double>(x) / kPow10[static_cast<std::size_t>(k)], v);
}

double from_scaled(std::int64_t x, int k) {
  return static_cast<double>(x) / kPow10[static_cast<std::size_t>(k)];
}

int decimal_exponent(double v) {
  if (!std::isfinite(v)) return -1;
  std::int64_t x;
  for (int k = 0; k < static_cast<int>(kPow10.size()); ++k) {
    if (!(std::fabs(v * kPow10[static_cast<std::size_t>(k)]) <= kMaxExact)) return -1;
    if (scaled_integer(v, k, x)) return k;
  }
  return -1;
}

int column_exponent(std::span<const double> values) {
  // Most values are exact at the exponent found so far: one check each instead of a search.
  int k = 0;
  std::int64_t x;
  for (double v : values) {
    if (scaled_integer(v, k, x)) continue;
    const int kv = decimal_exponent(v);
    if (kv < 0) return -1;
    k = std::max(k, kv);
  }
  return k;
}

ColumnMode write_column(BitWriter& w, std::span<const double> values) {
  if (!values.empty() && std::all_of(values.begin(), values.end(), [&](double v) {
        return same_bits(v, values[0]);
      })) {
    // A decimal constant (a bucket's count of 10, a counter's correction of 0, an idle gauge) as
    // its integer: a byte or two instead of 64 bits, in every chunk of every quiet series.
    const int k = decimal_exponent(values[0]);
    std::int64_t x = 0;
    if (k >= 0 && scaled_integer(values[0], k, x)) {
      w.write(2, 2);
      w.write(static_cast<std::uint64_t>(k), 4);
      write_signed(w, x);
      return ColumnMode::kConstant;
    }
    w.write(static_cast<std::uint64_t>(ColumnMode::kConstant), 2);
    w.write(std::bit_cast<std::uint64_t>(values[0]), 64);
    return ColumnMode::kConstant;
  }
  // Scratch reused from call to call: sealing allocates only the chunk it returns.
  thread_local BitWriter xor_bits, int_bits;
  thread_local std::vector<std::int64_t> x;
  xor_bits.clear();
  {
    XorState s;
    for (double v : values) xor_write(xor_bits, s, v);
  }
  ColumnMode mode = ColumnMode::kXor;
  const int k = column_exponent(values);
  if (k >= 0 && !values.empty()) {
    x.resize(values.size());
    bool exact = true;
    for (std::size_t i = 0; i < values.size() && exact; ++i) exact = scaled_integer(values[i], k, x[i]);
    if (exact) {
      int_bits.clear();
      int_bits.write(static_cast<std::uint64_t>(k), 4);
      const unsigned order = write_int_column(int_bits, x);
      if (int_bits.bit_size() < xor_bits.bit_size()) {
        mode = order == 0 ? ColumnMode::kIntValue
               : order == 1 ? ColumnMode::kIntDelta
                            : ColumnMode::kIntDeltaOfDelta;
      }
    }
  }
  // The 2-bit tag says only "integers"; their order is in the body.
  const unsigned tag = mode == ColumnMode::kXor ? 0u : 1u;
  w.write(tag, 2);
  append_bits(w, mode == ColumnMode::kXor ? xor_bits : int_bits);
  return mode;
}

bool read_column(BitReader& r, std::size_t n, std::vector<double>& out, std::size_t m) {
  m = std::min(m, n);
  out.clear();
  out.reserve(m);
  const auto mode = static_cast<unsigned>(r.read(2));
  if (mode == 0) {
    XorState s;
    for (std::size_t i = 0; i < m && !r.overrun(); ++i) out.push_back(xor_read(r, s));
    return out.size() == m && !r.overrun();
  }
  if (mode == 3) {
    const double v = std::bit_cast<double>(r.read(64));
    out.assign(m, v);
    return !r.overrun();
  }
  if (mode == 2) {  // a decimal constant
    const auto k = static_cast<unsigned>(r.read(4));
    if (k >= kPow10.size()) return false;
    const std::int64_t x = read_signed(r);
    out.assign(m, static_cast<double>(x) / kPow10[k]);
    return !r.overrun();
  }
  if (mode != 1) return false;
  const auto k = static_cast<unsigned>(r.read(4));
  if (k >= kPow10.size()) return false;
  thread_local std::vector<std::int64_t> x;
  if (!read_int_column(r, n, x, m)) return false;
  for (std::int64_t v : x) out.push_back(static_cast<double>(v) / kPow10[k]);
  return out.size() == m && !r.overrun();
}

void write_times(BitWriter& w, std::span<const std::int64_t> t) {
  // A chunk sampled without a hiccup is its first time and one step: zero bits a sample.
  bool steady = t.size() >= 2;
  for (std::size_t i = 2; i < t.size() && steady; ++i)
    steady = static_cast<std::uint64_t>(t[i]) - static_cast<std::uint64_t>(t[i - 1]) ==
             static_cast<std::uint64_t>(t[1]) - static_cast<std::uint64_t>(t[0]);
  w.write_bit(steady);
  if (steady) {
    w.write(static_cast<std::uint64_t>(t[0]), 64);
    w.write(static_cast<std::uint64_t>(t[1]) - static_cast<std::uint64_t>(t[0]), 64);
    return;
  }
  TimeState s;
  for (std::int64_t v : t) time_write(w, s, v);
}

bool read_times(BitReader& r, std::size_t n, std::vector<std::int64_t>& out) {
  out.clear();
  if (r.read_bit()) {
    const std::uint64_t first = r.read(64);
    const std::uint64_t step = r.read(64);
    if (r.overrun() || n < 2) return false;
    out.resize(n);
    std::int64_t* o = out.data();
    for (std::size_t i = 0; i < n; ++i) o[i] = static_cast<std::int64_t>(first + step * i);
    return true;
  }
  out.reserve(n);
  TimeState s;
  for (std::size_t i = 0; i < n && !r.overrun(); ++i) out.push_back(time_read(r, s));
  return out.size() == n && !r.overrun();
}

namespace {
struct Crc32cTable {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  Crc32cTable() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int j = 0; j < 8; ++j) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};

#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes CRC-32C: 8 bytes in 3 cycles, several times the table's
// speed (the agent checksums its whole history, tens of MiB, every minute).
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const std::uint8_t* p, std::size_t n,
                                                              std::uint32_t crc) {
  std::uint64_t c = ~crc;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c = __builtin_ia32_crc32di(c, w);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
#endif
}  // namespace

std::uint32_t crc32c(const std::uint8_t* p, std::size_t n, std::uint32_t crc) {
#if defined(__x86_64__)
  static const bool sse42 = __builtin_cpu_supports("sse4.2");
  if (sse42) return crc32c_sse42(p, n, crc);
#endif
  return crc32c_portable(p, n, crc);
}

std::uint32_t crc32c_portable(const std::uint8_t* p, std::size_t n, std::uint32_t crc) {
  static const Crc32cTable tab;
  const auto& t = tab.t;
  crc = ~crc;
  // Slicing-by-8: a 30 MB checkpoint is checksummed in a few milliseconds.
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
    w ^= crc;
    crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
          t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^
          t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

}  // namespace podgauge::store::detail
