#include "podgauge/loader/kernel_probes.h"

#include <fcntl.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "cpu.h"
#include "cpu.skel.h"
#include "oom.h"
#include "oom.skel.h"
#include "loader_detail.h"
#include "podgauge/loader/owned_fd.h"
#include "podgauge/loader/process_probes.h"

namespace podgauge::loader {

// The BPF headers are the one definition of these records; check the C++ view of them.
static_assert(sizeof(pg_cpu_usage) == 16 && offsetof(pg_cpu_usage, slices) == 8);
static_assert(offsetof(pg_cpu_running, tid) == 32 && offsetof(pg_cpu_running, pending_cgroup_id) == 40);
static_assert(offsetof(pg_cpu_running, pending_hist) == 64 &&
              offsetof(pg_cpu_running, pending_preempt) == 64 + sizeof(pg_rq_hist) + 8 &&
              sizeof(pg_cpu_running) == 64 + sizeof(pg_rq_hist) + 8 + 16 + 8);
static_assert(sizeof(pg_rq_hist) == 8 * (PG_RQ_SLOTS + 2) && offsetof(pg_rq_hist, sum_ns) == 8 * PG_RQ_SLOTS);
static_assert(sizeof(pg_preempt_key) == 16 && offsetof(pg_preempt_key, preemptor_cgroup_id) == 8);
static_assert(sizeof(pg_preempt_value) == 8);
static_assert(kRunqueueLatencySlots == PG_RQ_SLOTS && kRunqueueLatencyFirstShift == PG_RQ_FIRST_SHIFT);
static_assert(sizeof(pg_oom_event) == 88);
static_assert(offsetof(pg_oom_event, pid) == 56 && offsetof(pg_oom_event, comm) == 72);

namespace detail {

// Shared pieces (log capture, errors, links, map iteration, counters): loader_detail.h.

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

struct CpuSkelDeleter {
  void operator()(cpu_bpf* s) const { cpu_bpf__destroy(s); }
};
struct OomSkelDeleter {
  void operator()(oom_bpf* s) const { oom_bpf__destroy(s); }
};
struct RingBufferDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};

int enum_value(const btf* b, const char* enum_name, const char* value_name) {
  int id = btf__find_by_name_kind(b, enum_name, BTF_KIND_ENUM);
  if (id < 0) return -1;
  const btf_type* t = btf__type_by_id(b, id);
  const struct btf_enum* e = btf_enum(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i, ++e)
    if (std::strcmp(btf__name_by_offset(b, e->name_off), value_name) == 0) return e->val;
  return -1;
}

bool struct_has_member(const btf* b, const char* type, const char* member) {
  const int id = btf__find_by_name_kind(b, type, BTF_KIND_STRUCT);
  if (id < 0) return false;
  const btf_type* t = btf__type_by_id(b, id);
  const btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i, ++m)
    if (std::strcmp(btf__name_by_offset(b, m->name_off), member) == 0) return true;
  return false;
}

// Whether tracepoint `tp`'s argument #arg (after the hidden context) is a pointer.
bool tracepoint_arg_is_pointer(const btf* b, const std::string& tp, unsigned arg) {
  int id = btf__find_by_name_kind(b, ("btf_trace_" + tp).c_str(), BTF_KIND_TYPEDEF);
  if (id < 0) return false;
  const btf_type* t = btf__type_by_id(b, btf__type_by_id(b, id)->type);  // pointer
  if (!t || !btf_is_ptr(t)) return false;
  t = btf__type_by_id(b, t->type);  // func proto
  if (!t || !btf_is_func_proto(t) || btf_vlen(t) <= arg + 1) return false;
  int param_type = btf__resolve_type(b, btf_params(t)[arg + 1].type);
  return param_type >= 0 && btf_is_ptr(btf__type_by_id(b, param_type));
}

pg_cgroup_key to_bpf_key(CgroupKeying k) {
  switch (k) {
    case CgroupKeying::DefaultHierarchy: return PG_KEY_DEFAULT_HIERARCHY;
    case CgroupKeying::V1Cpuacct: return PG_KEY_V1_CPUACCT;
    case CgroupKeying::V1Cpu: return PG_KEY_V1_CPU;
  }
  return PG_KEY_DEFAULT_HIERARCHY;
}

int v1_subsys_for(CgroupKeying k, const KernelFeatures& f) {
  switch (k) {
    case CgroupKeying::V1Cpuacct: return f.cpuacct_subsys_id;
    case CgroupKeying::V1Cpu: return f.cpu_subsys_id;
    default: return -1;
  }
}

// Whether the kernel accepts an fentry program (a BPF trampoline) on BTF function `btf_id`:
// needs CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, and lockdown or an LSM may refuse it.
bool fentry_loads(int btf_id) {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = __u32(btf_id));
  OwnedFd fd(bpf_prog_load(BPF_PROG_TYPE_TRACING, "pg_fentry_probe", "GPL", insns, 2, &opts));
  return bool(fd);
}

}  // namespace detail

using namespace detail;

std::string to_string(CgroupKeying k) {
  switch (k) {
    case CgroupKeying::DefaultHierarchy: return "v2";
    case CgroupKeying::V1Cpuacct: return "v1-cpuacct";
    case CgroupKeying::V1Cpu: return "v1-cpu";
  }
  return "?";
}

std::string to_string(AttachKind k) {
  switch (k) {
    case AttachKind::TpBtf: return "tp_btf";
    case AttachKind::RawTracepoint: return "raw_tp";
    case AttachKind::Fentry: return "fentry";
    case AttachKind::Kprobe: return "kprobe";
    case AttachKind::NotLoaded: return "not_loaded";
  }
  return "?";
}

KernelFeatures probe_kernel_features() {
  KernelFeatures f;
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    throw LoaderError(
        "this kernel exposes no BTF (/sys/kernel/btf/vmlinux: " + errno_text(errno) +
        ") — podgauge's CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y "
        "(every major distribution kernel since 2021 has it)");
  install_print_once();
  BtfPtr vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux)
    throw LoaderError("cannot parse /sys/kernel/btf/vmlinux: " + errno_text(errno) +
                      " — run as root (reading kernel BTF needs no capability, but the file "
                      "must be readable)");
  f.btf = true;
  f.tp_btf = btf__find_by_name_kind(vmlinux.get(), "btf_trace_sched_switch", BTF_KIND_TYPEDEF) >= 0;
  f.mark_victim_task = tracepoint_arg_is_pointer(vmlinux.get(), "mark_victim", 0);
  const int victim_fn = btf__find_by_name_kind(vmlinux.get(), "mark_oom_victim", BTF_KIND_FUNC);
  f.mark_oom_victim_btf = victim_fn >= 0;
  f.fentry = victim_fn >= 0 && fentry_loads(victim_fn);
  f.sched_info = struct_has_member(vmlinux.get(), "task_struct", "sched_info");
  f.any_context_alloc = btf__find_by_name_kind(vmlinux.get(), "bpf_mem_alloc", BTF_KIND_STRUCT) >= 0;
  f.cpu_subsys_id = enum_value(vmlinux.get(), "cgroup_subsys_id", "cpu_cgrp_id");
  f.cpuacct_subsys_id = enum_value(vmlinux.get(), "cgroup_subsys_id", "cpuacct_cgrp_id");
  f.memory_subsys_id = enum_value(vmlinux.get(), "cgroup_subsys_id", "memory_cgrp_id");
  return f;
}

struct KernelProbes::State {
  LoaderOptions options;
  KernelFeatures features;
  std::unique_ptr<cpu_bpf, CpuSkelDeleter> cpu;
  std::unique_ptr<oom_bpf, OomSkelDeleter> oom;
  std::vector<LinkPtr> links;
  std::unique_ptr<ring_buffer, RingBufferDeleter> oom_ring;
  const std::function<void(const OomKill&)>* on_kill = nullptr;
  int handled = 0;
  OwnedFd stats_fd;
  AttachKind cpu_attach = AttachKind::NotLoaded;
  AttachKind oom_attach = AttachKind::NotLoaded;
  AttachKind attach_attach = AttachKind::NotLoaded;  // cgroup_attach_task
  std::string oom_reason;
  std::string attach_reason;
  AttachKind mkdir_attach = AttachKind::NotLoaded;  // cgroup_mkdir + cgroup_rmdir
  uint64_t moves_lost_seen = 0;  // cgroup_moves_lost at the last take_cgroup_moves()
  std::string mkdir_reason;
  std::unique_ptr<ring_buffer, RingBufferDeleter> made_ring;  // cgroup_made
  std::vector<std::string>* made_out = nullptr;
  int ncpus = 0;
  std::unordered_map<uint64_t, std::chrono::steady_clock::time_point> forgotten;  // id -> when
};

namespace {

// Chooses the cpu family's flavour before load: tp_btf programs (direct loads) or raw_tp
// programs (probe reads).
void configure_cpu_family(cpu_bpf* s, bool btf, const KernelFeatures& f) {
  bpf_program__set_autoload(s->progs.sched_switch_btf, btf);
  bpf_program__set_autoload(s->progs.sched_switch_raw, !btf);
  bpf_program__set_autoload(s->progs.cgroup_attach_btf, btf);
  bpf_program__set_autoload(s->progs.cgroup_attach_raw, !btf);
  bpf_program__set_autoload(s->progs.cgroup_mkdir_btf, btf);
  bpf_program__set_autoload(s->progs.cgroup_rmdir_btf, btf);
  bpf_program__set_autoload(s->progs.cgroup_mkdir_raw, !btf);
  bpf_program__set_autoload(s->progs.cgroup_rmdir_raw, !btf);
  // Before 6.1 tracing programs may only use preallocated hash maps.
  if (!f.any_context_alloc)
    bpf_map__set_map_flags(s->maps.rq_latency, bpf_map__map_flags(s->maps.rq_latency) & ~BPF_F_NO_PREALLOC);
}

void attach_program(bpf_program* prog, std::vector<LinkPtr>& links, const std::string& what) {
  LinkPtr link(bpf_program__attach(prog));
  if (!link)
    throw LoaderError("cannot attach " + what + ": " + errno_text(errno) +
                      " — the tracepoint may be missing on this kernel");
  links.push_back(std::move(link));
}

}  // namespace

namespace {

// The program of the oom family that records an OOM kill when attached as `kind`.
bpf_program* oom_program(oom_bpf* s, AttachKind kind) {
  switch (kind) {
    case AttachKind::TpBtf: return s->progs.mark_victim_btf;
    case AttachKind::RawTracepoint: return s->progs.mark_victim_raw;
    case AttachKind::Fentry: return s->progs.mark_oom_victim_fentry;
    case AttachKind::Kprobe: return s->progs.mark_oom_victim_kprobe;
    case AttachKind::NotLoaded: break;
  }
  return nullptr;
}

}  // namespace

// Where to catch an OOM kill, best first: the mark_victim tracepoint where it passes the victim
// task (6.8, and stable kernels that took the change), else an fentry and then a kprobe on
// mark_oom_victim(), the function that fires it. Each candidate is loaded and attached in turn;
// the first that attaches wins, and when none does the OOM signal alone is lost.
bool load_oom_family(KernelProbes::State& st, const LoaderOptions& options, int v1_subsys,
                     bool use_btf) {
  std::vector<AttachKind> candidates;
  if (options.oom_attach != AttachKind::NotLoaded) {
    candidates.push_back(options.oom_attach);
  } else {
    if (st.features.mark_victim_task)
      candidates.push_back(use_btf ? AttachKind::TpBtf : AttachKind::RawTracepoint);
    if (st.features.fentry) candidates.push_back(AttachKind::Fentry);
    candidates.push_back(AttachKind::Kprobe);
  }
  std::string reasons;
  for (const AttachKind kind : candidates) {
    std::string why;
    if ((kind == AttachKind::TpBtf || kind == AttachKind::RawTracepoint) && !st.features.mark_victim_task)
      why = "mark_victim passes no task_struct on this kernel (before 6.8)";
    if (kind == AttachKind::Fentry && !st.features.fentry)
      why = st.features.mark_oom_victim_btf ? "this kernel refuses fentry programs"
                                            : "no BTF for mark_oom_victim()";
    if (why.empty()) {
      LogCapture log;
      st.oom.reset(oom_bpf__open_opts(detail::open_options()));
      if (!st.oom) throw LoaderError(load_error("oom", -errno, log));
      st.oom->rodata->cgroup_key = to_bpf_key(options.keying);
      st.oom->rodata->v1_subsys_id = v1_subsys;
      st.oom->rodata->memory_subsys_id = st.features.memory_subsys_id;
      bpf_program* prog = oom_program(st.oom.get(), kind);
      bpf_program* p = nullptr;
      bpf_object__for_each_program(p, st.oom->obj) bpf_program__set_autoload(p, p == prog);
      if (int err = oom_bpf__load(st.oom.get())) {
        why = load_error("oom", err, log);
      } else {
        LinkPtr link(bpf_program__attach(prog));
        if (link) {
          st.links.push_back(std::move(link));
          st.oom_attach = kind;
          st.oom_reason = reasons;  // what was tried before, if anything
          return true;
        }
        why = "cannot attach: " + errno_text(errno);
      }
      st.oom.reset();
    }
    reasons += (reasons.empty() ? "" : "; ") + to_string(kind) + ": " + why;
  }
  st.oom_reason = reasons;
  return false;
}

KernelProbes::KernelProbes(const LoaderOptions& options) : state_(std::make_unique<State>()) {
  auto& st = *state_;
  st.options = options;
  st.features = probe_kernel_features();
  st.ncpus = libbpf_num_possible_cpus();
  if (st.ncpus <= 0) throw LoaderError("cannot count possible CPUs: " + errno_text(st.ncpus));
  const bool use_btf = st.features.tp_btf && !options.force_raw_tracepoints;
  const int v1_subsys = v1_subsys_for(options.keying, st.features);
  if (options.keying != CgroupKeying::DefaultHierarchy && v1_subsys < 0)
    throw LoaderError("cgroup v1 keying " + to_string(options.keying) +
                      " asked for, but this kernel has no such controller");

  if (options.enable_bpf_stats) {
    st.stats_fd = OwnedFd(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!st.stats_fd) fprintf(stderr, "podgauge: cannot enable BPF run-time stats: %s\n", strerror(errno));
  }

  {
    LogCapture log;
    st.cpu.reset(cpu_bpf__open_opts(detail::open_options()));
    if (!st.cpu) throw LoaderError(load_error("cpu", -errno, log));
    st.cpu->rodata->cgroup_key = to_bpf_key(options.keying);
    st.cpu->rodata->v1_subsys_id = v1_subsys;
    configure_cpu_family(st.cpu.get(), use_btf, st.features);
    if (int err = cpu_bpf__load(st.cpu.get())) throw LoaderError(load_error("cpu", err, log));
  }
  attach_program(use_btf ? st.cpu->progs.sched_switch_btf : st.cpu->progs.sched_switch_raw,
                 st.links, "sched_switch");
  st.cpu_attach = use_btf ? AttachKind::TpBtf : AttachKind::RawTracepoint;
  // Optional: without it a task that moves itself keeps charging its old cgroup until it
  // next switches out.
  try {
    attach_program(use_btf ? st.cpu->progs.cgroup_attach_btf : st.cpu->progs.cgroup_attach_raw,
                   st.links, "cgroup_attach_task");
    st.attach_attach = st.cpu_attach;
  } catch (const LoaderError& e) {
    st.attach_reason = e.what();
  }
  // Optional: without it the agent walks the cgroup trees on a timer.
  try {
    attach_program(use_btf ? st.cpu->progs.cgroup_mkdir_btf : st.cpu->progs.cgroup_mkdir_raw, st.links,
                   "cgroup_mkdir");
    attach_program(use_btf ? st.cpu->progs.cgroup_rmdir_btf : st.cpu->progs.cgroup_rmdir_raw, st.links,
                   "cgroup_rmdir");
    auto handle_made = +[](void* ctx, void* data, size_t size) -> int {
      auto* st = static_cast<KernelProbes::State*>(ctx);
      if (size < offsetof(pg_cgroup_made, path) || st->made_out == nullptr) return 0;
      pg_cgroup_made e;
      std::memcpy(&e, data, std::min(size, sizeof e));
      const size_t len = std::min<size_t>(e.len, std::min(size - offsetof(pg_cgroup_made, path), sizeof e.path));
      st->made_out->emplace_back(e.path, len);
      return 0;
    };
    st.made_ring.reset(ring_buffer__new(bpf_map__fd(st.cpu->maps.cgroup_made), handle_made, &st, nullptr));
    if (!st.made_ring) throw LoaderError("cannot open the cgroup_made ring buffer: " + errno_text(errno));
    st.mkdir_attach = st.cpu_attach;
  } catch (const LoaderError& e) {
    st.mkdir_reason = e.what();
  }

  if (!options.enable_oom) {
    st.oom_reason = "disabled";
  } else if (load_oom_family(st, options, v1_subsys, use_btf)) {
    auto handle_oom_record = +[](void* ctx, void* data, size_t size) -> int {
      auto* st = static_cast<KernelProbes::State*>(ctx);
      if (size < sizeof(pg_oom_event) || st->on_kill == nullptr) return 0;
      pg_oom_event e;
      std::memcpy(&e, data, sizeof e);
      const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
      const uint64_t unlimited_pages = uint64_t(INT64_MAX) / page;  // PAGE_COUNTER_MAX
      OomKill k;
      k.ktime_ns = e.ts_ns;
      k.memcg_id = e.memcg_id;
      k.dfl_cgroup_id = e.dfl_cgroup_id;
      k.cpu_cgroup_id = e.cpu_cgroup_id;
      k.rss_bytes = e.rss_pages * page;
      k.memcg_usage_bytes = e.memcg_usage_pages * page;
      k.memcg_limit_bytes = e.memcg_limit_pages >= unlimited_pages ? 0 : e.memcg_limit_pages * page;
      k.pid = e.pid;
      k.tgid = e.tgid;
      k.oom_score_adj = e.oom_score_adj;
      k.comm.assign(e.comm, strnlen(e.comm, sizeof e.comm));
      (*st->on_kill)(k);
      ++st->handled;
      return 0;
    };
    st.oom_ring.reset(ring_buffer__new(bpf_map__fd(st.oom->maps.oom_events), handle_oom_record,
                                       &st, nullptr));
    if (!st.oom_ring) throw LoaderError("cannot open the OOM ring buffer: " + errno_text(errno));
  }
}

KernelProbes::~KernelProbes() = default;

const KernelFeatures& KernelProbes::features() const { return state_->features; }

bool KernelProbes::oom_loaded() const { return state_->oom_attach != AttachKind::NotLoaded; }

std::optional<uint64_t> KernelProbes::cgroup_changes() const {
  const auto& st = *state_;
  if (st.mkdir_attach == AttachKind::NotLoaded) return std::nullopt;
  return __atomic_load_n(&st.cpu->bss->cgroup_changes, __ATOMIC_RELAXED);
}

size_t KernelProbes::take_cgroups_made(std::vector<std::string>& paths) {
  auto& st = *state_;
  if (st.mkdir_attach == AttachKind::NotLoaded || !st.made_ring) return 0;
  const size_t before = paths.size();
  st.made_out = &paths;
  const int n = ring_buffer__consume(st.made_ring.get());
  st.made_out = nullptr;
  if (n < 0) throw LoaderError("cannot read the cgroup_made ring buffer: " + errno_text(-n));
  return paths.size() - before;
}

std::optional<std::vector<int32_t>> KernelProbes::take_cgroup_moves() {
  auto& st = *state_;
  if (st.attach_attach == AttachKind::NotLoaded) return std::nullopt;
  // Read before draining: a move lost after this read is seen by the next call.
  const uint64_t lost = __atomic_load_n(&st.cpu->bss->cgroup_moves_lost, __ATOMIC_RELAXED);
  const int fd = bpf_map__fd(st.cpu->maps.cgroup_moves);
  std::vector<int32_t> out;
  constexpr __u32 chunk = 256;
  __u32 keys[chunk], values[chunk], in_token = 0, out_token = 0;
  bool first = true, batch_ok = true;
  while (true) {
    __u32 count = chunk;
    const int err = bpf_map_lookup_and_delete_batch(fd, first ? nullptr : &in_token, &out_token, keys, values,
                                                    &count, nullptr);
    for (__u32 i = 0; i < count; ++i) out.push_back(int32_t(keys[i]));
    if (err != 0) {
      batch_ok = errno == ENOENT;  // ENOENT: no more entries
      break;
    }
    in_token = out_token;
    first = false;
  }
  if (!batch_ok) {  // kernels without batch ops on hashes, or a bucket fuller than a chunk
    __u32 key = 0;
    while (bpf_map_get_next_key(fd, nullptr, &key) == 0 && bpf_map_delete_elem(fd, &key) == 0)
      out.push_back(int32_t(key));
  }
  const bool complete = lost == st.moves_lost_seen;
  st.moves_lost_seen = lost;
  if (!complete) return std::nullopt;
  return out;
}

std::vector<ProgramStatus> KernelProbes::programs() const {
  const auto& st = *state_;
  std::vector<ProgramStatus> out;
  ProgramStatus cpu{"cpu", "sched_switch", st.cpu_attach, "", 0, 0};
  const bpf_program* cp = st.cpu_attach == AttachKind::TpBtf ? st.cpu->progs.sched_switch_btf
                                                             : st.cpu->progs.sched_switch_raw;
  cpu.run_time_ns = prog_info_field(cp, true);
  cpu.run_count = prog_info_field(cp, false);
  out.push_back(cpu);
  ProgramStatus attach{"cpu", "cgroup_attach_task", st.attach_attach, st.attach_reason, 0, 0};
  const bpf_program* ap = st.attach_attach == AttachKind::TpBtf ? st.cpu->progs.cgroup_attach_btf
                                                                : st.cpu->progs.cgroup_attach_raw;
  attach.run_time_ns = prog_info_field(ap, true);
  attach.run_count = prog_info_field(ap, false);
  out.push_back(attach);
  for (const char* name : {"cgroup_mkdir", "cgroup_rmdir"}) {
    ProgramStatus p{"cpu", name, st.mkdir_attach, st.mkdir_reason, 0, 0};
    const bool btf = st.mkdir_attach == AttachKind::TpBtf, mkdir = std::string_view(name) == "cgroup_mkdir";
    const bpf_program* prog = mkdir ? (btf ? st.cpu->progs.cgroup_mkdir_btf : st.cpu->progs.cgroup_mkdir_raw)
                                    : (btf ? st.cpu->progs.cgroup_rmdir_btf : st.cpu->progs.cgroup_rmdir_raw);
    p.run_time_ns = prog_info_field(prog, true);
    p.run_count = prog_info_field(prog, false);
    out.push_back(p);
  }
  const bool on_function = st.oom_attach == AttachKind::Fentry || st.oom_attach == AttachKind::Kprobe;
  ProgramStatus oom{"oom", on_function ? "mark_oom_victim" : "mark_victim", st.oom_attach,
                    st.oom_reason, 0, 0};
  if (st.oom) {
    const bpf_program* op = oom_program(st.oom.get(), st.oom_attach);
    oom.run_time_ns = prog_info_field(op, true);
    oom.run_count = prog_info_field(op, false);
  }
  out.push_back(oom);
  return out;
}

namespace {
std::vector<pg_cpu_running> read_running(const bpf_map* cpu_running, int ncpus) {
  std::vector<pg_cpu_running> running(static_cast<size_t>(ncpus));
  __u32 zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(cpu_running), &zero, running.data()) != 0) running.clear();
  return running;
}

// se.sum_exec_runtime of a thread: the first field of /proc/<tid>/schedstat. 0 when it is gone
// (or the agent does not share the host's pid namespace).
uint64_t thread_runtime_ns(uint32_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%u/schedstat", tid);
  OwnedFd fd(open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  char buf[96];
  const ssize_t n = read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return strtoull(buf, nullptr, 10);
}
}  // namespace

std::vector<FamilyCounters> KernelProbes::counters() const {
  const auto& st = *state_;
  std::vector<FamilyCounters> out{read_counters("cpu", st.cpu->maps.pg_stats, st.ncpus)};
  // sched_switch counts its runs in the per-CPU entry it holds anyway, not in pg_stats.
  for (const auto& r : read_running(st.cpu->maps.cpu_running, st.ncpus)) out[0].events += r.switches;
  if (st.oom) out.push_back(read_counters("oom", st.oom->maps.pg_stats, st.ncpus));
  return out;
}


std::vector<CgroupCpuUsage> KernelProbes::read_cpu_usage() const {
  const auto& st = *state_;
  const int fd = bpf_map__fd(st.cpu->maps.cpu_usage);
  const size_t ncpus = size_t(st.ncpus);
  std::unordered_map<uint64_t, CgroupCpuUsage> by_id;
  auto add = [&](uint64_t id, const pg_cpu_usage* per_cpu) {
    auto& u = by_id[id];
    u.cgroup_id = id;
    for (size_t c = 0; c < ncpus; ++c) {
      u.on_cpu_ns += per_cpu[c].on_cpu_ns;
      u.slices += per_cpu[c].slices;
    }
  };

  for_each_entry<uint64_t, pg_cpu_usage>(fd, ncpus, add);

  // Each CPU's finished slices not yet folded into the hash, and the slice in progress: a CPU
  // hog alone on a CPU may not switch out for seconds. The kernel keeps the running thread's
  // runtime current at every tick; /proc/<tid>/schedstat shows it.
  for (const auto& r : read_running(st.cpu->maps.cpu_running, st.ncpus)) {
    if (r.pending_cgroup_id && r.pending_usage.slices) {
      auto& u = by_id[r.pending_cgroup_id];
      u.cgroup_id = r.pending_cgroup_id;
      u.on_cpu_ns += r.pending_usage.on_cpu_ns;
      u.slices += r.pending_usage.slices;
    }
    if (r.cgroup_id == 0 || r.tid == 0) continue;
    const uint64_t runtime = thread_runtime_ns(r.tid);
    if (runtime > r.start_runtime_ns) {
      auto& u = by_id[r.cgroup_id];
      u.cgroup_id = r.cgroup_id;
      u.on_cpu_ns += runtime - r.start_runtime_ns;
    }
  }

  std::vector<CgroupCpuUsage> out;
  out.reserve(by_id.size());
  for (auto& [id, u] : by_id) out.push_back(u);
  return out;
}

std::vector<CgroupRunqueueLatency> KernelProbes::read_runqueue_latency() const {
  const auto& st = *state_;
  const size_t ncpus = size_t(st.ncpus);
  std::vector<CgroupRunqueueLatency> out;
  for_each_entry<uint64_t, pg_rq_hist>(
      bpf_map__fd(st.cpu->maps.rq_latency), ncpus, [&](uint64_t id, const pg_rq_hist* per_cpu) {
        CgroupRunqueueLatency h;
        h.cgroup_id = id;
        for (size_t c = 0; c < ncpus; ++c) {
          for (size_t i = 0; i < kRunqueueLatencySlots; ++i) h.slots[i] += per_cpu[c].slots[i];
          h.sum_ns += per_cpu[c].sum_ns;
          h.count += per_cpu[c].count;
        }
        out.push_back(h);
      });
  for (const auto& r : read_running(st.cpu->maps.cpu_running, st.ncpus)) {
    if (!r.pending_cgroup_id || !r.pending_hist.count) continue;
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const auto& h) { return h.cgroup_id == r.pending_cgroup_id; });
    if (it == out.end()) it = out.insert(out.end(), CgroupRunqueueLatency{r.pending_cgroup_id, {}, 0, 0});
    for (size_t i = 0; i < kRunqueueLatencySlots; ++i) it->slots[i] += r.pending_hist.slots[i];
    it->sum_ns += r.pending_hist.sum_ns;
    it->count += r.pending_hist.count;
  }
  return out;
}

std::vector<CgroupPreemptions> KernelProbes::read_preemptions() const {
  std::vector<CgroupPreemptions> out;
  for_each_entry<pg_preempt_key, pg_preempt_value>(
      bpf_map__fd(state_->cpu->maps.preemptions), 1,
      [&](const pg_preempt_key& k, const pg_preempt_value* v) {
        out.push_back({k.victim_cgroup_id, k.preemptor_cgroup_id, v->count});
      });
  // Each CPU's latest pair counts in its running entry until the CPU sees another pair.
  for (const auto& r : read_running(state_->cpu->maps.cpu_running, state_->ncpus)) {
    const pg_preempt_key& k = r.pending_preempt;
    if (!r.pending_preempts) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const CgroupPreemptions& p) {
      return p.victim_cgroup_id == k.victim_cgroup_id && p.preemptor_cgroup_id == k.preemptor_cgroup_id;
    });
    if (it == out.end()) it = out.insert(out.end(), {k.victim_cgroup_id, k.preemptor_cgroup_id, 0});
    it->count += r.pending_preempts;
  }
  return out;
}

void KernelProbes::forget_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  if (cgroup_ids.empty()) return;
  auto& st = *state_;
  const auto& cpu = *st.cpu;
  // A CPU's pending slices and preemption pair may still name a removed cgroup and land in the
  // hashes after this call. Ids stay here for a while, deleted again at every call, so such
  // late entries do not stay for good.
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(st.forgotten, [&](const auto& f) { return now - f.second > std::chrono::minutes(5); });
  for (uint64_t id : cgroup_ids) st.forgotten[id] = now;
  std::vector<uint64_t> ids;
  ids.reserve(st.forgotten.size());
  for (const auto& [id, when] : st.forgotten) ids.push_back(id);
  for (int fd : {bpf_map__fd(cpu.maps.cpu_usage), bpf_map__fd(cpu.maps.rq_latency)})
    for (uint64_t id : ids) bpf_map_delete_elem(fd, &id);
  const std::unordered_set<uint64_t> gone(ids.begin(), ids.end());
  std::vector<pg_preempt_key> stale;
  for_each_entry<pg_preempt_key, pg_preempt_value>(
      bpf_map__fd(cpu.maps.preemptions), 1, [&](const pg_preempt_key& k, const pg_preempt_value*) {
        if (gone.count(k.victim_cgroup_id) || gone.count(k.preemptor_cgroup_id)) stale.push_back(k);
      });
  for (const auto& k : stale) bpf_map_delete_elem(bpf_map__fd(cpu.maps.preemptions), &k);
}

std::array<double, kRunqueueLatencySlots - 1> runqueue_latency_bounds_seconds() {
  std::array<double, kRunqueueLatencySlots - 1> b{};
  for (size_t k = 0; k < b.size(); ++k)
    b[k] = double(uint64_t(1) << (kRunqueueLatencyFirstShift + k)) / 1e9;
  return b;
}

int KernelProbes::poll_oom_kills(int timeout_ms, const std::function<void(const OomKill&)>& on_kill) {
  auto& st = *state_;
  if (!st.oom_ring) {
    if (timeout_ms > 0) usleep(useconds_t(timeout_ms) * 1000);
    return 0;
  }
  st.on_kill = &on_kill;
  st.handled = 0;
  int err = ring_buffer__poll(st.oom_ring.get(), timeout_ms);
  st.on_kill = nullptr;
  if (err < 0 && err != -EINTR) throw LoaderError("polling the OOM ring buffer: " + errno_text(err));
  return st.handled;
}

std::string try_load_family(const std::string& family, AttachKind kind,
                            std::vector<std::string>* loaded) {
  install_print_once();
  KernelFeatures f = probe_kernel_features();
  LogCapture log;
  const bool btf = kind == AttachKind::TpBtf;
  int err = 0;
  if (family == "cpu") {
    std::unique_ptr<cpu_bpf, CpuSkelDeleter> s(cpu_bpf__open_opts(detail::open_options()));
    if (!s) return load_error("cpu", -errno, log);
    s->rodata->cgroup_key = PG_KEY_V1_CPUACCT;
    s->rodata->v1_subsys_id = f.cpuacct_subsys_id;
    configure_cpu_family(s.get(), btf, f);
    err = cpu_bpf__load(s.get());
    if (!err) list_loaded(s->obj, loaded);
  } else if (family == "oom") {
    std::unique_ptr<oom_bpf, OomSkelDeleter> s(oom_bpf__open_opts(detail::open_options()));
    if (!s) return load_error("oom", -errno, log);
    s->rodata->memory_subsys_id = f.memory_subsys_id;
    bpf_program* prog = oom_program(s.get(), kind);
    bpf_program* p = nullptr;
    bpf_object__for_each_program(p, s->obj) bpf_program__set_autoload(p, p == prog);
    err = oom_bpf__load(s.get());
    if (!err) list_loaded(s->obj, loaded);
  } else if (family == "mem") {
    return try_load_memory_family(kind, loaded);
  } else if (family == "proc") {
    return try_load_process_family(kind, loaded);
  } else {
    return "unknown BPF family " + family;
  }
  return err ? load_error(family, err, log) : "";
}

}  // namespace podgauge::loader
