#include "podgauge/cgroup/cgroup_index.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>

#include "unique_fd.h"

namespace podgauge::cgroup {
namespace {

using TimePoint = std::chrono::steady_clock::time_point;

constexpr std::int64_t kNeverScanned = std::numeric_limits<std::int64_t>::min();
constexpr std::size_t kDirentBufferSize = std::size_t{32} * 1024;
constexpr int kOpenDirectoryFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::int64_t to_ns(TimePoint time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

bool is_dot_or_dotdot(const char* name) {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

bool is_within(std::string_view path, std::string_view directory) {
  if (directory == "/") return true;
  return path.starts_with(directory) && (path.size() == directory.size() || path[directory.size()] == '/');
}

}  // namespace

// One rescan's traversal state. Reads entries_ without a lock: only rescans write it, and the
// walking thread holds scan_mutex_.
struct CgroupIndex::Walk {
  Walk(const std::unordered_map<CgroupId, Slot>& known, int depth_limit, dev_t hierarchy_device)
      : entries(known), max_depth(depth_limit), device(hierarchy_device) {}

  const std::unordered_map<CgroupId, Slot>& entries;
  const int max_depth;
  const dev_t device;

  std::string path;  // current directory relative to the mount point; "" is the root
  std::vector<std::unique_ptr<std::array<std::byte, kDirentBufferSize>>> buffers;  // one per depth
  std::vector<CgroupId> seen;
  std::vector<std::pair<CgroupId, std::shared_ptr<const std::string>>> changed;
  std::vector<std::string> unlisted;  // directories that exist but could not be read
  RescanResult result;

  void record(CgroupId id) {
    ++result.directories;
    seen.push_back(id);
    std::string_view current = path.empty() ? std::string_view("/") : std::string_view(path);
    auto known = entries.find(id);
    if (known != entries.end() && *known->second.path == current) {
      if (known->second.removed_at) changed.emplace_back(id, known->second.path);
      return;
    }
    changed.emplace_back(id, std::make_shared<const std::string>(current));
  }

  void skip_unlisted() {
    ++result.unreadable;
    unlisted.push_back(path.empty() ? "/" : path);
  }

  void visit(int directory_fd, int depth) {
    if (buffers.size() <= static_cast<std::size_t>(depth)) buffers.resize(depth + 1);
    if (!buffers[depth]) buffers[depth] = std::make_unique<std::array<std::byte, kDirentBufferSize>>();
    // The array itself stays put when deeper levels grow `buffers`; a reference into it would not.
    std::array<std::byte, kDirentBufferSize>* buffer = buffers[depth].get();

    while (true) {
      ssize_t length = ::getdents64(directory_fd, buffer->data(), buffer->size());
      if (length < 0 && errno == EINTR) continue;
      if (length < 0) {
        // A directory removed while open reads as empty or ENOENT; only the rest is a real gap.
        if (errno != ENOENT) skip_unlisted();
        return;
      }
      if (length == 0) return;
      for (ssize_t offset = 0; offset < length;) {
        const auto* dirent = reinterpret_cast<const struct dirent64*>(buffer->data() + offset);
        offset += dirent->d_reclen;
        visit_child(directory_fd, dirent->d_name, dirent->d_type, depth + 1);
      }
    }
  }

  void visit_child(int parent_fd, const char* name, unsigned char type, int depth) {
    if (is_dot_or_dotdot(name)) return;
    if (type == DT_UNKNOWN) {
      struct stat status {};
      if (::fstatat(parent_fd, name, &status, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(status.st_mode)) return;
    } else if (type != DT_DIR) {
      return;
    }

    std::size_t parent_length = path.size();
    path.push_back('/');
    path.append(name);
    if (depth > max_depth) {
      ++result.unreadable;
    } else if (detail::UniqueFd child{::openat(parent_fd, name, kOpenDirectoryFlags)}) {
      struct stat status {};
      // Another filesystem mounted inside the hierarchy has its own inode space: not cgroups.
      if (::fstat(child.get(), &status) == 0 && status.st_dev == device) {
        record(status.st_ino);
        visit(child.get(), depth);
      }
    } else if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
      ++result.unreadable;  // removed or replaced mid-walk: a tombstone is right
    } else {
      skip_unlisted();  // EACCES and the like: it still exists, keep what we knew
    }
    path.resize(parent_length);
  }
};

CgroupIndex::CgroupIndex(std::filesystem::path mount_point, CgroupIndexOptions options)
    : mount_point_(std::move(mount_point)), options_(std::move(options)), last_scan_ns_(kNeverScanned) {}

std::chrono::steady_clock::time_point CgroupIndex::now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

bool CgroupIndex::expired(const Slot& slot, TimePoint now) const {
  return slot.removed_at && now - *slot.removed_at >= options_.tombstone_ttl;
}

RescanResult CgroupIndex::rescan() {
  std::lock_guard scan_lock(scan_mutex_);
  return rescan_locked();
}

RescanResult CgroupIndex::rescan_locked() {
  last_scan_ns_.store(to_ns(now()), std::memory_order_relaxed);
  ++rescans_;

  detail::UniqueFd root{::openat(AT_FDCWD, mount_point_.c_str(), kOpenDirectoryFlags)};
  struct stat root_status {};
  if (!root || ::fstat(root.get(), &root_status) != 0) {
    int error = errno;
    throw CgroupError("cannot open cgroup hierarchy " + mount_point_.string() + ": " + std::strerror(error) +
                      (error == EACCES || error == EPERM ? " — run as root or add CAP_DAC_READ_SEARCH"
                                                         : " — is the cgroup filesystem mounted there?"));
  }

  Walk walk(entries_, options_.max_depth, root_status.st_dev);
  walk.seen.reserve(entries_.size() + 64);
  walk.record(root_status.st_ino);
  walk.visit(root.get(), 0);
  std::sort(walk.seen.begin(), walk.seen.end());

  RescanResult result = walk.result;
  TimePoint scan_time = now();
  std::unique_lock entries_lock(entries_mutex_);
  for (auto& [id, path] : walk.changed) {
    Slot& slot = entries_[id];
    slot.path = std::move(path);
    slot.removed_at.reset();
    ++result.added;
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    Slot& slot = it->second;
    if (expired(slot, scan_time)) {
      it = entries_.erase(it);
      ++result.expired;
      continue;
    }
    bool unseen = !slot.removed_at && !std::binary_search(walk.seen.begin(), walk.seen.end(), it->first);
    if (unseen && std::none_of(walk.unlisted.begin(), walk.unlisted.end(), [&](const std::string& directory) {
          return is_within(*slot.path, directory);
        })) {
      slot.removed_at = scan_time;
      ++result.removed;
    }
    ++it;
  }
  return result;
}

std::optional<CgroupId> CgroupIndex::add(std::string_view path, bool* added) {
  if (added) *added = false;
  if (path.empty() || path.front() != '/') return std::nullopt;
  // One component at a time, none followed if it is a symlink (as the walk does), so the path
  // indexed is the directory's own, whatever its length.
  detail::UniqueFd directory{::openat(AT_FDCWD, mount_point_.c_str(), kOpenDirectoryFlags)};
  struct stat status {};
  if (!directory || ::fstat(directory.get(), &status) != 0) return std::nullopt;
  const dev_t device = status.st_dev;
  int depth = 0;
  std::string name;
  for (std::size_t at = 1; path != "/" && at <= path.size();) {
    const std::size_t end = std::min(path.find('/', at), path.size());
    name.assign(path.substr(at, end - at));
    if (name.empty() || name == "." || name == ".." || ++depth > options_.max_depth) return std::nullopt;
    directory = detail::UniqueFd{::openat(directory.get(), name.c_str(), kOpenDirectoryFlags)};
    if (!directory) return std::nullopt;
    at = end + 1;
  }
  // Another filesystem mounted inside the hierarchy has its own inode space: not cgroups.
  if (::fstat(directory.get(), &status) != 0 || status.st_dev != device) return std::nullopt;
  std::lock_guard scan_lock(scan_mutex_);
  std::unique_lock entries_lock(entries_mutex_);
  Slot& slot = entries_[status.st_ino];
  if (slot.path && *slot.path == path && !slot.removed_at) return status.st_ino;  // known as it is
  if (!slot.path || *slot.path != path) slot.path = std::make_shared<const std::string>(path);
  slot.removed_at.reset();
  ++added_;
  if (added) *added = true;
  return status.st_ino;
}

std::optional<CgroupEntry> CgroupIndex::find_locked(CgroupId id, TimePoint now) const {
  std::shared_lock entries_lock(entries_mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || expired(it->second, now)) return std::nullopt;
  return CgroupEntry{it->second.path, it->second.removed_at.has_value()};
}

std::optional<CgroupEntry> CgroupIndex::find(CgroupId id) const { return find_locked(id, now()); }

std::optional<CgroupEntry> CgroupIndex::lookup(CgroupId id) {
  if (auto entry = find_locked(id, now())) return entry;

  // Unknown ids may arrive in floods (a fork bomb, a rescan that cannot see the id): scan at
  // most once per interval, whoever asks.
  auto rescan_due = [this] {
    std::int64_t last = last_scan_ns_.load(std::memory_order_relaxed);
    return last == kNeverScanned ||
           to_ns(now()) - last >= std::chrono::duration_cast<std::chrono::nanoseconds>(options_.min_rescan_interval).count();
  };
  if (!rescan_due()) {
    ++rate_limited_misses_;
    return std::nullopt;
  }
  {
    std::lock_guard scan_lock(scan_mutex_);
    if (rescan_due()) {  // else another thread rescanned while we waited for the lock
      try {
        rescan_locked();
      } catch (const CgroupError&) {
        return std::nullopt;
      }
    }
  }
  return find_locked(id, now());
}

void CgroupIndex::for_each(const std::function<void(CgroupId, const CgroupEntry&)>& visit) const {
  TimePoint current = now();
  std::shared_lock entries_lock(entries_mutex_);
  for (const auto& [id, slot] : entries_) {
    if (!expired(slot, current)) visit(id, CgroupEntry{slot.path, slot.removed_at.has_value()});
  }
}

std::vector<std::pair<CgroupId, CgroupEntry>> CgroupIndex::snapshot() const {
  std::vector<std::pair<CgroupId, CgroupEntry>> entries;
  {
    std::shared_lock entries_lock(entries_mutex_);
    entries.reserve(entries_.size());
  }
  for_each([&](CgroupId id, const CgroupEntry& entry) { entries.emplace_back(id, entry); });
  return entries;
}

std::size_t CgroupIndex::size() const {
  std::shared_lock entries_lock(entries_mutex_);
  return entries_.size();
}

CgroupIndexStats CgroupIndex::stats() const noexcept {
  return {rescans_.load(std::memory_order_relaxed), added_.load(std::memory_order_relaxed),
          rate_limited_misses_.load(std::memory_order_relaxed)};
}

}  // namespace podgauge::cgroup
