#include "tests/support/hmac_auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstdio>

namespace testsupport {

std::string hex_encode(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]);
    int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return {};
  }
  return out;
}

std::string auth_transcript(std::string_view label, std::string_view server_nonce,
                            std::string_view client_nonce) {
  std::string msg(label);
  msg.push_back('\0');
  msg.append(server_nonce);
  msg.append(client_nonce);
  return msg;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), md,
            &md_len)) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(md), md_len);
}

std::string client_mac_hex(std::string_view secret, std::string_view server_nonce,
                           std::string_view client_nonce) {
  return hex_encode(
      hmac_sha256(secret, auth_transcript(kClientAuthLabel, server_nonce, client_nonce)));
}

std::string server_mac_hex(std::string_view secret, std::string_view server_nonce,
                           std::string_view client_nonce) {
  return hex_encode(
      hmac_sha256(secret, auth_transcript(kServerAuthLabel, server_nonce, client_nonce)));
}

std::string secret_key_from_text(std::string_view text) {
  size_t end = text.size();
  while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ' ||
                     text[end - 1] == '\t')) {
    --end;
  }
  return std::string(text.substr(0, end));
}

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string make_auth_header(std::string_view secret, std::string_view server_nonce,
                             std::string_view client_nonce, int proto,
                             const std::vector<std::string>& features) {
  std::string json = "{\"type\":\"auth\",\"proto\":" + std::to_string(proto) +
                     ",\"client\":\"reactorc-test/0.1.0\",\"features\":[";
  for (size_t i = 0; i < features.size(); ++i) {
    if (i) json += ",";
    json += json_quote(features[i]);
  }
  json += "],\"nonce\":\"" + hex_encode(client_nonce) + "\",\"mac\":\"" +
          client_mac_hex(secret, server_nonce, client_nonce) + "\"}";
  return json;
}

}  // namespace testsupport
