#pragma once
// A throwaway PKI made with OpenSSL at start-up: a CA, the serving certificate for
// 127.0.0.1/::1/localhost and client certificates (CN = user, O = groups, as kube-apiserver
// reads them). ECDSA P-256 keys, so generating all of it takes milliseconds.

#include <filesystem>
#include <string>
#include <vector>

namespace podgauge::fakeapi {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

/// Immutable after construction. Thread-safety: safe from any thread.
class CertificateAuthority {
 public:
  CertificateAuthority();  // a fresh CA; throws std::runtime_error naming the failed step
  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  const std::string& ca_pem() const { return ca_pem_; }
  /// A certificate for serverAuth on localhost, 127.0.0.1 and ::1.
  KeyPair issue_server() const;
  /// A certificate for clientAuth: subject CN=`user`, one O= per group.
  KeyPair issue_client(const std::string& user, const std::vector<std::string>& groups) const;

 private:
  KeyPair issue(const std::string& cn, const std::vector<std::string>& orgs, bool server) const;
  struct Impl;
  Impl* impl_;
  std::string ca_pem_;
};

std::string base64_encode(const std::string& data);
void write_file(const std::filesystem::path& path, const std::string& content, unsigned mode = 0600);

}  // namespace podgauge::fakeapi
