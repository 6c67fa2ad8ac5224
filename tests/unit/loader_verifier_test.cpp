// Every BPF object loads under this kernel's verifier, in each attach flavour.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "podgauge/loader/kernel_probes.h"

using podgauge::loader::AttachKind;
using podgauge::loader::try_load_family;

class VerifierLoad : public ::testing::TestWithParam<std::tuple<std::string, AttachKind>> {};

TEST_P(VerifierLoad, loads_on_this_kernel) {
  const auto& [family, kind] = GetParam();
  const std::string error = try_load_family(family, kind);
  EXPECT_EQ(error, "") << "family " << family << " (" << to_string(kind)
                       << ") was refused:\n" << error;
}

INSTANTIATE_TEST_SUITE_P(
    AllFamilies, VerifierLoad,
    ::testing::Combine(::testing::Values("cpu", "oom", "mem", "proc"),
                       ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" + to_string(std::get<1>(info.param));
    });

class CpuPrograms : public ::testing::TestWithParam<AttachKind> {};

// The cpu family's flavour holds every program the loader attaches: sched_switch (CPU time,
// run-queue latency, preemptions), cgroup moves, and cgroups made and removed.
TEST_P(CpuPrograms, every_program_of_the_flavour_loads) {
  const AttachKind kind = GetParam();
  const std::string suffix = kind == AttachKind::TpBtf ? "_btf" : "_raw";
  std::vector<std::string> loaded;
  const std::string error = try_load_family("cpu", kind, &loaded);
  ASSERT_EQ(error, "") << error;
  for (const char* name : {"sched_switch", "cgroup_attach", "cgroup_mkdir", "cgroup_rmdir"})
    EXPECT_NE(std::find(loaded.begin(), loaded.end(), name + suffix), loaded.end())
        << name << suffix << " did not load";
  EXPECT_EQ(loaded.size(), 4u) << "only one flavour is loaded at a time";
}

INSTANTIATE_TEST_SUITE_P(BothFlavours, CpuPrograms,
                         ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint),
                         [](const auto& info) { return to_string(info.param); });

class MemPrograms : public ::testing::TestWithParam<AttachKind> {};

// Each kind of reclaim is a begin/end pair; the loader attaches both or neither.
TEST_P(MemPrograms, both_reclaim_pairs_of_the_flavour_load) {
  const AttachKind kind = GetParam();
  const std::string suffix = kind == AttachKind::TpBtf ? "_btf" : "_raw";
  std::vector<std::string> loaded;
  const std::string error = try_load_family("mem", kind, &loaded);
  ASSERT_EQ(error, "") << error;
  for (const char* name : {"memcg_reclaim_begin", "memcg_reclaim_end", "direct_reclaim_begin",
                           "direct_reclaim_end"})
    EXPECT_NE(std::find(loaded.begin(), loaded.end(), name + suffix), loaded.end())
        << name << suffix << " did not load (is the vmscan tracepoint missing?)";
  EXPECT_EQ(loaded.size(), 4u) << "only one flavour is loaded at a time";
}

INSTANTIATE_TEST_SUITE_P(BothFlavours, MemPrograms,
                         ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint),
                         [](const auto& info) { return to_string(info.param); });

// The OOM programs for kernels whose mark_victim passes no task: on mark_oom_victim(), through
// a kprobe or a BPF trampoline. Attaching is proven by the OOM integration test in vmtests.
TEST(OomFunctionPrograms, the_kprobe_loads_alone_under_the_verifier) {
  std::vector<std::string> loaded;
  const std::string error = try_load_family("oom", AttachKind::Kprobe, &loaded);
  ASSERT_EQ(error, "") << error;
  EXPECT_EQ(loaded, std::vector<std::string>{"mark_oom_victim_kprobe"});
}

// Kernels may refuse every trampoline (this project's 6.18 host does, by policy; Debian 6.1 in
// vmtests allows them). The feature probe must tell which, since the loader trusts it to skip
// fentry: where it says yes the real program loads, where it says no the kernel refuses it.
TEST(OomFunctionPrograms, the_fentry_program_loads_exactly_where_the_feature_probe_says) {
  const auto f = podgauge::loader::probe_kernel_features();
  std::vector<std::string> loaded;
  const std::string error = try_load_family("oom", AttachKind::Fentry, &loaded);
  if (f.fentry) {
    ASSERT_EQ(error, "") << "the feature probe said fentry loads, the real program was refused:\n"
                         << error;
    EXPECT_EQ(loaded, std::vector<std::string>{"mark_oom_victim_fentry"});
  } else {
    EXPECT_NE(error, "") << "the feature probe said this kernel refuses fentry, yet it loaded";
    std::cout << "[ INFO ] fentry is refused on this kernel; it is proven in vmtests\n";
  }
}

class ProcPrograms : public ::testing::TestWithParam<AttachKind> {};

// All three lifecycle programs of one flavour load together (the loader attaches all three).
TEST_P(ProcPrograms, fork_exec_and_exit_load_in_each_flavour) {
  const AttachKind kind = GetParam();
  const std::string suffix = kind == AttachKind::TpBtf ? "_btf" : "_raw";
  std::vector<std::string> loaded;
  const std::string error = try_load_family("proc", kind, &loaded);
  ASSERT_EQ(error, "") << error;
  for (const char* name : {"sched_process_fork", "sched_process_exec", "sched_process_exit"})
    EXPECT_NE(std::find(loaded.begin(), loaded.end(), name + suffix), loaded.end())
        << name << suffix << " did not load";
  EXPECT_EQ(loaded.size(), 3u) << "only one flavour is loaded at a time";
}

INSTANTIATE_TEST_SUITE_P(BothFlavours, ProcPrograms,
                         ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint),
                         [](const auto& info) { return to_string(info.param); });

TEST(KernelFeatures, finds_btf_and_the_tracepoints_podgauge_needs) {
  const auto f = podgauge::loader::probe_kernel_features();
  EXPECT_TRUE(f.btf);
  EXPECT_TRUE(f.tp_btf);
  EXPECT_TRUE(f.sched_info) << "run-queue latency needs CONFIG_SCHED_INFO";
  EXPECT_GE(f.memory_subsys_id, 0);
  EXPECT_GE(f.cpuacct_subsys_id, 0);
  EXPECT_NE(f.cpu_subsys_id, f.memory_subsys_id);
  EXPECT_TRUE(f.mark_oom_victim_btf) << "BTF has no mark_oom_victim(): the fentry OOM variant cannot load";
}
