// MemoryPressureTable: per-container sums of reclaim stalls that never go backwards, and the
// exposition of stalls, memory events, PSI and node PSI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "podgauge/agent/memory_pressure.h"

using namespace podgauge;
using namespace podgauge::agent;

namespace {

UsageTarget container(const std::string& id) {
  UsageTarget t;
  t.kind = UsageTarget::Kind::Container;
  t.pod_uid = "pod-1";
  t.container_id = id;
  return t;
}

loader::CgroupReclaimStalls stalls(uint64_t cgroup_id, uint64_t memcg_ns, uint64_t memcg_count) {
  loader::CgroupReclaimStalls s;
  s.cgroup_id = cgroup_id;
  s.memcg.stall_ns = memcg_ns;
  s.memcg.count = memcg_count;
  s.memcg.slots[3] = memcg_count;
  return s;
}

std::string render(const MemoryPressureTable& table) {
  exporters::ExpositionWriter w;
  table.render(w, "n1", true);
  return w.take();
}

bool has_line(const std::string& page, const std::string& line) {
  return page.find(line + "\n") != std::string::npos;
}

}  // namespace

TEST(MemoryPressureTable, sums_a_containers_nested_cgroups_and_never_steps_back) {
  MemoryPressureTable table;
  const auto c = container("c1");
  table.observe_reclaim(c, stalls(10, 2'000'000'000, 4));
  table.observe_reclaim(c, stalls(11, 500'000'000, 1));  // a cgroup nested in the container
  auto page = render(table);
  EXPECT_TRUE(has_line(
      page,
      "podgauge_container_memory_reclaim_stall_seconds_total{node=\"n1\",pod_uid=\"pod-1\","
      "container_id=\"c1\",kind=\"memcg\"} 2.5"))
      << page;
  EXPECT_TRUE(has_line(page,
                       "podgauge_container_memory_reclaim_stall_duration_seconds_count{node=\"n1\","
                       "pod_uid=\"pod-1\",container_id=\"c1\",kind=\"memcg\"} 5"))
      << page;
  // The kernel entry of cgroup 10 was deleted and made again from zero: the sum holds.
  table.observe_reclaim(c, stalls(10, 1'000, 1));
  page = render(table);
  EXPECT_TRUE(has_line(
      page,
      "podgauge_container_memory_reclaim_stall_seconds_total{node=\"n1\",pod_uid=\"pod-1\","
      "container_id=\"c1\",kind=\"memcg\"} 2.5"))
      << page;
}

TEST(MemoryPressureTable, retain_returns_the_cgroup_ids_of_containers_that_are_gone) {
  MemoryPressureTable table;
  table.observe_reclaim(container("a"), stalls(1, 1, 1));
  table.observe_reclaim(container("a"), stalls(2, 1, 1));
  table.observe_reclaim(container("b"), stalls(3, 1, 1));
  auto gone = table.retain({container("b")});
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(render(table).find("container_id=\"a\""), std::string::npos);
}

TEST(MemoryPressureTable, exports_memory_events_psi_and_node_psi_from_cgroupfs_files) {
  const auto dir = std::filesystem::temp_directory_path() / ("pg-mp-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "proc");
  std::ofstream(dir / "memory.events") << "low 0\nhigh 7\nmax 3\noom 1\noom_kill 1\n";
  std::ofstream(dir / "memory.pressure")
      << "some avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\nfull avg10=0.00 avg60=0.00 "
         "avg300=0.00 total=250\n";
  std::ofstream(dir / "proc" / "io") << "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n"
                                        "full avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n";
  podgauge::cgroup::FileReader files;
  MemoryPressureTable table;
  const podgauge::cgroup::CgroupDir cgroup(dir);
  table.record_cgroupfs(container("c1"), read_container_pressure(files, &cgroup, true, &cgroup));
  table.record_node(read_node_pressure(files, dir / "proc"), "");
  const auto page = render(table);
  std::filesystem::remove_all(dir);
  const std::string labels = "node=\"n1\",pod_uid=\"pod-1\",container_id=\"c1\"";
  EXPECT_TRUE(
      has_line(page, "podgauge_container_memory_events_total{" + labels + ",event=\"high\"} 7"))
      << page;
  EXPECT_TRUE(
      has_line(page, "podgauge_container_memory_events_total{" + labels + ",event=\"max\"} 3"))
      << page;
  EXPECT_EQ(page.find("event=\"oom_group_kill\""), std::string::npos)
      << "absent before 5.16: not invented";
  EXPECT_TRUE(has_line(page, "podgauge_container_pressure_stalled_seconds_total{" + labels +
                                 ",resource=\"memory\",kind=\"some\"} 1.5"))
      << page;
  EXPECT_TRUE(has_line(page, "podgauge_container_pressure_stalled_seconds_total{" + labels +
                                 ",resource=\"memory\",kind=\"full\"} 0.00025"))
      << page;
  EXPECT_EQ(page.find("resource=\"cpu\",kind"), std::string::npos)
      << "no cpu.pressure file, no series";
  EXPECT_TRUE(has_line(
      page,
      "podgauge_node_pressure_stalled_seconds_total{node=\"n1\",resource=\"io\",kind=\"full\"} 1"))
      << page;
  EXPECT_EQ(table.summary()["node_pressure"], "available");
}

TEST(MemoryPressureTable, without_node_psi_exports_no_node_series_and_says_why) {
  MemoryPressureTable table;
  podgauge::cgroup::FileReader files;
  const auto none = read_node_pressure(files, "/nonexistent/pressure");
  EXPECT_FALSE(none);
  table.record_node(none, "unavailable: no /proc/pressure");
  EXPECT_EQ(render(table).find("podgauge_node_pressure_stalled_seconds_total{"), std::string::npos);
  EXPECT_EQ(table.summary()["node_pressure"], "unavailable: no /proc/pressure");
}
