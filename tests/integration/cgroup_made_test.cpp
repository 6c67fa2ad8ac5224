// The kernel names each cgroup it makes (cgroup_mkdir's path, through the cgroup_made ring
// buffer), so the agent indexes that one directory instead of walking every tree. Nothing is
// lost: a made cgroup that the ring cannot take is counted in cgroup_changes, and the agent walks.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "podgauge/cgroup/cgroup_index.h"
#include "podgauge/loader/kernel_probes.h"
#include "support/cgroup_sandbox.h"

using namespace podgauge::itest;

namespace {

// `relpath`'s path as the kernel names it: from its hierarchy's root, not the mount point.
std::string kernel_path(const CgroupSandbox& sandbox, const CgroupHierarchy& h, const std::string& relpath) {
  const std::string root = h.mount_root.string();
  return (root == "/" ? "" : root) + sandbox.path_relative_to_mount(h.name, relpath);
}

bool contains(const std::vector<std::string>& paths, const std::string& path) {
  return std::find(paths.begin(), paths.end(), path) != paths.end();
}

}  // namespace

TEST(CgroupMade, the_kernel_names_each_made_cgroup_by_its_path_in_every_hierarchy) {
  podgauge::loader::KernelProbes probes(podgauge::loader::LoaderOptions{});
  ASSERT_TRUE(probes.cgroup_changes()) << "cgroup_mkdir/rmdir did not attach";
  CgroupSandbox sandbox;
  std::vector<std::string> made;
  probes.take_cgroups_made(made);  // the sandbox's own root
  made.clear();

  const auto uid = KubeletNames::random_pod_uid(), cid = KubeletNames::random_container_id();
  const auto pod = KubeletNames::systemd_pod(QosClass::Burstable, uid);
  const auto ctr = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd", cid);
  sandbox.create(ctr);
  EXPECT_GE(probes.take_cgroups_made(made), 2 * sandbox.hierarchies().size());
  for (const auto& h : sandbox.hierarchies()) {
    const auto pod_path = kernel_path(sandbox, h, pod), ctr_path = kernel_path(sandbox, h, ctr);
    ASSERT_TRUE(contains(made, ctr_path)) << h.name << ": " << ctr_path << " not reported";
    ASSERT_TRUE(contains(made, pod_path)) << h.name << ": " << pod_path << " not reported";
    EXPECT_LT(std::find(made.begin(), made.end(), pod_path), std::find(made.begin(), made.end(), ctr_path))
        << "a parent is made before its child";

    // What the agent does with it: the directory, and its id, without a walk.
    podgauge::cgroup::CgroupIndex index(h.mount_point);
    if (h.mount_root == "/") {
      EXPECT_EQ(index.add(ctr_path), sandbox.id_in(h.name, ctr)) << h.name;
      EXPECT_EQ(index.stats().rescans, 0u);
    }
  }
  std::vector<std::string> again;
  probes.take_cgroups_made(again);
  for (const auto& p : again) EXPECT_FALSE(contains(made, p)) << p << " reported twice";
}

TEST(CgroupMade, cgroups_the_ring_cannot_take_are_counted_so_a_walk_finds_them) {
  podgauge::loader::KernelProbes probes(podgauge::loader::LoaderOptions{});
  ASSERT_TRUE(probes.cgroup_changes()) << "cgroup_mkdir/rmdir did not attach";
  CgroupSandbox sandbox;
  std::vector<std::string> made;
  probes.take_cgroups_made(made);
  made.clear();
  const uint64_t changes_before = *probes.cgroup_changes();
  // More than the 256 KiB ring holds (a record is 520 bytes), not drained meanwhile.
  constexpr int kCgroups = 700;
  for (int i = 0; i < kCgroups; ++i) sandbox.create("burst/c" + std::to_string(i));
  const uint64_t counted = *probes.cgroup_changes() - changes_before;
  probes.take_cgroups_made(made);
  size_t ours = 0;
  const auto& h = sandbox.hierarchies().front();
  for (int i = 0; i < kCgroups; ++i)
    if (contains(made, kernel_path(sandbox, h, "burst/c" + std::to_string(i)))) ++ours;
  EXPECT_LT(ours, size_t(kCgroups)) << "the ring did not fill: the test proves nothing";
  EXPECT_GT(ours, 0u);
  // Every one of ours is either in the ring or counted (other cgroups on the host may add counts
  // and records, never take them away).
  EXPECT_GE(ours + counted, size_t(kCgroups)) << ours << " in the ring, " << counted << " counted";
}
