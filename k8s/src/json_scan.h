// The lexical layer of the JSON reader: whitespace, strings, numbers, literals and the fast
// skipping of whole subtrees, shared by the tape parser (json.cpp) and the direct decoders
// that read a few fields straight from the text (pod_direct.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "podgauge/k8s/error.h"

namespace podgauge::k8s::detail {

inline constexpr int kMaxDepth = 512;

/// A position in JSON text and the checks of its tokens; every failure throws JsonSyntaxError
/// with the byte offset. Thread-safety: none (one per parse).
class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text, std::size_t pos = 0) : s_(text), pos_(pos) {}

  [[noreturn]] [[gnu::noinline, gnu::cold]] void fail(std::string_view what) const {
    throw JsonSyntaxError("invalid JSON at byte " + std::to_string(pos_) + ": " +
                          std::string(what));
  }

  [[gnu::always_inline]] void skip_ws() {
    // The API server writes compact JSON: the next byte is almost always a token.
    if (pos_ < s_.size() && static_cast<unsigned char>(s_[pos_]) > ' ') return;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }

  // pos_ is at a literal's first byte: checks it is `word` (true, false or null) and steps over.
  [[gnu::always_inline]] void scan_literal(std::string_view word) {
    // A fixed-size compare the compiler inlines (no memcmp call for 4 or 5 bytes).
    std::uint64_t have = 0;
    std::uint64_t want = 0;
    if (s_.size() - pos_ < word.size()) fail("invalid literal");
    std::memcpy(&have, s_.data() + pos_, word.size() == 4 ? 4 : 5);
    std::memcpy(&want, word.data(), word.size() == 4 ? 4 : 5);
    if (have != want) fail("invalid literal");
    pos_ += word.size();
  }

  // pos_ is at a number's first byte: checks RFC 8259's grammar and steps over it.
  void scan_number() {
    auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (!digit()) fail("expected a value");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit()) fail("expected a digit after the decimal point");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) fail("expected a digit in the exponent");
      while (digit()) ++pos_;
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // Strings are most of a Kubernetes object's bytes: step over 16 at a time up to the next
  // quote, backslash or control character (SSE2 is part of x86-64; others take the byte loop).
  [[gnu::always_inline]] void skip_plain() {
#ifdef __SSE2__
    const char* data = s_.data();
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i below_space = _mm_set1_epi8(0x1f);
    while (pos_ + 16 <= s_.size()) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + pos_));
      const __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                       _mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space));
      const int mask = _mm_movemask_epi8(special);
      if (mask != 0) {
        pos_ += static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
        return;
      }
      pos_ += 16;
    }
#endif
  }

  // Checks the string at pos_ (its opening quote) and moves past its closing quote; true when
  // it holds escapes.
  [[gnu::always_inline]] bool scan_string() {
    ++pos_;  // opening quote
    bool escaped = false;
    while (true) {
      skip_plain();
      if (pos_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') break;
      if (c < 0x20) fail("control character in string");
      if (c == '\\') {
        escaped = true;
        if (++pos_ >= s_.size()) fail("unterminated string");
        check_escape();
        if (s_[pos_] == 'u') pos_ += 4;
      }
      ++pos_;
    }
    ++pos_;  // closing quote
    return escaped;
  }

  // An object or array under a key the caller never reads: its brackets must match and its
  // strings be well formed, but nothing is recorded (a null node stands in for it) and the
  // grammar between its tokens is not checked. 64 bytes a step, as simdjson's first stage:
  // bit masks of quotes, backslashes and brackets; escaped characters from the runs of
  // backslashes; what lies inside strings from a prefix XOR of the unescaped quotes.
  void skip_container(int depth) {
    // Whether each open level is a '[' (not a '{'): the innermost 64 in a register (bit 0: the
    // current level), the levels above them spilled here.
    std::uint64_t open_square = 0;
    unsigned char spilled[kMaxDepth + 1];
    int level = 0;
    std::uint64_t next_escaped = 0;  // the block before ended with an escaping backslash
    std::uint64_t in_string = 0;     // ... inside a string (all ones)
    char tail[64];
    while (pos_ < s_.size()) {
      const std::size_t base = pos_;
      const std::size_t have = s_.size() - base;
      const char* block = s_.data() + base;
      if (have < 64) {
        std::memset(tail, ' ', sizeof tail);
        std::memcpy(tail, block, have);
        block = tail;
      }
      const Masks m = classify(block);
      const std::uint64_t escaped = escaped_chars(m.backslash, next_escaped);
      const std::uint64_t quotes = m.quote & ~escaped;
      const std::uint64_t inside = prefix_xor(quotes) ^ in_string;
      in_string = static_cast<std::uint64_t>(static_cast<std::int64_t>(inside) >> 63);

      // The brackets outside strings, in order, up to the one closing the container. Which
      // bracket it is comes from its byte: '[' 0x5B, '{' 0x7B, ']' 0x5D, '}' 0x7D.
      std::uint64_t brackets = m.bracket & ~inside;
      std::uint64_t upto = ~std::uint64_t{0};  // the bytes this container owns in the block
      bool closed = false;
      bool mismatch = false;
      while (brackets != 0) {
        const int at = __builtin_ctzll(brackets);
        brackets &= brackets - 1;
        const auto c = static_cast<unsigned char>(block[at]);
        const std::uint64_t square = (~c >> 5) & 1;
        if (c & 2) {  // opening
          if (depth + level + 1 > kMaxDepth) {
            pos_ = base + static_cast<std::size_t>(at);
            fail("nesting deeper than 512 levels");
          }
          if (level >= 64) [[unlikely]]
            spilled[level - 63] = static_cast<unsigned char>(open_square >> 63);
          open_square = (open_square << 1) | square;
          ++level;
          continue;
        }
        if (level == 0 || (open_square & 1) != square) {
          upto = at == 63 ? ~std::uint64_t{0} : (std::uint64_t{2} << at) - 1;
          mismatch = true;
          break;
        }
        open_square >>= 1;
        if (--level == 0) {
          upto = at == 63 ? ~std::uint64_t{0} : (std::uint64_t{2} << at) - 1;
          closed = true;
          break;
        }
        if (level >= 64) [[unlikely]]
          open_square |= static_cast<std::uint64_t>(spilled[level - 63]) << 63;
      }
      if (have < 64) upto &= (std::uint64_t{1} << have) - 1;

      // Strings are checked as scan_string does, over the bytes the container owns.
      if (const std::uint64_t bad = m.control & inside & upto) {
        pos_ = base + static_cast<std::size_t>(__builtin_ctzll(bad));
        fail("control character in string");
      }
      if (const std::uint64_t stray = m.backslash & ~inside & upto) {
        pos_ = base + static_cast<std::size_t>(__builtin_ctzll(stray));
        fail("unexpected '\\' outside a string");
      }
      for (std::uint64_t e = escaped & inside & upto; e != 0; e &= e - 1) {
        pos_ = base + static_cast<std::size_t>(__builtin_ctzll(e));
        check_escape();
      }
      if (mismatch) {
        pos_ = base + static_cast<std::size_t>(63 - __builtin_clzll(upto));
        fail("mismatched bracket");
      }
      if (closed) {
        pos_ = base + static_cast<std::size_t>(64 - __builtin_clzll(upto));
        return;
      }
      pos_ = base + std::min<std::size_t>(have, 64);
    }
    fail(in_string != 0 ? "unterminated string" : "unterminated object or array");
  }

  struct Masks {
    std::uint64_t quote = 0, backslash = 0, control = 0, bracket = 0;
  };

  static Masks classify(const char* p) {
    Masks m;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i below_space = _mm_set1_epi8(0x1f);
    const __m128i case_bit = _mm_set1_epi8(0x20);
    const __m128i open = _mm_set1_epi8('{');   // '[' | 0x20
    const __m128i close = _mm_set1_epi8('}');  // ']' | 0x20
    for (int i = 0; i < 4; ++i) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
      const __m128i folded = _mm_or_si128(v, case_bit);
      auto bits = [&](__m128i x) {
        return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(x))) << (16 * i);
      };
      m.quote |= bits(_mm_cmpeq_epi8(v, quote));
      m.backslash |= bits(_mm_cmpeq_epi8(v, backslash));
      m.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space));
      m.bracket |= bits(_mm_or_si128(_mm_cmpeq_epi8(folded, open), _mm_cmpeq_epi8(folded, close)));
    }
#else
    for (int i = 0; i < 64; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      const std::uint64_t bit = std::uint64_t{1} << i;
      if (c == '"') m.quote |= bit;
      if (c == '\\') m.backslash |= bit;
      if (c < 0x20) m.control |= bit;
      if (c == '{' || c == '[' || c == '}' || c == ']') m.bracket |= bit;
    }
#endif
    return m;
  }

  // The characters escaped by a backslash: the one after each odd-length run (simdjson's
  // json_escape_scanner). `carry` says the previous block's last backslash escapes bit 0.
  static std::uint64_t escaped_chars(std::uint64_t backslash, std::uint64_t& carry) {
    constexpr std::uint64_t kOdd = 0xAAAAAAAAAAAAAAAAull;
    if (backslash == 0) {
      const std::uint64_t escaped = carry;
      carry = 0;
      return escaped;
    }
    const std::uint64_t potential = backslash & ~carry;
    const std::uint64_t code = (((potential << 1) | kOdd) - potential) ^ kOdd;
    const std::uint64_t escaped = code ^ (backslash | carry);
    carry = (code & backslash) >> 63;
    return escaped;
  }

  // Bit i: an odd number of quotes at or before i, i.e. inside a string (its opening quote
  // included, its closing quote not).
  static std::uint64_t prefix_xor(std::uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
  }

  // pos_ is the character after a backslash inside a string.
  void check_escape() {
    switch (s_[pos_]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        return;
      case 'u':
        for (int i = 1; i <= 4; ++i) {
          if (pos_ + i >= s_.size() || hex(s_[pos_ + i]) < 0) fail("invalid \\u escape");
        }
        return;
      default:
        fail("invalid escape in string");
    }
  }

  // The ':' after a key, with the whitespace around it.
  [[gnu::always_inline]] void colon() {
    if (pos_ + 1 < s_.size() && s_[pos_] == ':' && static_cast<unsigned char>(s_[pos_ + 1]) > ' ') {
      ++pos_;  // compact "key":value
      return;
    }
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
    ++pos_;
    skip_ws();
  }

  // pos_ is at '{': steps through the members to the closing '}', calling
  // f(key_begin, key_length, key_escaped) with pos_ at each value, which f consumes. Every
  // reader of objects (tape, direct decode, skip) shares this loop and its errors.
  template <class F>
  [[gnu::always_inline]] void members(F&& f) {
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    while (true) {
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      const std::size_t begin = pos_ + 1;
      const bool escaped = scan_string();
      const std::size_t length = pos_ - 1 - begin;
      colon();
      f(begin, length, escaped);
      skip_ws();
      if (pos_ >= s_.size()) fail("unterminated object");
      if (s_[pos_] == ',') {
        ++pos_;
        skip_ws();
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return;
      }
      fail("expected ',' or '}'");
    }
  }

  // pos_ is at '[': steps through the elements to the closing ']', calling f() with pos_ at
  // each element, which f consumes.
  template <class F>
  [[gnu::always_inline]] void elements(F&& f) {
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return;
    }
    while (true) {
      skip_ws();
      f();
      skip_ws();
      if (pos_ >= s_.size()) fail("unterminated array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return;
      }
      fail("expected ',' or ']'");
    }
  }

 protected:
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace podgauge::k8s::detail
