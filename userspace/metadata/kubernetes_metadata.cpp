#include "podgauge/metadata/kubernetes_metadata.h"

#include <cstdio>

#include "podgauge/k8s/api_client.h"
#include "podgauge/k8s/informer.h"
#include "podgauge/k8s/kubeconfig.h"

namespace podgauge::metadata {

struct KubernetesMetadata::Watch {
  k8s::RestConfig config;
  std::shared_ptr<k8s::ApiClient> client;
  std::unique_ptr<k8s::PodInformer> informer;
  std::unique_ptr<k8s::EventWriter> events;  // null when events are not written
};

KubernetesMetadata::KubernetesMetadata(KubernetesMetadataOptions options)
    : options_(std::move(options)), cache_(options_.deleted_retention) {
  if (!options_.log)
    options_.log = [](const std::string& m) {
      std::fprintf(stderr, "podgauge agent: %s\n", m.c_str());
    };
  if (options_.disabled) return;

  k8s::KubeconfigOptions ko;
  ko.kubeconfig = options_.kubeconfig;
  ko.context = options_.context;
  ko.kubeconfig_env = options_.kubeconfig_env;
  ko.home = options_.home;
  std::optional<k8s::RestConfig> config;
  try {
    config = k8s::auto_config(ko);
  } catch (const k8s::ConfigError& e) {
    if (!options_.kubeconfig.empty() || !options_.context.empty()) throw;
    config_error_ =
        std::string("kubernetes configuration unusable, running standalone: ") + e.what();
    options_.log(config_error_);
    return;
  }
  if (!config) return;
  mode_ = config->source == "in-cluster" ? "in-cluster" : "kubeconfig";

  watch_ = std::make_unique<Watch>();
  watch_->config = *config;
  watch_->client = std::make_shared<k8s::ApiClient>(*config);
  k8s::InformerOptions io;
  if (!options_.node_name.empty()) io.field_selector = "spec.nodeName=" + options_.node_name;
  const std::string server = config->server;
  io.log = [log = options_.log, server](const std::string& m) {
    log("kubernetes (" + server + "): " + m);
  };
  k8s::PodInformer::Handlers h;
  auto changed = [this] {
    if (options_.on_change) options_.on_change();
  };
  h.on_add = [this, changed](const k8s::Pod& p) {
    cache_.upsert(p);
    changed();
  };
  h.on_update = [this, changed](const k8s::Pod& old, const k8s::Pod& p) {
    // Same namespace/name, new uid: the pod was recreated (a StatefulSet's, mostly).
    if (old.metadata.uid != p.metadata.uid) cache_.remove(old);
    cache_.upsert(p);
    changed();
  };
  h.on_delete = [this, changed](const k8s::Pod& p) {
    cache_.remove(p);
    changed();
  };
  watch_->informer = std::make_unique<k8s::PodInformer>(watch_->client, io, std::move(h));
  if (options_.write_events && !options_.node_name.empty()) {
    k8s::EventWriterOptions eo;
    eo.reporting_instance = options_.node_name;
    watch_->events = std::make_unique<k8s::EventWriter>(*watch_->client, eo);
  }
}

bool KubernetesMetadata::record_event(k8s::EventRecord record) {
  return watch_ && watch_->events && watch_->events->record(std::move(record));
}

void KubernetesMetadata::flush_events(std::chrono::milliseconds timeout) {
  if (watch_ && watch_->events) watch_->events->flush(timeout);
}

KubernetesMetadata::~KubernetesMetadata() {
  if (watch_ && watch_->informer) watch_->informer->stop();
  if (watch_) watch_->events.reset();  // before the client it uses
}

void KubernetesMetadata::start() {
  if (watch_) watch_->informer->start();
}

bool KubernetesMetadata::enabled() const noexcept { return watch_ != nullptr; }

KubernetesStatus KubernetesMetadata::status() const {
  KubernetesStatus s;
  s.mode = mode_;
  s.error = config_error_;
  if (!watch_) return s;
  const auto& inf = *watch_->informer;
  s.server = watch_->config.server;
  s.context = watch_->config.context;
  s.synced = inf.has_synced();
  s.error = inf.last_error();
  const auto st = inf.stats();
  s.decode_errors = st.malformed;
  s.lists = st.lists;
  s.watches = st.watches;
  s.expired = st.expired;
  s.request_errors = st.errors;
  s.pods = cache_.live_pods();
  s.deleted_pods = cache_.deleted_pods();
  if (watch_->events) {
    s.events = watch_->events->stats();
    s.events_api = watch_->events->api_version();
    s.events_error = watch_->events->last_error();
  }
  return s;
}

std::string KubernetesMetadata::describe() const {
  if (!watch_) {
    if (options_.disabled) return "standalone (--no-kube; pod_uid/container_id from cgroup paths)";
    if (!config_error_.empty()) return "standalone (" + config_error_ + ")";
    return "standalone (no kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster service account; "
           "pod_uid/container_id from cgroup paths)";
  }
  std::string d = mode_ + " " + watch_->config.server;
  if (!watch_->config.context.empty()) d += " (context " + watch_->config.context + ")";
  d += ", watching pods";
  if (!options_.node_name.empty()) d += " with spec.nodeName=" + options_.node_name;
  return d;
}

}  // namespace podgauge::metadata
