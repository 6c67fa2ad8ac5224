#include "watch_stream.h"

#include "api_error.h"

namespace podgauge::fakeapi {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

WatchStream::WatchStream(const ObjectStore& store, WatchRequest request,
                         std::chrono::milliseconds bookmark_interval)
    : store_(store), request_(std::move(request)), bookmark_interval_(bookmark_interval),
      next_bookmark_(Clock::now() + bookmark_interval) {}

bool WatchStream::selected(const json& object) const {
  if (!object.is_object()) return false;
  if (!request_.namespace_.empty() && request_.type->namespaced &&
      object.value("/metadata/namespace"_json_pointer, std::string()) != request_.namespace_)
    return false;
  return request_.labels.matches(object) && request_.fields.matches(object);
}

void WatchStream::emit(const char* type, const json& object) {
  json payload = object;
  if (request_.as_table && std::string(type) != "BOOKMARK" && std::string(type) != "ERROR") {
    payload = TablePrinter::table(*request_.type, {object}, request_.include_object,
                                  {{"resourceVersion", object["metadata"].value("resourceVersion", "")}},
                                  !headers_sent_);
    headers_sent_ = true;
  }
  pending_.push_back(json{{"type", type}, {"object", payload}}.dump() + "\n");
}

void WatchStream::fail(const json& status) {
  pending_.push_back(json{{"type", "ERROR"}, {"object", status}}.dump() + "\n");
  failed_ = true;
}

void WatchStream::initial_state() {
  ListOptions options{request_.namespace_, request_.labels, request_.fields, 0, ""};
  auto list = store_.list(*request_.type, options);
  for (const auto& obj : list.items) emit("ADDED", obj);
  cursor_ = list.resource_version;
  if (request_.send_initial_events) {
    json bookmark = {{"kind", request_.type->kind},
                     {"apiVersion", request_.type->group_version()},
                     {"metadata",
                      {{"resourceVersion", std::to_string(cursor_)},
                       {"creationTimestamp", nullptr},
                       {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}};
    pending_.push_back(json{{"type", "BOOKMARK"}, {"object", bookmark}}.dump() + "\n");
  }
}

WatchStream::Step WatchStream::next(std::string& out, std::chrono::milliseconds max_wait) {
  if (!started_) {
    started_ = true;
    if (!failed_) {
      try {
        if (!request_.resource_version || request_.send_initial_events) {
          initial_state();
        } else {
          cursor_ = *request_.resource_version;
          store_.events_after(*request_.type, cursor_, 0);  // throws 410 when too old
        }
      } catch (const ApiError& e) {
        fail(e.status());
      }
    }
  }
  if (!pending_.empty() || failed_) {
    while (!pending_.empty()) {
      out += pending_.front();
      pending_.pop_front();
    }
    return failed_ ? Step::End : Step::More;
  }
  const auto now = Clock::now();
  if (now >= request_.deadline) return Step::End;

  // Snapshot first: every event up to `snapshot` is in the window once we read it.
  const std::uint64_t snapshot = store_.resource_version();
  if (snapshot > cursor_) {
    std::vector<StoredEventPtr> events;
    try {
      events = store_.events_after(*request_.type, cursor_, 1000);
    } catch (const ApiError& e) {  // the window moved past us while we were slow
      fail(e.status());
      return next(out, max_wait);
    }
    std::uint64_t reached = snapshot;
    if (events.size() == 1000) reached = events.back()->resource_version;
    for (const auto& ev : events) {
      if (ev->resource_version > reached) break;
      const bool now_in = selected(ev->object);
      const bool was_in = !ev->previous.is_null() && selected(ev->previous);
      if (ev->type == "ADDED" && now_in) {
        emit("ADDED", ev->object);
      } else if (ev->type == "MODIFIED") {
        if (now_in && was_in) emit("MODIFIED", ev->object);
        else if (now_in) emit("ADDED", ev->object);
        else if (was_in) {
          json gone = ev->previous;
          gone["metadata"]["resourceVersion"] = std::to_string(ev->resource_version);
          emit("DELETED", gone);
        }
      } else if (ev->type == "DELETED" && (was_in || now_in)) {
        emit("DELETED", ev->object);
      }
    }
    cursor_ = reached;
  }
  if (pending_.empty() && request_.bookmarks && now >= next_bookmark_) {
    next_bookmark_ = now + bookmark_interval_;
    json bookmark = {{"kind", request_.type->kind},
                     {"apiVersion", request_.type->group_version()},
                     {"metadata", {{"resourceVersion", std::to_string(cursor_)},
                                   {"creationTimestamp", nullptr}}}};
    pending_.push_back(json{{"type", "BOOKMARK"}, {"object", bookmark}}.dump() + "\n");
  }
  if (pending_.empty()) {
    auto until = std::min({Clock::now() + max_wait, request_.deadline,
                           request_.bookmarks ? next_bookmark_ : Clock::time_point::max()});
    store_.wait_for_change(cursor_, until);
    return Step::More;
  }
  while (!pending_.empty()) {
    out += pending_.front();
    pending_.pop_front();
  }
  return Step::More;
}

}  // namespace podgauge::fakeapi
