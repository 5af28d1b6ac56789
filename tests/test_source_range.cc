// apps/reactorc/source_range: which addresses `reactorc bench --source PREFIX` uses.

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style function-pointer cast at each test.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <string>

#include "apps/reactorc/source_range.h"

using client::SourceRange;

namespace {

SourceRange parse_ok(const char* text) {
  SourceRange range;
  std::string err;
  cr_assert(SourceRange::parse(text, &range, &err), "%s: %s", text, err.c_str());
  return range;
}

std::string host_at(const SourceRange& range, uint64_t i) {
  std::string text = range.at(i).to_string();
  cr_assert_eq(range.at(i).port(), 0);
  return text.substr(0, text.rfind(':'));
}

}  // namespace

TestSuite(source_range, .timeout = 10);

Test(source_range, skips_network_and_broadcast_and_wraps) {
  SourceRange r = parse_ok("127.0.0.0/24");
  cr_assert_eq(r.size(), 254u);
  cr_assert_eq(host_at(r, 0), "127.0.0.1");
  cr_assert_eq(host_at(r, 253), "127.0.0.254");
  cr_assert_eq(host_at(r, 254), "127.0.0.1", "wraps round");
  SourceRange wide = parse_ok("127.1.2.3/16");  // host bits ignored
  cr_assert_eq(wide.size(), 65534u);
  cr_assert_eq(host_at(wide, 0), "127.1.0.1");
  cr_assert_eq(host_at(wide, 256), "127.1.1.1");
}

Test(source_range, tiny_prefixes_use_every_address) {
  SourceRange one = parse_ok("127.0.0.9/32");
  cr_assert_eq(one.size(), 1u);
  cr_assert_eq(host_at(one, 5), "127.0.0.9");
  SourceRange two = parse_ok("127.0.0.8/31");
  cr_assert_eq(two.size(), 2u);
  cr_assert_eq(host_at(two, 0), "127.0.0.8");
  cr_assert_eq(host_at(two, 1), "127.0.0.9");
  SourceRange four = parse_ok("127.0.0.8/30");
  cr_assert_eq(four.size(), 2u);
  cr_assert_eq(host_at(four, 0), "127.0.0.9");
  cr_assert_eq(host_at(four, 1), "127.0.0.10");
}

Test(source_range, rejects_what_is_not_an_ipv4_prefix) {
  for (const char* bad : {"", "/24", "127.0.0.0", "127.0.0.0/", "127.0.0.0/7", "127.0.0.0/33", "127.0.0/24",
                          "127.0.0.256/24", "::1/128", "127.0.0.0/24/1", "127.0.0.0/-1", "127.0.0.0/ 24"}) {
    SourceRange r;
    std::string err;
    cr_assert_not(SourceRange::parse(bad, &r, &err), "accepted '%s'", bad);
    cr_assert_not(err.empty());
    cr_assert(r.empty(), "'%s' left a range behind", bad);
  }
}
