#pragma once
// Who is calling (bearer token or verified client certificate) and what they may do
// (RBAC-like allow rules; a user without rules may do everything, like system:masters).

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace podgauge::fakeapi {

struct User {
  std::string name;
  std::vector<std::string> groups;
};

/// One allow rule. "*" matches any verb/resource; `namespaces` empty = every namespace and
/// the cluster scope.
struct PolicyRule {
  std::vector<std::string> verbs;
  std::vector<std::string> resources;  // plural, e.g. "pods"
  std::vector<std::string> api_groups{"*"};
  std::vector<std::string> namespaces;
};

/// What a request wants, in RBAC terms.
struct ResourceAttributes {
  std::string verb;  // get, list, watch, create, update, patch, delete, deletecollection
  std::string group;
  std::string resource;
  std::string subresource;
  std::string namespace_;  // "" = cluster scope
  std::string name;
};

/// Thread-safety: fully thread-safe.
class AccessControl {
 public:
  void add_token(const std::string& token, User user);
  void remove_token(const std::string& token);
  /// Restricts `user` to the union of its rules (call repeatedly to add rules).
  void allow(const std::string& user, PolicyRule rule);
  void clear_rules(const std::string& user);

  std::optional<User> authenticate_token(const std::string& token) const;
  /// nullopt when allowed, else the real server's Forbidden message, e.g.
  /// `pods is forbidden: User "x" cannot list resource "pods" in API group "" at the cluster scope`.
  std::optional<std::string> authorize(const User& user, const ResourceAttributes& attrs) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, User> tokens_;
  std::map<std::string, std::vector<PolicyRule>> rules_;
};

}  // namespace podgauge::fakeapi
