#include "podgauge/k8s/interned_string.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <ostream>
#include <shared_mutex>
#include <unordered_set>

namespace podgauge::k8s {

namespace {

// A multiply-xorshift hash, 8 bytes a step: the texts are short and hashed on every decode.
std::size_t hash_text(std::string_view s) noexcept {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  std::uint64_t h = s.size() * kMul;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * kMul;
  }
  h ^= h >> 32;
  return static_cast<std::size_t>(h);
}

struct Hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return hash_text(s); }
};
struct Equal {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

// Elements of an unordered_set never move, so their addresses are the handles.
struct Table {
  std::shared_mutex mutex;
  std::unordered_set<std::string, Hash, Equal> strings;
  std::size_t bytes = 0;
};

Table& table() {
  static Table* t = new Table;  // never destroyed: handles may outlive static destructors
  return *t;
}

// The hash node (next pointer, cached hash, the std::string) and the text when it is not
// stored inline, as malloc rounds them (16-byte steps, 8 bytes of header, 32 at least).
std::size_t entry_bytes(const std::string& s) {
  auto chunk = [](std::size_t n) { return std::max<std::size_t>(32, (n + 8 + 15) & ~std::size_t{15}); };
  std::size_t out = chunk(sizeof(void*) + sizeof(std::size_t) + sizeof(std::string));
  if (s.size() >= 16) out += chunk(s.size() + 1);
  return out;
}

// Most texts repeat within one decode (every pod of a list has the same label keys), so a
// lock-free per-thread cache in front of the shared table answers the common case. It keeps
// each text's hash (a mismatch costs no pointer chase) and has two ways per set (direct
// mapping lost about a fifth of its hits to collisions once it held a few hundred images).
// Allocated on first use, so only threads that decode objects pay for its 64 KiB.
constexpr std::size_t kCacheSets = 2048;
struct CacheSlot {
  std::size_t hash;
  const std::string* text;
};
using Cache = std::array<std::array<CacheSlot, 2>, kCacheSets>;
thread_local Cache* t_cache = nullptr;  // trivially destructible: no TLS wrapper call per use
thread_local struct CacheOwner {
  ~CacheOwner() {
    delete t_cache;
    t_cache = nullptr;
  }
} t_cache_owner;

bool holds(const CacheSlot& slot, std::size_t h, std::string_view text) {
  return slot.hash == h && slot.text != nullptr && *slot.text == text;
}

const std::string* intern(std::string_view text) {
  const std::size_t h = hash_text(text);
  if (t_cache == nullptr) {
    t_cache = new Cache{};
    (void)&t_cache_owner;  // registers the thread's destructor
  }
  auto& set = (*t_cache)[(h >> 7) & (kCacheSets - 1)];
  if (holds(set[0], h, text)) return set[0].text;
  if (holds(set[1], h, text)) {
    std::swap(set[0], set[1]);  // most recent first; a miss evicts the other
    return set[0].text;
  }
  // A miss: the text takes way 0 once found, way 0's text moves to way 1.
  set[1] = set[0];
  CacheSlot& slot = set[0];
  slot = {0, nullptr};
  Table& t = table();
  {
    std::shared_lock lock(t.mutex);
    auto it = t.strings.find(text);
    if (it != t.strings.end()) return (slot = {h, &*it}).text;
  }
  std::unique_lock lock(t.mutex);
  auto it = t.strings.find(text);
  if (it == t.strings.end()) {
    if (t.bytes >= kInternedStringLimit) return nullptr;
    const std::size_t buckets = t.strings.bucket_count();
    it = t.strings.emplace(text).first;
    t.bytes += entry_bytes(*it) + (t.strings.bucket_count() - buckets) * sizeof(void*);
  }
  return (slot = {h, &*it}).text;
}

}  // namespace

InternedString::InternedString(std::string_view text) {
  if (text.empty()) return;
  if (const std::string* shared = intern(text)) {
    bits_ = reinterpret_cast<std::uintptr_t>(shared);
  } else {
    bits_ = reinterpret_cast<std::uintptr_t>(new std::string(text)) | 1;
  }
}

InternedString::InternedString(const InternedString& other) : bits_(other.bits_) {
  if (owned()) bits_ = reinterpret_cast<std::uintptr_t>(new std::string(other.str())) | 1;
}

InternedString& InternedString::operator=(const InternedString& other) {
  if (this != &other) *this = InternedString(other);
  return *this;
}

InternedString& InternedString::operator=(InternedString&& other) noexcept {
  if (this != &other) {
    if (owned()) release();
    bits_ = other.bits_;
    other.bits_ = 0;
  }
  return *this;
}

void InternedString::release() noexcept {
  delete reinterpret_cast<std::string*>(bits_ & ~std::uintptr_t{1});
  bits_ = 0;
}

const std::string& InternedString::empty_string() noexcept {
  static const std::string empty;
  return empty;
}

InternedString::TableStats InternedString::table_stats() {
  Table& t = table();
  std::shared_lock lock(t.mutex);
  return {t.strings.size(), t.bytes};
}

std::ostream& operator<<(std::ostream& out, const InternedString& s) { return out << s.str(); }

void to_json(nlohmann::json& json, const InternedString& s) { json = s.str(); }
void from_json(const nlohmann::json& json, InternedString& s) { s = InternedString(json.get<std::string>()); }

}  // namespace podgauge::k8s
