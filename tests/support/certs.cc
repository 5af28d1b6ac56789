#include "tests/support/certs.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

#include "tests/support/hmac_auth.h"

namespace testsupport {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

std::string openssl_reason(const char* what) {
  std::string text = what;
  if (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text += std::string(": ") + buf;
  }
  ERR_clear_error();
  return text;
}

KeyPtr new_key() { return KeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }

bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key`, signed by `signer_key` as `issuer` (itself when null).
CertPtr make_cert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* signer_key, long from_days,
                  long to_days, bool ca, const std::string& san, long serial) {
  CertPtr cert(X509_new());
  if (!cert) return nullptr;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), to_days * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* parent = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(parent));
  if (!add_extension(cert.get(), parent, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE")) return nullptr;
  if (ca && !add_extension(cert.get(), parent, NID_key_usage, "critical,keyCertSign,cRLSign")) return nullptr;
  if (!ca && !add_extension(cert.get(), parent, NID_ext_key_usage, "serverAuth")) return nullptr;
  if (!san.empty() && !add_extension(cert.get(), parent, NID_subject_alt_name, san)) return nullptr;
  add_extension(cert.get(), parent, NID_subject_key_identifier, "hash");
  if (X509_sign(cert.get(), signer_key, EVP_sha256()) <= 0) return nullptr;
  return cert;
}

bool write_pem_cert(const std::string& path, X509* cert) {
  std::unique_ptr<FILE, FileClose> f(std::fopen(path.c_str(), "w"));
  return f && PEM_write_X509(f.get(), cert) == 1;
}

bool write_pem_key(const std::string& path, EVP_PKEY* key) {
  std::unique_ptr<FILE, FileClose> f(std::fopen(path.c_str(), "w"));
  return f && PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
}

}  // namespace

bool make_certificates(const std::string& dir, const std::string& prefix, const CertSpec& spec, CertFiles* out,
                       std::string* err) {
  static long serial = 1000;
  std::string san;
  for (const std::string& dns : spec.dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
  for (const std::string& ip : spec.ips) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
  KeyPtr key = new_key();
  if (!key) {
    *err = openssl_reason("EC key");
    return false;
  }
  CertPtr cert;
  *out = CertFiles{};
  if (spec.self_signed) {
    cert = make_cert(key.get(), spec.common_name, nullptr, key.get(), spec.valid_from_days, spec.valid_to_days, false,
                     san, ++serial);
  } else {
    KeyPtr ca_key = new_key();
    CertPtr ca = ca_key ? make_cert(ca_key.get(), "reactor test CA", nullptr, ca_key.get(), -1, 30, true, "", ++serial)
                        : nullptr;
    if (!ca) {
      *err = openssl_reason("CA certificate");
      return false;
    }
    out->ca_cert = dir + "/" + prefix + "-ca.pem";
    if (!write_pem_cert(out->ca_cert, ca.get())) {
      *err = "write " + out->ca_cert;
      return false;
    }
    cert = make_cert(key.get(), spec.common_name, ca.get(), ca_key.get(), spec.valid_from_days, spec.valid_to_days,
                     false, san, ++serial);
  }
  if (!cert) {
    *err = openssl_reason("server certificate");
    return false;
  }
  out->cert = dir + "/" + prefix + "-cert.pem";
  out->key = dir + "/" + prefix + "-key.pem";
  if (!write_pem_cert(out->cert, cert.get()) || !write_pem_key(out->key, key.get())) {
    *err = "write " + out->cert;
    return false;
  }
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.get(), &der);
  if (len <= 0) {
    *err = openssl_reason("i2d_PUBKEY");
    return false;
  }
  unsigned char digest[32];
  unsigned int digest_len = 0;
  EVP_Digest(der, static_cast<size_t>(len), digest, &digest_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  out->pin = "sha256:" + hex_encode(std::string(reinterpret_cast<char*>(digest), digest_len));
  return true;
}

}  // namespace testsupport
