#pragma once

#include <stdexcept>

namespace podgauge::cgroup {

/// A cgroup filesystem problem the user can act on; what() says what failed and what to do.
class CgroupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace podgauge::cgroup
