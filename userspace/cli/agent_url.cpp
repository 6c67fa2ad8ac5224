#include "agent_url.h"

#include <httplib.h>

namespace podgauge::cli {

AgentUrl parse_agent_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos)
    throw AgentUrlError("--agent wants a URL like http://HOST:9742, got \"" + std::string(url) + "\"");
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    throw AgentUrlError("--agent URL must start with http:// or https://, got \"" + std::string(url) + "\"");
  const auto path_start = url.find('/', scheme_end + 3);
  AgentUrl out;
  out.origin = std::string(url.substr(0, path_start));
  if (path_start != std::string_view::npos) out.base_path = std::string(url.substr(path_start));
  while (out.base_path.ends_with('/')) out.base_path.pop_back();
  if (out.origin.size() == scheme_end + 3)
    throw AgentUrlError("--agent URL has no host: \"" + std::string(url) + "\"");
  return out;
}

nlohmann::json get_agent_json(const AgentUrl& url, const std::string& path_and_query) {
  httplib::Client client(url.origin);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  const auto res = client.Get(url.base_path + path_and_query);
  if (!res)
    throw std::runtime_error("cannot reach the agent at " + url.origin + ": " + httplib::to_string(res.error()) +
                             " (is `podgauge agent` running there?)");
  if (res->status != 200)
    throw std::runtime_error("agent at " + url.origin + " answered " + std::to_string(res->status) + " to " +
                             path_and_query + ": " + res->body.substr(0, 300));
  try {
    return nlohmann::json::parse(res->body);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("agent at " + url.origin + " sent invalid JSON for " + path_and_query + ": " + e.what());
  }
}

}  // namespace podgauge::cli
