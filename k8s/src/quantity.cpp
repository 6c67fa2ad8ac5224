#include "podgauge/k8s/quantity.h"

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "podgauge/k8s/error.h"
#include "int128.h"

namespace podgauge::k8s {

using detail::i128;
using detail::kI128Max;
using detail::kU128Max;
using detail::u128;

namespace {

// The binary-fraction path does quadratic big-number work, so absurd lengths are refused.
constexpr std::size_t kMaxQuantityLength = 4096;
constexpr u128 kNanosPerUnit = 1'000'000'000;
// apimachinery caps binary SI quantities at 2^63-1 (maxAllowed).
constexpr u128 kBinaryCapNanos = static_cast<u128>(std::numeric_limits<std::int64_t>::max()) * kNanosPerUnit;

std::string quote(std::string_view text) {
  std::string out = "\"";
  std::size_t shown = 0;
  for (char c : text) {
    if (++shown > 64) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

[[noreturn]] void fail(std::string_view text, std::string_view why) {
  throw QuantityError("invalid quantity " + quote(text) + ": " + std::string(why));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_suffix_char(char c) {
  switch (c) {
    case 'e': case 'E': case 'i': case 'n': case 'u': case 'm':
    case 'k': case 'K': case 'M': case 'G': case 'T': case 'P':
      return true;
    default:
      return false;
  }
}

struct Scanned {
  bool positive = true;
  std::string_view num, denom, suffix;
};

// apimachinery's parseQuantityString, step for step (leading zeros stripped, "." and "-" are 0).
bool scan(std::string_view s, Scanned& out) {
  std::size_t pos = 0;
  const std::size_t end = s.size();
  if (pos < end && (s[0] == '-' || s[0] == '+')) {
    out.positive = s[0] == '+';
    ++pos;
  }
  while (true) {
    if (pos >= end) {
      out.num = "0";
      return true;
    }
    if (s[pos] != '0') break;
    ++pos;
  }
  std::size_t i = pos;
  while (i < end && is_digit(s[i])) ++i;
  out.num = s.substr(pos, i - pos);
  if (i >= end) return true;
  pos = i;
  if (out.num.empty()) out.num = "0";
  if (s[pos] == '.') {
    ++pos;
    i = pos;
    while (i < end && is_digit(s[i])) ++i;
    out.denom = s.substr(pos, i - pos);
    if (i >= end) return true;
    pos = i;
  }
  const std::size_t suffix_start = pos;
  i = pos;
  while (i < end && is_suffix_char(s[i])) ++i;
  if (i >= end) {
    out.suffix = s.substr(suffix_start);
    return true;
  }
  pos = i;
  if (s[pos] == '-' || s[pos] == '+') ++pos;
  i = pos;
  while (i < end && is_digit(s[i])) ++i;
  if (i >= end) {
    out.suffix = s.substr(suffix_start);
    return true;
  }
  return false;
}

struct Suffix {
  int base = 10;
  std::int32_t exponent = 0;
  QuantityFormat format = QuantityFormat::DecimalSI;
};

// Go's strconv.ParseInt(s, 10, 64): optional sign, at least one digit, no overflow.
bool parse_go_int64(std::string_view s, std::int64_t& out) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  u128 magnitude = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    magnitude = magnitude * 10 + static_cast<unsigned>(c - '0');
    if (magnitude > static_cast<u128>(std::numeric_limits<std::int64_t>::max()) + 1) return false;
  }
  if (!negative && magnitude > static_cast<u128>(std::numeric_limits<std::int64_t>::max())) return false;
  out = negative ? static_cast<std::int64_t>(-static_cast<i128>(magnitude))
                 : static_cast<std::int64_t>(magnitude);
  return true;
}

bool interpret(std::string_view s, Suffix& out) {
  static constexpr std::array<std::pair<std::string_view, int>, 10> kDecimal{{
      {"", 0}, {"n", -9}, {"u", -6}, {"m", -3}, {"k", 3},
      {"M", 6}, {"G", 9}, {"T", 12}, {"P", 15}, {"E", 18}}};
  static constexpr std::array<std::pair<std::string_view, int>, 6> kBinary{{
      {"Ki", 10}, {"Mi", 20}, {"Gi", 30}, {"Ti", 40}, {"Pi", 50}, {"Ei", 60}}};
  for (const auto& [name, exponent] : kDecimal) {
    if (s == name) {
      out = {10, exponent, QuantityFormat::DecimalSI};
      return true;
    }
  }
  for (const auto& [name, exponent] : kBinary) {
    if (s == name) {
      out = {2, exponent, QuantityFormat::BinarySI};
      return true;
    }
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::int64_t parsed = 0;
    if (!parse_go_int64(s.substr(1), parsed)) return false;
    // Go's int32(parsed) conversion wraps; so does this one.
    out = {10, static_cast<std::int32_t>(parsed), QuantityFormat::DecimalExponent};
    return true;
  }
  return false;
}

// Digits without leading zeros: false when they do not fit 128 bits.
bool digits_to_u128(std::string_view digits, u128& out) {
  out = 0;
  for (char c : digits) {
    if (out > (kU128Max - 9) / 10) return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

// Little-endian base-2^32 natural number, just enough for ceil(D * 2^b / 10^k).
class BigNat {
 public:
  explicit BigNat(std::string_view digits) {
    for (char c : digits) mul_add(10, static_cast<std::uint32_t>(c - '0'));
  }
  void mul_add(std::uint32_t factor, std::uint32_t addend) {
    std::uint64_t carry = addend;
    for (auto& limb : limbs_) {
      std::uint64_t v = static_cast<std::uint64_t>(limb) * factor + carry;
      limb = static_cast<std::uint32_t>(v);
      carry = v >> 32;
    }
    if (carry != 0) limbs_.push_back(static_cast<std::uint32_t>(carry));
  }
  void shift_left(int bits) {
    while (bits >= 16) {
      mul_add(1u << 16, 0);
      bits -= 16;
    }
    if (bits > 0) mul_add(1u << bits, 0);
  }
  /// Divides in place, returns the remainder.
  std::uint32_t div(std::uint32_t divisor) {
    std::uint64_t rem = 0;
    for (std::size_t i = limbs_.size(); i-- > 0;) {
      std::uint64_t cur = (rem << 32) | limbs_[i];
      limbs_[i] = static_cast<std::uint32_t>(cur / divisor);
      rem = cur % divisor;
    }
    while (!limbs_.empty() && limbs_.back() == 0) limbs_.pop_back();
    return static_cast<std::uint32_t>(rem);
  }
  bool to_u128(u128& out) const {
    if (limbs_.size() > 4) return false;
    out = 0;
    for (std::size_t i = limbs_.size(); i-- > 0;) out = (out << 32) | limbs_[i];
    return true;
  }

 private:
  std::vector<std::uint32_t> limbs_;
};

}  // namespace

std::string_view to_string(QuantityFormat format) noexcept {
  switch (format) {
    case QuantityFormat::DecimalSI: return "DecimalSI";
    case QuantityFormat::BinarySI: return "BinarySI";
    case QuantityFormat::DecimalExponent: return "DecimalExponent";
  }
  return "DecimalSI";
}

namespace {
i128 get(std::uint64_t lo, std::int64_t hi) {
  return static_cast<i128>((static_cast<u128>(static_cast<std::uint64_t>(hi)) << 64) | lo);
}
}  // namespace

#define PG_QUANTITY_VALUE() get(lo_, hi_)
#define PG_QUANTITY_SET(q, v)                                                    \
  do {                                                                           \
    const u128 bits_ = static_cast<u128>(v);                                     \
    (q).lo_ = static_cast<std::uint64_t>(bits_);                                 \
    (q).hi_ = static_cast<std::int64_t>(static_cast<std::uint64_t>(bits_ >> 64)); \
  } while (0)

std::optional<Quantity> Quantity::try_parse(std::string_view text, std::string* error) {
  try {
    return parse(text);
  } catch (const QuantityError& e) {
    if (error != nullptr) *error = e.what();
    return std::nullopt;
  }
}

Quantity Quantity::parse(std::string_view text) {
  if (text.empty()) fail(text, "empty string (expected e.g. \"100m\", \"1.5Gi\", \"1e3\")");
  if (text.size() > kMaxQuantityLength) fail(text, "longer than 4096 characters");
  Quantity q;
  if (text == "0") return q;

  // The shape of nearly every request and limit ("250m", "64Mi", "2"): up to 9 digits, no
  // leading zero, one of the common suffixes. Exact, so computed directly; the general path
  // below gives the same value and format (k8s_quantity_test compares them).
  if (text[0] >= '1' && text[0] <= '9') {
    std::uint64_t d = 0;
    std::size_t i = 0;
    while (i < text.size() && i < 10 && text[i] >= '0' && text[i] <= '9')
      d = d * 10 + static_cast<unsigned>(text[i++] - '0');
    if (i <= 9) {
      const std::string_view suffix = text.substr(i);
      u128 nanos = 0;
      QuantityFormat format = QuantityFormat::DecimalSI;
      if (suffix.empty())
        nanos = static_cast<u128>(d) * 1'000'000'000;
      else if (suffix == "m")
        nanos = static_cast<u128>(d) * 1'000'000;
      else if (suffix == "k")
        nanos = static_cast<u128>(d) * 1'000'000'000'000;
      else if (suffix == "M")
        nanos = static_cast<u128>(d) * 1'000'000'000'000'000;
      else if (suffix == "G")
        nanos = static_cast<u128>(d) * 1'000'000'000'000'000'000u;
      else if (suffix.size() == 2 && suffix[1] == 'i' &&
               (suffix[0] == 'K' || suffix[0] == 'M' || suffix[0] == 'G')) {
        const int shift = suffix[0] == 'K' ? 10 : suffix[0] == 'M' ? 20 : 30;
        nanos = (static_cast<u128>(d) << shift) * 1'000'000'000;
        format = QuantityFormat::BinarySI;
      }
      if (nanos != 0) {
        q.format_ = format;
        PG_QUANTITY_SET(q, nanos);
        return q;
      }
    }
  }

  Scanned scanned;
  if (!scan(text, scanned)) {
    fail(text, "not of the form <number><suffix> (e.g. \"100m\", \"1.5Gi\", \"1e3\", \"+1k\")");
  }
  Suffix suffix;
  if (!interpret(scanned.suffix, suffix)) {
    fail(text, "unknown suffix " + quote(scanned.suffix) +
                   " (allowed: n u m k M G T P E, Ki Mi Gi Ti Pi Ei, e<exponent>, E<exponent>)");
  }
  q.format_ = suffix.format;

  // All digits as one integer D; the value is D * 10^-len(denom) * suffix.
  std::string joined;
  joined.reserve(scanned.num.size() + scanned.denom.size());
  joined.append(scanned.num).append(scanned.denom);
  std::string_view digits = joined;
  while (!digits.empty() && digits.front() == '0') digits.remove_prefix(1);
  std::int64_t trailing_zeros = 0;
  while (!digits.empty() && digits.back() == '0') {
    digits.remove_suffix(1);
    ++trailing_zeros;
  }
  if (digits.empty()) return q;  // a zero keeps its format ("0Ki" is BinarySI)

  const auto length = static_cast<std::int64_t>(digits.size());
  const auto denom_length = static_cast<std::int64_t>(scanned.denom.size());
  u128 magnitude = 0;
  if (suffix.base == 10) {
    // magnitude = D * 10^e in nano units; D's last digit is non-zero, so dropping digits
    // always leaves a remainder and rounds up.
    const std::int64_t e = std::int64_t{suffix.exponent} - denom_length + trailing_zeros + 9;
    bool fits = true;
    if (e >= 0) {
      fits = length + e <= 39 && digits_to_u128(digits, magnitude) &&
             detail::mul_overflow(magnitude, detail::pow10_u128(static_cast<int>(e)), magnitude);
    } else if (-e >= length) {
      magnitude = 1;
    } else {
      const std::int64_t keep = length + e;
      fits = keep <= 39 && digits_to_u128(digits.substr(0, static_cast<std::size_t>(keep)), magnitude) &&
             magnitude < kU128Max;
      ++magnitude;
    }
    if (!fits || magnitude > static_cast<u128>(kI128Max)) {
      fail(text, "magnitude exceeds the supported range (about 1.7e29)");
    }
  } else {
    const int shift = suffix.exponent;
    const std::int64_t e = 9 - denom_length + trailing_zeros;
    if (e >= 0) {
      bool fits = length + e <= 39 && digits_to_u128(digits, magnitude) &&
                  detail::mul_overflow(magnitude, detail::pow10_u128(static_cast<int>(e)), magnitude) &&
                  magnitude <= (kU128Max >> shift);
      magnitude = fits ? std::min(magnitude << shift, kBinaryCapNanos) : kBinaryCapNanos;
    } else if (-e >= length + 19) {
      magnitude = 1;  // D * 2^60 < 10^(len+19): below one nano unit
    } else {
      BigNat n(digits);
      n.shift_left(shift);
      bool remainder = false;
      for (std::int64_t k = -e; k > 0;) {
        const int step = static_cast<int>(std::min<std::int64_t>(k, 9));
        remainder |= n.div(static_cast<std::uint32_t>(detail::pow10_u128(step))) != 0;
        k -= step;
      }
      if (!n.to_u128(magnitude) || magnitude >= kBinaryCapNanos) {
        magnitude = kBinaryCapNanos;
      } else if (remainder) {
        ++magnitude;
      }
    }
    // A fraction of one unit would print badly in binary: apimachinery switches to DecimalSI.
    if (magnitude < kNanosPerUnit) q.format_ = QuantityFormat::DecimalSI;
  }
  const i128 value = scanned.positive ? static_cast<i128>(magnitude) : -static_cast<i128>(magnitude);
  PG_QUANTITY_SET(q, value);
  return q;
}

Quantity Quantity::from_scaled(std::int64_t value, int scale, QuantityFormat format) {
  Quantity q;
  q.format_ = format;
  const bool negative = value < 0;
  u128 magnitude = negative ? static_cast<u128>(-static_cast<i128>(value)) : static_cast<u128>(value);
  const int e = scale + 9;
  if (e >= 0) {
    if (e > 38 || !detail::mul_overflow(magnitude, detail::pow10_u128(e), magnitude) ||
        magnitude > static_cast<u128>(kI128Max)) {
      throw QuantityError("quantity " + std::to_string(value) + "e" + std::to_string(scale) +
                          " exceeds the supported range (about 1.7e29)");
    }
  } else if (magnitude != 0) {
    const u128 divisor = -e > 38 ? kU128Max : detail::pow10_u128(-e);
    const bool rem = magnitude % divisor != 0;
    magnitude = magnitude / divisor + (rem ? 1 : 0);
  }
  const i128 v = negative ? -static_cast<i128>(magnitude) : static_cast<i128>(magnitude);
  PG_QUANTITY_SET(q, v);
  return q;
}

std::string Quantity::to_string() const {
  const i128 v = PG_QUANTITY_VALUE();
  if (v == 0) return "0";
  std::string out;
  if (v < 0) out.push_back('-');
  const u128 magnitude = v < 0 ? static_cast<u128>(-v) : static_cast<u128>(v);

  QuantityFormat format = format_;
  // CanonicalizeBytes: binary only for whole numbers of magnitude >= 1024.
  if (format == QuantityFormat::BinarySI &&
      (magnitude < 1024 * kNanosPerUnit || magnitude % kNanosPerUnit != 0)) {
    format = QuantityFormat::DecimalSI;
  }
  if (format == QuantityFormat::BinarySI) {
    static constexpr std::array<std::string_view, 7> kBinary{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    u128 units = magnitude / kNanosPerUnit;
    std::size_t exponent = 0;
    // apimachinery would print no suffix past Ei (a wrong value); stopping at Ei stays exact.
    while (units >= 1024 && units % 1024 == 0 && exponent + 1 < kBinary.size()) {
      units /= 1024;
      ++exponent;
    }
    detail::append_decimal(out, units);
    out += kBinary[exponent];
    return out;
  }
  u128 amount = magnitude;
  int exponent = -9;
  while (amount >= 10 && amount % 10 == 0) {
    amount /= 10;
    ++exponent;
  }
  const int down = ((exponent % 3) + 3) % 3;
  amount *= detail::pow10_u128(down);
  exponent -= down;
  detail::append_decimal(out, amount);
  if (format == QuantityFormat::DecimalSI && exponent <= 18) {
    static constexpr std::array<std::string_view, 10> kDecimal{"n", "u", "m", "", "k",
                                                               "M", "G", "T", "P", "E"};
    out += kDecimal[static_cast<std::size_t>((exponent + 9) / 3)];
  } else if (exponent != 0) {
    // DecimalExponent, or DecimalSI past "E" (apimachinery falls back to e notation there).
    out += 'e';
    out += std::to_string(exponent);
  }
  return out;
}

std::int64_t Quantity::scaled_value(int scale) const noexcept {
  const i128 v = PG_QUANTITY_VALUE();
  if (v == 0) return 0;
  const bool negative = v < 0;
  u128 magnitude = negative ? static_cast<u128>(-v) : static_cast<u128>(v);
  const int e = scale + 9;
  if (e >= 0) {
    if (e > 38) {
      magnitude = 1;
    } else {
      const u128 divisor = detail::pow10_u128(e);
      const bool rem = magnitude % divisor != 0;
      magnitude = magnitude / divisor + (rem ? 1 : 0);
    }
  } else if (-e > 38 || !detail::mul_overflow(magnitude, detail::pow10_u128(-e), magnitude)) {
    magnitude = kU128Max;
  }
  constexpr u128 kMax = static_cast<u128>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (magnitude > kMax + 1) return std::numeric_limits<std::int64_t>::min();
    return static_cast<std::int64_t>(-static_cast<i128>(magnitude));
  }
  if (magnitude > kMax) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(magnitude);
}

std::optional<std::int64_t> Quantity::nano_value() const noexcept {
  const i128 v = PG_QUANTITY_VALUE();
  if (v > std::numeric_limits<std::int64_t>::max() || v < std::numeric_limits<std::int64_t>::min()) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(v);
}

double Quantity::as_double() const noexcept {
  return static_cast<double>(PG_QUANTITY_VALUE()) / 1e9;
}

int Quantity::compare(const Quantity& other) const noexcept {
  const i128 a = PG_QUANTITY_VALUE();
  const i128 b = get(other.lo_, other.hi_);
  return a < b ? -1 : (a > b ? 1 : 0);
}

Quantity& Quantity::operator+=(const Quantity& other) {
  const i128 a = PG_QUANTITY_VALUE();
  const i128 b = get(other.lo_, other.hi_);
  i128 sum = 0;
  if (__builtin_add_overflow(a, b, &sum) || sum == -kI128Max - 1) {
    throw QuantityError("quantity overflow: " + to_string() + " + " + other.to_string());
  }
  if (a == 0) format_ = other.format_;
  PG_QUANTITY_SET(*this, sum);
  return *this;
}

Quantity& Quantity::operator-=(const Quantity& other) {
  const i128 a = PG_QUANTITY_VALUE();
  const i128 b = get(other.lo_, other.hi_);
  i128 difference = 0;
  if (__builtin_sub_overflow(a, b, &difference) || difference == -kI128Max - 1) {
    throw QuantityError("quantity overflow: " + to_string() + " - " + other.to_string());
  }
  if (a == 0) format_ = other.format_;
  PG_QUANTITY_SET(*this, difference);
  return *this;
}

Quantity Quantity::operator-() const {
  Quantity q = *this;
  const i128 v = -PG_QUANTITY_VALUE();  // never overflows: values stay within +-kI128Max
  PG_QUANTITY_SET(q, v);
  return q;
}

}  // namespace podgauge::k8s
