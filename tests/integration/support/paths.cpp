#include "support/paths.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace podgauge::itest {
namespace fs = std::filesystem;

namespace {
const char* env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return (value && *value) ? value : fallback;
}
}  // namespace

fs::path helpers_dir() {
#ifdef PODGAUGE_DEFAULT_HELPERS_DIR
  const char* dir = env_or("PODGAUGE_HELPERS_DIR", PODGAUGE_DEFAULT_HELPERS_DIR);
#else
  const char* dir = env_or("PODGAUGE_HELPERS_DIR", nullptr);
#endif
  if (!dir)
    throw std::runtime_error("PODGAUGE_HELPERS_DIR is not set — run the test through ctest");
  return dir;
}

fs::path helper_binary(std::string_view name) {
  fs::path path = helpers_dir() / name;
  if (!fs::exists(path))
    throw std::runtime_error("helper program " + path.string() +
                             " is missing — build it: cmake --build <build-dir> --target "
                             "podgauge_helper_" +
                             std::string(name));
  return path;
}

fs::path podgauge_binary() {
#ifdef PODGAUGE_DEFAULT_BIN
  const char* bin = env_or("PODGAUGE_BIN", PODGAUGE_DEFAULT_BIN);
#else
  const char* bin = env_or("PODGAUGE_BIN", nullptr);
#endif
  if (!bin)
    throw std::runtime_error(
        "PODGAUGE_BIN is not set and the build has no podgauge target — build podgauge and "
        "run the test through ctest");
  if (!fs::exists(bin))
    throw std::runtime_error(std::string("podgauge binary ") + bin +
                             " is missing — build it: cmake --build <build-dir> --target podgauge");
  return bin;
}

fs::path make_temp_dir(std::string_view prefix) {
  std::string pattern =
      (fs::path(env_or("TMPDIR", "/tmp")) / (std::string(prefix) + "-XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  return fs::path(buffer.data());
}

}  // namespace podgauge::itest
