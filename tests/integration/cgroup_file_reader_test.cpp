// FileReader on real cgroup files: a kept-open kernfs file re-read with pread shows the
// kernel's current value, and a cgroup removed (and made again) under the reader is noticed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "podgauge/cgroup/file_reader.h"
#include "support/cgroup_sandbox.h"

namespace podgauge::itest {
namespace {

namespace fs = std::filesystem;
using cgroup::FileReader;

constexpr std::uint64_t kMiB = 1024 * 1024;

// The memory limit file of `relpath`: v1 memory.limit_in_bytes, v2 memory.max.
fs::path limit_file(const CgroupSandbox& box, const char* relpath) {
  const fs::path dir = box.path_in("memory", relpath);
  return dir / (fs::exists(dir / "memory.max") ? "memory.max" : "memory.limit_in_bytes");
}

std::uint64_t number(std::optional<std::string_view> text) {
  if (!text) throw std::runtime_error("file not read");
  return std::stoull(std::string(*text));
}

TEST(CgroupFileReader, a_kept_open_cgroup_file_shows_each_new_value_without_reopening) {
  CgroupSandbox box;
  box.create("c");
  FileReader r;
  const fs::path file = limit_file(box, "c");
  for (std::uint64_t mib : {128, 96, 64}) {  // falling: v1 keeps memsw >= the limit
    box.set_memory_limit("c", mib * kMiB);
    EXPECT_EQ(number(r.read(file)), mib * kMiB) << file;
  }
  EXPECT_EQ(r.opens(), 1u) << "the file was opened again instead of re-read";
}

TEST(CgroupFileReader, a_cgroup_removed_under_the_reader_is_gone_and_a_new_one_is_read_afresh) {
  CgroupSandbox box;
  box.create("c");
  box.set_memory_limit("c", 64 * kMiB);
  FileReader r;
  const fs::path file = limit_file(box, "c");
  ASSERT_EQ(number(r.read(file)), 64 * kMiB);

  for (const auto& dir : box.dirs("c")) fs::remove(dir);  // rmdir: no process inside
  EXPECT_FALSE(r.read(file)) << "a removed cgroup's file still read";

  box.create("c");
  box.set_memory_limit("c", 80 * kMiB);
  r.sweep();  // forgets the missing entry, as the agent does on each rescan
  EXPECT_EQ(number(r.read(file)), 80 * kMiB);

  // Removed and made again between two reads: the old descriptor says ENODEV, the reader
  // opens the new cgroup's file.
  const auto opens = r.opens();
  for (const auto& dir : box.dirs("c")) fs::remove(dir);
  box.create("c");
  box.set_memory_limit("c", 96 * kMiB);
  EXPECT_EQ(number(r.read(file)), 96 * kMiB);
  EXPECT_EQ(r.opens(), opens + 1);
}

}  // namespace
}  // namespace podgauge::itest
