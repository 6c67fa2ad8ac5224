#pragma once
// Prometheus text exposition format 0.0.4, built straight into one string: a page can hold
// 50k series, so there is no per-sample allocation and no intermediate metric objects.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>

namespace podgauge::exporters {

inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { counter, gauge, histogram };

struct Label {
  std::string_view name;
  std::string_view value;
};

/// A programming mistake: invalid metric/label name, samples outside a family, bad buckets.
class ExpositionError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// [a-zA-Z_:][a-zA-Z0-9_:]*
bool is_valid_metric_name(std::string_view name);
/// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool is_valid_label_name(std::string_view name);

/// `\` -> `\\`, newline -> `\n`; invalid UTF-8 becomes U+FFFD.
void append_escaped_help(std::string& out, std::string_view help);
/// `\` -> `\\`, `"` -> `\"`, newline -> `\n`; invalid UTF-8 becomes U+FFFD.
void append_escaped_label_value(std::string& out, std::string_view value);
/// Shortest text that parses back to the same double; integral values without exponent;
/// +Inf, -Inf, NaN as Prometheus spells them.
void append_sample_value(std::string& out, double value);

/// Builds one /metrics page: family() writes a family's HELP and TYPE once, then sample() or
/// histogram() write its series. Throws ExpositionError on misuse.
/// Not thread-safe: build each page on one thread.
class ExpositionWriter {
 public:
  explicit ExpositionWriter(std::size_t reserve_bytes = 64 * 1024);

  /// Starts a family. Each name may start only one family per page.
  void family(std::string_view name, std::string_view help, MetricType type);

  /// A counter or gauge sample of the current family.
  void sample(std::span<const Label> labels, double value);
  void sample(std::initializer_list<Label> labels, double value) {
    sample(std::span<const Label>(labels.begin(), labels.size()), value);
  }
  /// Exact for counters beyond 2^53 (bytes, events).
  void sample_integer(std::span<const Label> labels, std::uint64_t value);
  void sample_integer(std::initializer_list<Label> labels, std::uint64_t value) {
    sample_integer(std::span<const Label>(labels.begin(), labels.size()), value);
  }

  /// One histogram series of the current (histogram) family. `upper_bounds` are strictly
  /// increasing finite bucket bounds; `bucket_counts` holds per-bucket (not cumulative) counts,
  /// one per bound plus a last one for observations above every bound. Writes cumulative
  /// `_bucket{le=...}` lines ending with le="+Inf", then `_sum` and `_count`.
  void histogram(std::span<const Label> labels, std::span<const double> upper_bounds,
                 std::span<const std::uint64_t> bucket_counts, double sum);
  void histogram(std::initializer_list<Label> labels, std::span<const double> upper_bounds,
                 std::span<const std::uint64_t> bucket_counts, double sum) {
    histogram(std::span<const Label>(labels.begin(), labels.size()), upper_bounds, bucket_counts,
              sum);
  }

  const std::string& text() const { return out_; }
  /// Moves the page out; the writer is empty afterwards.
  std::string take();

 private:
  void require_family(bool histogram);
  void append_series(std::string_view suffix, std::span<const Label> labels,
                     const Label* extra);

  std::string out_;
  std::string family_;
  MetricType type_ = MetricType::gauge;
  bool in_family_ = false;
  std::unordered_set<std::string> families_;
};

}  // namespace podgauge::exporters
