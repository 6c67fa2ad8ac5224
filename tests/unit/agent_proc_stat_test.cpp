// /proc/<pid>/stat and status parsing, including command names chosen to break parsers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>
#include <string>

#include "podgauge/agent/proc_stat.h"
#include "podgauge/agent/process_scan.h"
#include "podgauge/loader/process_probes.h"

using namespace podgauge::agent;
using podgauge::loader::decode_exit_status;

namespace {

std::string stat_line(const std::string& comm) {
  // Fields 3..24 as a kernel writes them: state R, ppid 7, utime 120, stime 30, start 4242, rss
  // 512.
  return "1234 (" + comm +
         ") R 7 1234 1234 0 -1 4194560 100 0 0 0 120 30 0 0 20 0 1 0 4242 1000000 512 "
         "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace

TEST(ProcStat, parses_the_fields_podgauge_uses) {
  auto st = parse_proc_stat(stat_line("nginx"));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 1234);
  EXPECT_EQ(st->comm, "nginx");
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 7);
  EXPECT_EQ(st->utime_ticks, 120u);
  EXPECT_EQ(st->stime_ticks, 30u);
  EXPECT_EQ(st->start_ticks, 4242u);
  EXPECT_EQ(st->rss_pages, 512);
}

TEST(ProcStat, comm_with_spaces_parentheses_and_newlines_stays_one_field) {
  for (const std::string comm :
       {"a b", ") R 99 (", "x) S 1 1", "(", ")", "new\nline", "((()))", ""}) {
    auto st = parse_proc_stat(stat_line(comm));
    ASSERT_TRUE(st) << "comm '" << comm << "'";
    EXPECT_EQ(st->comm, comm);
    EXPECT_EQ(st->ppid, 7) << "comm '" << comm << "' shifted the fields";
    EXPECT_EQ(st->utime_ticks, 120u);
  }
}

TEST(ProcStat, rejects_truncated_and_garbled_input) {
  const std::string good = stat_line("ok");
  for (size_t cut : {0ul, 3ul, 8ul, 20ul, 60ul})
    EXPECT_FALSE(parse_proc_stat(good.substr(0, cut))) << cut;
  EXPECT_FALSE(parse_proc_stat("abc (x) R 1 1 1"));
  EXPECT_FALSE(parse_proc_stat(
      "-5 (x) R 7 1234 1234 0 -1 4194560 100 0 0 0 120 30 0 0 20 0 1 0 4242 1 512"));
  std::string bad_number = good;
  bad_number.replace(bad_number.find(" 120 "), 5, " 1x0 ");
  EXPECT_FALSE(parse_proc_stat(bad_number));
}

// A real process renames itself to something hostile; the kernel's own file must parse.
TEST(ProcStat, a_real_process_with_a_hostile_comm_parses) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_NAME, ") Z 1 (\n x", 0, 0, 0);
    char c = 'x';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto st = parse_proc_stat(read_file("/proc/" + std::to_string(child) + "/stat"));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, child);
  EXPECT_EQ(st->comm, ") Z 1 (\n x");
  EXPECT_EQ(st->ppid, getpid());
  // Between its write and pause() it may still be running.
  EXPECT_TRUE(st->state == 'S' || st->state == 'R') << st->state;
}

TEST(ProcStatus, nspid_lists_the_pid_in_each_namespace) {
  EXPECT_EQ(parse_nspid("Name:\tsh\nNSpid:\t4711\t1\nNSpgid:\t4711\t1\n"),
            (std::vector<uint32_t>{4711, 1}));
  EXPECT_EQ(parse_nspid("NSpid:\t42\n"), (std::vector<uint32_t>{42}));
  EXPECT_TRUE(parse_nspid("Name:\tsh\n").empty());
  EXPECT_TRUE(parse_nspid("NSpid:\t4x\n").empty());
  // The real file of this process: in the host namespace, one entry, our own pid.
  EXPECT_EQ(parse_nspid(read_file("/proc/self/status")),
            (std::vector<uint32_t>{uint32_t(getpid())}));
}

TEST(RuntimeProcess, shims_and_runtimes_are_recognised_by_comm_or_executable) {
  EXPECT_EQ(runtime_process_kind("containerd-shim", ""), "containerd-shim");
  EXPECT_EQ(runtime_process_kind("bash", "containerd-shim-runc-v2"), "containerd-shim");
  EXPECT_EQ(runtime_process_kind("docker-containe", ""), "containerd-shim");
  EXPECT_EQ(runtime_process_kind("conmon", "conmon"), "conmon");
  EXPECT_EQ(runtime_process_kind("runc:[2:INIT]", "runc"), "runc");
  EXPECT_EQ(runtime_process_kind("dockerd", ""), "dockerd");
  EXPECT_EQ(runtime_process_kind("containerd", "containerd"), "");
  EXPECT_EQ(runtime_process_kind("nginx", "nginx"), "");
}

TEST(ExitStatus, decodes_codes_signals_and_core_dumps_as_wait_does) {
  podgauge::loader::ProcessExit x;
  decode_exit_status(3 << 8, x);
  EXPECT_EQ(x.exit_code, 3);
  EXPECT_EQ(x.signal, 0);
  decode_exit_status(SIGKILL, x);
  EXPECT_EQ(x.exit_code, 0);
  EXPECT_EQ(x.signal, SIGKILL);
  decode_exit_status(SIGSEGV | 0x80, x);
  EXPECT_EQ(x.signal, SIGSEGV);
  EXPECT_TRUE(x.core_dumped);
}

TEST(ProcessScan, finds_this_process_with_its_pid_namespace) {
  const auto all = scan_processes();
  auto self = std::find_if(all.begin(), all.end(), [](const auto& p) { return p.pid == getpid(); });
  ASSERT_NE(self, all.end());
  EXPECT_EQ(self->ppid, getppid());
  EXPECT_GT(self->rss_bytes, 0u);
  EXPECT_EQ(self->pid_ns, host_pid_namespace()) << "tests run in the host's pid namespace";
  EXPECT_EQ(self->ns_pid, uint32_t(getpid()));
}

TEST(ProcessScan, a_scanner_reports_what_a_full_scan_does_on_later_scans_too) {
  ProcessScanner scanner;
  for (int round = 0; round < 3; ++round) {
    const auto all = scanner.scan();
    auto self = std::find_if(all.begin(), all.end(), [](const auto& p) { return p.pid == getpid(); });
    ASSERT_NE(self, all.end()) << "round " << round;
    EXPECT_EQ(self->pid_ns, host_pid_namespace()) << "round " << round;
    EXPECT_EQ(self->ns_pid, uint32_t(getpid())) << "round " << round;
    EXPECT_GT(self->rss_bytes, 0u);
  }
}

// A scanner keeps each process's stat file open and re-reads it: the values are fresh every
// scan, and a process that exits is gone from the next scan (its file is closed).
TEST(ProcessScan, kept_stat_files_read_fresh_values_and_follow_exits) {
  ProcessScanner scanner;
  auto find = [](const std::vector<ProcessSample>& all, pid_t pid) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& p) { return p.pid == pid; });
    return it == all.end() ? std::optional<ProcessSample>() : std::optional<ProcessSample>(*it);
  };
  const auto first = scanner.scan();
  const auto self0 = find(first, getpid());
  ASSERT_TRUE(self0);
  EXPECT_GE(scanner.open_stat_files(), first.size() / 2) << "stat files are kept for the next scan";
  // Burn 150 ms of CPU (the stat file counts clock ticks, 10 ms each).
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
  volatile uint64_t spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
  const auto self1 = find(scanner.scan(), getpid());
  ASSERT_TRUE(self1);
  EXPECT_GE(self1->cpu_ns, self0->cpu_ns + 100'000'000ull) << "a kept file was not read afresh";

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  EXPECT_TRUE(find(scanner.scan(), child)) << "a new process is found";
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(find(scanner.scan(), child)) << "an exited process is still listed";
}
