// Bit-exact round trips of the store's codecs (property-style over seeded random inputs, plus
// the edge values a profiler really produces or receives).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "podgauge/store/codec.h"

namespace podgauge::store::detail {
namespace {

std::uint64_t bits_of(double v) { return std::bit_cast<std::uint64_t>(v); }

std::vector<double> edge_values() {
  const double inf = std::numeric_limits<double>::infinity();
  return {0.0,
          -0.0,
          std::numeric_limits<double>::quiet_NaN(),
          std::bit_cast<double>(0x7ff0000000000123ull),  // signalling NaN with a payload
          std::bit_cast<double>(0xfff8000000000001ull),  // negative NaN
          inf,
          -inf,
          std::numeric_limits<double>::min(),
          std::numeric_limits<double>::denorm_min(),
          std::numeric_limits<double>::max(),
          std::numeric_limits<double>::lowest(),
          1e300,
          -1e-300,
          9007199254740993.0,
          0.1,
          1.0};
}

void expect_column_round_trip(const std::vector<double>& v, ColumnMode* mode = nullptr) {
  BitWriter w;
  const ColumnMode m = write_column(w, v);
  if (mode) *mode = m;
  BitReader r(w.bytes().data(), w.bit_size());
  std::vector<double> out;
  ASSERT_TRUE(read_column(r, v.size(), out));
  EXPECT_EQ(r.position(), w.bit_size());
  ASSERT_EQ(out.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    ASSERT_EQ(bits_of(out[i]), bits_of(v[i])) << "value " << i << " = " << v[i] << ", mode "
                                              << static_cast<int>(m);
}

TEST(StoreCodec, bit_writer_and_reader_round_trip_random_widths) {
  std::mt19937_64 rng(1);
  for (int round = 0; round < 50; ++round) {
    BitWriter w;
    std::vector<std::pair<std::uint64_t, unsigned>> items;
    for (int i = 0; i < 500; ++i) {
      const unsigned width = 1 + static_cast<unsigned>(rng() % 64);
      const std::uint64_t v = width == 64 ? rng() : rng() & ((1ull << width) - 1);
      items.emplace_back(v, width);
      w.write(v, width);
    }
    BitReader r(w.bytes().data(), w.bit_size());
    for (auto [v, width] : items) ASSERT_EQ(r.read(width), v);
    EXPECT_FALSE(r.overrun());
    EXPECT_EQ(r.read(1), 0u);
    EXPECT_TRUE(r.overrun());
  }
}

TEST(StoreCodec, resumed_writer_continues_where_it_stopped) {
  BitWriter w;
  w.write(0b101, 3);
  auto bytes = w.bytes();
  bytes.back() |= 0x1f;  // garbage past the end must be masked off
  BitWriter again = BitWriter::resume(bytes, 3);
  again.write(0b11, 2);
  BitReader r(again.bytes().data(), again.bit_size());
  EXPECT_EQ(r.read(5), 0b10111u);
}

TEST(StoreCodec, signed_integers_round_trip_at_every_bucket_boundary) {
  std::vector<std::int64_t> vals = {0, 1, -1, std::numeric_limits<std::int64_t>::min(),
                                    std::numeric_limits<std::int64_t>::max()};
  for (int b : {5, 6, 8, 9, 12, 13, 19, 20, 31, 32, 62}) {
    const std::int64_t p = std::int64_t{1} << b;
    for (std::int64_t d : {-1, 0, 1}) {
      vals.push_back(p + d);
      vals.push_back(-p + d);
    }
  }
  BitWriter w;
  for (auto v : vals) write_signed(w, v);
  BitReader r(w.bytes().data(), w.bit_size());
  for (auto v : vals) ASSERT_EQ(read_signed(r), v);
  EXPECT_FALSE(r.overrun());
}

TEST(StoreCodec, xor_doubles_round_trip_edge_values_bit_for_bit) {
  std::vector<double> v = edge_values();
  // Every ordered pair, so each value follows each other one.
  std::vector<double> seq;
  for (double a : v)
    for (double b : v) {
      seq.push_back(a);
      seq.push_back(b);
    }
  BitWriter w;
  XorState s;
  for (double x : seq) xor_write(w, s, x);
  BitReader r(w.bytes().data(), w.bit_size());
  XorState rs;
  for (double x : seq) ASSERT_EQ(bits_of(xor_read(r, rs)), bits_of(x));
}

TEST(StoreCodec, columns_round_trip_random_series_of_every_shape) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 1);
  for (int round = 0; round < 300; ++round) {
    const std::size_t n = 1 + rng() % 1000;
    std::vector<double> v(n);
    const int shape = round % 7;
    double acc = static_cast<double>(rng() % 1000000);
    for (std::size_t i = 0; i < n; ++i) {
      switch (shape) {
        case 0: v[i] = std::bit_cast<double>(rng()); break;            // any bits, NaNs included
        case 1: v[i] = noise(rng) * 1e3; break;                        // noisy doubles
        case 2: acc += static_cast<double>(rng() % 100000); v[i] = acc; break;  // integer counter
        case 3: acc += static_cast<double>(rng() % 100000) / 1e6; v[i] = std::round(acc * 1e6) / 1e6; break;
        case 4: v[i] = (rng() % 50 == 0) ? acc += 4096.0 * static_cast<double>(rng() % 64) : acc; break;
        case 5: v[i] = edge_values()[rng() % edge_values().size()]; break;
        case 6: v[i] = static_cast<double>(static_cast<std::int64_t>(rng()) >> (rng() % 64)); break;
      }
    }
    SCOPED_TRACE("shape " + std::to_string(shape) + " n " + std::to_string(n));
    expect_column_round_trip(v);
  }
}

TEST(StoreCodec, exact_integers_and_decimals_pick_integer_modes_and_negative_zero_does_not) {
  ColumnMode mode;
  std::vector<double> bytes;
  for (int i = 0; i < 100; ++i) bytes.push_back(1e9 + 4096.0 * (i / 10));
  expect_column_round_trip(bytes, &mode);
  EXPECT_NE(mode, ColumnMode::kXor);

  std::vector<double> usec_seconds;  // cumulative CPU seconds from µs accounting
  for (int i = 0; i < 100; ++i) usec_seconds.push_back((1234567890.0 + 100003.0 * i) / 1e6);
  expect_column_round_trip(usec_seconds, &mode);
  EXPECT_EQ(mode, ColumnMode::kIntDeltaOfDelta);

  std::vector<double> with_neg_zero = {1.0, -0.0, 2.0};
  expect_column_round_trip(with_neg_zero, &mode);
  EXPECT_EQ(mode, ColumnMode::kXor);

  // 2^53 + 2 is an exact integer but past the range where every integer is: stays exact anyway.
  std::vector<double> huge = {9007199254740994.0, -9007199254740994.0, 1.0};
  expect_column_round_trip(huge);
}

TEST(StoreCodec, constant_column_costs_one_value) {
  // A decimal constant is its integer (here 425 at one decimal): 2 + 4 + 17 bits.
  std::vector<double> v(1000, 42.5);
  BitWriter w;
  EXPECT_EQ(write_column(w, v), ColumnMode::kConstant);
  EXPECT_EQ(w.bit_size(), 23u);
  BitReader r(w.bytes().data(), w.bit_size());
  std::vector<double> out;
  ASSERT_TRUE(read_column(r, v.size(), out));
  EXPECT_EQ(out, v);
  // Others keep their 64 bits, bit for bit.
  for (double c : {0.1 + 0.2, -0.0, std::nan(""), 1e300}) {
    std::vector<double> cv(100, c);
    BitWriter cw;
    EXPECT_EQ(write_column(cw, cv), ColumnMode::kConstant);
    EXPECT_EQ(cw.bit_size(), 66u) << c;
    expect_column_round_trip(cv);
  }
  std::vector<double> zeros(720, 0.0);
  BitWriter zw;
  write_column(zw, zeros);
  EXPECT_EQ(zw.bit_size(), 7u);
}

// A window's edge decodes only a chunk's first rows: any prefix of any column, then the reader
// can skip the rest by the column's length.
TEST(StoreCodec, columns_decode_any_prefix) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 200; ++round) {
    const std::size_t n = 2 + rng() % 800;
    std::vector<double> v(n);
    double acc = static_cast<double>(rng() % 1000);
    for (std::size_t i = 0; i < n; ++i) {
      switch (round % 4) {
        case 0: v[i] = std::bit_cast<double>(rng() | 1); break;
        case 1: acc += static_cast<double>(rng() % 100000) / 1e6; v[i] = std::round(acc * 1e6) / 1e6; break;
        case 2: v[i] = (rng() % 30 == 0) ? acc += 4096.0 * static_cast<double>(rng() % 64) : acc; break;
        case 3: v[i] = 10; break;
      }
    }
    BitWriter w;
    write_column(w, v);
    const std::size_t m = rng() % (n + 1);
    BitReader r(w.bytes().data(), w.bit_size());
    std::vector<double> out;
    ASSERT_TRUE(read_column(r, n, out, m)) << round;
    ASSERT_EQ(out.size(), m);
    for (std::size_t i = 0; i < m; ++i) ASSERT_EQ(std::bit_cast<std::uint64_t>(out[i]), std::bit_cast<std::uint64_t>(v[i])) << round << " row " << i;
  }
}

TEST(StoreCodec, timestamps_round_trip_including_huge_and_negative_deltas) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 100; ++round) {
    std::vector<std::int64_t> t;
    std::int64_t x = static_cast<std::int64_t>(rng());
    for (int i = 0; i < 500; ++i) {
      x += (round % 3 == 0) ? static_cast<std::int64_t>(rng()) : 1000 + static_cast<std::int64_t>(rng() % 7) - 3;
      t.push_back(x);
    }
    t.push_back(std::numeric_limits<std::int64_t>::min());
    t.push_back(std::numeric_limits<std::int64_t>::max());
    BitWriter w;
    write_times(w, t);
    BitReader r(w.bytes().data(), w.bit_size());
    std::vector<std::int64_t> out;
    ASSERT_TRUE(read_times(r, t.size(), out));
    ASSERT_EQ(out, t);
  }
}

TEST(StoreCodec, steady_timestamps_cost_nothing_per_sample_and_jitter_a_byte) {
  std::vector<std::int64_t> t;
  for (int i = 0; i < 900; ++i) t.push_back(1'700'000'000'000 + 1000 * i);
  BitWriter w;
  write_times(w, t);
  EXPECT_EQ(w.bit_size(), 129u);
  t[500] += 1;  // one late tick: delta-of-delta, about a bit a sample
  BitWriter w2;
  write_times(w2, t);
  EXPECT_LT(w2.bit_size(), 64u + 30u + 900u + 30u);
  BitReader r(w2.bytes().data(), w2.bit_size());
  std::vector<std::int64_t> out;
  ASSERT_TRUE(read_times(r, t.size(), out));
  EXPECT_EQ(out, t);
}

TEST(StoreCodec, garbage_input_is_rejected_or_decoded_without_reading_out_of_bounds) {
  std::mt19937_64 rng(11);
  int rejected = 0;
  for (int round = 0; round < 2000; ++round) {
    std::vector<std::uint8_t> junk(rng() % 64);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    BitReader r(junk.data(), junk.size() * 8);
    std::vector<double> out;
    if (!read_column(r, 1 + rng() % 200, out)) ++rejected;
    EXPECT_LE(r.position(), junk.size() * 8);
  }
  EXPECT_GT(rejected, 1000);
}

TEST(StoreCodec, crc32c_matches_the_standard_check_value) {
  for (auto* f : {&crc32c, &crc32c_portable}) {
    const std::string s = "123456789";
    EXPECT_EQ(f(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), 0), 0xE3069283u);
    std::vector<std::uint8_t> zeros(32, 0);
    EXPECT_EQ(f(zeros.data(), zeros.size(), 0), 0x8A9136AAu);  // RFC 3720 B.4
    // Incremental equals one-shot.
    std::vector<std::uint8_t> buf(1000);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<std::uint8_t>(i * 31);
    const std::uint32_t whole = f(buf.data(), buf.size(), 0);
    EXPECT_EQ(f(buf.data() + 337, buf.size() - 337, f(buf.data(), 337, 0)), whole);
  }
}

// crc32c takes the CPU's instruction where there is one: it must agree with the tables on every
// length, alignment and seed (a checkpoint written on one CPU is read on another).
TEST(StoreCodec, crc32c_agrees_with_the_tables_on_every_length_alignment_and_seed) {
  std::mt19937_64 rng(11);
  std::vector<std::uint8_t> buf(4096 + 16);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (std::size_t len = 0; len <= 300; ++len)
    for (std::size_t at = 0; at < 8; ++at) {
      const auto seed = static_cast<std::uint32_t>(rng());
      ASSERT_EQ(crc32c(buf.data() + at, len, seed), crc32c_portable(buf.data() + at, len, seed))
          << "length " << len << " at offset " << at;
    }
  EXPECT_EQ(crc32c(buf.data() + 3, 4096), crc32c_portable(buf.data() + 3, 4096));
}

}  // namespace
}  // namespace podgauge::store::detail
