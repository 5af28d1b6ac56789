#pragma once
// The strict frame-header parser and the typed field readers built on it.
//
// cJSON alone is too lenient for a wire format: it treats every byte <= 0x20 as
// whitespace, accepts raw control characters and invalid UTF-8 inside strings, turns
// "\u0000" (and malformed "\uZZZZ") into a NUL that silently truncates the string,
// accepts "01" and "1.", skips a leading BOM, ignores whatever follows the value, keeps
// duplicate keys, and recurses up to 1000 levels. parse_header() runs a byte-level
// pre-pass that rejects all of that (and counts nesting depth, so cJSON never recurses
// deeper than kMaxDepth), then lets cJSON build the tree, then checks the top value and
// duplicate keys. Each rule maps to the error code the contract gives it.

#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/error_code.h"

namespace protocol {

struct JsonDeleter {
  void operator()(cJSON* json) const noexcept { cJSON_Delete(json); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// Nesting limit for objects and arrays; the top-level object is level 1.
inline constexpr int kMaxDepth = 8;

// The largest integer the contract allows in a size field: every integer up to 2^53 is
// exact in a double. (2^53 + 1 reads as 2^53; see FieldReader::read_size.)
inline constexpr uint64_t kMaxJsonInteger = uint64_t{1} << 53;

// Parses data[0..len) as one frame header. Returns the top-level object, or nullptr with
// *err set to the first rule broken: bad_utf8, bad_json, too_deep, nul_in_string (found
// by the pre-pass, whichever comes first in the bytes), then bad_json from cJSON or for
// trailing bytes, not_object, duplicate_key. data need not be NUL-terminated.
JsonPtr parse_header(const char* data, size_t len, ProtocolError* err);
inline JsonPtr parse_header(std::string_view text, ProtocolError* err) {
  return parse_header(text.data(), text.size(), err);
}

// Reads typed fields out of one JSON object; messages.cc and the frame decoder use it.
// Every read_* returns false on the first problem and fills *err (given at construction)
// with missing_field, wrong_type or bad_size and a message naming the field, e.g.
// `field "offset": expected a number, got string`. Field names are prefixed with
// `where` when set, e.g. `field "entries[3].size": ...`.
// A field present with JSON null counts as the wrong type, not as absent.
class FieldReader {
 public:
  FieldReader(const cJSON& object, ProtocolError* err, std::string where = {});

  // The member named exactly `name` (case-sensitive), or nullptr.
  const cJSON* find(const char* name) const;

  // A string of at most max_bytes bytes (UTF-8 validity was checked by parse_header).
  bool read_string(const char* name, size_t max_bytes, std::string* out);
  // Leaves *out empty (nullopt) when the field is absent.
  bool read_optional_string(const char* name, size_t max_bytes, std::optional<std::string>* out);

  bool read_bool(const char* name, bool* out);
  // Leaves *out unchanged when absent, so the caller's initial value is the default.
  bool read_optional_bool(const char* name, bool* out);

  // A size, offset or count: a JSON number that is a whole number within 0..2^53, else
  // bad_size. Judged exactly from the number's text wherever a double could round it (a
  // fraction, an exponent, more than 15 digits: parse_header keeps those texts), else
  // from valuedouble, never from valueint (which cJSON saturates at INT_MAX).
  bool read_size(const char* name, uint64_t* out);
  // Leaves *out unchanged when absent.
  bool read_optional_size(const char* name, uint64_t* out);

  // A signed integer (mtime): a whole number within -2^53..2^53, judged the same way,
  // else bad_size.
  bool read_int(const char* name, int64_t* out);

  // An array whose every element is a string of at most max_item_bytes bytes.
  bool read_string_array(const char* name, size_t max_item_bytes, std::vector<std::string>* out);

  // A string of exactly 2 * out_len hex digits (either case); anything else is bad_size.
  bool read_hex(const char* name, uint8_t* out, size_t out_len);

  // Records a rule of the caller's own (e.g. "offset" above "size") in the same form:
  // *err = {code, `field "<where.>name"` + what}. Always returns false.
  bool fail(ErrorCode code, const char* name, const std::string& what);

 private:
  const cJSON* require(const char* name);
  bool wrong_type(const char* name, const char* expected, const cJSON& item);

  const cJSON& object_;
  ProtocolError* err_;
  std::string where_;
};

// The JSON type of item as a word for error messages: "string", "number", "null", ...
const char* json_type_name(const cJSON& item);

}  // namespace protocol
