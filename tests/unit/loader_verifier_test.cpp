// Every BPF object loads under this kernel's verifier, in each attach flavour.
#include <gtest/gtest.h>

#include <algorithm>

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
    ::testing::Combine(::testing::Values("cpu", "oom", "proc"),
                       ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint)),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" + to_string(std::get<1>(info.param));
    });

class CpuPrograms : public ::testing::TestWithParam<AttachKind> {};

// The cpu family's flavour holds every program the loader attaches: sched_switch (CPU time,
// run-queue latency, preemptions) and cgroup moves.
TEST_P(CpuPrograms, every_program_of_the_flavour_loads) {
  const AttachKind kind = GetParam();
  const std::string suffix = kind == AttachKind::TpBtf ? "_btf" : "_raw";
  std::vector<std::string> loaded;
  const std::string error = try_load_family("cpu", kind, &loaded);
  ASSERT_EQ(error, "") << error;
  for (const char* name : {"sched_switch", "cgroup_attach"})
    EXPECT_NE(std::find(loaded.begin(), loaded.end(), name + suffix), loaded.end())
        << name << suffix << " did not load";
  EXPECT_EQ(loaded.size(), 2u) << "only one flavour is loaded at a time";
}

INSTANTIATE_TEST_SUITE_P(BothFlavours, CpuPrograms,
                         ::testing::Values(AttachKind::TpBtf, AttachKind::RawTracepoint),
                         [](const auto& info) { return to_string(info.param); });

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
}
