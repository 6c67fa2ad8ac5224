#include "api_error.h"

namespace podgauge::fakeapi {

ApiError::ApiError(int code, std::string reason, const std::string& message,
                   nlohmann::json details)
    : std::runtime_error(message), code_(code), reason_(std::move(reason)),
      details_(std::move(details)) {}

nlohmann::json ApiError::status() const {
  nlohmann::json s = {{"kind", "Status"},     {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
                      {"status", "Failure"},  {"message", what()},  {"reason", reason_},
                      {"code", code_}};
  if (!details_.is_null()) s["details"] = details_;
  return s;
}

ApiError ApiError::not_found(const std::string& resource, const std::string& name) {
  return {404, "NotFound", resource + " \"" + name + "\" not found",
          {{"name", name}, {"kind", resource}}};
}

ApiError ApiError::already_exists(const std::string& resource, const std::string& name) {
  return {409, "AlreadyExists", resource + " \"" + name + "\" already exists",
          {{"name", name}, {"kind", resource}}};
}

ApiError ApiError::conflict(const std::string& resource, const std::string& name) {
  return {409, "Conflict",
          "Operation cannot be fulfilled on " + resource + " \"" + name +
              "\": the object has been modified; please apply your changes to the latest "
              "version and try again",
          {{"name", name}, {"kind", resource}}};
}

ApiError ApiError::bad_request(const std::string& message) {
  return {400, "BadRequest", message};
}

ApiError ApiError::invalid(const std::string& kind, const std::string& name,
                           const std::string& message) {
  return {422, "Invalid", kind + " \"" + name + "\" is invalid: " + message,
          {{"name", name}, {"kind", kind}}};
}

ApiError ApiError::expired(const std::string& message) { return {410, "Expired", message}; }

ApiError ApiError::unauthorized() { return {401, "Unauthorized", "Unauthorized"}; }

ApiError ApiError::internal(const std::string& message) {
  return {500, "InternalError", "Internal error occurred: " + message};
}

}  // namespace podgauge::fakeapi
