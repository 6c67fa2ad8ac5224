// Checkpoints: a restart restores history exactly; torn, truncated, bit-flipped or foreign files
// are reported (naming the file and what was skipped) and never crash or load wrong data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "podgauge/store/codec.h"
#include "podgauge/store/store.h"

namespace podgauge::store {
namespace {

namespace fs = std::filesystem;

std::uint32_t detail_crc(const std::uint8_t* p, std::size_t n) { return detail::crc32c(p, n); }

constexpr std::int64_t kT0 = 1'764'460'800'000;
constexpr std::uint16_t kMem = 1;
constexpr std::uint16_t kCpu = 2;

class StoreCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("podgauge-store-test-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // 20 series over 3 h at 1 s: sealed and open chunks in both tiers, a restart in a counter,
  // two constant series.
  void fill(Store& s, std::int64_t seconds = 3 * 3600) {
    s.set_kind(kCpu, SeriesKind::kCounter);
    std::mt19937_64 rng(1);
    for (std::uint64_t target = 1; target <= 10; ++target) {
      double mem = 1e8 * static_cast<double>(target);
      std::int64_t usec = 0;
      for (std::int64_t i = 0; i < seconds; ++i) {
        const std::int64_t t = kT0 + i * 1000;
        // Target 10 is a sleeping container: constant series seal into chunks of a few bits.
        if (target != 10 && rng() % 10 == 0) mem += 4096.0 * static_cast<double>(static_cast<int>(rng() % 9) - 4);
        if (target != 10) usec = (i == 5000 && target == 3) ? 0 : usec + static_cast<std::int64_t>(rng() % 50'000);
        s.append({target, kMem}, t, mem);
        s.append({target, kCpu}, t, static_cast<double>(usec) / 1e6);
      }
    }
    s.expire(kT0 + seconds * 1000);
  }

  static void expect_same_series(const Store& a, const Store& b, const SeriesKey& k) {
    EXPECT_EQ(a.raw_samples(k), b.raw_samples(k)) << k.target << "/" << k.metric;
    EXPECT_EQ(a.rollup_rows(k), b.rollup_rows(k)) << k.target << "/" << k.metric;
  }

  static std::vector<std::uint8_t> read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  static void write(const fs::path& p, const std::vector<std::uint8_t>& b) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }

  fs::path dir_;
};

TEST_F(StoreCheckpoint, restart_restores_history_and_appending_continues) {
  Store before;
  fill(before);
  const fs::path file = dir_ / "store.ckpt";
  const CheckpointInfo info = before.checkpoint(file);
  EXPECT_EQ(info.series, 20u);
  EXPECT_EQ(info.bytes, fs::file_size(file));
  EXPECT_FALSE(fs::exists(dir_ / "store.ckpt.tmp"));

  Store after;
  after.set_kind(kCpu, SeriesKind::kCounter);
  const RestoreReport rep = after.restore(file);
  EXPECT_TRUE(rep.found);
  EXPECT_TRUE(rep.ok()) << rep.errors.front();
  EXPECT_EQ(rep.series_loaded, 20u);
  ASSERT_EQ(after.keys(), before.keys());
  for (const auto& k : before.keys()) expect_same_series(before, after, k);

  const std::int64_t now = kT0 + 3 * 3600 * 1000;
  for (Agg agg : {Agg::kAvg, Agg::kMax, Agg::kRate, Agg::kPercentile})
    for (Window w : {Window{now - 3'600'000, now}, Window{now - 3 * 3'600'000, now}}) {
      const auto x = before.query_all(Selector{}, w, agg);
      const auto y = after.query_all(Selector{}, w, agg);
      ASSERT_EQ(x.size(), y.size());
      for (std::size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(x[i].first, y[i].first);
        EXPECT_EQ(x[i].second.value, y[i].second.value);
        EXPECT_EQ(x[i].second.samples, y[i].second.samples);
      }
    }
  // Both stores take the same next samples and end up identical, open chunks included.
  for (int i = 1; i <= 2000; ++i) {
    for (Store* s : {&before, &after}) {
      ASSERT_EQ(s->append({1, kMem}, now + i * 1000, 5e8 + i), AppendStatus::kOk);
      ASSERT_EQ(s->append({3, kCpu}, now + i * 1000, 1000.0 + i), AppendStatus::kOk);
    }
  }
  EXPECT_EQ(after.append({1, kMem}, now, 1), AppendStatus::kOutOfOrder) << "the clock came back too";
  expect_same_series(before, after, {1, kMem});
  expect_same_series(before, after, {3, kCpu});
  EXPECT_EQ(before.checkpoint_bytes(), after.checkpoint_bytes());
}

// The file is written and read in pieces (sections handed on every 256 KiB, read through a
// 64 KiB buffer): sections larger than either, and many small ones, cross every boundary.
TEST_F(StoreCheckpoint, streamed_file_is_the_same_bytes_and_restores_series_larger_than_the_buffers) {
  // 24 h of raw samples: one noisy series' section is several hundred KiB.
  Store before(Options{.raw_retention_ms = 86'400'000});
  fill(before, 3600);
  std::mt19937_64 rng(7);
  for (std::int64_t i = 0; i < 86'400; ++i)
    before.append({42, kMem}, kT0 + i * 1000, static_cast<double>(rng() % 1'000'000'007));
  const fs::path file = dir_ / "store.ckpt";
  const CheckpointInfo info = before.checkpoint(file);
  const auto bytes = read(file);
  EXPECT_EQ(bytes, before.checkpoint_bytes());
  EXPECT_EQ(info.bytes, bytes.size());
  EXPECT_EQ(info.series, 21u);
  ASSERT_GT(bytes.size(), 512u << 10);

  Store after(Options{.raw_retention_ms = 86'400'000});
  const RestoreReport rep = after.restore(file);
  EXPECT_TRUE(rep.ok()) << rep.errors.front();
  EXPECT_EQ(rep.series_loaded, 21u);
  ASSERT_EQ(after.keys(), before.keys());
  for (const auto& k : before.keys()) expect_same_series(before, after, k);
  EXPECT_EQ(after.raw_samples({42, kMem}).size(), 86'400u);

  // Torn inside the big section: the series before it load, it and the end marker do not.
  write(file, {bytes.begin(), bytes.end() - 100'000});
  Store torn(Options{.raw_retention_ms = 86'400'000});
  const RestoreReport rep2 = torn.restore(file);
  ASSERT_FALSE(rep2.ok());
  EXPECT_NE(rep2.errors.front().find("truncated or torn write"), std::string::npos) << rep2.errors.front();
  EXPECT_EQ(rep2.series_loaded, 20u);
  EXPECT_TRUE(torn.raw_samples({42, kMem}).empty());
}

TEST_F(StoreCheckpoint, missing_file_is_a_clean_first_start) {
  Store s;
  const RestoreReport rep = s.restore(dir_ / "none.ckpt");
  EXPECT_FALSE(rep.found);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(s.stats().series, 0u);
}

TEST_F(StoreCheckpoint, truncated_file_keeps_the_intact_series_and_says_it_was_truncated) {
  Store before;
  fill(before, 1800);
  const fs::path file = dir_ / "store.ckpt";
  before.checkpoint(file);
  const auto bytes = read(file);
  std::mt19937_64 rng(2);
  std::vector<std::size_t> cuts = {0, 1, 7, 8, 20, 55, 56, 60, bytes.size() - 1, bytes.size() - 20};
  for (int i = 0; i < 60; ++i) cuts.push_back(rng() % bytes.size());
  for (std::size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size()));
    write(file, {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)});
    Store after;
    const RestoreReport rep = after.restore(file);
    ASSERT_FALSE(rep.ok());
    EXPECT_NE(rep.errors.front().find(file.string()), std::string::npos) << rep.errors.front();
    const bool mentions = rep.errors.front().find("truncated") != std::string::npos ||
                          rep.errors.front().find("torn") != std::string::npos;
    EXPECT_TRUE(mentions) << rep.errors.front();
    // The last 20 bytes are the end marker: cut there, every series is still whole.
    if (cut < bytes.size() - 20) {
      EXPECT_LT(rep.series_loaded, 20u);
    }
    EXPECT_EQ(after.stats().series, rep.series_loaded);
    for (const auto& k : after.keys()) expect_same_series(before, after, k);
  }
}

TEST_F(StoreCheckpoint, bit_flips_anywhere_are_caught_and_only_the_damaged_part_is_skipped) {
  Store before;
  fill(before, 1800);
  const auto bytes = before.checkpoint_bytes();
  std::mt19937_64 rng(3);
  int whole_file = 0, one_series = 0;
  for (int i = 0; i < 150; ++i) {
    auto bad = bytes;
    const std::size_t at = rng() % bad.size();
    bad[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    Store after;
    const RestoreReport rep = after.restore_bytes(bad.data(), bad.size(), "checkpoint test.ckpt");
    ASSERT_FALSE(rep.ok()) << "flip at byte " << at << " went unnoticed";
    EXPECT_NE(rep.errors.front().find("test.ckpt"), std::string::npos);
    EXPECT_NE(rep.errors.front().find("skipped"), std::string::npos) << rep.errors.front();
    if (rep.series_loaded == 0) ++whole_file;
    if (rep.series_loaded == 19) ++one_series;
    for (const auto& k : after.keys()) expect_same_series(before, after, k);
  }
  EXPECT_GT(one_series, 120) << "a flip in one series' section should cost only that series";
  EXPECT_LT(whole_file, 10) << "only the 60-byte header costs the whole file";
}

TEST_F(StoreCheckpoint, foreign_old_or_mismatched_files_are_skipped_with_a_reason) {
  Store before;
  fill(before, 600);
  auto bytes = before.checkpoint_bytes();
  struct Case {
    std::vector<std::uint8_t> data;
    std::string reason;
  };
  std::vector<Case> cases;
  cases.push_back({std::vector<std::uint8_t>(4096, 0), "bad magic"});
  std::string text = "apiVersion: v1\nkind: Pod\n";
  cases.push_back({{text.begin(), text.end()}, "bad magic"});
  auto v3 = bytes;
  v3[8] = 3;
  cases.push_back({v3, "version 3 is not supported"});
  for (auto& c : cases) {
    Store after;
    const RestoreReport rep = after.restore_bytes(c.data.data(), c.data.size(), "checkpoint x.ckpt");
    ASSERT_EQ(rep.errors.size(), 1u);
    EXPECT_NE(rep.errors[0].find(c.reason), std::string::npos) << rep.errors[0];
    EXPECT_NE(rep.errors[0].find("starting with empty history"), std::string::npos) << rep.errors[0];
    EXPECT_EQ(after.stats().series, 0u);
  }
  Store other_step(Options{.rollup_step_ms = 60'000});
  const RestoreReport rep = other_step.restore_bytes(bytes.data(), bytes.size(), "checkpoint x.ckpt");
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_NE(rep.errors[0].find("10000 ms rollup step"), std::string::npos) << rep.errors[0];
}

// tests/fixtures/store/v1.ckpt was written by the version-1 store (main at 2ea2aa5: 2 series, 1200 s,
// 60-sample raw and 12-row rollup chunks). Its chunks are Gorilla columns with 32-bit lengths and
// no sketches: read as version 2 they would decode into wrong values, so the file is refused.
TEST_F(StoreCheckpoint, a_version_1_file_is_reported_and_skipped_never_misread) {
  const char* env = std::getenv("PODGAUGE_FIXTURES_DIR");
  const fs::path root = env && *env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path() / "fixtures";
  const fs::path v1 = root / "store" / "v1.ckpt";
  ASSERT_TRUE(fs::exists(v1)) << "fixture " << v1 << " missing: set PODGAUGE_FIXTURES_DIR to tests/fixtures";
  Store s;
  s.append({99, kMem}, kT0, 1.0);  // whatever was there is replaced by nothing
  const RestoreReport rep = s.restore(v1);
  EXPECT_TRUE(rep.found);
  ASSERT_EQ(rep.errors.size(), 1u);
  EXPECT_NE(rep.errors[0].find("format version 1 is not supported (this agent reads 2)"), std::string::npos)
      << rep.errors[0];
  EXPECT_NE(rep.errors[0].find("starting with empty history"), std::string::npos) << rep.errors[0];
  EXPECT_EQ(s.stats().series, 0u);

  // Even with its version field forged to 2 (and the header checksum fixed), no series loads:
  // each one's chunks fail to decode or to match their sketches.
  auto bytes = read(v1);
  ASSERT_GT(bytes.size(), 64u);
  bytes[8] = 2;
  const std::uint32_t hcrc = detail_crc(bytes.data(), 8 + 4 + 4 + 40);
  std::memcpy(bytes.data() + 56, &hcrc, 4);
  Store forged;
  const RestoreReport rep2 = forged.restore_bytes(bytes.data(), bytes.size(), "checkpoint v1.ckpt");
  EXPECT_EQ(rep2.series_loaded, 0u);
  EXPECT_EQ(rep2.series_skipped, 2u);
  EXPECT_EQ(forged.stats().series, 0u);
}

TEST_F(StoreCheckpoint, restore_replaces_what_the_store_held) {
  Store a;
  a.append({99, kMem}, kT0, 1);
  Store b;
  fill(b, 100);
  const auto bytes = b.checkpoint_bytes();
  ASSERT_TRUE(a.restore_bytes(bytes.data(), bytes.size(), "x").ok());
  EXPECT_EQ(a.keys(), b.keys());
}

TEST_F(StoreCheckpoint, unwritable_directory_throws_an_actionable_error_and_keeps_the_old_file) {
  Store s;
  fill(s, 100);
  const fs::path file = dir_ / "store.ckpt";
  s.checkpoint(file);
  const auto old = read(file);
  try {
    s.checkpoint(dir_ / "missing-dir" / "store.ckpt");
    FAIL() << "expected StoreError";
  } catch (const StoreError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("missing-dir/store.ckpt"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
  }
  EXPECT_EQ(read(file), old);
}

}  // namespace
}  // namespace podgauge::store
