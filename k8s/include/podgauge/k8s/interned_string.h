// An 8-byte immutable string for the small vocabularies that repeat across cached objects
// (label keys, resource names, condition types and reasons, images, phases ...): thousands of
// pods share one copy of each, so a 5,000-pod cache stops paying for it 5,000 times.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace podgauge::k8s {

/// Reads like a `const std::string` (converts to `const std::string&` and `std::string_view`,
/// compares with strings). Equal texts share one entry of a process-wide table that is never
/// shrunk: once the table holds kInternedStringLimit bytes, further new texts get a private heap
/// copy instead, so a stream of unique values cannot grow it without bound.
/// Thread-safety: a value type; concurrent const use is safe, and so is interning from any
/// thread (the table takes a lock only when a text misses the calling thread's small cache).
class InternedString {
 public:
  InternedString() noexcept = default;
  InternedString(std::string_view text);  // NOLINT(google-explicit-constructor): reads as a string
  InternedString(const char* text) : InternedString(std::string_view(text)) {}  // NOLINT
  InternedString(const std::string& text) : InternedString(std::string_view(text)) {}  // NOLINT
  InternedString(const InternedString& other);
  InternedString(InternedString&& other) noexcept : bits_(other.bits_) { other.bits_ = 0; }
  InternedString& operator=(const InternedString& other);
  InternedString& operator=(InternedString&& other) noexcept;
  ~InternedString() {
    if (owned()) release();
  }

  const std::string& str() const noexcept {
    return bits_ == 0 ? empty_string() : *reinterpret_cast<const std::string*>(bits_ & ~std::uintptr_t{1});
  }
  operator const std::string&() const noexcept { return str(); }  // NOLINT
  operator std::string_view() const noexcept { return str(); }    // NOLINT

  bool empty() const noexcept { return bits_ == 0; }
  std::size_t size() const noexcept { return str().size(); }
  std::size_t length() const noexcept { return str().size(); }
  const char* data() const noexcept { return str().data(); }
  const char* c_str() const noexcept { return str().c_str(); }
  auto begin() const noexcept { return str().begin(); }
  auto end() const noexcept { return str().end(); }
  bool starts_with(std::string_view prefix) const noexcept { return str().starts_with(prefix); }
  bool ends_with(std::string_view suffix) const noexcept { return str().ends_with(suffix); }
  std::size_t find(std::string_view what, std::size_t pos = 0) const noexcept { return str().find(what, pos); }
  std::string substr(std::size_t pos, std::size_t n = std::string::npos) const { return str().substr(pos, n); }

  friend bool operator==(const InternedString& a, const InternedString& b) noexcept {
    // Both shared: the same text is the same entry.
    return a.bits_ == b.bits_ || ((a.owned() || b.owned()) && a.str() == b.str());
  }
  friend bool operator==(const InternedString& a, std::string_view b) noexcept { return a.str() == b; }
  friend bool operator==(const InternedString& a, const std::string& b) noexcept { return a.str() == b; }
  friend bool operator==(const InternedString& a, const char* b) noexcept { return a.str() == b; }
  friend std::strong_ordering operator<=>(const InternedString& a, const InternedString& b) noexcept {
    return a.str().compare(b.str()) <=> 0;
  }
  friend std::strong_ordering operator<=>(const InternedString& a, std::string_view b) noexcept {
    return std::string_view(a.str()).compare(b) <=> 0;
  }
  friend std::strong_ordering operator<=>(const InternedString& a, const std::string& b) noexcept {
    return a.str().compare(b) <=> 0;
  }
  friend std::strong_ordering operator<=>(const InternedString& a, const char* b) noexcept {
    return a.str().compare(b) <=> 0;
  }
  friend std::string operator+(const InternedString& a, std::string_view b) {
    std::string out = a.str();
    return out.append(b);
  }
  friend std::string operator+(const InternedString& a, const char* b) { return a + std::string_view(b); }
  friend std::string operator+(const InternedString& a, const std::string& b) { return a + std::string_view(b); }
  friend std::string operator+(std::string a, const InternedString& b) { return a.append(b.str()); }
  friend std::string operator+(const char* a, const InternedString& b) { return std::string(a) + b; }
  friend std::ostream& operator<<(std::ostream& out, const InternedString& s);

  /// What the shared table holds: distinct texts and the heap they take (strings, index).
  struct TableStats {
    std::size_t entries = 0;
    std::size_t bytes = 0;
  };
  static TableStats table_stats();

 private:
  // 0: empty; an even address: a shared table entry; odd: a private heap copy (table full).
  bool owned() const noexcept { return (bits_ & 1) != 0; }
  void release() noexcept;
  static const std::string& empty_string() noexcept;

  std::uintptr_t bits_ = 0;
};

/// Table bytes beyond which new texts are no longer shared (16 MiB).
inline constexpr std::size_t kInternedStringLimit = std::size_t{16} << 20;

void to_json(nlohmann::json& json, const InternedString& s);
void from_json(const nlohmann::json& json, InternedString& s);

}  // namespace podgauge::k8s

template <>
struct std::hash<podgauge::k8s::InternedString> {
  std::size_t operator()(const podgauge::k8s::InternedString& s) const noexcept {
    return std::hash<std::string_view>()(s.str());
  }
};
