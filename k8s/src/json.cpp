#include "json.h"

#include <algorithm>
#include <bitset>
#include <cstring>
#include <limits>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "podgauge/k8s/error.h"

namespace podgauge::k8s::detail {

std::string_view to_string(JsonType type) noexcept {
  switch (type) {
    case JsonType::Null: return "null";
    case JsonType::False:
    case JsonType::True: return "boolean";
    case JsonType::Number: return "number";
    case JsonType::String: return "string";
    case JsonType::Array: return "array";
    case JsonType::Object: return "object";
  }
  return "value";
}

namespace {

constexpr int kMaxDepth = 512;

class Parser {
 public:
  Parser(std::string_view text, JsonTape& tape, std::size_t pos = 0,
         std::span<const std::string_view> unread = {})
      : s_(text),
        tape_(tape),
        nodes_(tape.nodes.get()),
        size_(0),
        capacity_(tape.capacity),
        pos_(pos),
        unread_(unread) {
    // More keys than the table takes half-full: the plain scan.
    unread_scan_ = unread_.size() > kUnreadSlots / 2;
    for (std::size_t i = 0; i < unread_.size() && !unread_scan_; ++i) {
      std::size_t slot = unread_slot(unread_[i]);
      while (unread_table_[slot] != 0) slot = (slot + 1) % kUnreadSlots;
      unread_table_[slot] = static_cast<std::uint8_t>(i + 1);
    }
  }

  std::size_t parse_one() {
    skip_ws();
    parse_value(0);
    tape_.size = size_;
    return pos_;
  }

  void parse_document() {
    skip_ws();
    parse_value(0);
    tape_.size = size_;
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw JsonSyntaxError("invalid JSON at byte " + std::to_string(pos_) + ": " + std::string(what));
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

  [[gnu::always_inline]] std::uint32_t push(JsonType type, std::size_t begin, std::size_t length, bool escaped = false) {
    if (size_ == capacity_) [[unlikely]]
      grow();
    nodes_[size_] = JsonNode{static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(length),
                             size_ + 1, type, escaped};
    return size_++;
  }

  [[gnu::noinline]] void grow() {
    tape_.size = size_;
    tape_.reserve(std::max<std::size_t>(64, capacity_ * 2));
    nodes_ = tape_.nodes.get();
    capacity_ = tape_.capacity;
  }

  void parse_value(int depth) {
    if (pos_ >= s_.size()) fail("unexpected end of input");
    switch (s_[pos_]) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return parse_string();
      case 't': return parse_literal("true", JsonType::True);
      case 'f': return parse_literal("false", JsonType::False);
      case 'n': return parse_literal("null", JsonType::Null);
      default: return parse_number();
    }
  }

  [[gnu::always_inline]] void parse_literal(std::string_view word, JsonType type) {
    // A fixed-size compare the compiler inlines (no memcmp call for 4 or 5 bytes).
    std::uint64_t have = 0;
    std::uint64_t want = 0;
    if (s_.size() - pos_ < word.size()) fail("invalid literal");
    std::memcpy(&have, s_.data() + pos_, word.size() == 4 ? 4 : 5);
    std::memcpy(&want, word.data(), word.size() == 4 ? 4 : 5);
    if (have != want) fail("invalid literal");
    push(type, pos_, word.size());
    pos_ += word.size();
  }

  void parse_number() {
    const std::size_t begin = pos_;
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
    push(JsonType::Number, begin, pos_ - begin);
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
      const __m128i special = _mm_or_si128(
          _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
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

  [[gnu::always_inline]] void parse_string() {
    const std::size_t begin = pos_ + 1;
    const bool escaped = scan_string();
    push(JsonType::String, begin, pos_ - 1 - begin, escaped);
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
    std::bitset<kMaxDepth + 1> is_array;
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

      // The brackets outside strings, in order, up to the one closing the container.
      std::uint64_t brackets = (m.open | m.close) & ~inside;
      std::uint64_t upto = ~std::uint64_t{0};  // the bytes this container owns in the block
      bool closed = false;
      bool mismatch = false;
      while (brackets != 0) {
        const int at = __builtin_ctzll(brackets);
        const std::uint64_t bit = std::uint64_t{1} << at;
        brackets &= brackets - 1;
        const bool square = (m.square & bit) != 0;
        if (m.open & bit) {
          if (depth + level + 1 > kMaxDepth) {
            pos_ = base + static_cast<std::size_t>(at);
            fail("nesting deeper than 512 levels");
          }
          is_array[static_cast<std::size_t>(++level)] = square;
          continue;
        }
        upto = at == 63 ? ~std::uint64_t{0} : (bit << 1) - 1;
        if (level == 0 || is_array[static_cast<std::size_t>(level)] != square) {
          mismatch = true;
          break;
        }
        if (--level == 0) {
          closed = true;
          break;
        }
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
    std::uint64_t quote = 0, backslash = 0, control = 0, open = 0, close = 0, square = 0;
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
    const __m128i zero = _mm_setzero_si128();
    for (int i = 0; i < 4; ++i) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i));
      const __m128i folded = _mm_or_si128(v, case_bit);
      const __m128i is_open = _mm_cmpeq_epi8(folded, open);
      const __m128i is_close = _mm_cmpeq_epi8(folded, close);
      const __m128i upper = _mm_cmpeq_epi8(_mm_and_si128(v, case_bit), zero);  // '[' or ']'
      auto bits = [&](__m128i x) {
        return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(x))) << (16 * i);
      };
      m.quote |= bits(_mm_cmpeq_epi8(v, quote));
      m.backslash |= bits(_mm_cmpeq_epi8(v, backslash));
      m.control |= bits(_mm_cmpeq_epi8(_mm_max_epu8(v, below_space), below_space));
      m.open |= bits(is_open);
      m.close |= bits(is_close);
      m.square |= bits(_mm_and_si128(_mm_or_si128(is_open, is_close), upper));
    }
#else
    for (int i = 0; i < 64; ++i) {
      const auto c = static_cast<unsigned char>(p[i]);
      const std::uint64_t bit = std::uint64_t{1} << i;
      if (c == '"') m.quote |= bit;
      if (c == '\\') m.backslash |= bit;
      if (c < 0x20) m.control |= bit;
      if (c == '{' || c == '[') m.open |= bit;
      if (c == '}' || c == ']') m.close |= bit;
      if (c == '[' || c == ']') m.square |= bit;
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

  // Keys with object or array values are looked up in a small open-addressing table of the
  // unread keys (hashed on length and two bytes): a few compares per key instead of a scan.
  static constexpr std::size_t kUnreadSlots = 64;
  static std::size_t unread_slot(std::string_view key) {
    if (key.empty()) return 0;
    const auto a = static_cast<unsigned char>(key[0]);
    const auto b = static_cast<unsigned char>(key[key.size() / 2]);
    return (key.size() * 7 + a * 3 + b * 5) % kUnreadSlots;
  }

  bool unread_key(std::size_t begin, std::size_t length) const {
    const std::string_view key = s_.substr(begin, length);
    if (unread_scan_) return std::find(unread_.begin(), unread_.end(), key) != unread_.end();
    for (std::size_t slot = unread_slot(key); unread_table_[slot] != 0;
         slot = (slot + 1) % kUnreadSlots) {
      if (unread_[unread_table_[slot] - 1] == key) return true;
    }
    return false;
  }

  void parse_object(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    const std::uint32_t self = push(JsonType::Object, pos_, 0);
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
    } else {
      while (true) {
        skip_ws();
        if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
        const std::size_t key_begin = pos_ + 1;
        const bool key_escaped = scan_string();
        const std::size_t key_length = pos_ - 1 - key_begin;
        push(JsonType::String, key_begin, key_length, key_escaped);
        if (pos_ + 1 < s_.size() && s_[pos_] == ':' &&
            static_cast<unsigned char>(s_[pos_ + 1]) > ' ') {
          ++pos_;  // compact "key":value
        } else {
          skip_ws();
          if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
          ++pos_;
          skip_ws();
        }
        if (!unread_.empty() && pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[') &&
            !key_escaped && unread_key(key_begin, key_length)) {
          push(JsonType::Null, pos_, 0);
          skip_container(depth);
        } else {
          parse_value(depth);
        }
        skip_ws();
        if (pos_ >= s_.size()) fail("unterminated object");
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (s_[pos_] == '}') {
          ++pos_;
          break;
        }
        fail("expected ',' or '}'");
      }
    }
    nodes_[self].end = size_;
  }

  void parse_array(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    const std::uint32_t self = push(JsonType::Array, pos_, 0);
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
    } else {
      while (true) {
        skip_ws();
        parse_value(depth);
        skip_ws();
        if (pos_ >= s_.size()) fail("unterminated array");
        if (s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (s_[pos_] == ']') {
          ++pos_;
          break;
        }
        fail("expected ',' or ']'");
      }
    }
    nodes_[self].end = size_;
  }

  std::string_view s_;
  JsonTape& tape_;
  JsonNode* nodes_;  // tape_'s storage, its size and capacity, kept here (in registers)
  std::uint32_t size_;
  std::size_t capacity_;
  std::size_t pos_ = 0;
  std::span<const std::string_view> unread_;
  std::uint8_t unread_table_[kUnreadSlots] = {};  // 1 + index into unread_; 0: empty
  bool unread_scan_ = false;
};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::uint32_t read_hex4(std::string_view s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    char c = s[at + i];
    v = v * 16 + static_cast<std::uint32_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

}  // namespace

void JsonTape::reserve(std::size_t n) {
  if (n <= capacity) return;
  auto bigger = std::make_unique_for_overwrite<JsonNode[]>(n);
  if (size != 0) std::memcpy(bigger.get(), nodes.get(), size * sizeof(JsonNode));
  nodes = std::move(bigger);
  capacity = n;
}

JsonDocument::JsonDocument(std::string_view text) : text_(text) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  tape_.reserve(text.size() / 12 + 4);
  Parser(text, tape_).parse_document();
}

void JsonDocument::parse(std::string_view text, std::span<const std::string_view> unread) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  text_ = text;
  tape_.size = 0;
  tape_.reserve(text.size() / 12 + 4);
  Parser(text, tape_, 0, unread).parse_document();
}

void JsonDocument::parse_at(std::string_view text, std::size_t& pos, std::span<const std::string_view> unread) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  text_ = text;
  tape_.size = 0;
  pos = Parser(text, tape_, pos, unread).parse_one();
}

std::string JsonValue::str() const {
  const std::string_view s = raw();
  if (!escaped()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
      continue;
    }
    const char e = s[++i];
    switch (e) {
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        std::uint32_t cp = read_hex4(s, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < s.size() + 0 && s[i + 1] == '\\' && s[i + 2] == 'u') {
          const std::uint32_t low = read_hex4(s, i + 3);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xD800 && cp < 0xE000) {
          cp = 0xFFFD;  // a lone surrogate, as Go's decoder replaces it
        }
        append_utf8(out, cp);
        break;
      }
      default: out.push_back(e); break;  // " \ /
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      out += "\\u00";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

}  // namespace podgauge::k8s::detail
