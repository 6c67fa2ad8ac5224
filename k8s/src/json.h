// A zero-copy JSON reader: one pass builds a flat tape of nodes pointing into the input, so a
// 5,000-pod list decodes without a heap allocation per value (nlohmann's DOM is ~10x slower).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podgauge::k8s::detail {

enum class JsonType : std::uint8_t { Null, False, True, Number, String, Array, Object };

std::string_view to_string(JsonType type) noexcept;

struct JsonNode {
  std::uint32_t begin;   // strings: first byte after the quote; numbers: first byte
  std::uint32_t length;  // of the raw text (without quotes)
  std::uint32_t end;     // index one past this node's subtree on the tape
  JsonType type;
  bool escaped;          // strings containing backslash escapes
};

class JsonDocument;

/// The nodes of a JsonDocument: raw storage the parser fills without a vector's bookkeeping
/// per node (JsonNode is trivial, so growing is one copy).
struct JsonTape {
  std::unique_ptr<JsonNode[]> nodes;
  std::uint32_t size = 0;
  std::size_t capacity = 0;
  /// Ensures room for `n` nodes, keeping the first `size`.
  void reserve(std::size_t n);
};

/// A view of one value in a JsonDocument; cheap to copy, valid while the document lives.
class JsonValue {
 public:
  JsonValue(const JsonDocument* doc, std::uint32_t index) : doc_(doc), index_(index) {}

  JsonType type() const noexcept;
  bool is_null() const noexcept { return type() == JsonType::Null; }
  bool is_string() const noexcept { return type() == JsonType::String; }
  bool is_object() const noexcept { return type() == JsonType::Object; }
  bool is_array() const noexcept { return type() == JsonType::Array; }
  bool is_number() const noexcept { return type() == JsonType::Number; }
  bool is_bool() const noexcept { return type() == JsonType::True || type() == JsonType::False; }

  /// The raw text: string contents without quotes (escapes untouched), or a number literal.
  std::string_view raw() const noexcept;
  bool escaped() const noexcept;
  /// The string value, unescaped.
  std::string str() const;
  /// The string value; a view of the input when it has no escapes, else unescaped into scratch.
  std::string_view str_view(std::string& scratch) const;

  /// Iteration over an object's members: (key, value) pairs in document order.
  template <class F>
  void for_each_member(F&& f) const;
  /// Iteration over an array's elements with their index.
  template <class F>
  void for_each_element(F&& f) const;

  std::uint32_t index() const noexcept { return index_; }

 private:
  const JsonDocument* doc_;
  std::uint32_t index_;
};

class JsonDocument {
 public:
  /// Parses RFC 8259 JSON; throws JsonSyntaxError with the byte offset. `text` must outlive the
  /// document. Nesting deeper than 512 levels is refused.
  explicit JsonDocument(std::string_view text);
  JsonDocument() = default;
  /// Parses the one value at `pos` (after whitespace) into this document, replacing what it
  /// held, and moves `pos` past it: a list streams its items through one small, cache-hot tape.
  /// `unread`: keys whose object or array values no reader of this document visits; those
  /// subtrees are checked for matching brackets and well-formed strings only, and a null
  /// stands in for them on the tape (a third of a Pod's bytes: managedFields, env, probes ...).
  void parse_at(std::string_view text, std::size_t& pos, std::span<const std::string_view> unread = {});
  /// Parses a whole document into this one, reusing the tape's storage from earlier parses.
  void parse(std::string_view text, std::span<const std::string_view> unread = {});
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;

  /// Frees the tape when it takes more than `bytes` (after an unusually large document).
  void release_if_larger(std::size_t bytes) {
    if (tape_.capacity * sizeof(JsonNode) > bytes) tape_ = JsonTape{};
  }

  JsonValue root() const { return JsonValue(this, 0); }
  const JsonNode& node(std::uint32_t index) const { return tape_.nodes[index]; }
  std::string_view text() const noexcept { return text_; }

 private:
  std::string_view text_;
  JsonTape tape_;
};

inline JsonType JsonValue::type() const noexcept { return doc_->node(index_).type; }
inline std::string_view JsonValue::raw() const noexcept {
  const JsonNode& n = doc_->node(index_);
  return doc_->text().substr(n.begin, n.length);
}
inline bool JsonValue::escaped() const noexcept { return doc_->node(index_).escaped; }
inline std::string_view JsonValue::str_view(std::string& scratch) const {
  if (!escaped()) return raw();
  scratch = str();
  return scratch;
}

template <class F>
void JsonValue::for_each_member(F&& f) const {
  const std::uint32_t end = doc_->node(index_).end;
  std::string scratch;
  for (std::uint32_t i = index_ + 1; i < end;) {
    JsonValue key(doc_, i);
    JsonValue value(doc_, i + 1);
    f(key.str_view(scratch), value);
    i = doc_->node(i + 1).end;
  }
}

template <class F>
void JsonValue::for_each_element(F&& f) const {
  const std::uint32_t end = doc_->node(index_).end;
  std::size_t n = 0;
  for (std::uint32_t i = index_ + 1; i < end; i = doc_->node(i).end) f(JsonValue(doc_, i), n++);
}

/// The contents of a well-formed JSON string literal (without its quotes) with the escapes
/// resolved; lone surrogates become U+FFFD, as Go's decoder does.
std::string unescape_json(std::string_view raw);

/// Appends `text` as a JSON string literal (with quotes).
void append_json_string(std::string& out, std::string_view text);

}  // namespace podgauge::k8s::detail
