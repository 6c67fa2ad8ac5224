#pragma once
// A Kubernetes API error, carried as the meta/v1 Status object the real server sends.

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace podgauge::fakeapi {

/// Thrown by the store and the request handlers; rendered verbatim as the response body.
class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string reason, const std::string& message,
           nlohmann::json details = nullptr);

  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  /// {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",...}
  nlohmann::json status() const;

  // The real server's wording for the common cases (k8s.io/apimachinery/pkg/api/errors).
  static ApiError not_found(const std::string& resource, const std::string& name);
  static ApiError already_exists(const std::string& resource, const std::string& name);
  static ApiError conflict(const std::string& resource, const std::string& name);
  static ApiError bad_request(const std::string& message);
  static ApiError invalid(const std::string& kind, const std::string& name,
                          const std::string& message);
  static ApiError expired(const std::string& message);  // 410 Gone, reason "Expired"
  static ApiError unauthorized();
  static ApiError internal(const std::string& message);

 private:
  int code_;
  std::string reason_;
  nlohmann::json details_;
};

}  // namespace podgauge::fakeapi
