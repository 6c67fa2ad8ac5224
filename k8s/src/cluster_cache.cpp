#include "podgauge/k8s/cluster_cache.h"

#include <thread>
#include <tuple>

namespace podgauge::k8s {

std::string_view to_string(ClusterKind kind) noexcept {
  switch (kind) {
    case ClusterKind::Pods:
      return "pods";
    case ClusterKind::Nodes:
      return "nodes";
    case ClusterKind::Namespaces:
      return "namespaces";
    case ClusterKind::ResourceQuotas:
      return "resourcequotas";
    case ClusterKind::LimitRanges:
      return "limitranges";
    case ClusterKind::ReplicaSets:
      return "replicasets.apps";
    case ClusterKind::Deployments:
      return "deployments.apps";
    case ClusterKind::HorizontalPodAutoscalers:
      return "horizontalpodautoscalers.autoscaling";
    case ClusterKind::Jobs:
      return "jobs.batch";
  }
  return "unknown";
}

std::string_view to_string(KindState state) noexcept {
  switch (state) {
    case KindState::Syncing:
      return "syncing";
    case KindState::Synced:
      return "synced";
    case KindState::Forbidden:
      return "forbidden";
    case KindState::Unauthorized:
      return "unauthorized";
    case KindState::Failing:
      return "failing";
  }
  return "unknown";
}

namespace {

template <class T>
struct KindOf;
template <>
struct KindOf<Pod> {
  static constexpr ClusterKind value = ClusterKind::Pods;
};
template <>
struct KindOf<Node> {
  static constexpr ClusterKind value = ClusterKind::Nodes;
};
template <>
struct KindOf<Namespace> {
  static constexpr ClusterKind value = ClusterKind::Namespaces;
};
template <>
struct KindOf<ResourceQuota> {
  static constexpr ClusterKind value = ClusterKind::ResourceQuotas;
};
template <>
struct KindOf<LimitRange> {
  static constexpr ClusterKind value = ClusterKind::LimitRanges;
};
template <>
struct KindOf<ReplicaSet> {
  static constexpr ClusterKind value = ClusterKind::ReplicaSets;
};
template <>
struct KindOf<Deployment> {
  static constexpr ClusterKind value = ClusterKind::Deployments;
};
template <>
struct KindOf<HorizontalPodAutoscaler> {
  static constexpr ClusterKind value = ClusterKind::HorizontalPodAutoscalers;
};
template <>
struct KindOf<Job> {
  static constexpr ClusterKind value = ClusterKind::Jobs;
};

template <class T>
std::vector<std::shared_ptr<const T>> in_namespace(std::vector<std::shared_ptr<const T>> all,
                                                   const std::string& ns) {
  if (ns.empty()) return all;
  std::erase_if(all, [&](const auto& o) { return o->metadata.namespace_ != ns; });
  return all;
}

// The fix a user can apply, in the words of the RBAC object that is missing.
template <class T>
std::string forbidden_message(const InformerFailure& f, const std::string& ns) {
  using R = ResourcePath<T>;
  const std::string group = R::group;
  const std::string qualified =
      group.empty() ? R::resource : std::string(R::resource) + "." + group;
  const bool scoped = R::namespaced && !ns.empty();
  std::string m = "forbidden: " + (f.verb.empty() ? std::string("list") : f.verb) + " " + qualified;
  m += scoped ? " in namespace \"" + ns + "\"" : " at the cluster scope";
  m += " — grant list, watch on \"" + std::string(R::resource) + "\" in API group \"" + group +
       "\" to this user";
  m += scoped ? " (a Role + RoleBinding in \"" + ns + "\", or a ClusterRole + RoleBinding)"
              : " (a ClusterRole + ClusterRoleBinding; the chart's podgauge-cluster-reader has it)";
  m += "; only this view is missing, the others are served. Server said: " + f.message;
  return m;
}

}  // namespace

struct ClusterCache::Informers {
  std::tuple<std::unique_ptr<Informer<Pod>>, std::unique_ptr<Informer<Node>>,
             std::unique_ptr<Informer<Namespace>>, std::unique_ptr<Informer<ResourceQuota>>,
             std::unique_ptr<Informer<LimitRange>>, std::unique_ptr<Informer<ReplicaSet>>,
             std::unique_ptr<Informer<Deployment>>,
             std::unique_ptr<Informer<HorizontalPodAutoscaler>>, std::unique_ptr<Informer<Job>>>
      all;

  template <class T>
  Informer<T>& get() const {
    return *std::get<std::unique_ptr<Informer<T>>>(all);
  }

  template <class F>
  void each(F&& f) const {
    std::apply([&](auto&... inf) { (f(*inf), ...); }, all);
  }

  // Calls f(informer) for the informer of `kind`.
  template <class F>
  void with(ClusterKind kind, F&& f) const {
    each([&](auto& inf) {
      using T = typename std::remove_reference_t<decltype(inf)>::ObjectPtr::element_type;
      if (KindOf<std::remove_const_t<T>>::value == kind) f(inf);
    });
  }
};

ClusterCache::ClusterCache(std::shared_ptr<ApiClient> client, ClusterCacheOptions options)
    : client_(std::move(client)),
      options_(std::move(options)),
      informers_(std::make_unique<Informers>()) {
  auto make = [&]<class T>(std::unique_ptr<Informer<T>>& slot) {
    InformerOptions o = options_.informer;
    o.path = resource_path<T>(options_.namespace_);
    o.field_selector.clear();
    o.label_selector.clear();
    // kubectl get namespace <ns> -w does the same: a cluster-scoped list narrowed by name.
    if constexpr (std::is_same_v<T, Namespace>)
      if (!options_.namespace_.empty()) o.field_selector = "metadata.name=" + options_.namespace_;
    slot = std::make_unique<Informer<T>>(client_, std::move(o));
  };
  std::apply([&](auto&... slot) { (make(slot), ...); }, informers_->all);
}

ClusterCache::~ClusterCache() { stop(); }

void ClusterCache::start() {
  informers_->each([](auto& inf) { inf.start(); });
}

void ClusterCache::stop() {
  if (informers_) informers_->each([](auto& inf) { inf.stop(); });
}

bool ClusterCache::has_synced() const {
  bool all = true;
  informers_->each([&](auto& inf) { all = all && inf.has_synced(); });
  return all;
}

bool ClusterCache::has_synced(ClusterKind kind) const {
  bool synced = false;
  informers_->with(kind, [&](auto& inf) { synced = inf.has_synced(); });
  return synced;
}

bool ClusterCache::wait_for_sync(std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  bool all = true;
  informers_->each([&](auto& inf) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    all = inf.wait_for_sync(std::max(left, std::chrono::milliseconds(0))) && all;
  });
  return all;
}

bool ClusterCache::wait_until_settled(std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool settled = true;
    informers_->each([&](auto& inf) {
      settled =
          settled && (inf.has_synced() || !inf.last_error().empty() || inf.stats().errors > 0);
    });
    if (settled) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

KindStatus ClusterCache::status(ClusterKind kind) const {
  KindStatus s;
  s.kind = kind;
  informers_->with(kind, [&](auto& inf) {
    using T = std::remove_const_t<
        typename std::remove_reference_t<decltype(inf)>::ObjectPtr::element_type>;
    s.synced = inf.has_synced();
    s.objects = inf.size();
    s.stats = inf.stats();
    const InformerFailure f = inf.last_failure();
    if (f.message.empty()) {
      s.state = s.synced ? KindState::Synced : KindState::Syncing;
    } else if (f.kind == ApiErrorKind::Forbidden) {
      s.state = KindState::Forbidden;
      s.error = forbidden_message<T>(f, options_.namespace_);
    } else if (f.kind == ApiErrorKind::Unauthorized) {
      s.state = KindState::Unauthorized;
      s.error = f.message;
    } else {
      s.state = KindState::Failing;
      s.error = f.message;
    }
  });
  return s;
}

std::vector<KindStatus> ClusterCache::status() const {
  std::vector<KindStatus> out;
  for (ClusterKind k : kClusterKinds) out.push_back(status(k));
  return out;
}

std::vector<ClusterCache::Ptr<Pod>> ClusterCache::pods(const std::string& ns) const {
  return in_namespace(informers_->get<Pod>().list(), ns);
}
std::vector<ClusterCache::Ptr<Node>> ClusterCache::nodes() const {
  return informers_->get<Node>().list();
}
std::vector<ClusterCache::Ptr<Namespace>> ClusterCache::namespaces() const {
  return informers_->get<Namespace>().list();
}
std::vector<ClusterCache::Ptr<ResourceQuota>> ClusterCache::resource_quotas(
    const std::string& ns) const {
  return in_namespace(informers_->get<ResourceQuota>().list(), ns);
}
std::vector<ClusterCache::Ptr<LimitRange>> ClusterCache::limit_ranges(const std::string& ns) const {
  return in_namespace(informers_->get<LimitRange>().list(), ns);
}
std::vector<ClusterCache::Ptr<ReplicaSet>> ClusterCache::replica_sets(const std::string& ns) const {
  return in_namespace(informers_->get<ReplicaSet>().list(), ns);
}
std::vector<ClusterCache::Ptr<Deployment>> ClusterCache::deployments(const std::string& ns) const {
  return in_namespace(informers_->get<Deployment>().list(), ns);
}
std::vector<ClusterCache::Ptr<HorizontalPodAutoscaler>> ClusterCache::horizontal_pod_autoscalers(
    const std::string& ns) const {
  return in_namespace(informers_->get<HorizontalPodAutoscaler>().list(), ns);
}
std::vector<ClusterCache::Ptr<Job>> ClusterCache::jobs(const std::string& ns) const {
  return in_namespace(informers_->get<Job>().list(), ns);
}

ClusterCache::Ptr<Pod> ClusterCache::pod(const std::string& ns, const std::string& name) const {
  return informers_->get<Pod>().get(ns, name);
}
ClusterCache::Ptr<Node> ClusterCache::node(const std::string& name) const {
  return informers_->get<Node>().get("", name);
}
ClusterCache::Ptr<Namespace> ClusterCache::namespace_(const std::string& name) const {
  return informers_->get<Namespace>().get("", name);
}
ClusterCache::Ptr<ResourceQuota> ClusterCache::resource_quota(const std::string& ns,
                                                              const std::string& name) const {
  return informers_->get<ResourceQuota>().get(ns, name);
}
ClusterCache::Ptr<LimitRange> ClusterCache::limit_range(const std::string& ns,
                                                        const std::string& name) const {
  return informers_->get<LimitRange>().get(ns, name);
}
ClusterCache::Ptr<ReplicaSet> ClusterCache::replica_set(const std::string& ns,
                                                        const std::string& name) const {
  return informers_->get<ReplicaSet>().get(ns, name);
}
ClusterCache::Ptr<Deployment> ClusterCache::deployment(const std::string& ns,
                                                       const std::string& name) const {
  return informers_->get<Deployment>().get(ns, name);
}
ClusterCache::Ptr<HorizontalPodAutoscaler> ClusterCache::horizontal_pod_autoscaler(
    const std::string& ns, const std::string& name) const {
  return informers_->get<HorizontalPodAutoscaler>().get(ns, name);
}
ClusterCache::Ptr<Job> ClusterCache::job(const std::string& ns, const std::string& name) const {
  return informers_->get<Job>().get(ns, name);
}

namespace {

// Holds every object it hands out, so the raw pointers resolve_workload() keeps stay valid
// while a watch event replaces the cached object.
class PinningLookup final : public OwnerLookup {
 public:
  PinningLookup(const ReplicaSetInformer& replica_sets, const JobInformer& jobs)
      : replica_sets_(replica_sets), jobs_(jobs) {}
  const ReplicaSet* replica_set(std::string_view ns, std::string_view name) const override {
    return pin(replica_sets_, ns, name);
  }
  const Job* job(std::string_view ns, std::string_view name) const override {
    return pin(jobs_, ns, name);
  }

 private:
  template <class T>
  const T* pin(const Informer<T>& informer, std::string_view ns, std::string_view name) const {
    auto o = informer.get(std::string(ns), std::string(name));
    if (!o) return nullptr;
    pinned_.push_back(o);
    return o.get();
  }

  const ReplicaSetInformer& replica_sets_;
  const JobInformer& jobs_;
  mutable std::vector<std::shared_ptr<const void>> pinned_;
};

}  // namespace

WorkloadRef ClusterCache::workload_of(const Pod& pod) const {
  PinningLookup lookup(informers_->get<ReplicaSet>(), informers_->get<Job>());
  return resolve_workload(pod, &lookup);
}

ClusterCache::Ptr<Deployment> ClusterCache::deployment_of(const Pod& pod) const {
  const WorkloadRef ref = workload_of(pod);
  if (ref.kind != "Deployment") return nullptr;
  auto d = deployment(pod.metadata.namespace_, ref.name);
  if (!d || (!ref.uid.empty() && !d->metadata.uid.empty() && d->metadata.uid != ref.uid))
    return nullptr;
  return d;
}

}  // namespace podgauge::k8s
