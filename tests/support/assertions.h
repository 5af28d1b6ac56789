#pragma once
// String assertions for Criterion tests. They are macros, so that the failure names the
// test's own file and line; a header only.
//
// cr_assert_str_eq keeps the const char* of its arguments past the full expression, so a
// temporary's c_str() dangles: these compare std::string copies instead.

#include <criterion/criterion.h>

#include <string>

#define ASSERT_STR_EQ(actual, expected)                                                   \
  do {                                                                                    \
    const std::string got_ = (actual);                                                    \
    const std::string want_ = (expected);                                                 \
    cr_assert(got_ == want_, "%s:\n  got  \"%s\"\n  want \"%s\"", #actual, got_.c_str(), \
              want_.c_str());                                                             \
  } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                                  \
  do {                                                                                     \
    const std::string hay_ = (haystack);                                                   \
    const std::string needle_ = (needle);                                                  \
    cr_assert(hay_.find(needle_) != std::string::npos, "expected \"%s\" in:\n%s",          \
              needle_.c_str(), hay_.c_str());                                              \
  } while (0)

#define ASSERT_NOT_CONTAINS(haystack, needle)                                              \
  do {                                                                                     \
    const std::string assert_haystack_ = (haystack);                                       \
    const std::string assert_needle_ = (needle);                                           \
    cr_assert(assert_haystack_.find(assert_needle_) == std::string::npos,                  \
              "expected no \"%s\" in:\n%s", assert_needle_.c_str(), assert_haystack_.c_str()); \
  } while (0)
