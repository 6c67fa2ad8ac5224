// Maps cgroup ids (directory inode numbers) of one hierarchy to their paths.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "podgauge/cgroup/error.h"

namespace podgauge::cgroup {

/// A cgroup's id: the inode number of its directory, as bpf_get_current_cgroup_id() reports it.
using CgroupId = std::uint64_t;

using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;

struct CgroupIndexOptions {
  /// How long a removed cgroup stays resolvable, so events that arrive late are still attributed.
  std::chrono::steady_clock::duration tombstone_ttl = std::chrono::minutes(10);
  /// Minimum time between rescans triggered by lookups of unknown ids (explicit rescan() ignores it).
  std::chrono::steady_clock::duration min_rescan_interval = std::chrono::milliseconds(200);
  /// Directories deeper than this below the mount point are not indexed.
  int max_depth = 64;
  /// Time source; steady_clock::now when empty.
  SteadyClock clock{};
};

struct CgroupEntry {
  /// Relative to the mount point: "/" for the root, "/a/b" below it. Shared, so a lookup copies
  /// a pointer rather than the string.
  std::shared_ptr<const std::string> path;
  /// The directory is gone; the entry is a tombstone until the TTL expires.
  bool removed = false;
};

struct RescanResult {
  std::size_t directories = 0;   ///< directories seen in this walk
  std::size_t added = 0;         ///< new ids, or ids whose path changed
  std::size_t removed = 0;       ///< ids turned into tombstones
  std::size_t expired = 0;       ///< tombstones dropped after their TTL
  std::size_t unreadable = 0;    ///< directories skipped: vanished mid-walk, EACCES, too deep
};

struct CgroupIndexStats {
  std::uint64_t rescans = 0;
  std::uint64_t added = 0;                ///< directories add() indexed that were not known as they are
  std::uint64_t rate_limited_misses = 0;  ///< unknown ids not rescanned for because of the rate limit
};

/// Index of one cgroup hierarchy (v1 hierarchies each have their own inode space).
/// Thread-safe: lookups, find, for_each, size and stats may run from any thread, also during a
/// rescan; rescans are serialised.
class CgroupIndex {
 public:
  /// Does not walk; call rescan() (or let the first lookup miss do it).
  explicit CgroupIndex(std::filesystem::path mount_point, CgroupIndexOptions options = {});

  CgroupIndex(const CgroupIndex&) = delete;
  CgroupIndex& operator=(const CgroupIndex&) = delete;

  /// Walks the hierarchy: adds new cgroups, turns vanished ones into tombstones, drops expired
  /// tombstones. Throws CgroupError when the mount point itself cannot be opened.
  RescanResult rescan();

  /// Indexes the one directory at `path` (relative to the mount point, "/a/b", as the kernel's
  /// cgroup_mkdir tracepoint names it) without walking: its id is read from the directory itself.
  /// Returns that id, or nullopt when `path` is malformed (not absolute, with empty, "." or ".."
  /// components, deeper than max_depth) or names no directory of this hierarchy (now).
  /// `added`, when given, says whether the index did not know the directory as it is.
  std::optional<CgroupId> add(std::string_view path, bool* added = nullptr);

  /// The entry for `id`; on a miss, rescans (at most once per min_rescan_interval) and retries.
  /// Errors of that rescan are swallowed: a miss is then reported as nullopt.
  std::optional<CgroupEntry> lookup(CgroupId id);
  /// The entry for `id` without ever rescanning.
  std::optional<CgroupEntry> find(CgroupId id) const;

  /// Calls `visit` for every entry, tombstones included, under a shared lock: `visit` must not
  /// call back into this index's rescan().
  void for_each(const std::function<void(CgroupId, const CgroupEntry&)>& visit) const;
  std::vector<std::pair<CgroupId, CgroupEntry>> snapshot() const;
  /// Entries including tombstones not yet dropped.
  std::size_t size() const;

  CgroupIndexStats stats() const noexcept;
  const std::filesystem::path& mount_point() const noexcept { return mount_point_; }

 private:
  struct Slot {
    std::shared_ptr<const std::string> path;
    std::optional<std::chrono::steady_clock::time_point> removed_at;
  };
  struct Walk;

  std::chrono::steady_clock::time_point now() const;
  bool expired(const Slot& slot, std::chrono::steady_clock::time_point now) const;
  std::optional<CgroupEntry> find_locked(CgroupId id, std::chrono::steady_clock::time_point now) const;
  RescanResult rescan_locked();  // requires scan_mutex_

  const std::filesystem::path mount_point_;
  const CgroupIndexOptions options_;

  std::mutex scan_mutex_;  // serialises rescans; the only writer of entries_
  mutable std::shared_mutex entries_mutex_;
  std::unordered_map<CgroupId, Slot> entries_;

  std::atomic<std::int64_t> last_scan_ns_;  // steady-clock ns of the last rescan's start
  std::atomic<std::uint64_t> rescans_{0};
  std::atomic<std::uint64_t> added_{0};
  std::atomic<std::uint64_t> rate_limited_misses_{0};
};

}  // namespace podgauge::cgroup
