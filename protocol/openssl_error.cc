#include "protocol/openssl_error.h"

#include <openssl/err.h>

namespace protocol {

std::string openssl_error(std::string_view what) {
  std::string out(what);
  out += ": ";
  bool any = false;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (any) out += "; ";
    out += buf;
    any = true;
  }
  if (!any) out += "unknown OpenSSL error";
  return out;
}

}  // namespace protocol
