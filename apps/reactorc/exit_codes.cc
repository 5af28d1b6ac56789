#include "apps/reactorc/exit_codes.h"

#include "apps/reactorc/connection.h"

namespace client {

int exit_code_for(Failure failure) {
  switch (failure) {
    case Failure::kConnect: return kExitConnect;
    case Failure::kAuth: return kExitAuth;
    case Failure::kCertificate: return kExitCertificate;
    case Failure::kProtocol:
    case Failure::kClosed:
    case Failure::kTimeout: return kExitProtocol;
  }
  return kExitFailure;
}

}  // namespace client
