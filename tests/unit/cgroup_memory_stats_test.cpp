// PSI, memory.events, memory.oom_control and memory.failcnt parsers, on the texts real kernels
// write, and their refusal of anything else.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "podgauge/cgroup/memory_stats.h"

using namespace podgauge::cgroup;

TEST(Pressure, parses_some_and_full_with_cumulative_microseconds) {
  const auto p = parse_pressure(
      "some avg10=1.25 avg60=0.40 avg300=0.08 total=123456789\n"
      "full avg10=100.00 avg60=0.00 avg300=0.00 total=18446744073709551615\n");
  EXPECT_DOUBLE_EQ(p.some.avg10, 1.25);
  EXPECT_DOUBLE_EQ(p.some.avg60, 0.40);
  EXPECT_DOUBLE_EQ(p.some.avg300, 0.08);
  EXPECT_EQ(p.some.total_us, 123456789u);
  ASSERT_TRUE(p.full);
  EXPECT_DOUBLE_EQ(p.full->avg10, 100.0);
  EXPECT_EQ(p.full->total_us, UINT64_MAX);
}

TEST(Pressure, cpu_pressure_before_5_13_has_no_full_line) {
  const auto p = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
  EXPECT_EQ(p.some.total_us, 7u);
  EXPECT_FALSE(p.full);
}

TEST(Pressure, refuses_anything_but_the_kernels_format) {
  for (const char* bad : {
           "",                                                          // no some line
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",          // full alone
           "some avg10=0.00 avg60=0.00 avg300=0.00\n",                  // no total
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=\n",           // empty total
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n",         // negative
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=1 extra=2\n",  // trailing field
           "some avg60=0.00 avg10=0.00 avg300=0.00 total=1\n",          // order
           "some avg10=0.0 avg60=0.00 avg300=0.00 total=1\n",           // one decimal
           "some avg10=00.50 avg60=0.00 avg300=0.00 total=1\n",         // leading zero
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=01\n",
           "some avg10=101.00 avg60=0.00 avg300=0.00 total=1\n",                   // over 100 %
           "some  avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",                    // double space
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=99999999999999999999\n",  // overflow
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nsome avg10=0.00 avg60=0.00 avg300=0.00 "
           "total=1\n",
           "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\n\n",  // blank line
           "SOME avg10=0.00 avg60=0.00 avg300=0.00 total=1\n",
       }) {
    EXPECT_THROW(parse_pressure(bad), CgroupError) << "accepted: " << bad;
  }
}

TEST(Pressure, the_error_names_the_line_and_the_expected_format) {
  try {
    parse_pressure("some avg10=x avg60=0.00 avg300=0.00 total=1\n");
    FAIL() << "accepted a non-number";
  } catch (const CgroupError& e) {
    EXPECT_NE(std::string(e.what()).find("avg10=x"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("total=<us>"), std::string::npos) << e.what();
  }
}

TEST(MemoryEvents, parses_every_counter_and_ignores_newer_keys) {
  const auto e = parse_memory_events(
      "low 1\nhigh 22\nmax 333\noom 4\noom_kill 5\noom_group_kill 6\nsock_throttled 9\n");
  EXPECT_EQ(e.low, 1u);
  EXPECT_EQ(e.high, 22u);
  EXPECT_EQ(e.max, 333u);
  EXPECT_EQ(e.oom, 4u);
  EXPECT_EQ(e.oom_kill, 5u);
  EXPECT_EQ(e.oom_group_kill, 6u);
}

TEST(MemoryEvents, kernels_before_5_16_have_no_oom_group_kill) {
  const auto e = parse_memory_events("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  EXPECT_FALSE(e.oom_group_kill);
}

TEST(MemoryEvents, refuses_missing_duplicate_or_malformed_counters) {
  for (const char* bad :
       {"", "low 0\nhigh 0\nmax 0\noom 0\n", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\nhigh 1\n",
        "low 0\nhigh x\nmax 0\noom 0\noom_kill 0\n", "low 0\nhigh  0\nmax 0\noom 0\noom_kill 0\n",
        "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 1\noom_group_kill 1\n",
        "low\nhigh 0\nmax 0\noom 0\noom_kill 0\n"}) {
    EXPECT_THROW(parse_memory_events(bad), CgroupError) << "accepted: " << bad;
  }
}

TEST(MemoryOomControl, parses_v1_oom_control_with_and_without_oom_kill) {
  const auto c = parse_memory_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 3\n");
  EXPECT_FALSE(c.oom_kill_disable);
  EXPECT_TRUE(c.under_oom);
  EXPECT_EQ(c.oom_kill, 3u);
  const auto old = parse_memory_oom_control("oom_kill_disable 1\nunder_oom 0\n");
  EXPECT_TRUE(old.oom_kill_disable);
  EXPECT_FALSE(old.oom_kill);
  EXPECT_THROW(parse_memory_oom_control("oom_kill_disable 2\nunder_oom 0\n"), CgroupError);
  EXPECT_THROW(parse_memory_oom_control("under_oom 0\n"), CgroupError);
}

TEST(SingleCounter, parses_memory_failcnt) {
  EXPECT_EQ(parse_single_counter("42\n"), 42u);
  EXPECT_EQ(parse_single_counter("0"), 0u);
  for (const char* bad : {"", "\n", "1 2\n", "1\n2\n", "-1\n", "0x10\n", "060\n", "+1\n"})
    EXPECT_THROW(parse_single_counter(bad), CgroupError) << "accepted: " << bad;
}

TEST(Readers, a_missing_file_is_nullopt_and_bad_content_names_the_file) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("pg-memstats-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  FileReader files(false);  // one-shot: the files appear during the test
  EXPECT_FALSE(read_memory_events(files, dir));
  EXPECT_FALSE(read_pressure(files, dir / "memory.pressure"));
  std::ofstream(dir / "memory.events") << "low 0\nhigh 0\n";
  try {
    read_memory_events(files, dir);
    FAIL() << "accepted a truncated memory.events";
  } catch (const CgroupError& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "memory.events").string()), std::string::npos)
        << e.what();
  }
  std::ofstream(dir / "memory.failcnt") << "17\n";
  EXPECT_EQ(read_memory_failcnt(files, dir), 17u);
  std::filesystem::remove_all(dir);
}

// The node's own PSI files, where the kernel has PSI: what the agent reads every interval.
TEST(Readers, this_nodes_proc_pressure_parses_when_present) {
  FileReader files;
  for (const char* r : {"cpu", "memory", "io"}) {
    const std::filesystem::path f = std::filesystem::path("/proc/pressure") / r;
    if (!std::filesystem::exists("/proc/pressure")) {
      EXPECT_FALSE(read_pressure(files, f)) << "no /proc/pressure, yet " << f << " was read";
      continue;
    }
    const auto p = read_pressure(files, f);
    ASSERT_TRUE(p) << f;
    EXPECT_TRUE(p->full || std::string(r) == "cpu") << f << " has no full line";
  }
}
