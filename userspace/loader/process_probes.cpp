#include "podgauge/loader/process_probes.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <unordered_map>

#include "loader_detail.h"
#include "proc.h"
#include "proc.skel.h"

namespace podgauge::loader {

static_assert(sizeof(pg_proc_counts) == 32 && offsetof(pg_proc_counts, exits_signaled) == 24);
static_assert(sizeof(pg_proc_bucket) == 16);
static_assert(sizeof(pg_proc_exit) == 80);
static_assert(offsetof(pg_proc_exit, pid) == 32 && offsetof(pg_proc_exit, flags) == 60 &&
              offsetof(pg_proc_exit, comm) == 64);

using namespace detail;

namespace {

struct ProcSkelDeleter {
  void operator()(proc_bpf* s) const { proc_bpf__destroy(s); }
};
using ProcSkel = std::unique_ptr<proc_bpf, ProcSkelDeleter>;
struct RingBufferDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};

struct Flavour {
  bpf_program* fork;
  bpf_program* exec;
  bpf_program* exit;
};

Flavour flavour(proc_bpf* s, bool btf) {
  if (btf)
    return {s->progs.sched_process_fork_btf, s->progs.sched_process_exec_btf,
            s->progs.sched_process_exit_btf};
  return {s->progs.sched_process_fork_raw, s->progs.sched_process_exec_raw,
          s->progs.sched_process_exit_raw};
}

void choose_flavour(proc_bpf* s, bool btf) {
  for (bool b : {true, false}) {
    const Flavour f = flavour(s, b);
    for (bpf_program* p : {f.fork, f.exec, f.exit}) bpf_program__set_autoload(p, b == btf);
  }
}

}  // namespace

void decode_exit_status(uint32_t raw, ProcessExit& out) {
  out.signal = int(raw & 0x7f);
  out.core_dumped = (raw & 0x80) != 0;
  out.exit_code = out.signal ? 0 : int((raw >> 8) & 0xff);
}

struct ProcessProbes::State {
  ProcessProbeOptions options;
  int ncpus = 0;
  ProcSkel skel;
  std::vector<LinkPtr> links;
  AttachKind attach = AttachKind::NotLoaded;
  std::unique_ptr<ring_buffer, RingBufferDeleter> ring;
  const std::function<void(const ProcessExit&)>* on_exit = nullptr;
  int handled = 0;
};

ProcessProbes::ProcessProbes(const ProcessProbeOptions& options)
    : state_(std::make_unique<State>()) {
  auto& st = *state_;
  install_print_once();
  st.options = options;
  const KernelFeatures features = probe_kernel_features();
  st.ncpus = libbpf_num_possible_cpus();
  if (st.ncpus <= 0) throw LoaderError("cannot count possible CPUs: " + errno_text(st.ncpus));
  const bool btf = features.tp_btf && !options.force_raw_tracepoints;
  const int v1_subsys = v1_subsys_for(options.keying, features);
  if (options.keying != CgroupKeying::DefaultHierarchy && v1_subsys < 0)
    throw LoaderError("cgroup v1 keying " + to_string(options.keying) +
                      " asked for, but this kernel has no such controller");
  {
    LogCapture log;
    st.skel.reset(proc_bpf__open_opts(detail::open_options()));
    if (!st.skel) throw LoaderError(load_error("proc", -errno, log));
    st.skel->rodata->cgroup_key = to_bpf_key(options.keying);
    st.skel->rodata->v1_subsys_id = v1_subsys;
    st.skel->rodata->exit_rate_per_sec = options.exit_rate_per_sec;
    st.skel->rodata->exit_burst = options.exit_burst;
    choose_flavour(st.skel.get(), btf);
    if (int err = proc_bpf__load(st.skel.get())) throw LoaderError(load_error("proc", err, log));
  }
  const Flavour f = flavour(st.skel.get(), btf);
  for (auto [prog, name] : {std::pair{f.fork, "sched_process_fork"},
                            {f.exec, "sched_process_exec"},
                            {f.exit, "sched_process_exit"}}) {
    LinkPtr link(bpf_program__attach(prog));
    if (!link)
      throw LoaderError(std::string("cannot attach ") + name + ": " + errno_text(errno) +
                        " — the tracepoint may be missing on this kernel");
    st.links.push_back(std::move(link));
  }
  st.attach = btf ? AttachKind::TpBtf : AttachKind::RawTracepoint;

  auto handle = +[](void* ctx, void* data, size_t size) -> int {
    auto* st = static_cast<ProcessProbes::State*>(ctx);
    if (size < sizeof(pg_proc_exit) || st->on_exit == nullptr) return 0;
    pg_proc_exit e;
    std::memcpy(&e, data, sizeof e);
    ProcessExit x;
    x.ktime_ns = e.ts_ns;
    x.start_ktime_ns = e.start_ns;
    x.cgroup_id = e.cgroup_id;
    x.cpu_ns = e.cpu_ns;
    x.pid = e.pid;
    x.tgid = e.tgid;
    x.ppid = e.ppid;
    decode_exit_status(e.exit_code, x);
    x.pid_ns_inum = e.pid_ns_inum;
    x.ns_pid = e.ns_pid;
    x.ns_level = e.ns_level;
    x.pid_ns_init = (e.flags & PG_PROC_EXIT_NS_INIT) != 0;
    x.comm.assign(e.comm, strnlen(e.comm, sizeof e.comm));
    (*st->on_exit)(x);
    ++st->handled;
    return 0;
  };
  st.ring.reset(ring_buffer__new(bpf_map__fd(st.skel->maps.proc_exits), handle, &st, nullptr));
  if (!st.ring) throw LoaderError("cannot open the process exit ring buffer: " + errno_text(errno));
}

ProcessProbes::~ProcessProbes() = default;

std::vector<ProgramStatus> ProcessProbes::programs() const {
  const auto& st = *state_;
  const Flavour f = flavour(st.skel.get(), st.attach == AttachKind::TpBtf);
  std::vector<ProgramStatus> out;
  for (auto [prog, name] : {std::pair{f.fork, "sched_process_fork"},
                            {f.exec, "sched_process_exec"},
                            {f.exit, "sched_process_exit"}})
    out.push_back(
        {"proc", name, st.attach, "", prog_info_field(prog, true), prog_info_field(prog, false)});
  return out;
}

FamilyCounters ProcessProbes::counters() const {
  return read_counters("proc", state_->skel->maps.pg_stats, state_->ncpus);
}

std::vector<CgroupProcessCounts> ProcessProbes::read_counts() const {
  const auto& st = *state_;
  const size_t ncpus = size_t(st.ncpus);
  std::vector<CgroupProcessCounts> out;
  for_each_entry<uint64_t, pg_proc_counts>(bpf_map__fd(st.skel->maps.proc_counts), ncpus,
                                           [&](uint64_t id, const pg_proc_counts* per_cpu) {
                                             CgroupProcessCounts c;
                                             c.cgroup_id = id;
                                             for (size_t i = 0; i < ncpus; ++i) {
                                               c.forks += per_cpu[i].forks;
                                               c.execs += per_cpu[i].execs;
                                               c.exits += per_cpu[i].exits;
                                               c.exits_signaled += per_cpu[i].exits_signaled;
                                             }
                                             out.push_back(c);
                                           });
  return out;
}

void ProcessProbes::forget_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  for (int fd :
       {bpf_map__fd(state_->skel->maps.proc_counts), bpf_map__fd(state_->skel->maps.exit_budget)})
    for (uint64_t id : cgroup_ids) bpf_map_delete_elem(fd, &id);
}

int ProcessProbes::poll_exits(int timeout_ms,
                              const std::function<void(const ProcessExit&)>& on_exit) {
  auto& st = *state_;
  st.on_exit = &on_exit;
  st.handled = 0;
  int err = ring_buffer__poll(st.ring.get(), timeout_ms);
  // Most records are submitted without a wakeup (bpf/proc.bpf.c): collect them every poll.
  if (err >= 0) err = ring_buffer__consume(st.ring.get());
  st.on_exit = nullptr;
  if (err < 0 && err != -EINTR)
    throw LoaderError("polling the process exit ring buffer: " + errno_text(err));
  return st.handled;
}

std::string try_load_process_family(AttachKind kind, std::vector<std::string>* loaded) {
  install_print_once();
  const KernelFeatures f = probe_kernel_features();
  LogCapture log;
  ProcSkel s(proc_bpf__open_opts(detail::open_options()));
  if (!s) return load_error("proc", -errno, log);
  // v1 keying exercises the longer pointer chase.
  s->rodata->cgroup_key = PG_KEY_V1_CPUACCT;
  s->rodata->v1_subsys_id = f.cpuacct_subsys_id;
  choose_flavour(s.get(), kind == AttachKind::TpBtf);
  if (int err = proc_bpf__load(s.get())) return load_error("proc", err, log);
  if (loaded) {
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, s->obj) {
      if (bpf_program__fd(prog) >= 0) loaded->push_back(bpf_program__name(prog));
    }
  }
  return "";
}

}  // namespace podgauge::loader
