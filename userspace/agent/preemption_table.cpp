#include "podgauge/agent/preemption_table.h"

#include <algorithm>
#include <unordered_set>

namespace podgauge::agent {

std::string_view to_string(PreemptorKind kind) {
  switch (kind) {
    case PreemptorKind::SameContainer:
      return "same_container";
    case PreemptorKind::SamePod:
      return "same_pod";
    case PreemptorKind::OtherPod:
      return "other_pod";
    case PreemptorKind::Host:
      return "host";
  }
  return "host";
}

PreemptorKind classify_preemptor(const UsageTarget& victim, const UsageTarget& preemptor) {
  if (preemptor == victim) return PreemptorKind::SameContainer;
  if (preemptor.pod_uid.empty()) return PreemptorKind::Host;
  return preemptor.pod_uid == victim.pod_uid ? PreemptorKind::SamePod : PreemptorKind::OtherPod;
}

void PreemptionTable::observe(uint64_t victim_cgroup, uint64_t preemptor_cgroup,
                              const UsageTarget& victim, const UsageTarget& preemptor,
                              uint64_t count) {
  if (victim.kind != UsageTarget::Kind::Container) return;
  auto& pair = pairs_[{victim_cgroup, preemptor_cgroup}];
  // Smaller than before: the kernel entry was deleted and counts anew from zero.
  const uint64_t dc = count >= pair.count ? count - pair.count : count;
  pair = {count};
  if (dc == 0) return;
  const PreemptorKind kind = classify_preemptor(victim, preemptor);
  auto& c = victims_[victim].pending[{kind, kind == PreemptorKind::Host ? "" : preemptor.pod_uid}];
  c.count += dc;
}

void PreemptionTable::fold() {
  for (auto& [target, v] : victims_) {
    if (v.pending.empty()) continue;
    for (const auto& [key, c] : v.pending)
      if (key.first == PreemptorKind::OtherPod) v.pod_totals[key.second] += c.count;
    // Top N by preemptions so far; ties broken by uid so the choice is stable.
    std::vector<std::pair<uint64_t, std::string>> ranked;
    ranked.reserve(v.pod_totals.size());
    for (const auto& [uid, total] : v.pod_totals) ranked.emplace_back(total, uid);
    const size_t n = std::min(top_n_, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + n, ranked.end(),
                      [](const auto& a, const auto& b) {
                        return a.first != b.first ? a.first > b.first : a.second < b.second;
                      });
    v.labelled.clear();
    for (size_t i = 0; i < n; ++i) v.labelled.insert(ranked[i].second);
    for (const auto& [key, c] : v.pending) {
      SeriesKey dest = key;
      if (key.first == PreemptorKind::OtherPod && !v.labelled.count(key.second))
        dest = {PreemptorKind::OtherPod, kOtherPods};
      auto& s = v.series[dest];
      s.count += c.count;
    }
    v.pending.clear();
  }
}

std::map<UsageTarget, std::vector<PreemptionSeries>> PreemptionTable::series() const {
  std::map<UsageTarget, std::vector<PreemptionSeries>> out;
  for (const auto& [target, v] : victims_) {
    std::vector<PreemptionSeries> list;
    for (const auto& [key, c] : v.series) {
      // A pod that left the top N keeps its counter for when it returns, but is not exported:
      // what it does meanwhile counts under "other".
      if (key.first == PreemptorKind::OtherPod && key.second != kOtherPods &&
          !v.labelled.count(key.second))
        continue;
      list.push_back({key.first, key.second, c.count});
    }
    if (!list.empty()) out.emplace(target, std::move(list));
  }
  return out;
}

void PreemptionTable::forget_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  if (cgroup_ids.empty()) return;
  const std::unordered_set<uint64_t> gone(cgroup_ids.begin(), cgroup_ids.end());
  std::erase_if(pairs_, [&](const auto& kv) {
    return gone.count(kv.first.first) != 0 || gone.count(kv.first.second) != 0;
  });
}

void PreemptionTable::retain_victims(const std::set<UsageTarget>& live) {
  std::erase_if(victims_, [&](const auto& kv) { return live.count(kv.first) == 0; });
}

}  // namespace podgauge::agent
