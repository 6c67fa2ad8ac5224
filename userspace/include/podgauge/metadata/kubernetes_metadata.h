// The agent's link to the API server: finds the configuration as kubectl does, watches this
// node's pods in the background and keeps a PodMetadataCache current.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "podgauge/k8s/event_writer.h"
#include "podgauge/metadata/pod_metadata_cache.h"

namespace podgauge::metadata {

struct KubernetesMetadataOptions {
  bool disabled = false;   ///< --no-kube: standalone, no API server
  std::string kubeconfig;  ///< --kubeconfig; empty: $KUBECONFIG, ~/.kube/config, in-cluster
  std::string context;     ///< --context
  std::string node_name;   ///< watch only pods with spec.nodeName=<node_name>
  std::chrono::steady_clock::duration deleted_retention = std::chrono::minutes(10);
  /// Problems the operator should see (unreachable server, 401/403, malformed pods).
  std::function<void(const std::string&)> log;
  /// Write Kubernetes Events (e.g. OOMKilled on a pod) as reporting instance node_name.
  bool write_events = true;
  /// Called on the informer's thread after each change to the cache.
  std::function<void()> on_change;
  /// Tests: overrides for the environment (see k8s::KubeconfigOptions).
  std::optional<std::string> kubeconfig_env;
  std::optional<std::string> home;
};

struct KubernetesStatus {
  std::string mode;  ///< "kubeconfig", "in-cluster" or "standalone"
  bool synced = false;
  std::string server;               ///< API server URL; "" standalone
  std::string context;              ///< kubeconfig context
  std::string error;                ///< the last failure; "" when the last request succeeded
  std::uint64_t decode_errors = 0;  ///< pods that could not be decoded and were skipped
  std::uint64_t lists = 0, watches = 0, expired = 0, request_errors = 0;
  std::size_t pods = 0, deleted_pods = 0;
  std::string events_api;    ///< "events.k8s.io/v1" or "v1" once chosen
  std::string events_error;  ///< the Event writer's last failure
  k8s::EventWriterStats events;
};

/// Thread-safety: status() and cache() from any thread; start() once, from one thread.
class KubernetesMetadata {
 public:
  /// Finds the configuration. An explicitly requested one that cannot be used (--kubeconfig
  /// file missing, unknown --context) throws k8s::ConfigError; without flags, a broken
  /// auto-detected configuration is reported in status().error and the agent runs standalone.
  explicit KubernetesMetadata(KubernetesMetadataOptions options);
  ~KubernetesMetadata();
  KubernetesMetadata(const KubernetesMetadata&) = delete;
  KubernetesMetadata& operator=(const KubernetesMetadata&) = delete;

  /// Starts the watch in the background; never blocks on the API server.
  void start();
  bool enabled() const noexcept;
  KubernetesStatus status() const;
  const PodMetadataCache& cache() const noexcept { return cache_; }
  /// Queues a Kubernetes Event (series, rate limits: k8s::EventWriter); false when dropped or
  /// when events are not written (standalone, write_events off).
  bool record_event(k8s::EventRecord record);
  /// Delivers queued Events, up to `timeout` (at shutdown).
  void flush_events(std::chrono::milliseconds timeout);
  /// One line for the start-up report.
  std::string describe() const;

 private:
  struct Watch;
  KubernetesMetadataOptions options_;
  PodMetadataCache cache_;
  std::string mode_ = "standalone";
  std::string config_error_;
  std::unique_ptr<Watch> watch_;
};

}  // namespace podgauge::metadata
