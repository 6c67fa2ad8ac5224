#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "podgauge/cgroup/kubelet_layout.h"

namespace podgauge::cgroup {
namespace {

const std::string kUid = "1234abcd-5678-90ab-cdef-1234567890ab";
const std::string kSystemdUid = "1234abcd_5678_90ab_cdef_1234567890ab";
const std::string kStaticPodHash = "5e4f5b8b7a8c9d0e1f2a3b4c5d6e7f80";
const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const std::vector<std::string> kPrefixes = {"", "/process_api/abc/podgauge-test-1"};
const std::vector<QosClass> kQosClasses = {QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort};

std::string qos_word(QosClass qos) {
  switch (qos) {
    case QosClass::Burstable: return "burstable";
    case QosClass::BestEffort: return "besteffort";
    case QosClass::Guaranteed: break;
  }
  return "";
}

// "<stem>.slice/[<stem>-<qos>.slice/]<stem>[-<qos>]-pod<uid>.slice"
std::string systemd_pod(QosClass qos, const std::string& uid = kSystemdUid, const std::string& stem = "kubepods") {
  if (qos == QosClass::Guaranteed) return "/" + stem + ".slice/" + stem + "-pod" + uid + ".slice";
  std::string q = qos_word(qos);
  return "/" + stem + ".slice/" + stem + "-" + q + ".slice/" + stem + "-" + q + "-pod" + uid + ".slice";
}

std::string cgroupfs_pod(QosClass qos, const std::string& uid = kUid) {
  if (qos == QosClass::Guaranteed) return "/kubepods/pod" + uid;
  return "/kubepods/" + qos_word(qos) + "/pod" + uid;
}

std::string colon_pod_slice(QosClass qos, const std::string& uid = kSystemdUid) {
  if (qos == QosClass::Guaranteed) return "kubepods-pod" + uid + ".slice";
  return "kubepods-" + qos_word(qos) + "-pod" + uid + ".slice";
}

void expect_container(const std::string& path, QosClass qos, ContainerRuntime runtime,
                      CgroupKind kind = CgroupKind::Container, std::size_t matched_length = std::string::npos) {
  SCOPED_TRACE(path);
  auto identity = parse_kubelet_path(path);
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->kind, kind);
  EXPECT_EQ(identity->qos, qos);
  EXPECT_EQ(identity->runtime, runtime);
  EXPECT_EQ(identity->pod_uid.view(), kUid);
  EXPECT_EQ(identity->container_id.view(), kId);
  EXPECT_EQ(identity->matched_length, matched_length == std::string::npos ? path.size() : matched_length);
}

void expect_not_kubelet(const std::string& path) {
  SCOPED_TRACE(path);
  EXPECT_FALSE(parse_kubelet_path(path).has_value());
}

struct RuntimeScope {
  std::string prefix;
  ContainerRuntime runtime;
};
const std::vector<RuntimeScope> kSystemdRuntimes = {
    {"cri-containerd-", ContainerRuntime::Containerd},
    {"crio-", ContainerRuntime::Crio},
    {"docker-", ContainerRuntime::Docker},
};

TEST(KubeletLayout, recognises_systemd_containers_for_every_qos_runtime_and_prefix) {
  for (const auto& prefix : kPrefixes) {
    for (QosClass qos : kQosClasses) {
      for (const auto& runtime : kSystemdRuntimes) {
        expect_container(prefix + systemd_pod(qos) + "/" + runtime.prefix + kId + ".scope", qos, runtime.runtime);
      }
    }
  }
}

TEST(KubeletLayout, recognises_systemd_layout_under_a_custom_cgroup_root) {
  // kind and kubeadm with cgroupRoot=/kubelet name every slice after "kubelet-kubepods".
  for (QosClass qos : kQosClasses) {
    expect_container("/kubelet.slice" + systemd_pod(qos, kSystemdUid, "kubelet-kubepods") + "/cri-containerd-" + kId +
                         ".scope",
                     qos, ContainerRuntime::Containerd);
  }
}

TEST(KubeletLayout, recognises_cgroupfs_containers_for_every_qos_and_prefix) {
  for (const auto& prefix : kPrefixes) {
    for (QosClass qos : kQosClasses) {
      expect_container(prefix + cgroupfs_pod(qos) + "/" + kId, qos, ContainerRuntime::Unknown);
      expect_container(prefix + cgroupfs_pod(qos) + "/crio-" + kId, qos, ContainerRuntime::Crio);
    }
  }
}

TEST(KubeletLayout, recognises_containerd_colon_form_for_every_qos_runtime_and_prefix) {
  const std::vector<RuntimeScope> runtimes = {
      {"cri-containerd", ContainerRuntime::Containerd},
      {"crio", ContainerRuntime::Crio},
      {"docker", ContainerRuntime::Docker},
  };
  for (const auto& prefix : kPrefixes) {
    for (QosClass qos : kQosClasses) {
      for (const auto& runtime : runtimes) {
        expect_container(prefix + "/" + colon_pod_slice(qos) + ":" + runtime.prefix + ":" + kId, qos, runtime.runtime);
        expect_container(prefix + "/kubepods/" + colon_pod_slice(qos) + ":" + runtime.prefix + ":" + kId, qos,
                         runtime.runtime);
      }
    }
  }
}

TEST(KubeletLayout, reports_crio_conmon_as_runtime_overhead_of_the_pod) {
  for (const auto& prefix : kPrefixes) {
    for (QosClass qos : kQosClasses) {
      expect_container(prefix + systemd_pod(qos) + "/crio-conmon-" + kId + ".scope", qos, ContainerRuntime::Crio,
                       CgroupKind::RuntimeOverhead);
      expect_container(prefix + cgroupfs_pod(qos) + "/crio-conmon-" + kId, qos, ContainerRuntime::Crio,
                       CgroupKind::RuntimeOverhead);
    }
  }
}

TEST(KubeletLayout, reports_pod_when_path_ends_at_the_pod) {
  for (const auto& prefix : kPrefixes) {
    for (QosClass qos : kQosClasses) {
      for (const std::string& path : {prefix + systemd_pod(qos), prefix + cgroupfs_pod(qos)}) {
        SCOPED_TRACE(path);
        auto identity = parse_kubelet_path(path);
        ASSERT_TRUE(identity.has_value());
        EXPECT_EQ(identity->kind, CgroupKind::Pod);
        EXPECT_EQ(identity->qos, qos);
        EXPECT_EQ(identity->pod_uid.view(), kUid);
        EXPECT_TRUE(identity->container_id.empty());
        EXPECT_EQ(identity->runtime, ContainerRuntime::Unknown);
        EXPECT_EQ(identity->matched_length, path.size());
      }
    }
  }
}

TEST(KubeletLayout, attributes_nested_cgroups_to_their_container) {
  std::string container = systemd_pod(QosClass::Burstable) + "/cri-containerd-" + kId + ".scope";
  expect_container(container + "/init.scope", QosClass::Burstable, ContainerRuntime::Containerd,
                   CgroupKind::Container, container.size());
  expect_container(container + "/a/b/c", QosClass::Burstable, ContainerRuntime::Containerd, CgroupKind::Container,
                   container.size());
  // A kubelet running inside the container (kind-in-pod) does not steal its cgroups.
  expect_container(container + "/kubepods/burstable/pod" + kUid + "/" + std::string(64, 'f'), QosClass::Burstable,
                   ContainerRuntime::Containerd, CgroupKind::Container, container.size());

  std::string cgroupfs_container = cgroupfs_pod(QosClass::Guaranteed) + "/" + kId;
  expect_container(cgroupfs_container + "/sub", QosClass::Guaranteed, ContainerRuntime::Unknown,
                   CgroupKind::Container, cgroupfs_container.size());
  std::string colon = "/" + colon_pod_slice(QosClass::BestEffort) + ":cri-containerd:" + kId;
  expect_container(colon + "/x", QosClass::BestEffort, ContainerRuntime::Containerd, CgroupKind::Container,
                   colon.size());
}

TEST(KubeletLayout, accepts_static_pod_manifest_hash_as_uid) {
  auto systemd = parse_kubelet_path(systemd_pod(QosClass::Burstable, kStaticPodHash) + "/cri-containerd-" + kId + ".scope");
  ASSERT_TRUE(systemd.has_value());
  EXPECT_EQ(systemd->pod_uid.view(), kStaticPodHash);
  auto cgroupfs = parse_kubelet_path(cgroupfs_pod(QosClass::Guaranteed, kStaticPodHash));
  ASSERT_TRUE(cgroupfs.has_value());
  EXPECT_EQ(cgroupfs->pod_uid.view(), kStaticPodHash);
}

TEST(KubeletLayout, returns_nullopt_for_cgroups_outside_pods) {
  for (const char* path : {"/", "", "/system.slice", "/system.slice/containerd.service", "/user.slice/user-0.slice",
                           "/init.scope", "/kubepods.slice", "/kubepods.slice/kubepods-burstable.slice",
                           "/kubepods.slice/kubepods-besteffort.slice", "/kubepods", "/kubepods/burstable",
                           "/kubepods/besteffort", "/system.slice/docker-" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
                           "/process_api/abc/podgauge-test-1"}) {
    expect_not_kubelet(path);
  }
}

TEST(KubeletLayout, rejects_wrong_shaped_uids) {
  std::vector<std::string> bad_uids = {
      kUid.substr(1),                           // 35 chars
      kUid + "0",                               // 37
      "1234abcd-5678-90ab-cdef-1234567890aG",   // non-hex
      "1234ABCD-5678-90AB-CDEF-1234567890AB",   // uppercase
      "1234abcd5-678-90ab-cdef-1234567890ab",   // dash misplaced
      "1234abcd-5678-90ab-cdef_1234567890ab",   // mixed separators
      kStaticPodHash.substr(1),                 // 31
      kStaticPodHash + "0",                     // 33
      "",
  };
  for (const auto& uid : bad_uids) {
    expect_not_kubelet(cgroupfs_pod(QosClass::Burstable, uid) + "/" + kId);
    expect_not_kubelet(cgroupfs_pod(QosClass::Burstable, uid));
    std::string escaped = uid;
    if (uid.find('_') == std::string::npos) std::replace(escaped.begin(), escaped.end(), '-', '_');
    expect_not_kubelet(systemd_pod(QosClass::Burstable, escaped) + "/cri-containerd-" + kId + ".scope");
    expect_not_kubelet("/" + colon_pod_slice(QosClass::Burstable, escaped) + ":cri-containerd:" + kId);
  }
  // Each driver spells the uid its own way.
  expect_not_kubelet(systemd_pod(QosClass::Burstable, kUid));
  expect_not_kubelet(cgroupfs_pod(QosClass::Burstable, kSystemdUid));
}

TEST(KubeletLayout, rejects_wrong_shaped_container_ids) {
  std::vector<std::string> bad_ids = {
      kId.substr(1), kId + "0", std::string(63, 'a') + "A", std::string(64, 'A'), std::string(63, 'a') + "g",
      std::string(63, 'a') + "-", "",
  };
  for (const auto& id : bad_ids) {
    expect_not_kubelet(systemd_pod(QosClass::Burstable) + "/cri-containerd-" + id + ".scope");
    expect_not_kubelet(systemd_pod(QosClass::Burstable) + "/crio-conmon-" + id + ".scope");
    expect_not_kubelet(cgroupfs_pod(QosClass::Burstable) + "/" + id);
    expect_not_kubelet("/" + colon_pod_slice(QosClass::Burstable) + ":cri-containerd:" + id);
  }
  expect_not_kubelet(systemd_pod(QosClass::Burstable) + "/cri-containerd-" + kId);   // no .scope
  expect_not_kubelet(systemd_pod(QosClass::Burstable) + "/podman-" + kId + ".scope");  // unknown runtime
  expect_not_kubelet(cgroupfs_pod(QosClass::Burstable) + "/docker-" + kId + ".scope");
  expect_not_kubelet("/" + colon_pod_slice(QosClass::Burstable) + ":runc:" + kId);
  expect_not_kubelet("/" + colon_pod_slice(QosClass::Burstable) + ":cri-containerd:" + kId + ":x");
}

TEST(KubeletLayout, rejects_inconsistent_or_missing_levels) {
  std::string scope = "/cri-containerd-" + kId + ".scope";
  // QoS of the pod slice disagrees with its parent, or the QoS level is missing.
  expect_not_kubelet("/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod" + kSystemdUid + ".slice" + scope);
  expect_not_kubelet("/kubepods.slice/kubepods-burstable-pod" + kSystemdUid + ".slice" + scope);
  expect_not_kubelet("/kubepods.slice/kubepods-burstable.slice/kubepods-pod" + kSystemdUid + ".slice" + scope);
  // Stem of the pod slice disagrees with the kubepods slice.
  expect_not_kubelet("/kubelet-kubepods.slice/kubepods-pod" + kSystemdUid + ".slice" + scope);
  expect_not_kubelet("/-kubepods.slice/-kubepods-pod" + kSystemdUid + ".slice" + scope);
  // Pod directly at the root, container without pod, unknown QoS.
  expect_not_kubelet("/kubepods-burstable-pod" + kSystemdUid + ".slice" + scope);
  expect_not_kubelet("/kubepods" + scope);
  expect_not_kubelet("/kubepods/guaranteed/pod" + kUid + "/" + kId);
  expect_not_kubelet("/kubepods/pod" + kUid + "/garbage");
  expect_not_kubelet("/kubepods.slice/kubepods-burstable.slice/" + kId);
}

TEST(KubeletLayout, rejects_non_canonical_paths) {
  std::string good = cgroupfs_pod(QosClass::Burstable) + "/" + kId;
  ASSERT_TRUE(parse_kubelet_path(good).has_value());
  expect_not_kubelet("/kubepods//burstable/pod" + kUid + "/" + kId);
  expect_not_kubelet("//kubepods/burstable/pod" + kUid + "/" + kId);
  expect_not_kubelet(good + "/");
  expect_not_kubelet(good + "//x");
  expect_not_kubelet("/kubepods/burstable/pod" + kUid + "/../pod" + kUid + "/" + kId);
  expect_not_kubelet("/kubepods/burstable/pod" + kUid + "/" + kId + "/..");
  expect_not_kubelet("/kubepods/burstable/./pod" + kUid + "/" + kId);
  expect_not_kubelet("/../kubepods/burstable/pod" + kUid + "/" + kId);
  // ".."-like text that is not a ".." component is just a prefix name.
  expect_container("/..x/...." + good, QosClass::Burstable, ContainerRuntime::Unknown);
  // Relative spelling without the leading slash is accepted.
  expect_container(good.substr(1), QosClass::Burstable, ContainerRuntime::Unknown);
}

TEST(KubeletLayout, rejects_nul_bytes_anywhere) {
  std::string good = cgroupfs_pod(QosClass::Burstable) + "/" + kId;
  for (std::size_t position : {std::size_t{0}, std::size_t{5}, good.size() / 2, good.size()}) {
    std::string with_nul = good;
    with_nul.insert(position, 1, '\0');
    expect_not_kubelet(with_nul);
  }
  // A NUL after a valid container would otherwise look like a nested cgroup.
  expect_not_kubelet(good + std::string("/x\0y", 4));
}

TEST(KubeletLayout, survives_hostile_components) {
  std::string huge(1 << 20, 'k');
  expect_not_kubelet("/" + huge);
  expect_not_kubelet("/kubepods/" + huge + "/pod" + kUid + "/" + kId);
  expect_not_kubelet("/kubepods/burstable/pod" + kUid + huge);
  expect_not_kubelet("/kubepods.slice/kubepods-" + huge + ".slice");
  expect_not_kubelet("/" + std::string(100000, '/'));
  expect_not_kubelet(std::string(100000, ':'));
  expect_not_kubelet("/kubepods-pod" + kSystemdUid + ".slice:" + std::string(1000, ':'));
  expect_not_kubelet("/kubepods/burstable/pod" + kUid + "/\xe2\x98\x83" + kId);  // snowman
  expect_not_kubelet("/kubepods/burstable/pod1234abcd-5678-90ab-cdef-1234567890\xc3\xa9");
  expect_not_kubelet("\xff\xfe/kubepods\xff/pod" + kUid);
  // Unicode in a prefix does not matter.
  expect_container("/\xe2\x98\x83/d\xc3\xa9j\xc3\xa0" + cgroupfs_pod(QosClass::BestEffort) + "/" + kId,
                   QosClass::BestEffort, ContainerRuntime::Unknown);
  // Deep prefixes are fine.
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "/d";
  expect_container(deep + cgroupfs_pod(QosClass::Burstable) + "/" + kId, QosClass::Burstable, ContainerRuntime::Unknown);
}

TEST(KubeletLayout, uses_first_complete_match_when_kubepods_appears_twice) {
  // The first kubepods is an ordinary prefix directory when the tree below it is not a pod.
  expect_container("/kubepods/kubepods/burstable/pod" + kUid + "/" + kId, QosClass::Burstable, ContainerRuntime::Unknown);
  expect_container("/kubepods.slice/kubepods/pod" + kUid + "/" + kId, QosClass::Guaranteed, ContainerRuntime::Unknown);
  expect_container("/kubepods.slice" + systemd_pod(QosClass::BestEffort) + "/docker-" + kId + ".scope",
                   QosClass::BestEffort, ContainerRuntime::Docker);
  expect_not_kubelet("/kubepods/kubepods");
  expect_not_kubelet("/kubepods.slice/kubepods.slice/kubepods.slice");
  expect_not_kubelet("/kubepods/burstable/kubepods/besteffort");
}

TEST(KubeletLayout, names_enums_like_kubernetes_does) {
  EXPECT_EQ(to_string(ContainerRuntime::Containerd), "containerd");
  EXPECT_EQ(to_string(ContainerRuntime::Crio), "cri-o");
  EXPECT_EQ(to_string(ContainerRuntime::Docker), "docker");
  EXPECT_EQ(to_string(ContainerRuntime::Unknown), "unknown");
  EXPECT_EQ(to_string(QosClass::Guaranteed), "Guaranteed");
  EXPECT_EQ(to_string(QosClass::Burstable), "Burstable");
  EXPECT_EQ(to_string(QosClass::BestEffort), "BestEffort");
  EXPECT_EQ(to_string(CgroupKind::RuntimeOverhead), "runtime-overhead");
}

TEST(PodUid, parses_only_canonical_forms) {
  EXPECT_EQ(PodUid::parse(kUid)->view(), kUid);
  EXPECT_EQ(PodUid::parse(kStaticPodHash)->view(), kStaticPodHash);
  EXPECT_EQ(PodUid::parse_systemd_escaped(kSystemdUid)->view(), kUid);
  EXPECT_FALSE(PodUid::parse(kSystemdUid));
  EXPECT_FALSE(PodUid::parse_systemd_escaped(kUid));
  EXPECT_FALSE(PodUid::parse("1234ABCD-5678-90ab-cdef-1234567890ab"));
  EXPECT_EQ(PodUid::parse(kUid), PodUid::parse_systemd_escaped(kSystemdUid));
  EXPECT_TRUE(PodUid{}.empty());
}

TEST(ContainerId, parses_only_64_lowercase_hex) {
  EXPECT_EQ(ContainerId::parse(kId)->view(), kId);
  EXPECT_FALSE(ContainerId::parse(std::string(64, 'A')));
  EXPECT_FALSE(ContainerId::parse(kId.substr(2)));
  EXPECT_TRUE(ContainerId{}.empty());
  EXPECT_EQ(ContainerId{}.view(), "");
}

}  // namespace
}  // namespace podgauge::cgroup
