#include "podgauge/exporters/exposition.h"

#include <charconv>
#include <cmath>
#include <limits>

#include "utf8.h"

namespace podgauge::exporters {

namespace {

bool is_name_char(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return allow_colon;
  return !first && c >= '0' && c <= '9';
}

bool is_valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

// Escapes `\`, newline and (for label values) `"`; `text` is already valid UTF-8.
void append_escaped(std::string& out, std::string_view text, bool escape_quote) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char* repl = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : (c == '"' && escape_quote) ? "\\\"" : nullptr;
    if (repl == nullptr) continue;
    out.append(text.substr(start, i - start));
    out.append(repl);
    start = i + 1;
  }
  out.append(text.substr(start));
}

// Writes the value into buf (at least 400 bytes: fixed notation of 1e308 has 309 digits).
std::size_t format_value(char* buf, std::size_t size, double value) {
  if (std::isnan(value)) return std::string_view("NaN").copy(buf, size);
  if (std::isinf(value)) return std::string_view(value > 0 ? "+Inf" : "-Inf").copy(buf, size);
  std::to_chars_result r;
  if (value == std::trunc(value) && std::fabs(value) < 1e21) {
    // Integral: plain digits, exact (e.g. 4294967296, not 4.294967296e+09).
    r = std::to_chars(buf, buf + size, value, std::chars_format::fixed);
  } else {
    r = std::to_chars(buf, buf + size, value);  // shortest round-trip
  }
  return static_cast<std::size_t>(r.ptr - buf);
}

void append_uint(std::string& out, std::uint64_t value) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace

bool is_valid_metric_name(std::string_view name) { return is_valid_name(name, true); }

bool is_valid_label_name(std::string_view name) {
  return is_valid_name(name, false) && !name.starts_with("__");
}

void append_escaped_help(std::string& out, std::string_view help) {
  if (help.find_first_of("\\\n") == std::string_view::npos && detail::is_valid_utf8(help)) {
    out.append(help);
    return;
  }
  std::string valid;
  detail::append_valid_utf8(valid, help);
  append_escaped(out, valid, false);
}

void append_escaped_label_value(std::string& out, std::string_view value) {
  bool plain = true;
  for (char c : value) {
    if (c == '\\' || c == '"' || c == '\n' || static_cast<unsigned char>(c) >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(value);
    return;
  }
  if (detail::is_valid_utf8(value)) {
    append_escaped(out, value, true);
    return;
  }
  std::string valid;
  detail::append_valid_utf8(valid, value);
  append_escaped(out, valid, true);
}

void append_sample_value(std::string& out, double value) {
  char buf[400];
  out.append(buf, format_value(buf, sizeof buf, value));
}

ExpositionWriter::ExpositionWriter(std::size_t reserve_bytes) { out_.reserve(reserve_bytes); }

std::string ExpositionWriter::take() {
  std::string page = std::move(out_);
  out_.clear();
  family_.clear();
  in_family_ = false;
  families_.clear();
  return page;
}

void ExpositionWriter::family(std::string_view name, std::string_view help, MetricType type) {
  if (!is_valid_metric_name(name)) {
    throw ExpositionError("invalid metric name \"" + std::string(name) +
                          "\": must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  if (!families_.emplace(name).second) {
    throw ExpositionError("metric family \"" + std::string(name) +
                          "\" written twice on one page: write all its samples after one family()");
  }
  family_.assign(name);
  type_ = type;
  in_family_ = true;
  out_.append("# HELP ").append(name).push_back(' ');
  append_escaped_help(out_, help);
  out_.append("\n# TYPE ").append(name);
  out_.append(type == MetricType::counter ? " counter\n"
              : type == MetricType::gauge ? " gauge\n"
                                          : " histogram\n");
}

void ExpositionWriter::require_family(bool histogram) {
  if (!in_family_) throw ExpositionError("sample written before any family()");
  if (histogram != (type_ == MetricType::histogram)) {
    throw ExpositionError("metric family \"" + family_ + "\" is a " +
                          (histogram ? "counter/gauge: use sample()" : "histogram: use histogram()"));
  }
}

void ExpositionWriter::append_series(std::string_view suffix, std::span<const Label> labels,
                                     const Label* extra) {
  out_.append(family_).append(suffix);
  if (labels.empty() && extra == nullptr) {
    out_.push_back(' ');
    return;
  }
  out_.push_back('{');
  bool first = true;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const Label& l = labels[i];
    if (!is_valid_label_name(l.name)) {
      throw ExpositionError("invalid label name \"" + std::string(l.name) + "\" on metric \"" +
                            family_ + "\": must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __");
    }
    for (std::size_t k = 0; k < i; ++k) {
      if (labels[k].name == l.name) {
        throw ExpositionError("duplicate label \"" + std::string(l.name) + "\" on metric \"" +
                              family_ + "\"");
      }
    }
    if (extra != nullptr && l.name == extra->name) {
      throw ExpositionError("label \"le\" is reserved for histogram buckets (metric \"" + family_ + "\")");
    }
    if (!first) out_.push_back(',');
    first = false;
    out_.append(l.name).append("=\"");
    append_escaped_label_value(out_, l.value);
    out_.push_back('"');
  }
  if (extra != nullptr) {
    if (!first) out_.push_back(',');
    out_.append(extra->name).append("=\"").append(extra->value).push_back('"');
  }
  out_.append("} ");
}

void ExpositionWriter::sample(std::span<const Label> labels, double value) {
  require_family(false);
  append_series({}, labels, nullptr);
  append_sample_value(out_, value);
  out_.push_back('\n');
}

void ExpositionWriter::sample_integer(std::span<const Label> labels, std::uint64_t value) {
  require_family(false);
  append_series({}, labels, nullptr);
  append_uint(out_, value);
  out_.push_back('\n');
}

void ExpositionWriter::histogram(std::span<const Label> labels,
                                 std::span<const double> upper_bounds,
                                 std::span<const std::uint64_t> bucket_counts, double sum) {
  require_family(true);
  if (bucket_counts.size() != upper_bounds.size() + 1) {
    throw ExpositionError("histogram \"" + family_ + "\": " + std::to_string(upper_bounds.size()) +
                          " bounds need " + std::to_string(upper_bounds.size() + 1) +
                          " bucket counts (the last for +Inf), got " +
                          std::to_string(bucket_counts.size()));
  }
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && upper_bounds[i] <= upper_bounds[i - 1])) {
      throw ExpositionError("histogram \"" + family_ +
                            "\": bucket bounds must be finite and strictly increasing");
    }
  }
  char le_buf[400];
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < bucket_counts.size(); ++i) {
    cumulative += bucket_counts[i];
    std::string_view le = "+Inf";
    if (i < upper_bounds.size()) {
      le = std::string_view(le_buf, format_value(le_buf, sizeof le_buf, upper_bounds[i]));
    }
    const Label le_label{"le", le};
    append_series("_bucket", labels, &le_label);
    append_uint(out_, cumulative);
    out_.push_back('\n');
  }
  append_series("_sum", labels, nullptr);
  append_sample_value(out_, sum);
  out_.append("\n");
  append_series("_count", labels, nullptr);
  append_uint(out_, cumulative);
  out_.push_back('\n');
}

}  // namespace podgauge::exporters
