// libFuzzer target: the cgroup path, mountinfo and /proc/<pid>/cgroup parsers take untrusted text
// (cgroup names are chosen by whoever creates them) and must never crash or mis-parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "podgauge/cgroup/hierarchy.h"
#include "podgauge/cgroup/kubelet_layout.h"

namespace {

using namespace podgauge::cgroup;

void check(bool condition) {
  if (!condition) std::abort();
}

void check_kubelet_path(std::string_view path) {
  auto identity = parse_kubelet_path(path);
  if (!identity) return;
  check(identity->matched_length > 0 && identity->matched_length <= path.size());
  check(path.find('\0') == std::string_view::npos);
  check(PodUid::parse(identity->pod_uid.view()) == identity->pod_uid);
  check(identity->container_id.empty() == (identity->kind == CgroupKind::Pod));
  if (!identity->container_id.empty()) check(ContainerId::parse(identity->container_id.view()).has_value());
  // The matched prefix is the identified cgroup itself, so it must parse to the same identity.
  auto again = parse_kubelet_path(path.substr(0, identity->matched_length));
  check(again == identity);
}

void check_hierarchy_parsers(std::string_view text) {
  const ControllersReader no_filesystem = [](const std::filesystem::path&) { return std::optional<std::string>(); };
  auto process_cgroups = parse_process_cgroups(text);
  try {
    auto hierarchies = CgroupHierarchies::from_mountinfo(text, no_filesystem);
    check(!hierarchies.hierarchies().empty());
    for (const CgroupHierarchy& hierarchy : hierarchies.hierarchies()) {
      auto own = process_cgroup_path(hierarchy, process_cgroups);
      if (own) check(!own->empty() && own->front() == '/');
    }
    if (hierarchies.mode() == CgroupMode::V2) check(hierarchies.default_hierarchy() != nullptr);
  } catch (const CgroupError&) {
    // No cgroup line in the input: the expected outcome for most inputs.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_kubelet_path(text);
  check_hierarchy_parsers(text);
  return 0;
}
