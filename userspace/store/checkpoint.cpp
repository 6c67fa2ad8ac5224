// Checkpoint file format, version 2 (all integers little-endian), written and read a section at
// a time (see Store::write_checkpoint and Store::restore_from):
//   header   "PGSTORE\n" u32 version u32 len, len bytes of options, u32 crc32c(all before)
//   series   u32 'S' u32 len, len bytes, u32 crc32c(tag, len, payload)     (one per series)
//   end      u32 'E' u32 8, u64 series count, u32 crc32c
// A section is self-checking, so one bad series costs only that series; a missing end marker
// means the file was torn. Loaded data is never trusted: every chunk is decoded and checked,
// and summaries are recomputed from the decoded rows.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <sstream>

#include "podgauge/store/store.h"
#include "series.h"

namespace podgauge::store {

using namespace detail;

namespace {

constexpr char kMagic[8] = {'P', 'G', 'S', 'T', 'O', 'R', 'E', '\n'};
// 2: Rice-coded integer columns, relative gauge rollup columns, per-chunk sketches, short column
//    lengths. A version-1 file is reported and skipped (its chunks would misdecode).
constexpr std::uint32_t kVersion = 2;
constexpr std::uint32_t kTagSeries = 'S';
constexpr std::uint32_t kTagEnd = 'E';
// No series section can honestly be this large (24 h of one series is ~100 KiB).
constexpr std::uint32_t kMaxSection = 64u << 20;
constexpr std::uint32_t kMaxRows = 1u << 20;

class Out {
 public:
  void u8(std::uint8_t v) { b_.push_back(v); }
  void u16(std::uint16_t v) { raw(&v, 2); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void i64(std::int64_t v) { raw(&v, 8); }
  void f64(double v) { u64(std::bit_cast<std::uint64_t>(v)); }
  void bytes(const std::uint8_t* p, std::size_t n) { b_.insert(b_.end(), p, p + n); }
  std::size_t size() const { return b_.size(); }
  std::vector<std::uint8_t>& buf() { return b_; }
  void patch_u32(std::size_t at, std::uint32_t v) { std::memcpy(b_.data() + at, &v, 4); }

 private:
  void raw(const void* p, std::size_t n) {
    static_assert(std::endian::native == std::endian::little, "checkpoint writer assumes LE");
    const auto* c = static_cast<const std::uint8_t*>(p);
    b_.insert(b_.end(), c, c + n);
  }
  std::vector<std::uint8_t> b_;
};

class In {
 public:
  In(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool ok() const { return ok_; }
  std::size_t left() const { return n_ - pos_; }
  std::size_t pos() const { return pos_; }
  template <class T>
  T get() {
    T v{};
    if (!ok_ || n_ - pos_ < sizeof(T)) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  double f64() { return std::bit_cast<double>(get<std::uint64_t>()); }
  const std::uint8_t* take(std::size_t n) {
    if (!ok_ || n_ - pos_ < n) {
      ok_ = false;
      return nullptr;
    }
    const std::uint8_t* at = p_ + pos_;
    pos_ += n;
    return at;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void write_tier(Out& o, const TierData& td) {
  o.u32(static_cast<std::uint32_t>(td.sealed.size()));
  for (const auto& c : td.sealed) {
    o.u32(c.sum.rows);
    o.u32(c.bits);
    o.bytes(c.data(), (c.bits + 7) / 8);
  }
  o.u32(td.open.sum.rows);
  o.u32(static_cast<std::uint32_t>(td.open.w.bit_size()));
  o.bytes(td.open.w.bytes().data(), td.open.w.bytes().size());
}

void write_series(Out& o, const SeriesKey& key, const Series& s) {
  o.u64(key.target);
  o.u16(key.metric);
  o.u8(static_cast<std::uint8_t>(s.kind));
  o.u8(static_cast<std::uint8_t>((s.has_last ? 1 : 0) | (s.raw_evicted ? 2 : 0)));
  o.i64(s.last_t);
  o.f64(s.last_v);
  write_tier(o, s.raw);
  write_tier(o, s.rollup);
  const Bucket& b = s.bucket;
  o.u32(b.count);
  o.i64(b.t);
  for (double v : {b.sum, b.min, b.max, b.last, b.corr}) o.f64(v);
}

std::string key_name(const SeriesKey& k) {
  return "series target=" + std::to_string(k.target) + " metric=" + std::to_string(k.metric);
}

// Checks one tier's decoded rows; returns what is wrong or empty.
std::string check_rows(const std::vector<Row>& rows, std::int64_t& prev_t, bool& have_prev,
                       Tier tier, std::int64_t step) {
  for (const Row& r : rows) {
    if (have_prev && r.t <= prev_t) return "timestamps out of order";
    // Sums of finite samples may overflow to ±Inf; nothing a store writes is NaN.
    for (unsigned f = 0; f < kFields; ++f)
      if (std::isnan(r.f[f]) || (!std::isfinite(r.f[f]) && f != kSum && f != kCorr))
        return "non-finite value";
    if (tier == Tier::kRollup) {
      if (r.f[kCount] < 1 || r.f[kCount] != std::floor(r.f[kCount]) || r.f[kCount] > 1e6)
        return "bad bucket count";
      if (r.f[kMin] > r.f[kMax]) return "bucket min above max";
      auto bucket = [step](std::int64_t t) { return t / step - ((t % step != 0 && t < 0) ? 1 : 0); };
      if (have_prev && bucket(prev_t) == bucket(r.t))
        return "two rows in one bucket";
    }
    prev_t = r.t;
    have_prev = true;
  }
  return {};
}

// Reads one tier and rebuilds it from decoded rows; returns what is wrong or empty.
std::string read_tier(In& in, TierData& td, SeriesKind kind, Tier tier, std::int64_t step,
                      std::int64_t& last_t, bool& have_t) {
  const char* name = tier == Tier::kRaw ? "raw tier" : "rollup tier";
  const auto n = in.get<std::uint32_t>();
  if (!in.ok() || n > in.left() / 8) return std::string(name) + ": bad chunk count";
  std::vector<Row> rows;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto nrows = in.get<std::uint32_t>();
    const auto bits = in.get<std::uint32_t>();
    const std::uint8_t* p = in.take((std::uint64_t{bits} + 7) / 8);
    // A constant, steadily sampled chunk takes fewer bits than rows: no rows-vs-bits bound.
    if (!p || nrows == 0 || nrows > kMaxRows)
      return std::string(name) + ": chunk header damaged";
    rows.clear();
    if (!decode_sealed(p, bits, nrows, kind, tier, rows))
      return std::string(name) + ": chunk " + std::to_string(i) + " does not decode";
    if (auto e = check_rows(rows, last_t, have_t, tier, step); !e.empty())
      return std::string(name) + ": chunk " + std::to_string(i) + ": " + e;
    ChunkView c;
    std::vector<SketchBin> expect;
    for (const Row& r : rows) {
      double v;
      if (tier == Tier::kRollup && sketch_value_of(r, c.sum, kind, tier, v)) sketch_add(expect, sketch_key(v));
      c.sum.add(r, kind, tier);
    }
    if (static_cast<std::uint64_t>(c.sum.t_last - c.sum.t_first) > UINT32_MAX)
      return std::string(name) + ": chunk " + std::to_string(i) + " spans more than 49 days";
    if (tier == Tier::kRollup) {
      // Percentiles are answered from the sketch without decoding rows: it must match them.
      BitReader sk(p, bits);
      std::vector<SketchBin> got;
      const bool read = seek_sealed_sketch(p, bits, kind, tier, sk) &&
                        read_sketch(sk, [&](std::uint32_t k, std::uint32_t n) { got.push_back({k, n}); });
      // The section must end where its length says (the times follow it).
      BitReader len_rd(p, bits);
      const std::uint64_t end = read_length(len_rd) + len_rd.position();
      const bool same = read && sk.position() == end && got.size() == expect.size() &&
                        std::equal(got.begin(), got.end(), expect.begin(), [](const SketchBin& a, const SketchBin& b) {
                          return a.key == b.key && a.count == b.count;
                        });
      if (!same) return std::string(name) + ": chunk " + std::to_string(i) + ": sketch does not match its rows";
    }
    td.sealed.push_back(c.sum, p, bits);
  }
  const auto nrows = in.get<std::uint32_t>();
  const auto bits = in.get<std::uint32_t>();
  const std::uint8_t* p = in.take((std::uint64_t{bits} + 7) / 8);
  if (!p || nrows > bits || nrows > kMaxRows) return std::string(name) + ": open chunk header damaged";
  rows.clear();
  if (!decode_open_checked(p, bits, nrows, kind, tier, rows))
    return std::string(name) + ": open chunk does not decode";
  if (auto e = check_rows(rows, last_t, have_t, tier, step); !e.empty())
    return std::string(name) + ": open chunk: " + e;
  for (const Row& r : rows) add_row(td, r, kind, tier, kMaxRows);
  return {};
}

std::string read_series(In& in, SeriesKey& key, Series& s, std::int64_t step) {
  key.target = in.get<std::uint64_t>();
  key.metric = in.get<std::uint16_t>();
  const auto kind = in.get<std::uint8_t>();
  const auto flags = in.get<std::uint8_t>();
  s.last_t = in.get<std::int64_t>();
  s.last_v = in.f64();
  if (!in.ok()) return "series header truncated";
  if (kind > 1) return "unknown series kind " + std::to_string(kind);
  s.kind = static_cast<SeriesKind>(kind);
  s.has_last = flags & 1;
  s.raw_evicted = flags & 2;
  if (!s.has_last) return "series without samples";
  if (!std::isfinite(s.last_v)) return "non-finite last value";
  std::int64_t t = 0;
  bool have = false;
  if (auto e = read_tier(in, s.raw, s.kind, Tier::kRaw, step, t, have); !e.empty()) return e;
  if (have && t != s.last_t) return "raw tier ends at " + std::to_string(t) + ", not at the last sample";
  t = 0;
  have = false;
  if (auto e = read_tier(in, s.rollup, s.kind, Tier::kRollup, step, t, have); !e.empty()) return e;
  Bucket& b = s.bucket;
  b.count = in.get<std::uint32_t>();
  b.t = in.get<std::int64_t>();
  b.sum = in.f64();
  b.min = in.f64();
  b.max = in.f64();
  b.last = in.f64();
  b.corr = in.f64();
  if (!in.ok()) return "open bucket truncated";
  if (in.left() != 0) return std::to_string(in.left()) + " stray bytes after the series";
  if (b.count == 0) return "no open bucket";
  Row br = bucket_row(b);
  std::vector<Row> one{br};
  if (auto e = check_rows(one, t, have, Tier::kRollup, step); !e.empty()) return "open bucket: " + e;
  if (b.t != s.last_t) return "open bucket does not end at the last sample";
  return {};
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

}  // namespace

namespace detail {
// Where restore reads from: bytes in memory (the fuzzer, tests) or a file read in pieces.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Reads exactly `n` bytes; false when fewer are left (or the read failed: see error()).
  virtual bool read(std::uint8_t* dst, std::size_t n) = 0;
  virtual std::uint64_t left() const = 0;
  virtual std::uint64_t size() const = 0;
  std::uint64_t pos() const { return size() - left(); }
  /// Why a read failed other than by reaching the end (an I/O error), or empty.
  virtual std::string error() const { return {}; }
};
}  // namespace detail

namespace {

class MemorySource final : public ByteSource {
 public:
  MemorySource(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool read(std::uint8_t* dst, std::size_t n) override {
    if (n_ - pos_ < n) {
      pos_ = n_;
      return false;
    }
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return true;
  }
  std::uint64_t left() const override { return n_ - pos_; }
  std::uint64_t size() const override { return n_; }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

// A file through a 64 KiB buffer: small reads (section headers) cost no syscall each, large ones
// (a series' section) go straight into the caller's buffer.
class FileSource final : public ByteSource {
 public:
  FileSource(int fd, std::uint64_t size) : fd_(fd), size_(size), buf_(std::make_unique<std::uint8_t[]>(kBuf)) {}
  ~FileSource() override { ::close(fd_); }
  bool read(std::uint8_t* dst, std::size_t n) override {
    if (left() < n) {
      consumed_ = size_;
      return false;
    }
    const std::size_t have = std::min(n, end_ - at_);
    std::memcpy(dst, buf_.get() + at_, have);
    at_ += have;
    consumed_ += have;
    dst += have;
    n -= have;
    if (n == 0) return true;
    if (n >= kBuf) return fill(dst, n);
    if (!fill(buf_.get(), std::min<std::uint64_t>(kBuf, left()))) return false;
    end_ = std::min<std::uint64_t>(kBuf, left());
    std::memcpy(dst, buf_.get(), n);
    at_ = n;
    consumed_ += n;
    return true;
  }
  std::uint64_t left() const override { return size_ - consumed_; }
  std::uint64_t size() const override { return size_; }
  std::string error() const override { return error_; }

 private:
  static constexpr std::size_t kBuf = 64 << 10;
  // Reads n bytes from the file into dst (consumed_ moves only for direct reads, see read()).
  bool fill(std::uint8_t* dst, std::size_t n) {
    const bool direct = dst != buf_.get();
    std::size_t done = 0;
    while (done < n) {
      const ssize_t r = ::read(fd_, dst + done, n - done);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        error_ = r < 0 ? std::strerror(errno) : "file shrank while being read";
        consumed_ = size_;
        at_ = end_ = 0;
        return false;
      }
      done += static_cast<std::size_t>(r);
    }
    if (direct) consumed_ += n;
    at_ = end_ = 0;
    return true;
  }

  int fd_;
  std::uint64_t size_;
  std::uint64_t consumed_ = 0;
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t at_ = 0, end_ = 0;
  std::string error_;
};

std::vector<std::uint8_t> header_bytes(const Options& o, std::size_t series) {
  Out h;
  h.bytes(reinterpret_cast<const std::uint8_t*>(kMagic), sizeof kMagic);
  h.u32(kVersion);
  h.u32(40);
  h.i64(o.rollup_step_ms);
  h.i64(o.raw_retention_ms);
  h.i64(o.history_ms);
  h.u32(o.raw_chunk_samples);
  h.u32(o.rollup_chunk_rows);
  h.u64(series);
  h.u32(crc32c(h.buf().data(), h.size()));
  return std::move(h.buf());
}

// Sections are handed on once this many bytes have gathered.
constexpr std::size_t kEmitBytes = 256 << 10;

}  // namespace

std::uint64_t Store::write_checkpoint(const std::function<void(const std::uint8_t*, std::size_t)>& emit,
                                      std::size_t& written) const {
  // Key order makes equal stores write equal files. Each series is serialised under the shared
  // lock and handed on after it is released, so appends wait for one series, never for the disk.
  std::vector<SeriesKey> order;
  {
    std::shared_lock lock(mutex_);
    order.reserve(series_.size());
    for (const auto& entry : series_) order.push_back(entry.first);
  }
  std::sort(order.begin(), order.end());
  std::uint64_t total = 0;
  Out o;
  o.buf() = header_bytes(options_, order.size());
  std::uint64_t count = 0;
  auto flush = [&] {
    emit(o.buf().data(), o.size());
    total += o.size();
    o.buf().clear();
  };
  for (const SeriesKey& key : order) {
    const std::size_t at = o.size();
    {
      std::shared_lock lock(mutex_);
      auto it = series_.find(key);
      if (it == series_.end()) continue;  // expired meanwhile
      o.u32(kTagSeries);
      o.u32(0);
      write_series(o, key, *it->second);
    }
    o.patch_u32(at + 4, static_cast<std::uint32_t>(o.size() - at - 8));
    o.u32(crc32c(o.buf().data() + at, o.size() - at));
    ++count;
    if (o.size() >= kEmitBytes) flush();
  }
  const std::size_t at = o.size();
  o.u32(kTagEnd);
  o.u32(8);
  o.u64(count);
  o.u32(crc32c(o.buf().data() + at, o.size() - at));
  flush();
  written = count;
  return total;
}

std::vector<std::uint8_t> Store::checkpoint_bytes() const {
  std::vector<std::uint8_t> out;
  std::size_t series = 0;
  write_checkpoint([&](const std::uint8_t* p, std::size_t n) { out.insert(out.end(), p, p + n); }, series);
  return out;
}

CheckpointInfo Store::checkpoint(const std::filesystem::path& path) const {
  const std::filesystem::path tmp = path.string() + ".tmp";
  int fd = -1;
  auto fail = [&](const std::string& what) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw StoreError("cannot write checkpoint " + path.string() + ": " + what + ": " +
                     std::strerror(err) + " — check that the state dir exists and is writable");
  };
  fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("open " + tmp.string());
  std::size_t series = 0;
  std::uint64_t bytes = 0;
  bool failed = false;
  int write_errno = 0;
  bytes = write_checkpoint(
      [&](const std::uint8_t* p, std::size_t n) {
        for (std::size_t done = 0; done < n && !failed;) {
          const ssize_t w = ::write(fd, p + done, n - done);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) {
            failed = true;  // the rest of the sections are serialised and dropped: cheap, and no throw through the lock
            write_errno = w < 0 ? errno : ENOSPC;
            break;
          }
          done += static_cast<std::size_t>(w);
        }
      },
      series);
  if (failed) {
    errno = write_errno;
    fail("write");
  }
  if (::fsync(fd) != 0) fail("fsync");
  ::close(fd);
  fd = -1;
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename to " + path.string());
  // The rename is durable only once the directory is synced.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {bytes, series};
}

RestoreReport Store::restore(const std::filesystem::path& path) {
  RestoreReport rep;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    std::error_code ec;
    if (err != ENOENT || std::filesystem::exists(path, ec)) {
      rep.found = true;
      rep.errors.push_back("checkpoint " + path.string() + ": cannot open: " + std::strerror(err) +
                           " — skipped, starting with empty history");
    }
    std::unique_lock lock(mutex_);
    series_.clear();
    ++epoch_;
    return rep;
  }
  FileSource in(fd, static_cast<std::uint64_t>(st.st_size));
  return restore_from(in, "checkpoint " + path.string(), true);
}

RestoreReport Store::restore_bytes(const std::uint8_t* data, std::size_t size,
                                   const std::string& name, bool verify) {
  MemorySource in(data, size);
  return restore_from(in, name, verify);
}

RestoreReport Store::restore_from(ByteSource& in, const std::string& name, bool verify) {
  RestoreReport rep;
  rep.found = true;
  std::unordered_map<SeriesKey, std::unique_ptr<Series>, KeyHash> loaded;
  auto install = [&] {
    std::unique_lock lock(mutex_);
    series_ = std::move(loaded);
    ++epoch_;
    return rep;
  };
  auto whole_file = [&](const std::string& what) {
    rep.errors.push_back(name + ": " + what + " — skipped, starting with empty history");
    loaded.clear();
    return install();
  };
  auto io = [&] { return in.error().empty() ? std::string() : " (read error: " + in.error() + ")"; };
  const std::uint64_t size = in.size();
  std::uint8_t head[sizeof kMagic + 4 + 4 + 40 + 4];
  if (!in.read(head, sizeof kMagic))
    return whole_file("truncated: " + std::to_string(size) + " bytes, shorter than the header" + io());
  if (std::memcmp(head, kMagic, sizeof kMagic) != 0) return whole_file("not a podgauge store checkpoint (bad magic)");
  if (!in.read(head + sizeof kMagic, 8)) return whole_file("truncated header" + io());
  std::uint32_t version, hlen;
  std::memcpy(&version, head + 8, 4);
  std::memcpy(&hlen, head + 12, 4);
  if (version != kVersion)
    return whole_file("format version " + std::to_string(version) + " is not supported (this agent reads " +
                      std::to_string(kVersion) + ")");
  if (hlen != 40) return whole_file("header length " + std::to_string(hlen) + " is wrong");
  if (!in.read(head + 16, 44)) return whole_file("truncated header" + io());
  std::uint32_t crc;
  std::memcpy(&crc, head + 56, 4);
  if (verify && crc != crc32c(head, 56)) return whole_file("header checksum mismatch (stored " + hex32(crc) + ")");
  In h(head + 16, 40);
  const auto step = h.get<std::int64_t>();
  if (step != options_.rollup_step_ms)
    return whole_file("written with a " + std::to_string(step) + " ms rollup step, this store uses " +
                      std::to_string(options_.rollup_step_ms) + " ms");
  std::size_t index = 0;
  bool ended = false;
  // One section at a time: the buffer grows to the largest series (~100 KiB for 24 h), never to
  // the file, and a length is believed only as far as the file reaches.
  std::vector<std::uint8_t> section;
  while (in.left() > 0) {
    const std::uint64_t at = in.pos();
    std::uint8_t th[8];
    std::uint32_t tag = 0, len = 0;
    const bool have = in.read(th, 8);
    if (have) {
      std::memcpy(&tag, th, 4);
      std::memcpy(&len, th + 4, 4);
    }
    if (!have || len > kMaxSection || len + std::uint64_t{4} > in.left()) {
      rep.errors.push_back(name + ": section " + std::to_string(index) + " at byte " + std::to_string(at) +
                           " runs past the end of the file (truncated or torn write)" + io() +
                           " — it and anything after it skipped");
      ++rep.series_skipped;
      break;
    }
    section.resize(8 + std::size_t{len} + 4);
    std::memcpy(section.data(), th, 8);
    if (!in.read(section.data() + 8, std::size_t{len} + 4)) {
      rep.errors.push_back(name + ": section " + std::to_string(index) + " at byte " + std::to_string(at) +
                           " cannot be read" + io() + " — it and anything after it skipped");
      ++rep.series_skipped;
      break;
    }
    const std::uint8_t* payload = section.data() + 8;
    std::uint32_t sum;
    std::memcpy(&sum, payload + len, 4);
    if (verify && sum != crc32c(section.data(), 8 + std::size_t{len})) {
      rep.errors.push_back(name + ": section " + std::to_string(index) + " at byte " + std::to_string(at) +
                           ": checksum mismatch — skipped");
      ++rep.series_skipped;
      ++index;
      continue;
    }
    if (tag == kTagEnd) {
      In e(payload, len);
      const auto n = e.get<std::uint64_t>();
      if (!e.ok() || n != index)
        rep.errors.push_back(name + ": end marker counts " + std::to_string(n) + " series, file holds " +
                             std::to_string(index));
      ended = true;
      if (in.left() != 0)
        rep.errors.push_back(name + ": " + std::to_string(in.left()) + " stray bytes after the end marker — ignored");
      break;
    }
    if (tag != kTagSeries) {
      rep.errors.push_back(name + ": section " + std::to_string(index) + " has unknown tag " +
                           std::to_string(tag) + " — skipped");
      ++index;
      continue;
    }
    In sin(payload, len);
    SeriesKey key;
    auto s = std::make_unique<Series>();
    std::string err = read_series(sin, key, *s, step);
    if (err.empty() && loaded.contains(key)) err = "duplicate series";
    if (!err.empty()) {
      rep.errors.push_back(name + ": section " + std::to_string(index) + " (" + key_name(key) + "): " + err +
                           " — series skipped");
      ++rep.series_skipped;
    } else {
      loaded.emplace(key, std::move(s));
      ++rep.series_loaded;
    }
    ++index;
  }
  if (!ended && (rep.errors.empty() || in.left() == 0))
    rep.errors.push_back(name + ": no end marker after " + std::to_string(index) +
                         " sections: the file is truncated — kept the series that were intact");
  return install();
}

}  // namespace podgauge::store
