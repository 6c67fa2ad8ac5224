#pragma once
// events.k8s.io/v1 Events are a second view of the core/v1 Events the server stores (one
// storage, as in kube-apiserver: pkg/apis/events/v1/conversion.go). These convert between
// the two shapes.

#include <nlohmann/json.hpp>

namespace podgauge::fakeapi {

/// events.k8s.io/v1 -> core/v1: regarding->involvedObject, note->message,
/// reportingController->reportingComponent, deprecated* -> source/firstTimestamp/...
nlohmann::json events_v1_to_core(nlohmann::json event);
/// core/v1 -> events.k8s.io/v1, the inverse.
nlohmann::json core_to_events_v1(nlohmann::json event);

}  // namespace podgauge::fakeapi
