// Lookups in a std::map whose keys arrive in the map's own order.
#pragma once

#include <iterator>
#include <map>

namespace podgauge::agent {

/// Each sampling round walks the containers in UsageTarget order (the usage table is a sorted
/// map) and looks each one up in other maps sorted the same way. The entry after the previous
/// hit is tried first: one equality test instead of a tree descent of string comparisons (a
/// UsageTarget holds a 36-byte pod uid and a 64-byte container id). Keys out of order, missing
/// or new still work, at the usual cost.
/// Thread-safety: none; it holds iterators into `map`, which must outlive it and must not lose
/// the entry after the last hit while the cursor is in use.
template <typename Map>
class SortedCursor {
 public:
  using iterator = typename Map::iterator;
  using key_type = typename Map::key_type;

  explicit SortedCursor(Map& map) : map_(map), next_(map.begin()) {}

  /// map.find(key).
  iterator find(const key_type& key) {
    if (next_ != map_.end() && next_->first == key) return next_++;
    const iterator it = map_.find(key);
    if (it != map_.end()) next_ = std::next(it);
    return it;
  }

  /// map.try_emplace(key).first: the entry of `key`, value-initialised when new.
  iterator get(const key_type& key) {
    if (next_ != map_.end() && next_->first == key) return next_++;
    const iterator it = map_.try_emplace(key).first;
    next_ = std::next(it);
    return it;
  }

  iterator end() { return map_.end(); }

 private:
  Map& map_;
  iterator next_;
};

}  // namespace podgauge::agent
