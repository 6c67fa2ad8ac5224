#pragma once
// Kernel strings (comm, cgroup names) are arbitrary bytes, but Prometheus label values, JSON
// and proto3 `string` fields must be UTF-8: invalid sequences become U+FFFD.
#include <string>
#include <string_view>

namespace podgauge::exporters::detail {

bool is_valid_utf8(std::string_view text);
/// Appends `text` to `out`, replacing each invalid byte sequence with U+FFFD.
void append_valid_utf8(std::string& out, std::string_view text);
/// Rewrites `text` in place only when it is not valid UTF-8.
void make_valid_utf8(std::string& text);

}  // namespace podgauge::exporters::detail
