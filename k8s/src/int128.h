// 128-bit helpers shared by the quantity code (GCC/Clang __int128).
#pragma once

#include <cstdint>
#include <string>

namespace podgauge::k8s::detail {

__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

inline constexpr u128 kU128Max = ~u128{0};
inline constexpr i128 kI128Max = static_cast<i128>(kU128Max >> 1);

inline void append_decimal(std::string& out, u128 value) {
  char buffer[40];
  int n = 0;
  do {
    buffer[n++] = static_cast<char>('0' + static_cast<int>(value % 10));
    value /= 10;
  } while (value != 0);
  while (n > 0) out.push_back(buffer[--n]);
}

inline u128 pow10_u128(int exponent) {
  u128 result = 1;
  for (int i = 0; i < exponent; ++i) result *= 10;
  return result;
}

/// value * factor, false on overflow.
inline bool mul_overflow(u128 value, u128 factor, u128& out) {
  if (value != 0 && factor > kU128Max / value) return false;
  out = value * factor;
  return true;
}

}  // namespace podgauge::k8s::detail
