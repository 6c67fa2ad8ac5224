// resource.Quantity from k8s.io/apimachinery: the same grammar, rounding and canonical form.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podgauge::k8s {

/// How a quantity is written back; remembered from the suffix it was parsed with.
enum class QuantityFormat : std::uint8_t {
  DecimalSI,        ///< 12M, 100m, 1.5 -> 1500m
  BinarySI,         ///< 12Mi
  DecimalExponent,  ///< 12e6
};

/// "DecimalSI", "BinarySI", "DecimalExponent".
std::string_view to_string(QuantityFormat format) noexcept;

/// A fixed-point number with nano (10^-9) precision, exactly as apimachinery keeps it:
///   <quantity> ::= <signedNumber><suffix>, suffix one of n u m "" k M G T P E (decimal SI),
///   Ki Mi Gi Ti Pi Ei (binary SI), or e<signedNumber> / E<signedNumber> (decimal exponent).
/// Parsing rounds a non-zero value finer than 1n away from zero ("0.9n" -> 1n) and caps binary
/// SI values at 2^63-1 in magnitude ("8Ei" -> 9223372036854775807), as apimachinery does.
/// Unlike apimachinery's arbitrary-precision fallback, magnitudes of 2^127 nano-units
/// (about 1.7e29) and above are rejected with a QuantityError.
/// Thread-safety: a value type; concurrent const use is safe.
class Quantity {
 public:
  /// Zero, DecimalSI (what `resource.Quantity{}` / MustParse("0") are).
  Quantity() = default;

  /// Throws QuantityError naming the input and what is wrong with it.
  static Quantity parse(std::string_view text);
  /// As parse(), without throwing; `error` (if given) receives the message on failure.
  static std::optional<Quantity> try_parse(std::string_view text, std::string* error = nullptr);

  /// value * 10^scale, e.g. (250, -3) is 250m; like resource.NewScaledQuantity but any format.
  static Quantity from_scaled(std::int64_t value, int scale,
                              QuantityFormat format = QuantityFormat::DecimalSI);
  static Quantity from_value(std::int64_t value, QuantityFormat format = QuantityFormat::DecimalSI) {
    return from_scaled(value, 0, format);
  }
  static Quantity from_milli(std::int64_t milli, QuantityFormat format = QuantityFormat::DecimalSI) {
    return from_scaled(milli, -3, format);
  }

  /// The canonical form apimachinery's CanonicalizeBytes produces: "1.5Gi" -> "1536Mi",
  /// "1000m" -> "1", "0.5" -> "500m", "1000" -> "1k", "1e3" -> "1e3", "1.5" -> "1500m".
  std::string to_string() const;

  /// ceil(q) away from zero, like Quantity.Value(); saturates at the int64 limits.
  std::int64_t value() const noexcept { return scaled_value(0); }
  /// ceil(q * 1000) away from zero, like Quantity.MilliValue() (CPU in millicores).
  std::int64_t milli_value() const noexcept { return scaled_value(-3); }
  /// ceil(q / 10^scale) away from zero, like Quantity.ScaledValue(); saturating.
  std::int64_t scaled_value(int scale) const noexcept;
  /// The value in nano units when it fits an int64.
  std::optional<std::int64_t> nano_value() const noexcept;
  /// Nearest double (AsApproximateFloat64).
  double as_double() const noexcept;

  QuantityFormat format() const noexcept { return format_; }
  void set_format(QuantityFormat format) noexcept { format_ = format; }
  bool is_zero() const noexcept { return lo_ == 0 && hi_ == 0; }
  int sign() const noexcept { return hi_ < 0 ? -1 : (is_zero() ? 0 : 1); }

  /// -1, 0, 1 (Quantity.Cmp): formats do not take part.
  int compare(const Quantity& other) const noexcept;
  friend bool operator==(const Quantity& a, const Quantity& b) noexcept { return a.compare(b) == 0; }
  friend std::strong_ordering operator<=>(const Quantity& a, const Quantity& b) noexcept {
    return a.compare(b) <=> 0;
  }

  /// Add/Sub as apimachinery: a zero left operand takes the right operand's format.
  /// Throws QuantityError when the result leaves the representable range.
  Quantity& operator+=(const Quantity& other);
  Quantity& operator-=(const Quantity& other);
  friend Quantity operator+(Quantity a, const Quantity& b) { return a += b; }
  friend Quantity operator-(Quantity a, const Quantity& b) { return a -= b; }
  Quantity operator-() const;

 private:
  std::uint64_t lo_ = 0;  // two's-complement 128-bit count of nano units, split so the
  std::int64_t hi_ = 0;   // type stays 8-byte aligned (24 bytes) in cached objects
  QuantityFormat format_ = QuantityFormat::DecimalSI;
};

}  // namespace podgauge::k8s
