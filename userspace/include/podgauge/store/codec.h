// Bit-level codecs of the history store (Pelkonen et al., "Gorilla", VLDB 2015, section 4.1),
// exposed for tests and the fuzz target. Everything here is exact: decode(encode(x)) == x bit for
// bit, NaN payloads and -0.0 included.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace podgauge::store::detail {

/// Appends bits most-significant first.
class BitWriter {
 public:
  void write(std::uint64_t value, unsigned bits);
  void write_bit(bool b) { write(b ? 1 : 0, 1); }
  std::uint64_t bit_size() const { return bits_; }
  /// The bytes so far, the last one zero-padded.
  const std::vector<std::uint8_t>& bytes() const { return buf_; }
  std::vector<std::uint8_t> take() { bits_ = 0; return std::move(buf_); }
  /// Empties the writer but keeps its buffer (scratch writers reused from chunk to chunk).
  void clear() {
    buf_.clear();
    bits_ = 0;
  }
  void shrink() { buf_.shrink_to_fit(); }
  std::size_t capacity() const { return buf_.capacity(); }
  void reserve_bytes(std::size_t n) { buf_.reserve(n); }
  /// Rebuilds a writer positioned after `bits` bits of `bytes` (restoring an open chunk).
  static BitWriter resume(std::vector<std::uint8_t> bytes, std::uint64_t bits);

 private:
  std::vector<std::uint8_t> buf_;
  std::uint64_t bits_ = 0;
};

/// Reads what BitWriter wrote. Never reads out of bounds: past the end it returns zeros and sets
/// overrun(), so decoding corrupt input yields garbage values, never a crash.
class BitReader {
 public:
  BitReader(const std::uint8_t* data, std::uint64_t bit_size) : data_(data), size_(bit_size) {}
  std::uint64_t read(unsigned bits) {
    // Every decoded value goes through here: the common case (1..57 bits, 8 readable bytes) is
    // inline, bounds failures and the last bytes of the input take the out-of-line path.
    const std::uint64_t byte = pos_ >> 3;
    if (bits - 1u < 57u && pos_ <= size_ && bits <= size_ - pos_ && byte + 8 <= (size_ + 7) / 8) {
      std::uint64_t word;
      std::memcpy(&word, data_ + byte, 8);
      if constexpr (std::endian::native == std::endian::little) word = __builtin_bswap64(word);
      const auto shift = static_cast<unsigned>(pos_ & 7);
      pos_ += bits;
      return (word << shift) >> (64 - bits);
    }
    return read_slow(bits);
  }
  bool read_bit() { return read(1) != 0; }
  void seek(std::uint64_t bit) { pos_ = bit; }
  std::uint64_t position() const { return pos_; }
  std::uint64_t remaining() const { return pos_ < size_ ? size_ - pos_ : 0; }
  bool overrun() const { return overrun_; }
  /// Marks the input malformed; later reads return zeros.
  void fail() { overrun_ = true; pos_ = size_; }

 private:
  std::uint64_t read_slow(unsigned bits);

  const std::uint8_t* data_;
  std::uint64_t size_;
  std::uint64_t pos_ = 0;
  bool overrun_ = false;
};

/// Signed integers in Gorilla-style prefix buckets: '0' for 0, then '10'+6, '110'+9,
/// '1110'+13, '11110'+20, '111110'+32, '111111'+64 bits of the zigzag value.
void write_signed(BitWriter& w, std::int64_t v);
std::int64_t read_signed(BitReader& r);

/// Incremental Gorilla XOR coding of doubles.
struct XorState {
  std::uint64_t prev = 0;
  std::uint8_t leading = 0xff;  // 0xff: no window yet
  std::uint8_t trailing = 0;
  bool started = false;
};
void xor_write(BitWriter& w, XorState& s, double v);
double xor_read(BitReader& r, XorState& s);

/// Incremental delta-of-delta coding of timestamps (first one as 64 raw bits).
struct TimeState {
  std::int64_t prev = 0;
  std::int64_t delta = 0;
  bool started = false;
};
void time_write(BitWriter& w, TimeState& s, std::int64_t t);
std::int64_t time_read(BitReader& r, TimeState& s);

/// How a sealed column was encoded (for tests and the benchmark's report).
enum class ColumnMode : std::uint8_t {
  kXor = 0,
  kIntDelta = 1,
  kIntDeltaOfDelta = 2,
  kConstant = 3,
  kIntValue = 4,
};

/// Encodes `values` with whichever mode is smallest; returns the mode chosen.
ColumnMode write_column(BitWriter& w, std::span<const double> values);
/// Decodes `n` values, or only the first `m` of them (the reader then stops inside the column);
/// false on malformed input (out holds garbage then).
bool read_column(BitReader& r, std::size_t n, std::vector<double>& out, std::size_t m = SIZE_MAX);

/// Integers as values, deltas or delta-of-deltas (whichever is smallest), divided by their common
/// factor, each order coded with Gorilla prefix buckets, the same with zero runs, or Rice codes
/// around the median. Returns the order chosen (0 values, 1 deltas, 2 delta-of-deltas).
unsigned write_int_column(BitWriter& w, std::span<const std::int64_t> x);
/// Decodes `n` integers, or only the first `m`; false on malformed input.
bool read_int_column(BitReader& r, std::size_t n, std::vector<std::int64_t>& out, std::size_t m = SIZE_MAX);

/// A bit length in 6 + its own width bits (a chunk's column lengths: ~20 bits instead of 32).
void write_length(BitWriter& w, std::uint64_t len);
std::uint64_t read_length(BitReader& r);

/// The smallest k (0..9) with v == x / 10^k exactly for an integer |x| <= 2^53, or -1.
int decimal_exponent(double v);
/// The smallest k at which every value is a decimal (the callers verify each at k), or -1.
int column_exponent(std::span<const double> values);
/// x with v == x / 10^k exactly (bit for bit, so never -0.0), if there is one.
bool scaled_integer(double v, int k, std::int64_t& x);
double from_scaled(std::int64_t x, int k);

/// Timestamps column: first time and step when the step never changes, else delta-of-delta.
void write_times(BitWriter& w, std::span<const std::int64_t> t);
bool read_times(BitReader& r, std::size_t n, std::vector<std::int64_t>& out);

/// CRC-32C (Castagnoli), as iSCSI, ext4 and LevelDB use.
std::uint32_t crc32c(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0);
/// The same by tables, on any CPU (crc32c uses the SSE4.2 instruction where there is one).
std::uint32_t crc32c_portable(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0);

}  // namespace podgauge::store::detail
