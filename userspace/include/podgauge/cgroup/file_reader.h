// Reading small cgroupfs and procfs files, cheaply, every sampling round.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace podgauge::cgroup {

class FileReader;

/// A directory whose files one FileReader reads round after round (a container's cgroup). It
/// remembers where that reader keeps each of its files, so a re-read neither joins nor hashes
/// the file's path: at 500 containers, building and hashing absolute paths was a tenth of the
/// sampler's CPU. Converts implicitly from a path, for one-shot use; keep one per directory to
/// gain. A copy forgets what it remembered. Not thread-safe (nor is the reader).
class CgroupDir {
 public:
  CgroupDir() = default;
  CgroupDir(const std::filesystem::path& dir) : path_(dir.native()) {}  // NOLINT: implicit on purpose
  CgroupDir(std::string dir) : path_(std::move(dir)) {}                 // NOLINT: implicit on purpose
  CgroupDir(const CgroupDir& o) : path_(o.path_) {}
  CgroupDir& operator=(const CgroupDir& o) {
    if (this != &o) *this = CgroupDir(o);
    return *this;
  }
  // A move hands over what was remembered; the emptied source remembers nothing.
  CgroupDir(CgroupDir&& o) noexcept
      : path_(std::move(o.path_)), reader_(o.reader_), epoch_(o.epoch_), known_(o.known_),
        known_count_(std::exchange(o.known_count_, 0)) {}
  CgroupDir& operator=(CgroupDir&& o) noexcept {
    path_ = std::move(o.path_);
    reader_ = o.reader_, epoch_ = o.epoch_, known_ = o.known_;
    known_count_ = std::exchange(o.known_count_, 0);
    return *this;
  }

  const std::string& path() const noexcept { return path_; }

 private:
  friend class FileReader;
  std::string path_;
  // Valid while the reader that filled them has not swept (reader_ names the reader, epoch_ its
  // sweeps): its entries of files in this directory.
  // At most kKnown files (a container's directory has 2 to 5 the sampler reads); more are
  // looked up by path. Inline: 500 containers have about 1,500 of these.
  static constexpr std::size_t kKnown = 6;
  mutable std::uint64_t reader_ = 0, epoch_ = 0;
  mutable std::array<void*, kKnown> known_{};
  mutable std::size_t known_count_ = 0;
};

/// Reads small kernfs and procfs files (cgroup stat, limit and PSI files): seq_files, which
/// hand over all they generated that fits, so a read shorter than asked for is taken as the end
/// (no second pread to see 0; it would regenerate the file). By default it keeps each file
/// open and re-reads it with pread() at offset 0, which makes seq_file regenerate the text:
/// opening walks the path through kernfs on every call (about 9 µs per file on the project's
/// VMs) while a pread of an open file costs about 1 µs. A cgroup that is removed and made again
/// under the same path is noticed (ENODEV on the old file) and the file is opened again.
///
/// Files not read during the last two sweep() periods are closed (files read at a slow cadence
/// stay open); files found missing are looked up again after the next sweep(). At most
/// `max_open` files stay open (default: the soft RLIMIT_NOFILE minus 256 for sockets and BPF
/// objects); beyond that it opens and closes each file as a one-shot reader.
///
/// Thread-safety: none; one reader per sampling thread.
class FileReader {
 public:
  /// `keep_open` false: open, read and close on every call (one-shot use, tests).
  explicit FileReader(bool keep_open = true, std::size_t max_open = 0);
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  ~FileReader();

  /// The whole text of `file`, valid until the next call on this reader. nullopt when the file
  /// does not exist or its cgroup is gone (ENOENT, ENODEV) or PSI is disabled (EOPNOTSUPP).
  /// Throws CgroupError naming the file for every other error, and for files over 1 MiB.
  std::optional<std::string_view> read(const std::filesystem::path& file);
  /// The same for the file `name` in `dir`, without building a std::filesystem::path (which
  /// allocates a string per component: a cgroup path has about ten), through what `dir`
  /// remembers of this reader's files (and it learns the file). A path converts to a CgroupDir
  /// that remembers nothing.
  std::optional<std::string_view> read(const CgroupDir& dir, std::string_view name);

  /// Closes files not read since the sweep before the previous one and forgets missing ones.
  void sweep();

  std::size_t open_files() const noexcept { return open_; }
  /// open() calls made so far (a reader that works keeps this near the number of files).
  std::uint64_t opens() const noexcept { return opens_; }
  /// Reads that looked their file up by path (a CgroupDir that remembers the file saves that).
  std::uint64_t lookups() const noexcept { return lookups_; }

 private:
  struct Entry {
    int fd = -1;  // -1: the file was missing
    std::uint64_t generation = 0;
  };
  using Node = std::pair<const std::string, Entry>;
  // `node`, when given, is set to the reader's entry of the file if it keeps one.
  std::optional<std::string_view> read_name(const std::string& name, Node** node = nullptr);
  std::optional<std::string_view> read_entry(const std::string& name, Entry& e);
  std::optional<std::string_view> read_fd(int fd, const std::string& name);
  int open_file(const std::string& name);

  bool keep_open_;
  std::size_t max_open_;
  std::size_t open_ = 0;
  std::uint64_t opens_ = 0;
  std::uint64_t lookups_ = 0;
  std::uint64_t generation_ = 1;
  std::uint64_t id_;         // names this reader to the CgroupDirs that remember its entries
  std::uint64_t epoch_ = 1;  // sweeps that erased entries: what a CgroupDir remembers is stale
  std::unordered_map<std::string, Entry> files_;
  std::string buf_;
  std::string name_buf_;  // read(dir, name)'s joined path
};

/// Raises the soft RLIMIT_NOFILE to the hard limit (as container runtimes expect daemons to);
/// returns the soft limit in force afterwards.
std::size_t raise_open_file_limit() noexcept;

}  // namespace podgauge::cgroup
