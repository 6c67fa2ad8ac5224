#include "podgauge/loader/memory_probes.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "loader_detail.h"
#include "mem.h"
#include "mem.skel.h"
#include "podgauge/loader/owned_fd.h"

namespace podgauge::loader {

static_assert(sizeof(pg_reclaim_hist) == 8 * (PG_RECLAIM_SLOTS + 2) &&
              offsetof(pg_reclaim_hist, stall_ns) == 8 * PG_RECLAIM_SLOTS);
static_assert(sizeof(pg_reclaim_value) == 2 * sizeof(pg_reclaim_hist) &&
              offsetof(pg_reclaim_value, kind[PG_RECLAIM_DIRECT]) == sizeof(pg_reclaim_hist));
static_assert(sizeof(pg_reclaim_start) == 16);
static_assert(kReclaimStallSlots == PG_RECLAIM_SLOTS &&
              kReclaimStallFirstShift == PG_RECLAIM_FIRST_SHIFT);

namespace {

using detail::errno_text;
using detail::LinkPtr;
using detail::load_error;
using detail::LogCapture;

struct MemSkelDeleter {
  void operator()(mem_bpf* s) const { mem_bpf__destroy(s); }
};
using MemSkelPtr = std::unique_ptr<mem_bpf, MemSkelDeleter>;

// One kind of reclaim: its begin/end program pair in both flavours and its tracepoints.
struct ReclaimPair {
  const char* name;  // "memcg_reclaim"
  const char* begin_tp;
  const char* end_tp;
  bpf_program* begin[2];  // [btf, raw]
  bpf_program* end[2];
};

std::array<ReclaimPair, 2> pairs_of(mem_bpf* s) {
  return {{{"memcg_reclaim",
            "mm_vmscan_memcg_reclaim_begin",
            "mm_vmscan_memcg_reclaim_end",
            {s->progs.memcg_reclaim_begin_btf, s->progs.memcg_reclaim_begin_raw},
            {s->progs.memcg_reclaim_end_btf, s->progs.memcg_reclaim_end_raw}},
           {"direct_reclaim",
            "mm_vmscan_direct_reclaim_begin",
            "mm_vmscan_direct_reclaim_end",
            {s->progs.direct_reclaim_begin_btf, s->progs.direct_reclaim_begin_raw},
            {s->progs.direct_reclaim_end_btf, s->progs.direct_reclaim_end_raw}}}};
}

// Whether the kernel has tracepoint `tp` (its BTF holds the btf_trace_ typedef of every
// tracepoint compiled in).
bool has_tracepoint(const btf* vmlinux, const std::string& tp) {
  return btf__find_by_name_kind(vmlinux, ("btf_trace_" + tp).c_str(), BTF_KIND_TYPEDEF) >= 0;
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

// Enables exactly the flavour `btf` of each pair whose tracepoints exist (`present`).
void configure(mem_bpf* s, bool btf, const std::array<bool, 2>& present) {
  auto pairs = pairs_of(s);
  for (size_t k = 0; k < pairs.size(); ++k)
    for (int f = 0; f < 2; ++f) {
      const bool on = present[k] && (f == 0) == btf;
      bpf_program__set_autoload(pairs[k].begin[f], on);
      bpf_program__set_autoload(pairs[k].end[f], on);
    }
}

std::array<bool, 2> tracepoints_present(std::string* why_missing) {
  std::unique_ptr<btf, BtfDeleter> vmlinux(btf__load_vmlinux_btf());
  std::array<bool, 2> present{true, true};
  if (!vmlinux) return present;  // probe_kernel_features() already insisted on BTF
  const char* tps[2][2] = {{"mm_vmscan_memcg_reclaim_begin", "mm_vmscan_memcg_reclaim_end"},
                           {"mm_vmscan_direct_reclaim_begin", "mm_vmscan_direct_reclaim_end"}};
  for (int k = 0; k < 2; ++k) {
    present[k] =
        has_tracepoint(vmlinux.get(), tps[k][0]) && has_tracepoint(vmlinux.get(), tps[k][1]);
    if (!present[k] && why_missing)
      why_missing[k] = std::string("this kernel has no ") + tps[k][0] + "/_end tracepoint" +
                       (k == 0 ? " (CONFIG_MEMCG off?)" : "");
  }
  return present;
}

}  // namespace

struct MemoryProbes::State {
  MemSkelPtr skel;
  std::vector<LinkPtr> links;
  AttachKind attach[2] = {AttachKind::NotLoaded, AttachKind::NotLoaded};
  std::string reason[2];
  int ncpus = 0;
};

MemoryProbes::MemoryProbes(const MemoryProbeOptions& options, const KernelFeatures& features)
    : state_(std::make_unique<State>()) {
  auto& st = *state_;
  detail::install_print_once();
  st.ncpus = libbpf_num_possible_cpus();
  const bool btf = features.tp_btf && !options.force_raw_tracepoints;
  const auto present = tracepoints_present(st.reason);
  if (!present[0] && !present[1]) return;
  if (options.keying == MemoryKeying::V1Memory && features.memory_subsys_id < 0)
    throw LoaderError("v1 memory keying asked for, but this kernel has no memory controller");

  LogCapture log;
  st.skel.reset(mem_bpf__open_opts(detail::open_options()));
  if (!st.skel) throw LoaderError(load_error("mem", -errno, log));
  st.skel->rodata->memory_subsys_id =
      options.keying == MemoryKeying::V1Memory ? features.memory_subsys_id : -1;
  configure(st.skel.get(), btf, present);
  if (int err = mem_bpf__load(st.skel.get())) throw LoaderError(load_error("mem", err, log));

  const int f = btf ? 0 : 1;
  auto pairs = pairs_of(st.skel.get());
  for (size_t k = 0; k < pairs.size(); ++k) {
    if (!present[k]) continue;
    // End first: a begin without its end would leave start stamps behind.
    LinkPtr end(bpf_program__attach(pairs[k].end[f]));
    LinkPtr begin(end ? bpf_program__attach(pairs[k].begin[f]) : nullptr);
    if (!end || !begin) {
      st.reason[k] = std::string("cannot attach ") + (end ? pairs[k].begin_tp : pairs[k].end_tp) +
                     ": " + errno_text(errno);
      continue;
    }
    st.links.push_back(std::move(end));
    st.links.push_back(std::move(begin));
    st.attach[k] = btf ? AttachKind::TpBtf : AttachKind::RawTracepoint;
  }
}

MemoryProbes::~MemoryProbes() = default;

bool MemoryProbes::measuring() const {
  return state_->attach[0] != AttachKind::NotLoaded || state_->attach[1] != AttachKind::NotLoaded;
}

std::vector<ProgramStatus> MemoryProbes::programs() const {
  const auto& st = *state_;
  std::vector<ProgramStatus> out;
  for (int k = 0; k < 2; ++k) {
    ProgramStatus p{
        "mem", k == 0 ? "memcg_reclaim" : "direct_reclaim", st.attach[k], st.reason[k], 0, 0};
    if (st.skel && st.attach[k] != AttachKind::NotLoaded) {
      const auto pair = pairs_of(st.skel.get())[k];
      const int f = st.attach[k] == AttachKind::TpBtf ? 0 : 1;
      for (const bpf_program* prog : {pair.begin[f], pair.end[f]}) {
        p.run_time_ns += detail::prog_info_field(prog, true);
        p.run_count += detail::prog_info_field(prog, false);
      }
    }
    out.push_back(p);
  }
  return out;
}

FamilyCounters MemoryProbes::counters() const {
  if (!state_->skel) return FamilyCounters{"mem", 0, 0, 0, 0, 0};
  return detail::read_counters("mem", state_->skel->maps.pg_stats, state_->ncpus);
}

std::vector<CgroupReclaimStalls> MemoryProbes::read_reclaim_stalls() const {
  std::vector<CgroupReclaimStalls> out;
  if (!state_->skel) return out;
  auto convert = [](const pg_reclaim_hist& h) {
    ReclaimStalls r;
    for (size_t i = 0; i < kReclaimStallSlots; ++i) r.slots[i] = h.slots[i];
    r.stall_ns = h.stall_ns;
    r.count = h.count;
    return r;
  };
  detail::for_each_entry<uint64_t, pg_reclaim_value>(
      bpf_map__fd(state_->skel->maps.reclaim_stalls), 1,
      [&](uint64_t id, const pg_reclaim_value* v) {
        out.push_back(
            {id, convert(v->kind[PG_RECLAIM_MEMCG]), convert(v->kind[PG_RECLAIM_DIRECT])});
      });
  return out;
}

void MemoryProbes::forget_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  if (!state_->skel) return;
  const int fd = bpf_map__fd(state_->skel->maps.reclaim_stalls);
  for (uint64_t id : cgroup_ids) bpf_map_delete_elem(fd, &id);
}

std::array<double, kReclaimStallSlots - 1> reclaim_stall_bounds_seconds() {
  std::array<double, kReclaimStallSlots - 1> b{};
  for (size_t k = 0; k < b.size(); ++k)
    b[k] = double(uint64_t(1) << (kReclaimStallFirstShift + k)) / 1e9;
  return b;
}

std::string try_load_memory_family(AttachKind kind, std::vector<std::string>* loaded) {
  detail::install_print_once();
  const KernelFeatures f = probe_kernel_features();
  LogCapture log;
  MemSkelPtr s(mem_bpf__open_opts(detail::open_options()));
  if (!s) return load_error("mem", -errno, log);
  s->rodata->memory_subsys_id = f.memory_subsys_id;
  configure(s.get(), kind == AttachKind::TpBtf, tracepoints_present(nullptr));
  if (int err = mem_bpf__load(s.get())) return load_error("mem", err, log);
  detail::list_loaded(s->obj, loaded);
  return "";
}

}  // namespace podgauge::loader
