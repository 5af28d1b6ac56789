// apps/reactord/options: reactord's command line, parsed in process. (The drift between
// --help and reactord(8) is tests/test_docs.cc's; the running server is the integration
// tests'.)

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <string>
#include <vector>

#include "apps/reactord/options.h"

using server::Options;
using server::ParseResult;

namespace {

ParseResult parse(std::vector<std::string> args, Options* out) {
  args.insert(args.begin(), "reactord");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return server::parse_options(static_cast<int>(args.size()), argv.data(), out);
}

Options parse_ok(const std::vector<std::string>& args) {
  Options options;
  cr_assert_eq(parse(args, &options), ParseResult::kRun);
  return options;
}

}  // namespace

TestSuite(server_options, .timeout = 10);

Test(server_options, quiet_wins_over_verbose_in_any_order) {
  cr_assert_eq(parse_ok({}).verbosity, 0);
  cr_assert_eq(parse_ok({"-v"}).verbosity, 1);
  cr_assert_eq(parse_ok({"-v", "-v"}).verbosity, 1);
  cr_assert_eq(parse_ok({"-q"}).verbosity, -1);
  cr_assert_eq(parse_ok({"-q", "-v"}).verbosity, -1);
  cr_assert_eq(parse_ok({"-v", "-q"}).verbosity, -1);
  cr_assert_eq(parse_ok({"--quiet", "--verbose"}).verbosity, -1);
  cr_assert_eq(parse_ok({"-vq"}).verbosity, -1);
}

Test(server_options, values_and_repeated_listen) {
  Options o = parse_ok({"-r", "/srv", "-l", "127.0.0.1:1", "--listen=[::1]:2", "-k", "s", "-m", "7",
                        "--idle-timeout", "1.5", "--handshake-timeout=2", "--grace", "0.25", "--backend", "poll"});
  cr_assert_eq(o.root, "/srv");
  cr_assert_eq(o.listen.size(), 2u);
  cr_assert_eq(o.listen[0], "127.0.0.1:1");
  cr_assert_eq(o.listen[1], "[::1]:2");
  cr_assert_eq(o.secret_file, "s");
  cr_assert_eq(o.max_connections, 7u);
  cr_assert_eq(o.idle_timeout.count(), 1500);
  cr_assert_eq(o.handshake_timeout.count(), 2000);
  cr_assert_eq(o.grace.count(), 250);
  cr_assert_eq(o.backend, "poll");
}

Test(server_options, double_dash_ends_options) {
  Options o;
  cr_assert_eq(parse({"-q", "--", "-v"}, &o), ParseResult::kUsageError, "an operand after --");
  cr_assert_eq(parse_ok({"-q", "--"}).verbosity, -1);
  cr_assert(parse_ok({}).partial_ttl == std::chrono::seconds(3600));
  cr_assert(parse_ok({"--partial-ttl", "0"}).partial_ttl == std::chrono::seconds(0));
  cr_assert(parse_ok({"--partial-ttl", "2592000"}).partial_ttl == std::chrono::seconds(2592000));
}

Test(server_options, bad_input_is_a_usage_error) {
  const std::vector<std::vector<std::string>> bad = {
      {"-m", "0"},           {"-m", "1000001"},    {"-m", "ten"},           {"--idle-timeout", "0"},
      {"--grace", "-1"},     {"--grace", "1e99"},  {"--handshake-timeout"}, {"--backend", "select"},
      {"--no-such-option"},  {"-x"},               {"operand"},             {"-r"},
      {"--partial-ttl", "-1"}, {"--partial-ttl", "1.5"}, {"--partial-ttl", "2592001"}, {"--partial-ttl"},
  };
  for (const auto& args : bad) {
    Options o;
    cr_assert_eq(parse(args, &o), ParseResult::kUsageError, "accepted: %s", args.front().c_str());
  }
}

Test(server_options, help_and_version_exit_zero) {
  Options o;
  cr_assert_eq(parse({"--help"}, &o), ParseResult::kExitOk);
  cr_assert_eq(parse({"-V"}, &o), ParseResult::kExitOk);
}
