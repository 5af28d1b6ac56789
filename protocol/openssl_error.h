#pragma once
// OpenSSL's error queue as text for the `what: reason` messages of the err out-parameters.

#include <string>
#include <string_view>

namespace protocol {

// `what: <reasons from the OpenSSL error queue>` (or `what: unknown OpenSSL error`).
// Drains the queue, so a stale entry cannot be blamed on a later failure.
std::string openssl_error(std::string_view what);

}  // namespace protocol
