// libFuzzer target: Quantity::parse takes strings straight from API objects; it must never
// crash, and whatever it accepts must print canonically and re-parse to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/quantity.h"

namespace {
void check(bool condition) {
  if (!condition) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using podgauge::k8s::Quantity;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<Quantity> q = Quantity::try_parse(text);
  if (!q) return 0;
  const std::string canonical = q->to_string();
  const Quantity again = Quantity::parse(canonical);
  check(again == *q);
  // A BinarySI value printed without suffix ("62.5Ki" -> "64000") re-parses as DecimalSI
  // ("64k"), exactly as upstream; from then on the form is stable.
  const std::string settled = again.to_string();
  check(Quantity::parse(settled).to_string() == settled);
  check(q->sign() == -(-*q).sign());
  (void)q->value();
  (void)q->milli_value();
  (void)q->as_double();
  try {
    check((*q + again - again) == *q);
  } catch (const podgauge::k8s::QuantityError&) {
    // The sum left the supported range: reported, not wrapped.
  }
  return 0;
}
