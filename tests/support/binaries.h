#pragma once
// Where the integration tests find the programs under test.

#include <optional>
#include <string>
#include <string_view>

namespace testsupport {

// $REACTOR_BUILD_DIR (set by scripts/run-tests.sh), else "build", made absolute against
// the current directory.
std::string build_dir();

// build_dir() + "/" + name if it is an executable file; otherwise nullopt and *err says
// where it looked and how to fix it.
std::optional<std::string> find_binary(std::string_view name, std::string* err = nullptr);

}  // namespace testsupport
