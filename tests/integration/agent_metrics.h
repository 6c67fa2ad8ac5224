// Reading the agent's /metrics page in tests.
#pragma once

#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace podgauge::itest {

/// Value of the first sample of `name` whose labels include every `match` pair.
inline std::optional<double> metric_value(const std::string& page, const std::string& name,
                                          const std::map<std::string, std::string>& match) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    bool all = true;
    for (const auto& [k, v] : match)
      if (line.find(k + "=\"" + v + "\"") == std::string::npos) all = false;
    if (!all) continue;
    const auto space = line.rfind(' ');
    return std::stod(line.substr(space + 1));
  }
  return std::nullopt;
}

}  // namespace podgauge::itest
