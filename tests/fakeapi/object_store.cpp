#include "object_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <ctime>
#include <random>

#include "api_error.h"
#include "event_conversion.h"

namespace podgauge::fakeapi {

using nlohmann::json;

std::string rfc3339_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

std::mt19937_64& rng() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return gen;
}

std::string random_suffix(std::size_t n) {
  static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";  // as upstream's rand.String
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += alphabet[rng()() % (sizeof alphabet - 1)];
  return s;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n);
  return out;
}

std::optional<std::string> unbase64(const std::string& in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(3 * in.size() / 4 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  std::size_t pad = std::count(in.end() - 2, in.end(), '=');
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

std::string str_or(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Kubernetes QoS class (pkg/apis/core/helper/qos): an approximation comparing quantities as
// written, which is what tests write.
std::string qos_class(const json& pod) {
  bool any = false, guaranteed = true;
  auto containers = pod.value("/spec/containers"_json_pointer, json::array());
  if (containers.empty()) return "BestEffort";
  for (const auto& c : containers) {
    json req = c.value("/resources/requests"_json_pointer, json::object());
    json lim = c.value("/resources/limits"_json_pointer, json::object());
    for (const char* r : {"cpu", "memory"}) {
      bool has_req = req.contains(r), has_lim = lim.contains(r);
      any = any || has_req || has_lim;
      if (!has_lim || (has_req && req[r] != lim[r])) guaranteed = false;
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

bool has_status_subresource(const ResourceType& type) {
  return type.plural != "events" && type.plural != "limitranges";
}

bool has_generation(const ResourceType& type) { return !type.group.empty(); }

json apply_patch(const json& current, const json& patch, PatchType patch_type) {
  json patched;
  try {
    if (patch_type == PatchType::Json) {
      patched = current.patch(patch);
    } else {
      if (!patch.is_object()) throw ApiError::bad_request("patch body must be a JSON object");
      patched = current;
      patched.merge_patch(patch);
    }
  } catch (const json::exception& e) {
    throw ApiError(422, "Invalid", std::string("the server rejected our request due to an error in our request: ") + e.what());
  }
  // Keep the optimistic-lock check meaningful only when the patch itself carries an RV.
  if (!(patch.is_object() && patch.contains("metadata") && patch["metadata"].is_object() &&
        patch["metadata"].contains("resourceVersion")))
    patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"];
  return patched;
}

// What kube-apiserver's ValidateEventCreate checks for events.k8s.io/v1 (pkg/apis/core/
// validation/events.go), so a writer that the fake accepts is one the real server accepts.
void validate_events_v1(const json& e, const std::string& ns) {
  const std::string name = e.value("/metadata/name"_json_pointer, std::string());
  auto fail = [&](const std::string& msg) { throw ApiError::invalid("Event", name, msg); };
  auto required = [&](const char* field) {
    if (!e.contains(field) || (e[field].is_string() && e[field].get<std::string>().empty()))
      fail(std::string(field) + ": Required value");
  };
  for (const char* f : {"eventTime", "reportingController", "reportingInstance", "action", "reason"})
    required(f);
  const std::string type = e.value("type", "");
  if (type != "Normal" && type != "Warning")
    fail("type: Unsupported value: \"" + type + "\": supported values: \"Normal\", \"Warning\"");
  const std::string regarding_ns = e.value("/regarding/namespace"_json_pointer, std::string());
  if (!regarding_ns.empty() && regarding_ns != ns)
    fail("regarding.namespace: Invalid value: \"" + regarding_ns + "\": does not match event.namespace");
  if (e.value("note", "").size() > 1024) fail("note: Too long: may not be more than 1024 bytes");
  if (e.contains("series") && !e["series"].is_null()) {
    if (e["series"].value("count", 0) < 2)
      fail("series.count: Invalid value: should be at least 2");
    if (!e["series"].contains("lastObservedTime"))
      fail("series.lastObservedTime: Required value");
  }
}

}  // namespace

std::string random_uid() {
  std::uniform_int_distribution<int> d(0, 15);
  std::string s = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx";
  for (char& c : s) {
    if (c == 'x') c = "0123456789abcdef"[d(rng())];
    if (c == 'y') c = "89ab"[d(rng()) % 4];
  }
  return s;
}

ObjectStore::ObjectStore(const ResourceCatalog& catalog, Options options)
    : catalog_(catalog), options_(options) {
  if (options_.history_window == 0) options_.history_window = 1;
}

std::string ObjectStore::key_of(const ResourceType& type, const std::string& ns,
                                const std::string& name) {
  return type.namespaced ? ns + "/" + name : name;
}

json& ObjectStore::find_locked(const ResourceType& type, const std::string& ns,
                               const std::string& name) {
  auto& bucket = objects_[&type];
  auto it = bucket.find(key_of(type, ns, name));
  if (it == bucket.end()) throw ApiError::not_found(type.qualified(), name);
  return it->second;
}

void ObjectStore::record_locked(StoredEventPtr event) {
  history_.push_back(std::move(event));
  while (history_.size() > options_.history_window) {
    compacted_ = history_.front()->resource_version;
    history_.pop_front();
  }
  changed_.notify_all();
}

json ObjectStore::commit_locked(const ResourceType& type, const std::string& key, json object,
                                const char* event_type, json previous) {
  const auto rv = ++resource_version_;
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  objects_[&type][key] = object;
  auto ev = std::make_shared<StoredEvent>();
  ev->resource_version = rv;
  ev->type = event_type;
  ev->resource = &type;
  ev->object = object;
  ev->previous = std::move(previous);
  record_locked(std::move(ev));
  return object;
}

json ObjectStore::remove_locked(const ResourceType& type, const std::string& key) {
  auto& bucket = objects_[&type];
  auto it = bucket.find(key);
  json previous = std::move(it->second);
  bucket.erase(it);
  const auto rv = ++resource_version_;
  json object = previous;
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  auto ev = std::make_shared<StoredEvent>();
  ev->resource_version = rv;
  ev->type = "DELETED";
  ev->resource = &type;
  ev->object = object;
  ev->previous = std::move(previous);
  record_locked(std::move(ev));
  return object;
}

void ObjectStore::prepare_new_locked(const ResourceType& type, const std::string& ns,
                                     json& object) {
  if (!object.is_object()) throw ApiError::bad_request("the body of the request was not a JSON object");
  json& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  if (str_or(meta, "name").empty() && !str_or(meta, "generateName").empty())
    meta["name"] = str_or(meta, "generateName") + random_suffix(5);
  const std::string name = str_or(meta, "name");
  if (name.empty())
    throw ApiError::invalid(type.kind, "",
                            "metadata.name: Required value: name or generateName is required");
  if (type.namespaced) {
    const std::string body_ns = str_or(meta, "namespace");
    if (!body_ns.empty() && body_ns != ns)
      throw ApiError::bad_request(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  object["kind"] = type.kind;
  object["apiVersion"] = type.group_version();
  meta["uid"] = random_uid();
  meta["creationTimestamp"] = rfc3339_now();
  meta.erase("deletionTimestamp");
  if (has_generation(type)) meta["generation"] = 1;
  if (type.plural == "pods") {
    if (!object["status"].is_object()) object["status"] = json::object();
    if (!object["status"].contains("phase")) object["status"]["phase"] = "Pending";
    if (!object["status"].contains("qosClass")) object["status"]["qosClass"] = qos_class(object);
  }
  if (type.plural == "namespaces") {
    object["spec"]["finalizers"] = {"kubernetes"};
    object["status"]["phase"] = "Active";
    meta["labels"]["kubernetes.io/metadata.name"] = name;
  }
}

const ResourceType* ObjectStore::storage_of(const ResourceType& type) const {
  if (type.plural == "events" && type.group == "events.k8s.io")
    return catalog_.find("", "v1", "events");
  return nullptr;
}

json ObjectStore::create(const ResourceType& type, const std::string& ns, json object) {
  if (const auto* st = storage_of(type)) {
    validate_events_v1(object, ns);
    return core_to_events_v1(create(*st, ns, events_v1_to_core(std::move(object))));
  }
  std::lock_guard lock(mutex_);
  prepare_new_locked(type, ns, object);
  const std::string name = object["metadata"]["name"];
  if (type.namespaced) {
    const auto* ns_type = catalog_.find("", "v1", "namespaces");
    auto& namespaces = objects_[ns_type];
    if (!namespaces.count(ns)) {
      if (!options_.auto_create_namespaces) throw ApiError::not_found("namespaces", ns);
      json nsobj = {{"metadata", {{"name", ns}}}};
      prepare_new_locked(*ns_type, "", nsobj);
      commit_locked(*ns_type, ns, std::move(nsobj), "ADDED", nullptr);
    }
  }
  const auto key = key_of(type, ns, name);
  if (objects_[&type].count(key)) throw ApiError::already_exists(type.qualified(), name);
  return commit_locked(type, key, std::move(object), "ADDED", nullptr);
}

json ObjectStore::get(const ResourceType& type, const std::string& ns,
                      const std::string& name) const {
  if (const auto* st = storage_of(type)) return core_to_events_v1(get(*st, ns, name));
  std::lock_guard lock(mutex_);
  auto bucket = objects_.find(&type);
  if (bucket != objects_.end()) {
    auto it = bucket->second.find(key_of(type, ns, name));
    if (it != bucket->second.end()) return it->second;
  }
  throw ApiError::not_found(type.qualified(), name);
}

json ObjectStore::update(const ResourceType& type, const std::string& ns, const std::string& name,
                         json object, bool status_only) {
  if (const auto* st = storage_of(type))
    return core_to_events_v1(update(*st, ns, name, events_v1_to_core(std::move(object)), status_only));
  std::lock_guard lock(mutex_);
  json& current = find_locked(type, ns, name);
  if (!object.is_object()) throw ApiError::bad_request("the body of the request was not a JSON object");
  const std::string rv = object.value("/metadata/resourceVersion"_json_pointer, std::string());
  if (!rv.empty() && rv != str_or(current["metadata"], "resourceVersion"))
    throw ApiError::conflict(type.qualified(), name);
  const std::string body_name = object.value("/metadata/name"_json_pointer, std::string());
  if (!body_name.empty() && body_name != name)
    throw ApiError::bad_request("the name of the object (" + body_name +
                                ") does not match the name on the URL (" + name + ")");
  json next;
  if (status_only) {
    if (!has_status_subresource(type)) throw ApiError::not_found(type.qualified(), name);
    next = current;
    next["status"] = object.value("status", json::object());
  } else {
    next = std::move(object);
    json& meta = next["metadata"];
    if (!meta.is_object()) meta = json::object();
    for (const char* keep : {"uid", "creationTimestamp", "generation", "namespace", "name"})
      if (current["metadata"].contains(keep)) meta[keep] = current["metadata"][keep];
    next["kind"] = type.kind;
    next["apiVersion"] = type.group_version();
    if (has_generation(type) && next.value("spec", json()) != current.value("spec", json()))
      meta["generation"] = current["metadata"].value("generation", 1) + 1;
  }
  json previous = current;
  return commit_locked(type, key_of(type, ns, name), std::move(next), "MODIFIED",
                       std::move(previous));
}

json ObjectStore::patch(const ResourceType& type, const std::string& ns, const std::string& name,
                        const json& patch, PatchType patch_type, bool status_only) {
  json patched;
  if (storage_of(type)) {
    // Patches apply to the object as this view shows it (series, note, regarding, ...).
    patched = apply_patch(get(type, ns, name), patch, patch_type);
  } else {
    std::lock_guard lock(mutex_);
    patched = apply_patch(find_locked(type, ns, name), patch, patch_type);
  }
  return update(type, ns, name, std::move(patched), status_only);
}

json ObjectStore::remove(const ResourceType& type, const std::string& ns, const std::string& name) {
  if (const auto* st = storage_of(type)) return core_to_events_v1(remove(*st, ns, name));
  std::lock_guard lock(mutex_);
  find_locked(type, ns, name);
  if (type.plural == "namespaces") {
    for (auto& [t, bucket] : objects_) {
      if (!t->namespaced) continue;
      std::vector<std::string> keys;
      for (const auto& [key, obj] : bucket)
        if (key.compare(0, name.size() + 1, name + "/") == 0) keys.push_back(key);
      for (const auto& key : keys) remove_locked(*t, key);
    }
  }
  return remove_locked(type, key_of(type, ns, name));
}

ListResult ObjectStore::list(const ResourceType& type, const ListOptions& options) const {
  if (const auto* st = storage_of(type)) {
    ListResult r = list(*st, options);
    for (auto& item : r.items) item = core_to_events_v1(std::move(item));
    return r;
  }
  std::string start_after;
  if (!options.continue_token.empty()) {
    auto decoded = unbase64(options.continue_token);
    json token = decoded ? json::parse(*decoded, nullptr, false) : json();
    if (!token.is_object() || !token.contains("start") || !token.contains("rv"))
      throw ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    start_after = token["start"].get<std::string>();
    std::lock_guard lock(mutex_);
    if (token["rv"].get<std::uint64_t>() < compacted_)
      throw ApiError::expired(
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the provided "
          "token results in an inconsistent list - objects that were created, modified, or "
          "deleted between the time the first chunk was returned and now may show up in the "
          "list.");
  }
  std::lock_guard lock(mutex_);
  ListResult result;
  result.resource_version = resource_version_;
  auto bucket = objects_.find(&type);
  if (bucket == objects_.end()) return result;
  const auto& objs = bucket->second;
  auto it = start_after.empty() ? objs.begin() : objs.upper_bound(start_after);
  std::string last_key;
  for (; it != objs.end(); ++it) {
    const json& obj = it->second;
    if (!options.namespace_.empty() && type.namespaced &&
        str_or(obj["metadata"], "namespace") != options.namespace_)
      continue;
    if (!options.labels.matches(obj) || !options.fields.matches(obj)) continue;
    if (options.limit > 0 && static_cast<std::int64_t>(result.items.size()) == options.limit) {
      result.continue_token =
          base64(json{{"v", "meta.k8s.io/v1"}, {"rv", resource_version_}, {"start", last_key}}.dump());
      if (options.labels.empty() && options.fields.empty()) {
        std::int64_t remaining = 0;
        for (; it != objs.end(); ++it)
          if (options.namespace_.empty() || !type.namespaced ||
              str_or(it->second["metadata"], "namespace") == options.namespace_)
            ++remaining;
        result.remaining_item_count = remaining;
      }
      break;
    }
    result.items.push_back(obj);
    last_key = it->first;
  }
  return result;
}

std::uint64_t ObjectStore::resource_version() const {
  std::lock_guard lock(mutex_);
  return resource_version_;
}

std::uint64_t ObjectStore::compacted_resource_version() const {
  std::lock_guard lock(mutex_);
  return compacted_;
}

std::vector<StoredEventPtr> ObjectStore::events_after(const ResourceType& type,
                                                      std::uint64_t after,
                                                      std::size_t max) const {
  if (const auto* st = storage_of(type)) {
    auto events = events_after(*st, after, max);
    for (auto& e : events) {
      auto view = std::make_shared<StoredEvent>(*e);
      view->resource = &type;
      view->object = core_to_events_v1(view->object);
      if (!view->previous.is_null()) view->previous = core_to_events_v1(view->previous);
      e = std::move(view);
    }
    return events;
  }
  std::lock_guard lock(mutex_);
  if (after < compacted_)
    throw ApiError::expired("too old resource version: " + std::to_string(after) + " (" +
                            std::to_string(compacted_ + 1) + ")");
  std::vector<StoredEventPtr> out;
  auto it = std::upper_bound(history_.begin(), history_.end(), after,
                             [](std::uint64_t rv, const StoredEventPtr& e) {
                               return rv < e->resource_version;
                             });
  for (; it != history_.end() && out.size() < max; ++it)
    if ((*it)->resource == &type) out.push_back(*it);
  return out;
}

void ObjectStore::wait_for_change(std::uint64_t after,
                                  std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return resource_version_ > after; });
}

void ObjectStore::wake_all() const { changed_.notify_all(); }

void ObjectStore::compact() {
  std::lock_guard lock(mutex_);
  history_.clear();
  compacted_ = resource_version_;
  changed_.notify_all();
}

void ObjectStore::clear() {
  std::lock_guard lock(mutex_);
  objects_.clear();
  history_.clear();
  compacted_ = resource_version_;
  changed_.notify_all();
}

}  // namespace podgauge::fakeapi
