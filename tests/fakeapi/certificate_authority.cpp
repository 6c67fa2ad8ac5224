#include "certificate_authority.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace podgauge::fakeapi {

namespace {

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

void check(bool ok, const char* step) {
  if (!ok) throw std::runtime_error(std::string("fakeapi PKI: ") + step + " failed");
}

Pkey new_key() {
  Pkey key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen(P-256)");
  return key;
}

std::string pem_of(X509* cert) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

Cert new_cert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& orgs) {
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 60L * 60 * 24 * 365);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& o : orgs)
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

struct CertificateAuthority::Impl {
  Pkey key;
  Cert cert;
};

CertificateAuthority::CertificateAuthority() : impl_(new Impl) {
  try {
    impl_->key = new_key();
    impl_->cert = new_cert(impl_->key.get(), "podgauge-fakeapi-ca", {});
    X509* c = impl_->cert.get();
    X509_set_issuer_name(c, X509_get_subject_name(c));
    add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(c, c, NID_subject_key_identifier, "hash");
    check(X509_sign(c, impl_->key.get(), EVP_sha256()) > 0, "X509_sign(CA)");
    ca_pem_ = pem_of(c);
  } catch (...) {
    delete impl_;
    throw;
  }
}

CertificateAuthority::~CertificateAuthority() { delete impl_; }

KeyPair CertificateAuthority::issue(const std::string& cn, const std::vector<std::string>& orgs,
                                    bool server) const {
  Pkey key = new_key();
  Cert cert = new_cert(key.get(), cn, orgs);
  X509* ca = impl_->cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  add_ext(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert.get(), ca, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  add_ext(cert.get(), ca, NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  add_ext(cert.get(), ca, NID_authority_key_identifier, "keyid:always");
  if (server)
    add_ext(cert.get(), ca, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1");
  check(X509_sign(cert.get(), impl_->key.get(), EVP_sha256()) > 0, "X509_sign");
  return {pem_of(cert.get()), pem_of(key.get())};
}

KeyPair CertificateAuthority::issue_server() const { return issue("podgauge-fakeapi", {}, true); }

KeyPair CertificateAuthority::issue_client(const std::string& user,
                                           const std::vector<std::string>& groups) const {
  return issue(user, groups, false);
}

std::string base64_encode(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& content, unsigned mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::system_error(errno, std::generic_category(), "cannot write " + path.string());
  ::chmod(path.c_str(), mode);
}

}  // namespace podgauge::fakeapi
