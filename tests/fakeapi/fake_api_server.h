#pragma once
// podgauge's stand-in for kube-apiserver in tests: HTTPS (and optionally plain HTTP) on
// loopback, speaking the real Kubernetes API protocol well enough for the real kubectl:
// discovery (legacy and aggregated), OpenAPI v3 index for server-side field validation,
// Table output, LIST with selectors and pagination, chunked WATCH with bookmarks and 410,
// bearer-token and client-certificate authentication, RBAC-like 403s, the pod proxy
// (pods/<name>:<port>/proxy/...) and fault injection.
//
//   FakeApiServer api;                      // starts at once, ports picked freely
//   api.create("pods", "default", pod_json);
//   setenv KUBECONFIG=api.token_kubeconfig() and run kubectl.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "access_control.h"
#include "api_error.h"
#include "certificate_authority.h"
#include "fault_injector.h"
#include "object_store.h"
#include "resource_catalog.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace podgauge::fakeapi {

/// Thread-safety: the data and fault API may be used from any thread while serving;
/// start/stop/restart from one thread.
class FakeApiServer {
 public:
  /// The bearer token of user "admin" (group system:masters) unless Options::tokens says else.
  static constexpr const char* kAdminToken = "podgauge-fakeapi-admin-token";

  struct Options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;        // HTTPS; 0 picks a free port (kept across restart())
    bool plain_http = false;       // also serve plain HTTP (tokens only)
    std::uint16_t http_port = 0;
    std::filesystem::path dir;     // PKI + kubeconfigs; empty: a temp dir removed at the end
    // Bearer tokens. The default admin token is in every written token kubeconfig.
    std::map<std::string, User> tokens{
        {kAdminToken, {"admin", {"system:masters", "system:authenticated"}}}};
    std::size_t history_window = 1000;                // watch replay window (events)
    std::chrono::milliseconds bookmark_interval{1000};  // upstream: ~1 min
    bool auto_create_namespaces = false;              // upstream: 404 on a missing namespace
    bool seed_namespaces = true;  // default, kube-system, kube-public, kube-node-lease
    std::size_t worker_threads = 64;                  // bounds concurrent connections
    std::string version = "v1.32.0";                  // gitVersion in /version
    bool start = true;                                // start in the constructor
    bool serve_events_k8s_io = true;  // false: no events.k8s.io/v1, as servers before 1.19
  };

  FakeApiServer();
  explicit FakeApiServer(Options options);
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  /// Binds and serves; returns once connections are accepted. Throws std::runtime_error.
  void start();
  /// Ends every watch, closes the listeners; state is kept.
  void stop();
  /// stop(), wait `downtime`, start() on the same ports with the same state and PKI.
  void restart(std::chrono::milliseconds downtime = std::chrono::milliseconds(0));
  bool running() const;

  std::uint16_t port() const { return port_; }
  std::uint16_t http_port() const { return http_port_; }
  std::string url() const;       // https://127.0.0.1:<port>
  std::string http_url() const;  // http://127.0.0.1:<http_port> (plain_http only)
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path ca_file() const { return dir_ / "ca.crt"; }

  /// Kubeconfigs with certificate-authority-data, written at start: the admin token, and a
  /// client certificate for user "admin" in group system:masters.
  std::filesystem::path token_kubeconfig() const { return dir_ / "kubeconfig-token.yaml"; }
  std::filesystem::path cert_kubeconfig() const { return dir_ / "kubeconfig-cert.yaml"; }
  /// Writes a kubeconfig authenticating with `token` (need not be valid: for 401 tests).
  std::filesystem::path write_token_kubeconfig(const std::string& token,
                                               const std::filesystem::path& path) const;
  /// Mints a client certificate for `user`/`groups` and writes a kubeconfig using it.
  std::filesystem::path write_cert_kubeconfig(const std::string& user,
                                              const std::vector<std::string>& groups,
                                              const std::filesystem::path& path) const;
  KeyPair mint_client_certificate(const std::string& user,
                                  const std::vector<std::string>& groups) const;

  // Authentication / authorization.
  void add_token(const std::string& token, User user);
  /// The token is rejected (401) from now on, as a revoked or expired one.
  void remove_token(const std::string& token);
  /// Restricts `user` to what its rules allow (403 otherwise).
  void allow(const std::string& user, PolicyRule rule);

  // State, by resource name as kubectl takes it ("pods", "po", "deployments.apps").
  nlohmann::json create(const std::string& resource, const std::string& ns, nlohmann::json object);
  nlohmann::json get(const std::string& resource, const std::string& ns, const std::string& name) const;
  nlohmann::json update(const std::string& resource, const std::string& ns, nlohmann::json object);
  nlohmann::json patch(const std::string& resource, const std::string& ns, const std::string& name,
                       const nlohmann::json& merge_patch);
  nlohmann::json remove(const std::string& resource, const std::string& ns, const std::string& name);
  std::vector<nlohmann::json> list(const std::string& resource, const std::string& ns = "") const;

  ObjectStore& store() { return *store_; }
  const ResourceCatalog& catalog() const { return catalog_; }
  FaultInjector& faults() { return faults_; }
  const CertificateAuthority& ca() const { return *ca_; }

  /// Number of requests served (all paths), e.g. to prove a client retried.
  std::uint64_t request_count() const { return requests_; }

 private:
  struct Listener;
  struct Route;
  void handle(const httplib::Request& req, httplib::Response& res, bool tls);
  void handle_control(const httplib::Request& req, httplib::Response& res);
  void handle_api(const httplib::Request& req, httplib::Response& res, bool tls);
  bool handle_non_resource(const httplib::Request& req, httplib::Response& res);
  void handle_resource(const httplib::Request& req, httplib::Response& res, const User& user,
                       const Route& route);
  void proxy_to_pod(const httplib::Request& req, httplib::Response& res, const User& user,
                    const std::string& ns, const std::vector<std::string>& rest);
  void serve_watch(const httplib::Request& req, httplib::Response& res, const Route& route);
  User authenticate(const httplib::Request& req, bool tls) const;
  std::unique_ptr<Listener> make_listener(bool tls);
  std::string kubeconfig(const std::string& user_block) const;

  Options options_;
  ResourceCatalog catalog_;
  std::unique_ptr<ObjectStore> store_;
  AccessControl access_;
  FaultInjector faults_;
  std::unique_ptr<CertificateAuthority> ca_;
  KeyPair server_cert_;
  std::filesystem::path dir_;
  bool owns_dir_ = false;
  std::uint16_t port_ = 0;
  std::uint16_t http_port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::unique_ptr<Listener> https_;
  std::unique_ptr<Listener> http_;
  std::mutex restart_mutex_;
  std::thread restart_thread_;  // for the /fakeapi/restart control call
};

}  // namespace podgauge::fakeapi
