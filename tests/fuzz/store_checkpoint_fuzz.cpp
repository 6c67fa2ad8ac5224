// libFuzzer target: a checkpoint file is whatever was on disk after a crash, a full disk or a
// bad sector. Restoring it must never crash, hang or over-allocate, and whatever it accepts must
// be a consistent store: queries work and it checkpoints and restores to the same contents.
//
// The first input byte picks the mode:
//   even  the input is the file, checksums verified (what the agent does)
//   odd   the input patches a valid checkpoint (pairs of offset, value bytes) and checksums are
//         not verified, so mutations reach the chunk and series decoders behind the CRCs
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "podgauge/store/codec.h"
#include "podgauge/store/store.h"

namespace {

using podgauge::store::Agg;
using podgauge::store::SeriesKind;
using podgauge::store::Store;

void check(bool condition) {
  if (!condition) std::abort();
}

const std::vector<std::uint8_t>& valid_checkpoint() {
  static const std::vector<std::uint8_t> bytes = [] {
    // Small chunks: sealed chunks in both tiers (relative gauge columns, sketches) to mutate.
    Store s({.raw_chunk_samples = 600, .rollup_chunk_rows = 60});
    s.set_kind(2, SeriesKind::kCounter);
    const std::int64_t t0 = 1'764'460'800'000;
    double mem = 1e8;
    double cpu = 0;
    for (int i = 0; i < 1300; ++i) {
      mem += (i % 7 == 0) ? 4096 : 0;
      cpu = (i == 700) ? 0.5 : cpu + 0.013;
      s.append({1, 1}, t0 + i * 1000 + (i % 5 == 0 ? 3 : 0), mem);
      s.append({1, 2}, t0 + i * 1000, cpu);
      s.append({2, 1}, t0 + i * 1000, 42);
    }
    return s.checkpoint_bytes();
  }();
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool patch = data[0] & 1;
  std::vector<std::uint8_t> file;
  if (patch) {
    file = valid_checkpoint();
    for (std::size_t i = 1; i + 2 < size; i += 3) {
      const std::size_t at = (std::size_t{data[i]} << 8 | data[i + 1]) % file.size();
      file[at] = data[i + 2];
    }
  } else {
    file.assign(data + 1, data + size);
  }
  Store s({.raw_chunk_samples = 600, .rollup_chunk_rows = 60});
  const auto rep = s.restore_bytes(file.data(), file.size(), "fuzz.ckpt", !patch);
  check(rep.series_loaded == s.stats().series);
  const std::int64_t t0 = 1'764'460'800'000;
  for (Agg agg : {Agg::kAvg, Agg::kMin, Agg::kMax, Agg::kLast, Agg::kRate, Agg::kPercentile}) {
    (void)s.query_all({}, {t0 - 86'400'000, t0 + 86'400'000}, agg, 0.9);
    (void)s.query_all({}, {t0 + 300'000, t0 + 400'000}, agg, 0.9);
  }
  for (const auto& k : s.keys()) {
    (void)s.append(k, t0 + 10'000'000, 1.0);  // appending after a load must work too
  }
  // What was accepted checkpoints and restores to the same contents.
  const auto again = s.checkpoint_bytes();
  Store t({.raw_chunk_samples = 600, .rollup_chunk_rows = 60});
  const auto rep2 = t.restore_bytes(again.data(), again.size(), "again.ckpt");
  check(rep2.ok());
  check(t.keys() == s.keys());
  for (const auto& k : s.keys()) {
    check(t.raw_samples(k) == s.raw_samples(k));
    check(t.rollup_rows(k).size() == s.rollup_rows(k).size());
  }
  // The bare column decoder on the raw input.
  podgauge::store::detail::BitReader r(data, std::uint64_t{size} * 8);
  std::vector<double> out;
  (void)podgauge::store::detail::read_column(r, size % 4096, out);
  podgauge::store::detail::BitReader ri(data, std::uint64_t{size} * 8);
  std::vector<std::int64_t> ints;
  (void)podgauge::store::detail::read_int_column(ri, size % 4096, ints);
  return 0;
}
