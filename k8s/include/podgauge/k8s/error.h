// Errors raised while reading Kubernetes API data.
#pragma once

#include <stdexcept>
#include <string>

namespace podgauge::k8s {

/// A string that is not a valid resource.Quantity; what() quotes the input and says why.
class QuantityError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The bytes are not JSON at all; what() gives the byte offset of the problem.
class JsonSyntaxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An API object that does not have the shape the API server gives it. what() reads like
/// `Pod "prod/web-0": spec.containers[1].resources.limits.cpu: invalid quantity "2x": ...`.
class ObjectError : public std::runtime_error {
 public:
  ObjectError(std::string kind, std::string namespace_, std::string name, std::string field,
              std::string problem);

  const std::string& kind() const noexcept { return kind_; }
  const std::string& namespace_() const noexcept { return namespace__; }
  const std::string& name() const noexcept { return name_; }
  /// The JSON path of the offending field, e.g. "spec.containers[1].resources".
  const std::string& field() const noexcept { return field_; }
  const std::string& problem() const noexcept { return problem_; }

 private:
  std::string kind_, namespace__, name_, field_, problem_;
};

}  // namespace podgauge::k8s
