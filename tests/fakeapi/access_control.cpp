#include "access_control.h"

#include <algorithm>

namespace podgauge::fakeapi {

namespace {
bool matches(const std::vector<std::string>& list, const std::string& value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& s) { return s == "*" || s == value; });
}

// k8s.io/component-helpers/auth/rbac/validation.ResourceMatches: "pods" does not cover
// "pods/status" or "pods/proxy"; "*/proxy" covers every resource's proxy subresource.
bool resource_matches(const std::vector<std::string>& list, const std::string& resource,
                      const std::string& subresource) {
  const std::string combined = subresource.empty() ? resource : resource + "/" + subresource;
  return std::any_of(list.begin(), list.end(), [&](const std::string& s) {
    return s == "*" || s == combined || (!subresource.empty() && s == "*/" + subresource);
  });
}
}  // namespace

void AccessControl::add_token(const std::string& token, User user) {
  std::lock_guard lock(mutex_);
  tokens_[token] = std::move(user);
}

void AccessControl::remove_token(const std::string& token) {
  std::lock_guard lock(mutex_);
  tokens_.erase(token);
}

void AccessControl::allow(const std::string& user, PolicyRule rule) {
  std::lock_guard lock(mutex_);
  rules_[user].push_back(std::move(rule));
}

void AccessControl::clear_rules(const std::string& user) {
  std::lock_guard lock(mutex_);
  rules_.erase(user);
}

std::optional<User> AccessControl::authenticate_token(const std::string& token) const {
  std::lock_guard lock(mutex_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> AccessControl::authorize(const User& user,
                                                    const ResourceAttributes& a) const {
  {
    std::lock_guard lock(mutex_);
    auto it = rules_.find(user.name);
    if (it == rules_.end()) return std::nullopt;
    for (const auto& r : it->second) {
      if (matches(r.verbs, a.verb) && matches(r.api_groups, a.group) &&
          resource_matches(r.resources, a.resource, a.subresource) &&
          (r.namespaces.empty() || (!a.namespace_.empty() && matches(r.namespaces, a.namespace_))))
        return std::nullopt;
    }
  }
  // k8s.io/apiserver/pkg/endpoints/handlers/responsewriters.forbiddenMessage
  std::string qualified = a.group.empty() ? a.resource : a.resource + "." + a.group;
  std::string msg = qualified;
  if (!a.name.empty()) msg += " \"" + a.name + "\"";
  // upstream quotes resource and subresource together: resource "pods/proxy".
  const std::string resource = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  msg += " is forbidden: User \"" + user.name + "\" cannot " + a.verb + " resource \"" +
         resource + "\"";
  msg += " in API group \"" + a.group + "\"";
  msg += a.namespace_.empty() ? " at the cluster scope" : " in the namespace \"" + a.namespace_ + "\"";
  return msg;
}

}  // namespace podgauge::fakeapi
