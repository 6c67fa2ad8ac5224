// libFuzzer target: API responses and watch lines are untrusted bytes. Decoding them as a Pod,
// a PodList or a watch event must never crash; failures must be the module's own errors.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "podgauge/k8s/error.h"
#include "podgauge/k8s/hpa.h"
#include "podgauge/k8s/list.h"
#include "podgauge/k8s/pod.h"
#include "podgauge/k8s/pod_resources.h"
#include "podgauge/k8s/workload_owner.h"

namespace {

template <class F>
void guarded(F&& f) {
  try {
    f();
  } catch (const podgauge::k8s::ObjectError&) {
  } catch (const podgauge::k8s::JsonSyntaxError&) {
  }
}

void exercise(const podgauge::k8s::Pod& pod) {
  using namespace podgauge::k8s;
  try {
    (void)pod_requests(pod);
    (void)pod_limits(pod, {.use_status_resources = true});
    (void)qos_class(pod);
  } catch (const QuantityError&) {
    // Sums beyond ~1.7e29 are refused, not wrapped.
  }
  (void)resolve_workload(pod);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace podgauge::k8s;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  guarded([&] { exercise(Pod::parse(text)); });
  guarded([&] {
    std::vector<std::string> skipped;
    for (const Pod& pod : ObjectList<Pod>::parse(text, &skipped).items) exercise(pod);
  });
  guarded([&] {
    auto event = WatchEvent<Pod>::parse(text);
    if (event.object) exercise(*event.object);
  });
  guarded([&] { (void)HorizontalPodAutoscaler::parse(text); });
  return 0;
}
