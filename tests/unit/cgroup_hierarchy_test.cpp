#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/cgroup/kubelet_layout.h"

namespace podgauge::cgroup {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Copied from this project's build machine (Debian 12, kernel 6.18).
constexpr std::string_view kHybridMountinfo = R"(27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
)";

constexpr std::string_view kHybridProcCgroup = R"(9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/16acd9b6500e187358ca8c31634fd0f4
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
)";

// CentOS 7 style: v1 only, cpu and cpuacct co-mounted, optional fields present.
constexpr std::string_view kV1Mountinfo = R"(18 61 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,net_prio,net_cls
)";

constexpr std::string_view kV2Mountinfo =
    "26 18 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

ControllersReader controllers_returning(std::string text) {
  return [text = std::move(text)](const std::filesystem::path&) { return std::optional<std::string>(text); };
}

const ControllersReader kNoControllersFile = [](const std::filesystem::path&) { return std::optional<std::string>(); };

TEST(CgroupHierarchies, detects_hybrid_and_picks_v1_for_cpu_and_memory) {
  auto layout = CgroupHierarchies::from_mountinfo(kHybridMountinfo, controllers_returning("hugetlb\n"));
  EXPECT_EQ(layout.mode(), CgroupMode::Hybrid);
  EXPECT_EQ(layout.hierarchies().size(), 10u);

  ASSERT_NE(layout.default_hierarchy(), nullptr);
  EXPECT_EQ(layout.default_hierarchy()->mount_point, "/sys/fs/cgroup/unified");
  EXPECT_THAT(layout.default_hierarchy()->controllers, ElementsAre("hugetlb"));
  ASSERT_NE(layout.cpu_accounting_hierarchy(), nullptr);
  EXPECT_EQ(layout.cpu_accounting_hierarchy()->mount_point, "/sys/fs/cgroup/cpuacct");
  ASSERT_NE(layout.memory_hierarchy(), nullptr);
  EXPECT_EQ(layout.memory_hierarchy()->mount_point, "/sys/fs/cgroup/memory");

  const CgroupHierarchy* systemd = nullptr;
  for (const auto& h : layout.hierarchies()) {
    if (h.name == "systemd") systemd = &h;
  }
  ASSERT_NE(systemd, nullptr);
  EXPECT_THAT(systemd->controllers, IsEmpty());
  EXPECT_EQ(systemd->version, CgroupVersion::V1);
}

TEST(CgroupHierarchies, finds_this_process_in_every_hybrid_hierarchy) {
  auto layout = CgroupHierarchies::from_mountinfo(kHybridMountinfo, kNoControllersFile);
  auto own = parse_process_cgroups(kHybridProcCgroup);
  ASSERT_EQ(own.size(), 10u);
  EXPECT_EQ(process_cgroup_path(*layout.memory_hierarchy(), own), "/process_api/16acd9b6500e187358ca8c31634fd0f4");
  EXPECT_EQ(process_cgroup_path(*layout.default_hierarchy(), own), "/");
  EXPECT_EQ(process_cgroup_path(*layout.cpu_accounting_hierarchy(), own), "/");
  for (const auto& hierarchy : layout.hierarchies()) {
    EXPECT_TRUE(process_cgroup_path(hierarchy, own).has_value()) << hierarchy.mount_point;
  }
}

TEST(CgroupHierarchies, detects_v1_with_co_mounted_cpu_cpuacct) {
  auto layout = CgroupHierarchies::from_mountinfo(kV1Mountinfo, kNoControllersFile);
  EXPECT_EQ(layout.mode(), CgroupMode::V1);
  EXPECT_EQ(layout.default_hierarchy(), nullptr);
  const CgroupHierarchy* cpu = layout.cpu_accounting_hierarchy();
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_THAT(cpu->controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ(layout.find_v1("cpu"), cpu);
  EXPECT_EQ(layout.memory_hierarchy()->mount_point, "/sys/fs/cgroup/memory");
  EXPECT_THAT(layout.find_v1("net_cls")->controllers, ElementsAre("net_cls", "net_prio"));

  // /proc/self/cgroup lists co-mounted controllers in its own order.
  auto own = parse_process_cgroups("4:cpuacct,cpu:/kubepods/burstable\n2:net_cls,net_prio:/\n1:name=systemd:/user.slice\n");
  EXPECT_EQ(process_cgroup_path(*cpu, own), "/kubepods/burstable");
  EXPECT_EQ(process_cgroup_path(*layout.memory_hierarchy(), own), std::nullopt);
  for (const auto& h : layout.hierarchies()) {
    if (h.name == "systemd") {
      EXPECT_EQ(process_cgroup_path(h, own), "/user.slice");
    }
  }
}

TEST(CgroupHierarchies, detects_pure_v2_and_uses_it_for_everything) {
  auto layout = CgroupHierarchies::from_mountinfo(kV2Mountinfo, controllers_returning("cpuset cpu io memory hugetlb pids\n"));
  EXPECT_EQ(layout.mode(), CgroupMode::V2);
  ASSERT_EQ(layout.hierarchies().size(), 1u);
  const CgroupHierarchy* v2 = layout.default_hierarchy();
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->version, CgroupVersion::V2);
  EXPECT_EQ(layout.cpu_accounting_hierarchy(), v2);
  EXPECT_EQ(layout.memory_hierarchy(), v2);
  EXPECT_TRUE(v2->has_controller("memory"));
  EXPECT_EQ(process_cgroup_path(*v2, parse_process_cgroups("0::/system.slice/agent.service\n")),
            "/system.slice/agent.service");
}

TEST(CgroupHierarchies, tolerates_unreadable_v2_controllers) {
  auto layout = CgroupHierarchies::from_mountinfo(kV2Mountinfo, kNoControllersFile);
  EXPECT_EQ(layout.mode(), CgroupMode::V2);
  EXPECT_THAT(layout.default_hierarchy()->controllers, IsEmpty());
  EXPECT_EQ(layout.cpu_accounting_hierarchy(), layout.default_hierarchy());
  EXPECT_EQ(layout.memory_hierarchy(), nullptr);
}

TEST(CgroupHierarchies, treats_cgroup2_on_sys_fs_cgroup_as_v2_despite_stray_v1) {
  std::string text(kV2Mountinfo);
  text += "40 26 0:40 / /mnt/legacy-memory rw - cgroup cgroup rw,memory\n";
  auto layout = CgroupHierarchies::from_mountinfo(text, controllers_returning("cpu"));
  EXPECT_EQ(layout.mode(), CgroupMode::V2);
  EXPECT_EQ(layout.cpu_accounting_hierarchy(), layout.default_hierarchy());
  EXPECT_EQ(layout.memory_hierarchy()->mount_point, "/mnt/legacy-memory");
}

TEST(CgroupHierarchies, treats_name_systemd_plus_v2_as_v2) {
  std::string text = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
                     "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  auto layout = CgroupHierarchies::from_mountinfo(text, controllers_returning("cpu memory"));
  EXPECT_EQ(layout.mode(), CgroupMode::V2);
  EXPECT_EQ(layout.memory_hierarchy(), layout.default_hierarchy());
}

TEST(CgroupHierarchies, unescapes_spaces_and_keeps_the_mount_root) {
  std::string text =
      "50 31 0:50 /kubepods/burstable/pod\\040x /host/sys/fs/my\\040cgroup\\011tab rw - cgroup2 cgroup2 rw\n";
  std::filesystem::path seen_mount;
  auto layout = CgroupHierarchies::from_mountinfo(text, [&](const std::filesystem::path& mount) {
    seen_mount = mount;
    return std::optional<std::string>("memory");
  });
  const CgroupHierarchy* v2 = layout.default_hierarchy();
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->mount_point, "/host/sys/fs/my cgroup\ttab");
  EXPECT_EQ(seen_mount, v2->mount_point);
  EXPECT_EQ(v2->mount_root, "/kubepods/burstable/pod x");
  EXPECT_EQ(v2->absolute_path("/"), "/host/sys/fs/my cgroup\ttab");
  EXPECT_EQ(v2->absolute_path("/a/b"), "/host/sys/fs/my cgroup\ttab/a/b");

  // A containerized agent without a cgroup namespace sees its path below the mount root.
  EXPECT_EQ(process_cgroup_path(*v2, parse_process_cgroups("0::/kubepods/burstable/pod x/agent\n")), "/agent");
  EXPECT_EQ(process_cgroup_path(*v2, parse_process_cgroups("0::/kubepods/burstable/pod x\n")), "/");
  EXPECT_EQ(process_cgroup_path(*v2, parse_process_cgroups("0::/kubepods/burstable/pod xy\n")), std::nullopt);
  EXPECT_EQ(process_cgroup_path(*v2, parse_process_cgroups("0::/elsewhere\n")), std::nullopt);
}

TEST(CgroupHierarchies, keeps_one_view_of_a_bind_mounted_hierarchy) {
  std::string text = "60 31 0:38 /sub /mnt/sub rw - cgroup2 cgroup2 rw\n"
                     "61 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
                     "62 31 0:38 / /host/unified rw - cgroup2 cgroup2 rw\n";
  auto layout = CgroupHierarchies::from_mountinfo(text, kNoControllersFile);
  ASSERT_EQ(layout.hierarchies().size(), 1u);
  EXPECT_EQ(layout.default_hierarchy()->mount_point, "/sys/fs/cgroup/unified");
}

// An agent in a pod with a private cgroup namespace: its own namespace's cgroup2 mount shows "/",
// the host's tree mounted in as well shows the ascent to the real root. The host's view wins.
TEST(CgroupHierarchies, prefers_the_hosts_view_to_a_cgroup_namespaces_own) {
  std::string text = "70 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
                     "71 31 0:38 /../../.. /host/sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
                     "72 31 0:38 /../.. /elsewhere ro - cgroup2 cgroup2 rw\n";
  auto layout = CgroupHierarchies::from_mountinfo(text, kNoControllersFile);
  ASSERT_EQ(layout.hierarchies().size(), 1u);
  EXPECT_EQ(layout.default_hierarchy()->mount_point, "/host/sys/fs/cgroup");
}

TEST(ProcessCgroups, strips_the_ascent_out_of_a_cgroup_namespace) {
  EXPECT_EQ(strip_namespace_ascent("/../../kubepods.slice/x.scope"), "/kubepods.slice/x.scope");
  EXPECT_EQ(strip_namespace_ascent("/.."), "/");
  EXPECT_EQ(strip_namespace_ascent("/../.."), "/");
  EXPECT_EQ(strip_namespace_ascent("/"), "/");
  EXPECT_EQ(strip_namespace_ascent("/kubepods/a"), "/kubepods/a");
  EXPECT_EQ(strip_namespace_ascent("/..x/a"), "/..x/a");          // a name, not an ascent
  EXPECT_EQ(strip_namespace_ascent("/a/../b"), "/a/../b");        // only leading ones
  EXPECT_EQ(parse_kubelet_path(strip_namespace_ascent(
                "/../kubepods.slice/kubepods-burstable.slice/"
                "kubepods-burstable-pod11111111_2222_3333_4444_555555555555.slice/"
                "cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope"))
                ->container_id.view(),
            std::string(64, 'a'));
}

TEST(CgroupHierarchies, skips_malformed_lines) {
  std::string text = "garbage\n\n1 2 3\n- - - - - - - cgroup2\n"
                     "70 31 0:70 / /x rw - cgroup2\n"  // no source: still short of fields
                     "71 31 0:71 / /ok rw - cgroup cgroup rw,memory\n";
  auto layout = CgroupHierarchies::from_mountinfo(text, kNoControllersFile);
  ASSERT_EQ(layout.hierarchies().size(), 1u);
  EXPECT_EQ(layout.hierarchies()[0].mount_point, "/ok");
}

TEST(CgroupHierarchies, explains_how_to_fix_a_node_without_cgroups) {
  try {
    CgroupHierarchies::from_mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n", kNoControllersFile);
    FAIL() << "expected CgroupError";
  } catch (const CgroupError& error) {
    EXPECT_THAT(error.what(), HasSubstr("no cgroup filesystem mounted"));
    EXPECT_THAT(error.what(), HasSubstr("mount cgroup2 at /sys/fs/cgroup"));
  }
  try {
    CgroupHierarchies::discover("/nonexistent/mountinfo");
    FAIL() << "expected CgroupError";
  } catch (const CgroupError& error) {
    EXPECT_THAT(error.what(), HasSubstr("cannot read /nonexistent/mountinfo"));
  }
}

TEST(ProcessCgroups, parses_v1_named_and_v2_lines) {
  auto entries = parse_process_cgroups("12:cpu,cpuacct:/a:b\n1:name=systemd:/user.slice\n0::/\nbad\nx:y:/z\n3:cpu:relative\n");
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].hierarchy_id, 12u);
  EXPECT_THAT(entries[0].controllers, ElementsAre("cpu", "cpuacct"));
  EXPECT_EQ(entries[0].path, "/a:b");
  EXPECT_FALSE(entries[0].is_v2());
  EXPECT_EQ(entries[1].name, "systemd");
  EXPECT_THAT(entries[1].controllers, IsEmpty());
  EXPECT_TRUE(entries[2].is_v2());
  EXPECT_EQ(entries[2].path, "/");
}

TEST(CgroupHierarchies, discovers_at_least_one_hierarchy_on_this_machine) {
  auto layout = CgroupHierarchies::discover();
  ASSERT_FALSE(layout.hierarchies().empty());
  ASSERT_NE(layout.cpu_accounting_hierarchy(), nullptr);
  EXPECT_TRUE(std::filesystem::is_directory(layout.cpu_accounting_hierarchy()->mount_point));
  auto own = read_process_cgroups();
  ASSERT_FALSE(own.empty());
  EXPECT_TRUE(process_cgroup_path(*layout.cpu_accounting_hierarchy(), own).has_value());
  if (const CgroupHierarchy* v2 = layout.default_hierarchy()) {
    auto path = process_cgroup_path(*v2, own);
    ASSERT_TRUE(path.has_value());
    EXPECT_TRUE(std::filesystem::exists(v2->absolute_path(*path) / "cgroup.procs"));
  }
  std::cout << "cgroup mode on this machine: " << to_string(layout.mode()) << "\n";
}

}  // namespace
}  // namespace podgauge::cgroup
