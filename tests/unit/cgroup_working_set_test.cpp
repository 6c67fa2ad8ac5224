#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "podgauge/cgroup/cpu_limit.h"
#include "podgauge/cgroup/working_set.h"

using podgauge::cgroup::parse_memory_usage;

TEST(WorkingSet, v1_is_usage_minus_total_inactive_file_as_the_kubelet_computes_it) {
  const char* stat =
      "cache 100\nrss 200\ninactive_file 1\n"
      "total_cache 4096000\ntotal_rss 8192000\ntotal_swap 12288\ntotal_inactive_file 1024000\n";
  auto m = parse_memory_usage(false, "13000000\n", stat, "67108864\n", "");
  EXPECT_EQ(m.usage, 13000000u);
  EXPECT_EQ(m.working_set, 13000000u - 1024000u);  // total_, not the cgroup-local key
  EXPECT_EQ(m.rss, 8192000u);
  EXPECT_EQ(m.page_cache, 4096000u);
  EXPECT_EQ(m.swap, 12288u);
  ASSERT_TRUE(m.limit);
  EXPECT_EQ(*m.limit, 67108864u);
  // v1's "unlimited" is LONG_MAX rounded to a page.
  EXPECT_FALSE(parse_memory_usage(false, "1", stat, "9223372036854771712\n", "").limit);
}

TEST(WorkingSet, v2_uses_memory_current_and_inactive_file_and_clamps_at_zero) {
  const char* stat = "anon 300\nfile 5000\nkernel 7\ninactive_file 4000\nactive_file 1000\n";
  auto m = parse_memory_usage(true, "6000\n", stat, "max\n", "42\n");
  EXPECT_EQ(m.working_set, 2000u);
  EXPECT_EQ(m.rss, 300u);
  EXPECT_EQ(m.page_cache, 5000u);
  EXPECT_EQ(m.swap, 42u);
  EXPECT_FALSE(m.limit);
  auto clamped = parse_memory_usage(true, "3000", stat, "1048576", "");
  EXPECT_EQ(clamped.working_set, 0u);
  EXPECT_EQ(*clamped.limit, 1048576u);
}

TEST(WorkingSet, malformed_files_name_what_is_wrong) {
  EXPECT_THROW(parse_memory_usage(true, "x", "anon 1\nfile 1\ninactive_file 1\n", "max", ""), std::invalid_argument);
  EXPECT_THROW(parse_memory_usage(true, "1", "anon 1\nfile 1\n", "max", ""), std::invalid_argument);
  EXPECT_THROW(parse_memory_usage(true, "1", "anon 1\nfile 1\ninactive_file 1\n", "lots", ""), std::invalid_argument);
  EXPECT_THROW(parse_memory_usage(false, "1", "total_rss 1\ntotal_cache 1\ntotal_inactive_file -1\n", "", ""),
               std::invalid_argument);
  // A key that merely starts like another is not it.
  EXPECT_THROW(parse_memory_usage(true, "1", "anonymous 1\nfile 1\ninactive_file 1\n", "max", ""),
               std::invalid_argument);
}

#include "podgauge/cgroup/cpu_limit.h"

TEST(CpuLimit, cpu_max_and_cfs_quota_become_cores) {
  using namespace podgauge::cgroup;
  EXPECT_FALSE(parse_cpu_max("max 100000\n"));
  EXPECT_DOUBLE_EQ(*parse_cpu_max("50000 100000\n"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cpu_max("250000 100000"), 2.5);
  EXPECT_FALSE(parse_cfs_quota("-1\n", "100000\n"));
  EXPECT_DOUBLE_EQ(*parse_cfs_quota("20000\n", "100000\n"), 0.2);
  EXPECT_THROW(parse_cpu_max("lots"), std::invalid_argument);
  EXPECT_THROW(parse_cpu_max("max 0"), std::invalid_argument);
  EXPECT_THROW(parse_cfs_quota("x", "100000"), std::invalid_argument);
}

// v1 without a quota (-1) reads one file, not two; with a quota both, and a missing period is
// no limit rather than a guess.
TEST(CpuLimit, v1_reads_the_period_only_when_there_is_a_quota) {
  const auto dir = std::filesystem::temp_directory_path() / ("pg-cpulimit-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  podgauge::cgroup::FileReader files;
  std::ofstream(dir / "cpu.cfs_quota_us") << "-1\n";
  EXPECT_FALSE(podgauge::cgroup::read_cpu_limit_cores(files, dir, false));
  EXPECT_EQ(files.opens(), 1u) << "the period was read for a cgroup without a quota";
  std::ofstream(dir / "cpu.cfs_quota_us") << "50000\n";
  EXPECT_FALSE(podgauge::cgroup::read_cpu_limit_cores(files, dir, false)) << "no period file";
  std::ofstream(dir / "cpu.cfs_period_us") << "100000\n";
  files.sweep();  // forgets the missing period
  const auto cores = podgauge::cgroup::read_cpu_limit_cores(files, dir, false);
  ASSERT_TRUE(cores);
  EXPECT_DOUBLE_EQ(*cores, 0.5);
  std::ofstream(dir / "cpu.cfs_quota_us") << "garbage\n";
  EXPECT_THROW(podgauge::cgroup::read_cpu_limit_cores(files, dir, false), std::invalid_argument);
  std::filesystem::remove_all(dir);
}
