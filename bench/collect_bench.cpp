// bench/collect_bench — what does it cost to collect per-cgroup CPU time for N containers?
//
//   A. podgauge: one batch read of the in-kernel per-cgroup map (plus the per-CPU in-flight
//      slices), covering every cgroup of the node at once.
//   B. cAdvisor's way: open/read/close each container's CPU files in cgroupfs
//      (v1: cpuacct.usage, cpuacct.stat, cpuacct.usage_percpu, cpu.stat; v2: cpu.stat),
//      and the minimal variant reading a single usage file per container.
//
// Creates N container cgroups laid out like kubelet's below this process's own cgroup, runs a
// short process in each so the kernel has seen it, then alternates A and B for ROUNDS rounds
// and prints medians and ratios measured side by side. Needs root. Everything is removed on exit.
//
//   collect_bench [--containers N] [--rounds R]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "podgauge/loader/kernel_probes.h"
#include "support/cgroup_sandbox.h"
#include "support/process.h"

namespace {

using podgauge::itest::CgroupSandbox;
using podgauge::itest::ChildProcess;
using podgauge::itest::KubeletNames;
using podgauge::itest::ProcessSpec;
using podgauge::itest::QosClass;
using Clock = std::chrono::steady_clock;

// Reads a whole small file the way a collector does: open, read, close.
size_t read_file(const std::string& path, char* buf, size_t cap) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = ::read(fd, buf, cap);
  ::close(fd);
  return n > 0 ? size_t(n) : 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int containers = 250, rounds = 41;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--containers") containers = std::atoi(argv[i + 1]);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else {
      fprintf(stderr, "usage: collect_bench [--containers N] [--rounds R]\n");
      return 2;
    }
  }
  if (geteuid() != 0) {
    fprintf(stderr, "collect_bench: needs root (loads BPF, creates cgroups)\n");
    return 1;
  }
  CgroupSandbox::Options opt;
  opt.controllers = {"cpu", "cpuacct"};
  CgroupSandbox sandbox(opt);
  const bool v1 = sandbox.has("cpuacct");
  const std::string hier = v1 ? "cpuacct" : "unified";

  // The agent keys by the hierarchy that holds cpuacct (v1) or by v2 ids.
  podgauge::loader::LoaderOptions lo;
  lo.keying = v1 ? podgauge::loader::CgroupKeying::V1Cpuacct
                 : podgauge::loader::CgroupKeying::DefaultHierarchy;
  lo.enable_oom = false;
  podgauge::loader::KernelProbes probes(lo);

  std::vector<std::string> dirs;
  for (int i = 0; i < containers; ++i) {
    const auto uid = KubeletNames::random_pod_uid();
    const auto rel = KubeletNames::systemd_container(QosClass::Burstable, uid, "cri-containerd",
                                                     KubeletNames::random_container_id());
    sandbox.create(rel);
    dirs.push_back(sandbox.path_in(hier, rel).string());
    ProcessSpec spec;
    spec.argv = {"/bin/true"};
    spec.cgroups = sandbox.dirs(rel);
    ChildProcess p(spec);
    p.wait(std::chrono::seconds(10));
  }
  std::vector<std::vector<std::string>> cadvisor_files, single_file;
  for (const auto& d : dirs) {
    if (v1) {
      cadvisor_files.push_back({d + "/cpuacct.usage", d + "/cpuacct.stat",
                                d + "/cpuacct.usage_percpu", d + "/cpu.stat"});
      single_file.push_back({d + "/cpuacct.usage"});
    } else {
      cadvisor_files.push_back({d + "/cpu.stat"});
      single_file.push_back({d + "/cpu.stat"});
    }
  }

  char buf[8192];
  size_t sink = 0, map_entries = 0;
  std::vector<double> batch_us, cad_us, single_us;
  auto time_us = [](auto&& fn) {
    const auto t0 = Clock::now();
    fn();
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  };
  for (int r = 0; r < rounds; ++r) {
    // Alternate the order so drift in machine load hits both sides alike.
    auto a = [&] {
      auto u = probes.read_cpu_usage();
      map_entries = u.size();
      sink += u.size();
    };
    auto b = [&] {
      for (const auto& files : cadvisor_files)
        for (const auto& f : files) sink += read_file(f, buf, sizeof buf);
    };
    auto c = [&] {
      for (const auto& files : single_file)
        for (const auto& f : files) sink += read_file(f, buf, sizeof buf);
    };
    if (r % 2) {
      batch_us.push_back(time_us(a));
      cad_us.push_back(time_us(b));
      single_us.push_back(time_us(c));
    } else {
      single_us.push_back(time_us(c));
      cad_us.push_back(time_us(b));
      batch_us.push_back(time_us(a));
    }
  }
  const double a = median(batch_us), b = median(cad_us), c = median(single_us);
  printf("collect_bench: %d containers (%s), %d rounds, medians\n", containers,
         v1 ? "cgroup v1 cpuacct" : "cgroup v2", rounds);
  printf("  podgauge batch map read (all %zu cgroups of the node): %9.1f us\n", map_entries, a);
  printf("  cgroupfs, cAdvisor's CPU files (%zu per container):     %9.1f us  ratio %.1fx\n",
         cadvisor_files.empty() ? 0 : cadvisor_files[0].size(), b, b / a);
  printf("  cgroupfs, one usage file per container:               %9.1f us  ratio %.1fx\n", c,
         c / a);
  return sink == 0 ? 1 : 0;
}
