// Where the API server is and how to authenticate to it: kubeconfig files (merged as kubectl
// merges them) or the in-cluster service account.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "podgauge/k8s/exec_credential.h"

namespace podgauge::k8s {

/// A kubeconfig or service-account problem; what() says what to fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Everything a client needs to reach one API server as one user.
/// Thread-safety: a value type; concurrent const use is safe.
struct RestConfig {
  std::string server;  ///< "https://host:port[/prefix]" or "http://..."
  // Server authentication. A *_file path is absolute; *_pem holds inline data instead.
  std::filesystem::path ca_file;
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  ///< name checked against the server certificate (and SNI)
  // Client authentication.
  std::string token;
  std::filesystem::path token_file;  ///< re-read when it changes (service-account rotation)
  std::filesystem::path client_certificate_file;
  std::string client_certificate_pem;
  std::filesystem::path client_key_file;
  std::string client_key_pem;
  /// users[].user.exec: the credential comes from this plugin (run by ApiClient).
  std::optional<ExecConfig> exec;
  // Where it came from.
  std::string namespace_ = "default";
  std::string context;  ///< kubeconfig context name; "" for in-cluster
  std::string source;   ///< the kubeconfig file(s) or "in-cluster", for messages
};

struct KubeconfigOptions {
  /// --kubeconfig: one file, must exist. Empty: $KUBECONFIG (colon-separated, merged), else
  /// ~/.kube/config.
  std::string kubeconfig;
  /// --context: overrides current-context.
  std::string context;
  /// Overrides the environment for tests; nullopt reads the process environment.
  std::optional<std::string> kubeconfig_env;
  std::optional<std::string> home;
};

/// Loads and merges kubeconfigs as kubectl does: the first file to define a cluster, user or
/// context name wins, current-context comes from the first file that sets it, and relative
/// paths resolve against the directory of the file that named them. YAML or JSON.
/// Throws ConfigError: missing file, unknown context (listing the known ones), no current
/// context, a context naming a missing cluster/user, unreadable credentials.
RestConfig load_kubeconfig(const KubeconfigOptions& options = {});

struct InClusterOptions {
  /// Holds token, ca.crt and namespace.
  std::filesystem::path service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  /// Overrides KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT for tests.
  std::optional<std::string> host;
  std::optional<std::string> port;
};

/// Whether KUBERNETES_SERVICE_HOST/PORT are set (running in a pod).
bool in_cluster_available(const InClusterOptions& options = {});

/// The pod's service account: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the
/// token file (re-read by the client when it rotates), ca.crt and the namespace file.
/// Throws ConfigError when not in a pod or the token cannot be read.
RestConfig in_cluster_config(const InClusterOptions& options = {});

/// kubeconfig when one is given or found, else in-cluster, else nullopt (standalone).
std::optional<RestConfig> auto_config(const KubeconfigOptions& options = {});

}  // namespace podgauge::k8s
