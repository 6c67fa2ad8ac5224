#include "json.h"

#include <bitset>
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
  Parser(std::string_view text, std::vector<JsonNode>& nodes, std::size_t pos = 0,
         std::span<const std::string_view> unread = {})
      : s_(text), nodes_(nodes), pos_(pos), unread_(unread) {}

  std::size_t parse_one() {
    skip_ws();
    parse_value(0);
    return pos_;
  }

  void parse_document() {
    skip_ws();
    parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw JsonSyntaxError("invalid JSON at byte " + std::to_string(pos_) + ": " + std::string(what));
  }

  [[gnu::always_inline]] void skip_ws() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
      ++pos_;
    }
  }

  [[gnu::always_inline]] std::uint32_t push(JsonType type, std::size_t begin, std::size_t length, bool escaped = false) {
    nodes_.push_back(JsonNode{static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(length),
                              static_cast<std::uint32_t>(nodes_.size() + 1), type, escaped});
    return static_cast<std::uint32_t>(nodes_.size() - 1);
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

  void parse_literal(std::string_view word, JsonType type) {
    if (s_.substr(pos_, word.size()) != word) fail("invalid literal");
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
        switch (s_[pos_]) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            break;
          case 'u':
            for (int i = 1; i <= 4; ++i) {
              if (pos_ + i >= s_.size() || hex(s_[pos_ + i]) < 0) fail("invalid \\u escape");
            }
            pos_ += 4;
            break;
          default:
            fail("invalid escape in string");
        }
      }
      ++pos_;
    }
    ++pos_;  // closing quote
    return escaped;
  }

  // An object or array under a key the caller never reads: its brackets must match and its
  // strings be well formed, but nothing is recorded (a null node stands in for it) and the
  // grammar between its tokens is not checked.
  void skip_container(int depth) {
    std::bitset<kMaxDepth + 1> is_array;
    int level = 0;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated object or array");
      const char c = s_[pos_];
      if (c == '"') {
        scan_string();
        continue;
      }
      if (c == '{' || c == '[') {
        if (depth + level + 1 > kMaxDepth) fail("nesting deeper than 512 levels");
        is_array[static_cast<std::size_t>(++level)] = c == '[';
      } else if (c == '}' || c == ']') {
        if (level == 0 || is_array[static_cast<std::size_t>(level)] != (c == ']')) fail("mismatched bracket");
        if (--level == 0) {
          ++pos_;
          return;
        }
      }
      ++pos_;
    }
  }

  bool unread_key(std::size_t begin, std::size_t length) const {
    const std::string_view key = s_.substr(begin, length);
    for (std::string_view k : unread_) {
      if (k == key) return true;
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
        parse_string();
        const JsonNode key = nodes_.back();
        skip_ws();
        if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':'");
        ++pos_;
        skip_ws();
        if (!unread_.empty() && pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[') && !key.escaped &&
            unread_key(key.begin, key.length)) {
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
    nodes_[self].end = static_cast<std::uint32_t>(nodes_.size());
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
    nodes_[self].end = static_cast<std::uint32_t>(nodes_.size());
  }

  std::string_view s_;
  std::vector<JsonNode>& nodes_;
  std::size_t pos_ = 0;
  std::span<const std::string_view> unread_;
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

JsonDocument::JsonDocument(std::string_view text) : text_(text) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  nodes_.reserve(text.size() / 12 + 4);
  Parser(text, nodes_).parse_document();
}

void JsonDocument::parse(std::string_view text, std::span<const std::string_view> unread) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  text_ = text;
  nodes_.clear();
  nodes_.reserve(text.size() / 12 + 4);
  Parser(text, nodes_, 0, unread).parse_document();
}

void JsonDocument::parse_at(std::string_view text, std::size_t& pos, std::span<const std::string_view> unread) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw JsonSyntaxError("JSON document larger than 4 GiB");
  }
  text_ = text;
  nodes_.clear();
  pos = Parser(text, nodes_, pos, unread).parse_one();
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
