// The text of a Kubernetes fixture (tests/fixtures/k8s/<name>), for the k8s unit tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace podgauge::k8s::testing {

inline std::string fixture(const std::string& name) {
  // $PODGAUGE_FIXTURES_DIR where the source tree is not at its build path (vmtests).
  const char* dir = std::getenv("PODGAUGE_FIXTURES_DIR");
  const auto root = dir && *dir ? std::filesystem::path(dir)
                                : std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures";
  const auto path = root / "k8s" / name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open fixture " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace podgauge::k8s::testing
