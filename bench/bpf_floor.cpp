// bench/bpf_floor -- COMMAND [ARGS...]
// Attaches an empty tp_btf/sched_switch program, runs COMMAND, and prints the program's
// bpf_stats ns per call over the run: the floor under podgauge's own sched_switch figure from
// bench/agent_overhead.sh, measured under the same load. Needs root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "empty_switch.skel.h"

int main(int argc, char** argv) {
  if (argc < 3 || std::strcmp(argv[1], "--") != 0) {
    std::fprintf(stderr, "usage: bpf_floor -- COMMAND [ARGS...]\n");
    return 2;
  }
  const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (stats_fd < 0) {
    std::fprintf(stderr, "bpf_floor: cannot enable BPF run-time stats: %s — run as root\n",
                 std::strerror(errno));
    return 1;
  }
  empty_switch_bpf* skel = empty_switch_bpf__open_and_load();
  if (!skel || empty_switch_bpf__attach(skel) != 0) {
    std::fprintf(stderr, "bpf_floor: cannot load or attach the empty sched_switch program — run as root on a kernel with BTF\n");
    return 1;
  }
  auto info = [&] {
    bpf_prog_info i{};
    __u32 len = sizeof i;
    bpf_obj_get_info_by_fd(bpf_program__fd(skel->progs.empty_switch), &i, &len);
    return i;
  };
  const bpf_prog_info before = info();
  const pid_t child = fork();
  if (child == 0) {
    execvp(argv[2], argv + 2);
    std::fprintf(stderr, "bpf_floor: cannot run %s: %s\n", argv[2], std::strerror(errno));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  const bpf_prog_info after = info();
  const unsigned long long calls = after.run_cnt - before.run_cnt;
  const unsigned long long ns = after.run_time_ns - before.run_time_ns;
  std::printf("empty sched_switch program: %llu calls, %.1f ns/call\n", calls,
              calls ? double(ns) / double(calls) : 0.0);
  empty_switch_bpf__destroy(skel);
  close(stats_fd);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
