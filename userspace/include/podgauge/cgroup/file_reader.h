// Reading small cgroupfs and procfs files, cheaply, every sampling round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace podgauge::cgroup {

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
  /// allocates a string per component: a cgroup path has about ten).
  std::optional<std::string_view> read(const std::filesystem::path& dir, std::string_view name);

  /// Closes files not read since the sweep before the previous one and forgets missing ones.
  void sweep();

  std::size_t open_files() const noexcept { return open_; }
  /// open() calls made so far (a reader that works keeps this near the number of files).
  std::uint64_t opens() const noexcept { return opens_; }

 private:
  struct Entry {
    int fd = -1;  // -1: the file was missing
    std::uint64_t generation = 0;
  };
  std::optional<std::string_view> read_name(const std::string& name);
  std::optional<std::string_view> read_fd(int fd, const std::string& name);
  int open_file(const std::string& name);

  bool keep_open_;
  std::size_t max_open_;
  std::size_t open_ = 0;
  std::uint64_t opens_ = 0;
  std::uint64_t generation_ = 1;
  std::unordered_map<std::string, Entry> files_;
  std::string buf_;
  std::string name_buf_;  // read(dir, name)'s joined path
};

/// Raises the soft RLIMIT_NOFILE to the hard limit (as container runtimes expect daemons to);
/// returns the soft limit in force afterwards.
std::size_t raise_open_file_limit() noexcept;

}  // namespace podgauge::cgroup
