// protocol/json_header: FieldReader's typed reads, defaults and messages. (The header
// rules themselves are exercised through the decoder in test_frame.cc.)

#include <criterion/criterion.h>

#include <cjson/cJSON.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/json_header.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 10;

using protocol::ErrorCode;
using protocol::FieldReader;
using protocol::JsonPtr;
using protocol::ProtocolError;

namespace {

JsonPtr parse(const std::string& text) {
  ProtocolError err;
  JsonPtr json = protocol::parse_header(text, &err);
  cr_assert(json, "%s: %s", text.c_str(), err.message.c_str());
  return json;
}

const char kDoc[] = R"({"s":"str","e":"","b":true,"f":false,"n":42,"z":0,"neg":-7,"big":9007199254740992,)"
                    R"("frac":2.5,"nul":null,"arr":["a","bc"],"mixed":["a",1],"obj":{"k":"v"},)"
                    R"("hex":"00ff10Ab"})";

}  // namespace

Test(json_header, strings, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  std::string s;
  cr_assert(r.read_string("s", 3, &s));
  cr_assert_str_eq(s.c_str(), "str");
  cr_assert(r.read_string("e", 0, &s));
  cr_assert(s.empty());
  cr_assert(!r.read_string("s", 2, &s));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert_str_eq(err.message.c_str(), "field \"s\": 3 bytes exceeds the limit of 2");
  cr_assert(!r.read_string("absent", 10, &s));
  cr_assert_eq(err.code, ErrorCode::kMissingField);
  cr_assert(!r.read_string("n", 10, &s));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
  cr_assert_str_eq(err.message.c_str(), "field \"n\": expected a string, got number");
  cr_assert(!r.read_string("nul", 10, &s));
  cr_assert_eq(err.code, ErrorCode::kWrongType);

  std::optional<std::string> o = std::string("stale");
  cr_assert(r.read_optional_string("absent", 10, &o));
  cr_assert(!o.has_value());
  cr_assert(r.read_optional_string("s", 10, &o));
  cr_assert(o.has_value() && *o == "str");
  cr_assert(!r.read_optional_string("b", 10, &o));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
}

Test(json_header, booleans, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  bool b = false;
  cr_assert(r.read_bool("b", &b) && b);
  cr_assert(r.read_bool("f", &b) && !b);
  cr_assert(!r.read_bool("n", &b));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
  cr_assert(!r.read_bool("absent", &b));
  cr_assert_eq(err.code, ErrorCode::kMissingField);
  b = true;
  cr_assert(r.read_optional_bool("absent", &b) && b);  // default kept
  cr_assert(!r.read_optional_bool("s", &b));
}

Test(json_header, sizes, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  uint64_t v = 0;
  cr_assert(r.read_size("n", &v) && v == 42);
  cr_assert(r.read_size("z", &v) && v == 0);
  cr_assert(r.read_size("big", &v) && v == protocol::kMaxJsonInteger);
  cr_assert(!r.read_size("neg", &v));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert_str_eq(err.message.c_str(),
                   "field \"neg\": expected an integer from 0 to 9007199254740992, got -7");
  cr_assert(!r.read_size("frac", &v));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert(!r.read_size("s", &v));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
  v = 99;
  cr_assert(r.read_optional_size("absent", &v) && v == 99);
  cr_assert(!r.read_optional_size("frac", &v));

  // Above INT_MAX, where cJSON's valueint saturates.
  JsonPtr large = parse(R"({"a":4294967296,"b":2147483648})");
  FieldReader lr(*large, &err);
  cr_assert(lr.read_size("a", &v) && v == 4294967296u);
  cr_assert(lr.read_size("b", &v) && v == 2147483648u);
}

Test(json_header, signed_integers, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  int64_t v = 0;
  cr_assert(r.read_int("neg", &v) && v == -7);
  cr_assert(r.read_int("big", &v) && v == (int64_t{1} << 53));
  cr_assert(!r.read_int("frac", &v));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert(!r.read_int("arr", &v));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
  cr_assert_str_eq(err.message.c_str(), "field \"arr\": expected a number, got array");
}

Test(json_header, string_arrays, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  std::vector<std::string> v = {"stale"};
  cr_assert(r.read_string_array("arr", 2, &v));
  cr_assert_eq(v.size(), 2u);
  cr_assert_str_eq(v[1].c_str(), "bc");
  cr_assert(!r.read_string_array("arr", 1, &v));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert_str_eq(err.message.c_str(), "field \"arr[1]\": 2 bytes exceeds the limit of 1");
  cr_assert(!r.read_string_array("mixed", 10, &v));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
  cr_assert_str_eq(err.message.c_str(), "field \"mixed[1]\": expected a string, got number");
  cr_assert(!r.read_string_array("obj", 10, &v));
  cr_assert_eq(err.code, ErrorCode::kWrongType);
}

Test(json_header, hex_and_prefix, .timeout = kTimeout) {
  JsonPtr json = parse(kDoc);
  ProtocolError err;
  FieldReader r(*json, &err);
  uint8_t out[4] = {};
  cr_assert(r.read_hex("hex", out, 4));
  cr_assert(out[0] == 0x00 && out[1] == 0xff && out[2] == 0x10 && out[3] == 0xab);
  cr_assert(!r.read_hex("hex", out, 3));
  cr_assert_eq(err.code, ErrorCode::kBadSize);
  cr_assert(!r.read_hex("n", out, 4));
  cr_assert_eq(err.code, ErrorCode::kWrongType);

  FieldReader nested(*cJSON_GetObjectItemCaseSensitive(json.get(), "obj"), &err, "obj");
  std::string s;
  cr_assert(nested.read_string("k", 1, &s) && s == "v");
  cr_assert(!nested.read_string("missing", 1, &s));
  cr_assert_str_eq(err.message.c_str(), "field \"obj.missing\" is missing");
  cr_assert(!nested.fail(ErrorCode::kBadSize, "k", ": custom rule"));
  cr_assert_str_eq(err.message.c_str(), "field \"obj.k\": custom rule");
}

Test(json_header, find_is_case_sensitive, .timeout = kTimeout) {
  JsonPtr json = parse(R"({"Path":1,"path":2})");
  ProtocolError err;
  FieldReader r(*json, &err);
  cr_assert_eq(r.find("path")->valuedouble, 2.0);
  cr_assert_eq(r.find("Path")->valuedouble, 1.0);
  cr_assert_null(r.find("PATH"));
}

Test(json_header, quoted_is_safe_ascii, .timeout = kTimeout) {
  const std::string q = protocol::quoted(std::string("a\"b\\c\n\xc3\xa9", 8));
  cr_assert_str_eq(q.c_str(), "\"a\\x22b\\x5cc\\x0a\\xc3\\xa9\"");
  const std::string longer = protocol::quoted(std::string(100, 'k'));
  cr_assert_eq(longer.size(), 64u + 2 + 3);
}

// The number's text decides, not the double strtod rounds it to: reactor-protocol(7)
// says "a whole number within range". (A hostile run had 2^53 + 1 accepted as 2^53, and
// 1.0000000000000000001 and 1e-400 served as offsets 1 and 0.)
Test(json_header, integers_are_judged_from_their_text, .timeout = kTimeout) {
  struct Case {
    const char* number;
    bool ok;
    uint64_t value;
  };
  const Case sizes[] = {
      {"9007199254740992", true, uint64_t{1} << 53},
      {"9007199254740993", false, 0},
      {"18446744073709551616", false, 0},
      {"123456789012345678", false, 0},
      {"1.0000000000000000001", false, 0},
      {"0.99999999999999999999", false, 0},
      {"1e-400", false, 0},
      {"1e400", false, 0},
      {"0e400", true, 0},
      {"1e3", true, 1000},
      {"2.5e1", true, 25},
      {"1.0", true, 1},
      {"100e-2", true, 1},
      {"-0", true, 0},
      {"-0.0e5", true, 0},
      {"9.007199254740992e15", true, uint64_t{1} << 53},
      {"9.007199254740993e15", false, 0},
      {"1e99999999999999999999", false, 0},
  };
  for (const Case& c : sizes) {
    std::string doc = std::string("{\"n\":") + c.number + "}";
    JsonPtr json = parse(doc);
    ProtocolError err;
    FieldReader r(*json, &err);
    uint64_t v = 77;
    bool ok = r.read_size("n", &v);
    cr_assert_eq(ok, c.ok, "size %s: %s", c.number, err.message.c_str());
    if (ok) cr_assert_eq(v, c.value, "size %s read as %llu", c.number, static_cast<unsigned long long>(v));
    if (!ok) cr_assert_eq(err.code, ErrorCode::kBadSize, "%s", c.number);
  }
  const struct {
    const char* number;
    bool ok;
    int64_t value;
  } signed_cases[] = {
      {"-9007199254740992", true, -(int64_t{1} << 53)},
      {"-9007199254740993", false, 0},
      {"-1.5", false, 0},
      {"-1e1", true, -10},
      {"-12345678901234567", false, 0},
  };
  for (const auto& c : signed_cases) {
    std::string doc = std::string("{\"n\":") + c.number + "}";
    JsonPtr json = parse(doc);
    ProtocolError err;
    FieldReader r(*json, &err);
    int64_t v = 77;
    bool ok = r.read_int("n", &v);
    cr_assert_eq(ok, c.ok, "int %s: %s", c.number, err.message.c_str());
    if (ok) cr_assert_eq(v, c.value, "int %s read as %lld", c.number, static_cast<long long>(v));
  }
  // Many numbers, some plain and some that need their text, in nested places: each
  // node gets its own text.
  JsonPtr mixed = parse(R"({"a":[1,2.5,{"b":3e0}],"c":9007199254740993,"d":7,"e":1.0})");
  ProtocolError err;
  FieldReader r(*mixed, &err);
  uint64_t v = 0;
  cr_assert(!r.read_size("c", &v));
  cr_assert(r.read_size("d", &v) && v == 7);
  cr_assert(r.read_size("e", &v) && v == 1);
  const cJSON* b = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mixed.get(), "a"), 2), "b");
  FieldReader rb(*cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mixed.get(), "a"), 2), &err);
  cr_assert(b != nullptr && rb.read_size("b", &v) && v == 3);
}
