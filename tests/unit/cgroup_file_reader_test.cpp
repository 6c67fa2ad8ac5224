// FileReader on ordinary files: what it returns, what it keeps open, when it lets go.
// (Re-reading real kernfs files and cgroups removed under it: integration/cgroup_file_reader_test.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "podgauge/cgroup/error.h"
#include "podgauge/cgroup/file_reader.h"

using podgauge::cgroup::CgroupError;
using podgauge::cgroup::FileReader;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("pg-fr-" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  void write(const char* name, const std::string& text) const { std::ofstream(path / name) << text; }
};

}  // namespace

TEST(FileReader, rereads_an_open_file_from_the_start_and_sees_new_content) {
  TempDir d;
  d.write("usage", "100\n");
  FileReader r;
  EXPECT_EQ(r.read(d.path / "usage"), "100\n");
  // Rewritten in place (same inode, as the kernel regenerates a cgroup file): no new open.
  { std::ofstream(d.path / "usage", std::ios::in | std::ios::out) << "2"; }
  EXPECT_EQ(r.read(d.path / "usage"), "200\n");
  EXPECT_EQ(r.opens(), 1u);
  EXPECT_EQ(r.open_files(), 1u);
}

TEST(FileReader, a_missing_file_is_nullopt_and_looked_up_again_after_a_sweep) {
  TempDir d;
  FileReader r;
  EXPECT_FALSE(r.read(d.path / "memory.swap.current"));
  EXPECT_FALSE(r.read(d.path / "memory.swap.current"));
  EXPECT_EQ(r.opens(), 1u);  // remembered as missing
  d.write("memory.swap.current", "0\n");
  r.sweep();
  EXPECT_EQ(r.read(d.path / "memory.swap.current"), "0\n");
}

TEST(FileReader, files_not_read_for_two_sweeps_are_closed) {
  TempDir d;
  d.write("a", "1\n");
  d.write("b", "2\n");
  FileReader r;
  ASSERT_TRUE(r.read(d.path / "a"));
  ASSERT_TRUE(r.read(d.path / "b"));
  EXPECT_EQ(r.open_files(), 2u);
  r.sweep();
  ASSERT_TRUE(r.read(d.path / "a"));  // read every period: stays
  r.sweep();
  EXPECT_EQ(r.open_files(), 2u);  // b was read in the period before the last: kept
  ASSERT_TRUE(r.read(d.path / "a"));
  r.sweep();
  EXPECT_EQ(r.open_files(), 1u);  // b: not read for two periods
  EXPECT_EQ(r.read(d.path / "b"), "2\n");
  EXPECT_EQ(r.opens(), 3u);
}

TEST(FileReader, beyond_max_open_files_it_reads_without_keeping_them) {
  TempDir d;
  d.write("a", "1\n");
  d.write("b", "2\n");
  FileReader r(true, 1);
  EXPECT_EQ(r.read(d.path / "a"), "1\n");
  EXPECT_EQ(r.read(d.path / "b"), "2\n");
  EXPECT_EQ(r.read(d.path / "b"), "2\n");
  EXPECT_EQ(r.open_files(), 1u);
  EXPECT_EQ(r.opens(), 3u);
}

TEST(FileReader, one_shot_reader_opens_every_time_and_keeps_nothing) {
  TempDir d;
  d.write("a", "1\n");
  FileReader r(false);
  EXPECT_EQ(r.read(d.path / "a"), "1\n");
  EXPECT_EQ(r.read(d.path / "a"), "1\n");
  EXPECT_EQ(r.opens(), 2u);
  EXPECT_EQ(r.open_files(), 0u);
}

TEST(FileReader, reads_files_larger_than_its_first_buffer_and_refuses_over_one_mebibyte) {
  TempDir d;
  const std::string stat(20000, 'x');
  d.write("memory.stat", stat);
  d.write("huge", std::string((1u << 20) + 1, 'y'));
  FileReader r;
  EXPECT_EQ(r.read(d.path / "memory.stat"), stat);
  try {
    r.read(d.path / "huge");
    FAIL() << "a file over 1 MiB was read";
  } catch (const CgroupError& e) {
    EXPECT_NE(std::string(e.what()).find("huge: larger than 1 MiB"), std::string::npos) << e.what();
  }
}

TEST(FileReader, an_unreadable_path_is_an_error_naming_the_file) {
  TempDir d;
  FileReader r;
  fs::create_directories(d.path / "dir");
  try {
    r.read(d.path / "dir");  // read() of a directory: EISDIR
    FAIL() << "reading a directory succeeded";
  } catch (const CgroupError& e) {
    EXPECT_NE(std::string(e.what()).find((d.path / "dir").string()), std::string::npos) << e.what();
  }
}

TEST(FileReader, files_the_size_of_its_buffer_or_one_byte_more_are_read_whole) {
  TempDir d;
  const std::string page(4096, 'p'), more(4097, 'm'), two(8192, 't');
  d.write("page", page);
  d.write("more", more);
  d.write("two", two);
  FileReader r;
  for (int round = 0; round < 2; ++round) {  // first open, then the kept file
    EXPECT_EQ(r.read(d.path / "page"), page);
    EXPECT_EQ(r.read(d.path / "more"), more);
    EXPECT_EQ(r.read(d.path / "two"), two);
    EXPECT_EQ(r.read(d.path / "page"), page) << "the buffer grew; a shorter file still reads whole";
  }
}

TEST(FileReader, a_name_in_a_directory_is_the_same_kept_file_as_its_joined_path) {
  TempDir d;
  d.write("cpu.stat", "nr_periods 5\n");
  FileReader r;
  EXPECT_EQ(r.read(d.path, "cpu.stat"), "nr_periods 5\n");
  EXPECT_EQ(r.read(d.path / "cpu.stat"), "nr_periods 5\n");
  EXPECT_EQ(r.read(fs::path(d.path.string() + "/"), "cpu.stat"), "nr_periods 5\n");
  EXPECT_EQ(r.opens(), 1u);
  EXPECT_EQ(r.read(d.path, "missing"), std::nullopt);
}

// A CgroupDir remembers the reader's entries of its files: re-reads look nothing up by path,
// each name still reads its own file (also names of one length), and what it read is fresh.
TEST(FileReader, a_cgroup_dir_rereads_its_files_without_looking_them_up) {
  TempDir d;
  d.write("io.pressure", "io\n");
  d.write("cpu.pressure", "cpu\n");
  d.write("memory.usage_in_bytes", "100\n");
  FileReader r;
  const podgauge::cgroup::CgroupDir dir(d.path);
  EXPECT_EQ(r.read(dir, "io.pressure"), "io\n");
  EXPECT_EQ(r.read(dir, "cpu.pressure"), "cpu\n");
  EXPECT_EQ(r.read(dir, "memory.usage_in_bytes"), "100\n");
  EXPECT_EQ(r.read(dir, "memory.stat"), std::nullopt);  // missing: remembered as missing
  EXPECT_EQ(r.lookups(), 4u);
  { std::ofstream(d.path / "memory.usage_in_bytes", std::ios::in | std::ios::out) << "2"; }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.read(dir, "cpu.pressure"), "cpu\n");
    EXPECT_EQ(r.read(dir, "io.pressure"), "io\n");
    EXPECT_EQ(r.read(dir, "memory.usage_in_bytes"), "200\n");
    EXPECT_EQ(r.read(dir, "memory.stat"), std::nullopt);
  }
  EXPECT_EQ(r.lookups(), 4u) << "a remembered file was looked up by path";
  EXPECT_EQ(r.opens(), 4u);
  // The same files by path are the same kept files.
  EXPECT_EQ(r.read(d.path / "cpu.pressure"), "cpu\n");
  EXPECT_EQ(r.opens(), 4u);
  // A copy of the directory forgets; it learns again and reads the same.
  const podgauge::cgroup::CgroupDir copy = dir;
  EXPECT_EQ(r.read(copy, "io.pressure"), "io\n");
  EXPECT_EQ(r.lookups(), 6u);
}

// A sweep that lets files go makes what a CgroupDir remembered stale: it looks them up again,
// finds a file that appeared meanwhile, and another reader is not confused by what it learnt.
TEST(FileReader, a_cgroup_dir_follows_sweeps_and_readers) {
  TempDir d;
  d.write("a", "1\n");
  FileReader r;
  const podgauge::cgroup::CgroupDir dir(d.path.string() + "/");  // a trailing slash joins the same
  EXPECT_EQ(r.read(dir, "a"), "1\n");
  EXPECT_EQ(r.read(dir, "b"), std::nullopt);
  d.write("b", "2\n");
  EXPECT_EQ(r.read(dir, "b"), std::nullopt) << "missing until the next sweep";
  r.sweep();  // forgets the missing "b"
  EXPECT_EQ(r.read(dir, "b"), "2\n");
  EXPECT_EQ(r.read(dir, "a"), "1\n");
  r.sweep();
  r.sweep();
  r.sweep();  // "a" and "b" not read for two sweeps: closed and forgotten
  EXPECT_EQ(r.open_files(), 0u);
  d.write("a", "3\n");
  EXPECT_EQ(r.read(dir, "a"), "3\n");
  EXPECT_EQ(r.open_files(), 1u);
  FileReader other;
  EXPECT_EQ(other.read(dir, "a"), "3\n");
  EXPECT_EQ(other.read(dir, "b"), "2\n");
  EXPECT_EQ(r.read(dir, "b"), "2\n");
  EXPECT_EQ(r.read(dir, "a"), "3\n");
  EXPECT_EQ(other.open_files(), 2u);
  EXPECT_EQ(r.open_files(), 2u);
}

// A move hands over what was remembered; the emptied directory, given another path, reads that
// directory's files, not the ones it remembered before the move.
TEST(FileReader, a_moved_cgroup_dir_keeps_its_files_and_the_source_forgets_them) {
  TempDir d;
  d.write("cpu.stat", "first\n");
  fs::create_directories(d.path / "other");
  std::ofstream(d.path / "other" / "cpu.stat") << "second\n";
  FileReader r;
  podgauge::cgroup::CgroupDir a(d.path);
  EXPECT_EQ(r.read(a, "cpu.stat"), "first\n");
  podgauge::cgroup::CgroupDir b = std::move(a);
  EXPECT_EQ(r.read(b, "cpu.stat"), "first\n");
  EXPECT_EQ(r.lookups(), 1u);
  a = podgauge::cgroup::CgroupDir(d.path / "other");
  EXPECT_EQ(r.read(a, "cpu.stat"), "second\n");
  b = std::move(a);
  EXPECT_EQ(r.read(b, "cpu.stat"), "second\n");
  EXPECT_EQ(r.lookups(), 2u);
}
