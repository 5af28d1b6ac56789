#pragma once
// The feature names of reactor-protocol(7), VERSIONS AND FEATURES: what hello and auth
// advertise. Both programs take them from here, so neither spells one as a literal.

#include <string>
#include <vector>

namespace protocol {

inline constexpr char kFeatureGet[] = "get";
inline constexpr char kFeatureStat[] = "stat";
inline constexpr char kFeatureList[] = "list";
inline constexpr char kFeaturePing[] = "ping";
inline constexpr char kFeatureMsg[] = "msg";
inline constexpr char kFeatureResume[] = "resume";  // get with an offset above 0
inline constexpr char kFeaturePut[] = "put";        // version 2
inline constexpr char kFeatureDigests[] = "digests";  // version 2
inline constexpr char kFeatureTree[] = "tree";        // version 2: list with "recursive"
inline constexpr char kFeatureMkdir[] = "mkdir";      // version 2
inline constexpr char kFeatureEagerPut[] = "eager_put";  // version 2: a put's data follows it at once
inline constexpr char kFeatureLinks[] = "links";         // version 2: list with "links", the symlink request

// What reactord offers in its hello.
inline std::vector<std::string> server_features() {
  return {kFeatureGet, kFeatureStat, kFeatureList, kFeaturePing, kFeatureMsg, kFeatureResume, kFeaturePut,
          kFeatureDigests, kFeatureTree, kFeatureMkdir, kFeatureEagerPut, kFeatureLinks};
}

// What reactorc offers in its auth.
inline std::vector<std::string> client_features() {
  return {kFeatureGet, kFeatureStat, kFeatureList, kFeaturePing, kFeatureMsg, kFeatureResume, kFeaturePut,
          kFeatureDigests, kFeatureTree, kFeatureMkdir, kFeatureEagerPut, kFeatureLinks};
}

}  // namespace protocol
