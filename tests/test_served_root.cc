// Request-path syntax, checked before anything touches the file system (apps/reactord).
#include <criterion/criterion.h>
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <string>

#include "apps/reactord/served_root.h"

using protocol::ErrorCode;

TestSuite(request_path, .timeout = 10);

namespace {

std::string normalized(const std::string& in) {
  std::string out;
  protocol::ProtocolError err;
  cr_assert(server::normalize_request_path(in, &out, &err), "\"%s\" refused: %s", in.c_str(), err.message.c_str());
  return out;
}

ErrorCode refusal(const std::string& in) {
  std::string out;
  protocol::ProtocolError err;
  cr_assert_not(server::normalize_request_path(in, &out, &err), "\"%s\" accepted as \"%s\"", in.c_str(), out.c_str());
  cr_assert_not(err.message.empty());
  return err.code;
}

}  // namespace

Test(request_path, empty_and_dot_components_are_dropped) {
  cr_assert(normalized("") == ".");
  cr_assert(normalized(".") == ".");
  cr_assert(normalized("./") == ".");
  cr_assert(normalized("a") == "a");
  cr_assert(normalized("a//b/./c/") == "a/b/c");
  cr_assert(normalized("..a/b..") == "..a/b..");  // dots inside names are ordinary
}

Test(request_path, escapes_are_forbidden_before_any_lookup) {
  cr_assert_eq(refusal("/etc/passwd"), ErrorCode::kForbidden);
  cr_assert_eq(refusal(".."), ErrorCode::kForbidden);
  cr_assert_eq(refusal("a/../../x"), ErrorCode::kForbidden);
  cr_assert_eq(refusal("a/.."), ErrorCode::kForbidden);
  cr_assert_eq(refusal("//x"), ErrorCode::kForbidden);
}

Test(request_path, malformed_paths_are_bad_path) {
  cr_assert_eq(refusal(std::string(256, 'n')), ErrorCode::kBadPath);
  cr_assert(normalized(std::string(255, 'n')) == std::string(255, 'n'));
  cr_assert_eq(refusal(std::string("a\0b", 3)), ErrorCode::kBadPath);
}
