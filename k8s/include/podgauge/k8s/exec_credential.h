// Exec credential plugins (kubeconfig users[].user.exec), run as client-go runs them
// (k8s.io/client-go/plugin/pkg/client/auth/exec): the command with its args and env plus
// KUBERNETES_EXEC_INFO, its ExecCredential output parsed, the credential cached until its
// expirationTimestamp and fetched again after a 401.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podgauge::k8s {

/// users[].user.exec of a kubeconfig.
struct ExecConfig {
  std::string command;  ///< a relative path with a '/' is already resolved against its kubeconfig
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string api_version;  ///< client.authentication.k8s.io/v1 or /v1beta1
  std::string install_hint;
  bool provide_cluster_info = false;
  std::string interactive_mode = "IfAvailable";  ///< Never, IfAvailable, Always
  std::string user;                              ///< "user \"name\" in <kubeconfig>", for messages
  /// The cluster, passed in KUBERNETES_EXEC_INFO when provide_cluster_info.
  std::string cluster_server;
  std::string cluster_tls_server_name;
  bool cluster_insecure_skip_tls_verify = false;
  std::string cluster_ca_pem;
  std::string cluster_exec_extension_json;   ///< extensions client.authentication.k8s.io/exec
  std::chrono::milliseconds timeout{60000};  ///< the plugin is killed after this
};

/// The plugin could not be run or gave no usable credential; what() says how to fix it
/// (and includes the installHint when the kubeconfig gives one).
class ExecCredentialError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ExecCredential {
  std::string token;
  std::string client_certificate_pem;
  std::string client_key_pem;
  std::optional<std::chrono::system_clock::time_point> expiration;
};

/// Runs the plugin once (no caching). Throws ExecCredentialError.
ExecCredential run_exec_plugin(const ExecConfig& config);

/// Reads a plugin's stdout: an ExecCredential of config.api_version with a token or a client
/// certificate and key. Throws ExecCredentialError saying what is wrong.
ExecCredential parse_exec_credential(std::string_view output, const ExecConfig& config);

/// The JSON KUBERNETES_EXEC_INFO holds for `config`, as kubectl sets it.
std::string exec_info_json(const ExecConfig& config);

/// Thread-safety: get() and invalidate() may be called from any thread; one plugin run at
/// a time.
class ExecCredentialProvider {
 public:
  explicit ExecCredentialProvider(ExecConfig config) : config_(std::move(config)) {}
  /// The cached credential while it has not expired, else a fresh one from the plugin.
  ExecCredential get();
  /// Forgets the cached credential (after a 401), so the next get() runs the plugin.
  void invalidate();
  std::uint64_t runs() const;
  const ExecConfig& config() const noexcept { return config_; }

 private:
  ExecConfig config_;
  mutable std::mutex mutex_;
  std::optional<ExecCredential> cached_;
  std::uint64_t runs_ = 0;
};

}  // namespace podgauge::k8s
