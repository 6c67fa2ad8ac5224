#include "utf8.h"

#include <cstdint>

namespace podgauge::exporters::detail {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is invalid.
std::size_t valid_sequence_length(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<std::uint8_t>(text[i]);
  if (b0 < 0x80) return 1;
  std::size_t len;
  std::uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;        // overlong
    if (b0 == 0xED) hi = 0x9F;        // UTF-16 surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;        // overlong
    if (b0 == 0xF4) hi = 0x8F;        // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  const auto b1 = static_cast<std::uint8_t>(text[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    const auto b = static_cast<std::uint8_t>(text[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return len;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = valid_sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_valid_utf8(std::string& out, std::string_view text) {
  std::size_t start = 0;  // start of the pending valid run
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = valid_sequence_length(text, i);
    if (n != 0) {
      i += n;
      continue;
    }
    out.append(text.substr(start, i - start));
    out.append(kReplacement);
    start = ++i;
  }
  out.append(text.substr(start));
}

void make_valid_utf8(std::string& text) {
  if (is_valid_utf8(text)) return;
  std::string fixed;
  fixed.reserve(text.size() + 8);
  append_valid_utf8(fixed, text);
  text = std::move(fixed);
}

}  // namespace podgauge::exporters::detail
