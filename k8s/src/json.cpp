#include "json.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "json_scan.h"
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

class Parser : JsonScanner {
 public:
  Parser(std::string_view text, JsonTape& tape, std::size_t pos = 0,
         std::span<const std::string_view> unread = {})
      : JsonScanner(text, pos),
        tape_(tape),
        nodes_(tape.nodes.get()),
        size_(0),
        capacity_(tape.capacity),
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
    push(type, pos_, word.size());
    scan_literal(word);
  }

  void parse_number() {
    const std::size_t begin = pos_;
    scan_number();
    push(JsonType::Number, begin, pos_ - begin);
  }

  [[gnu::always_inline]] void parse_string() {
    const std::size_t begin = pos_ + 1;
    const bool escaped = scan_string();
    push(JsonType::String, begin, pos_ - 1 - begin, escaped);
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
    members([&](std::size_t key_begin, std::size_t key_length, bool key_escaped) {
      push(JsonType::String, key_begin, key_length, key_escaped);
      if (!unread_.empty() && pos_ < s_.size() && (s_[pos_] == '{' || s_[pos_] == '[') &&
          !key_escaped && unread_key(key_begin, key_length)) {
        push(JsonType::Null, pos_, 0);
        skip_container(depth);
      } else {
        parse_value(depth);
      }
    });
    nodes_[self].end = size_;
  }

  void parse_array(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than 512 levels");
    const std::uint32_t self = push(JsonType::Array, pos_, 0);
    elements([&] { parse_value(depth); });
    nodes_[self].end = size_;
  }

  JsonTape& tape_;
  JsonNode* nodes_;  // tape_'s storage, its size and capacity, kept here (in registers)
  std::uint32_t size_;
  std::size_t capacity_;
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
  return unescape_json(s);
}

std::string unescape_json(std::string_view s) {
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
