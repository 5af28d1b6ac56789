#pragma once
// Throwaway X.509 certificates for the TLS tests, made with OpenSSL's API in process (no
// openssl(1) needed, and validity periods in the past, which `openssl req` cannot make):
// a CA and a server certificate it signs, or a self-signed one, EC P-256, SHA-256.

#include <string>
#include <vector>

namespace testsupport {

struct CertSpec {
  std::string common_name = "reactor test server";
  std::vector<std::string> dns_names{"localhost"};  // subjectAltName DNS entries
  std::vector<std::string> ips{"127.0.0.1", "::1"}; // subjectAltName IP entries
  long valid_from_days = -1;  // relative to now; both may be negative (expired) or positive (not yet valid)
  long valid_to_days = 30;
  bool self_signed = false;   // no CA: the server certificate signs itself
};

struct CertFiles {
  std::string ca_cert;  // PEM; empty when self_signed
  std::string cert;     // the server's certificate (PEM)
  std::string key;      // its private key (PEM, unencrypted)
  std::string pin;      // "sha256:" + hex of the SHA-256 of its DER SubjectPublicKeyInfo
};

// Writes the files into `dir` with names starting with `prefix`. False + *err on failure.
bool make_certificates(const std::string& dir, const std::string& prefix, const CertSpec& spec, CertFiles* out,
                       std::string* err);

}  // namespace testsupport
