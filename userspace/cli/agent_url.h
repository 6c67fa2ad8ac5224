#pragma once
// Talking to one agent (--agent URL): URL parsing and JSON GETs.
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace podgauge::cli {

/// A bad --agent URL; what() says what is wrong.
struct AgentUrlError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct AgentUrl {
  std::string origin;     // scheme://host:port for httplib::Client
  std::string base_path;  // e.g. an API-server proxy prefix; no trailing slash
};

/// "http://10.0.0.5:9742[/prefix]" -> origin and base path. Throws AgentUrlError.
AgentUrl parse_agent_url(std::string_view url);

/// GET base_path + path_and_query from the agent and parse the JSON body. Throws
/// std::runtime_error saying what failed (unreachable, HTTP status with the body, bad JSON).
nlohmann::json get_agent_json(const AgentUrl& url, const std::string& path_and_query);

}  // namespace podgauge::cli
