#pragma once
// Where the binaries under test live. ctest passes them in the environment; a test binary
// started by hand falls back to the build tree it was built in.

#include <filesystem>
#include <string_view>

namespace podgauge::itest {

/// Directory of the helper programs (burn, alloc, forker): $PODGAUGE_HELPERS_DIR, else the
/// build-time default. Throws std::runtime_error naming what to build when it does not exist.
std::filesystem::path helpers_dir();

/// Full path of one helper program, e.g. helper_binary("burn"). Throws if it is missing.
std::filesystem::path helper_binary(std::string_view name);

/// The podgauge binary: $PODGAUGE_BIN, else the build-time default. Throws if unknown/missing.
std::filesystem::path podgauge_binary();

/// A fresh private directory under $TMPDIR (default /tmp), e.g. "podgauge-prom-XXXXXX".
std::filesystem::path make_temp_dir(std::string_view prefix);

}  // namespace podgauge::itest
