// ResourceList (name -> Quantity) and the string maps used for labels and annotations.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podgauge/k8s/interned_string.h"
#include "podgauge/k8s/quantity.h"

namespace podgauge::k8s {

inline constexpr std::string_view kResourceCpu = "cpu";
inline constexpr std::string_view kResourceMemory = "memory";
inline constexpr std::string_view kResourceEphemeralStorage = "ephemeral-storage";
inline constexpr std::string_view kResourceHugePagesPrefix = "hugepages-";

/// A small sorted map: flat storage keeps cached objects compact (most maps hold 2-8 entries),
/// and keys (label keys, resource names) are interned: every pod repeats the same few.
/// Thread-safety: a value type; concurrent const use is safe.
template <class Value>
class FlatMap {
 public:
  using Entry = std::pair<InternedString, Value>;
  FlatMap() = default;
  FlatMap(std::initializer_list<Entry> entries) {
    for (const auto& e : entries) set(e.first, e.second);
  }

  const Value* find(std::string_view key) const noexcept {
    auto it = lower(key);
    return it != entries_.end() && it->first == key ? &it->second : nullptr;
  }
  bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
  /// Inserts or replaces (a repeated JSON key: the last one wins, as in Go).
  void set(std::string_view key, Value value) {
    auto it = lower(key);
    if (it != entries_.end() && it->first == key) {
      it->second = std::move(value);
    } else {
      entries_.emplace(it, InternedString(key), std::move(value));
    }
  }
  /// set() with a key already interned: a decoder's common names skip the table lookup.
  void set_interned(InternedString key, Value value) {
    auto it = lower(key);
    if (it != entries_.end() && it->first == key) {
      it->second = std::move(value);
    } else {
      entries_.emplace(it, std::move(key), std::move(value));
    }
  }
  bool erase(std::string_view key) {
    auto it = lower(key);
    if (it == entries_.end() || it->first != key) return false;
    entries_.erase(it);
    return true;
  }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  auto begin() const noexcept { return entries_.begin(); }
  auto end() const noexcept { return entries_.end(); }
  void reserve(std::size_t n) { entries_.reserve(n); }
  void shrink_to_fit() { entries_.shrink_to_fit(); }
  friend bool operator==(const FlatMap&, const FlatMap&) = default;

 private:
  typename std::vector<Entry>::iterator lower(std::string_view key) {
    auto it = entries_.begin();
    auto count = entries_.size();
    while (count > 0) {
      auto step = count / 2;
      if (std::string_view(it[step].first.str()) < key) {
        it += step + 1;
        count -= step + 1;
      } else {
        count = step;
      }
    }
    return it;
  }
  typename std::vector<Entry>::const_iterator lower(std::string_view key) const {
    return const_cast<FlatMap*>(this)->lower(key);
  }

  std::vector<Entry> entries_;
};

using StringMap = FlatMap<std::string>;

/// core/v1 ResourceList, e.g. {cpu: 500m, memory: 1Gi}.
class ResourceList : public FlatMap<Quantity> {
 public:
  using FlatMap<Quantity>::FlatMap;
  /// The quantity, or zero when absent.
  Quantity get(std::string_view name) const {
    const Quantity* q = find(name);
    return q != nullptr ? *q : Quantity();
  }
  /// Adds `other` into this list, name by name (addResourceList).
  void add(const ResourceList& other);
  /// For every name in `other`, keeps the larger value (maxResourceList).
  void max_with(const ResourceList& other);
  /// "cpu=500m, memory=1Gi" (sorted by name).
  std::string to_string() const;
};

/// addResourceList for a whole list, a + b.
ResourceList operator+(ResourceList a, const ResourceList& b);

}  // namespace podgauge::k8s
