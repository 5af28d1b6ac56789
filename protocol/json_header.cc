#include "protocol/json_header.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "protocol/hex.h"
#include "protocol/utf8.h"

namespace protocol {
namespace {

ProtocolError make_error(ErrorCode code, std::string message) {
  return ProtocolError{code, std::move(message)};
}

std::string at(size_t offset) { return " at header byte " + std::to_string(offset); }

bool is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_number_char(unsigned char c) {
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// RFC 8259 number grammar over exactly s[0..n). cJSON hands numbers to strtod, which
// also takes "01", "1.", "-01e" prefixes and the like; those are not JSON.
bool valid_number(const unsigned char* s, size_t n) {
  size_t k = 0;
  if (k < n && s[k] == '-') ++k;
  if (k >= n) return false;
  if (s[k] == '0') {
    ++k;
  } else if (s[k] >= '1' && s[k] <= '9') {
    while (k < n && is_digit(s[k])) ++k;
  } else {
    return false;
  }
  if (k < n && s[k] == '.') {
    const size_t start = ++k;
    while (k < n && is_digit(s[k])) ++k;
    if (k == start) return false;
  }
  if (k < n && (s[k] == 'e' || s[k] == 'E')) {
    ++k;
    if (k < n && (s[k] == '+' || s[k] == '-')) ++k;
    const size_t start = k;
    while (k < n && is_digit(s[k])) ++k;
    if (k == start) return false;
  }
  return k == n;
}

std::string control_char_message(unsigned char c, const char* where, size_t offset) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "raw control character 0x%02x %s", c, where);
  return buf + at(offset);
}

// A number token that keep_number_texts must attach to its node: its place among all the
// header's numbers, and its text.
struct NumberText {
  size_t index;
  std::string text;
};

// One pass over the raw bytes, before cJSON sees them. Reports the first problem in
// byte order. Structure (brackets matching, commas, literals) is left to cJSON; this
// pass only has to make cJSON's input safe and its leniencies unreachable.
// A number token whose double value may not be exactly its text: a fraction, an
// exponent, or more digits than a double holds exactly. Only these need their text kept
// (see keep_number_texts): "1.0000000000000000001" is not the integer 1, and
// 9007199254740993 is not 2^53, whatever strtod rounds them to.
bool needs_text(const unsigned char* s, size_t n) {
  size_t digits = 0;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '.' || s[i] == 'e' || s[i] == 'E') return true;
    if (is_digit(s[i])) ++digits;
  }
  return digits > 15;
}

bool prescan(const unsigned char* p, size_t len, ProtocolError* err, std::vector<NumberText>* texts) {
  size_t numbers = 0;
  int depth = 0;
  bool in_string = false;
  size_t i = 0;
  while (i < len) {
    const unsigned char c = p[i];
    if (c >= 0x80) {
      const size_t n = utf8_sequence_length(p + i, len - i);
      if (n == 0) {
        *err = make_error(ErrorCode::kBadUtf8, "invalid UTF-8" + at(i));
        return false;
      }
      if (!in_string) {
        // Includes a leading byte-order mark, which cJSON would silently skip.
        *err = make_error(ErrorCode::kBadJson, "non-ASCII character outside a string" + at(i));
        return false;
      }
      i += n;
      continue;
    }
    if (in_string) {
      if (c == '"') {
        in_string = false;
        ++i;
      } else if (c == '\\') {
        // Escapes are consumed whole, so the second backslash of "\\u0000" is never
        // mistaken for the start of a \u escape.
        if (i + 1 >= len) {
          *err = make_error(ErrorCode::kBadJson, "header ends inside an escape sequence" + at(i));
          return false;
        }
        const unsigned char e = p[i + 1];
        if (e == 'u') {
          // cJSON decodes a malformed \u escape as U+0000 instead of failing.
          if (i + 6 > len || !is_hex_digit(p[i + 2]) || !is_hex_digit(p[i + 3]) ||
              !is_hex_digit(p[i + 4]) || !is_hex_digit(p[i + 5])) {
            *err = make_error(ErrorCode::kBadJson, "\\u not followed by 4 hex digits" + at(i));
            return false;
          }
          if (std::memcmp(p + i + 2, "0000", 4) == 0) {
            *err = make_error(ErrorCode::kNulInString, "\\u0000 in a string" + at(i));
            return false;
          }
          i += 6;
        } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                   e == 'r' || e == 't') {
          i += 2;
        } else {
          *err = make_error(ErrorCode::kBadJson, "invalid escape sequence" + at(i));
          return false;
        }
      } else if (c < 0x20) {
        *err = make_error(ErrorCode::kBadJson, control_char_message(c, "inside a string", i));
        return false;
      } else {
        ++i;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxDepth) {
        *err = make_error(ErrorCode::kTooDeep, "nesting deeper than " +
                                                   std::to_string(kMaxDepth) + " levels" + at(i));
        return false;
      }
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    } else if (c == '-' || is_digit(c)) {
      size_t end = i;
      while (end < len && is_number_char(p[end])) ++end;
      if (!valid_number(p + i, end - i)) {
        *err = make_error(ErrorCode::kBadJson,
                          "malformed number " + quoted(std::string_view(
                                                    reinterpret_cast<const char*>(p + i), end - i)) +
                              at(i));
        return false;
      }
      if (needs_text(p + i, end - i))
        texts->push_back(NumberText{numbers, std::string(reinterpret_cast<const char*>(p + i), end - i)});
      ++numbers;
      i = end;
      continue;
    } else if (c < 0x20 && !is_json_space(c)) {
      *err = make_error(ErrorCode::kBadJson, control_char_message(c, "outside a string", i));
      return false;
    }
    ++i;
  }
  // An unterminated string or unbalanced brackets are cJSON's to report.
  return true;
}

// Gives the number nodes listed in `texts` (by their place among all numbers, in
// document order, which is cJSON's order of children too) their own text in valuestring,
// where the field readers judge it exactly. cJSON_Delete frees valuestring whatever the
// type, so the copies go with the tree. Returns the next number's index.
size_t keep_number_texts(cJSON* item, const std::vector<NumberText>& texts, size_t* next_text, size_t index) {
  if (cJSON_IsNumber(item)) {
    if (*next_text < texts.size() && texts[*next_text].index == index) {
      const std::string& text = texts[(*next_text)++].text;
      char* copy = static_cast<char*>(cJSON_malloc(text.size() + 1));
      if (copy == nullptr) throw std::bad_alloc();
      std::memcpy(copy, text.c_str(), text.size() + 1);
      item->valuestring = copy;
    }
    return index + 1;
  }
  for (cJSON* child = item->child; child != nullptr; child = child->next)
    index = keep_number_texts(child, texts, next_text, index);
  return index;
}

// The exact value of a JSON number's text as an integer of magnitude at most 2^53.
enum class Exact { kInteger, kNotInteger, kOutOfRange };
Exact exact_integer(const char* text, bool* negative, uint64_t* magnitude) {
  const char* p = text;
  *negative = *p == '-';
  if (*negative) ++p;
  std::string digits;  // integer and fraction digits, the point after `point` of them
  long long point = 0;
  for (; is_digit(static_cast<unsigned char>(*p)); ++p, ++point) digits += *p;
  if (*p == '.') {
    for (++p; is_digit(static_cast<unsigned char>(*p)); ++p) digits += *p;
  }
  if (*p == 'e' || *p == 'E') {
    ++p;
    bool minus = *p == '-';
    if (*p == '-' || *p == '+') ++p;
    long long exponent = 0;
    for (; is_digit(static_cast<unsigned char>(*p)); ++p)
      if (exponent < 1000000) exponent = exponent * 10 + (*p - '0');  // saturates: far past any digit
    point += minus ? -exponent : exponent;
  }
  // Integral: no digit other than 0 after the point.
  for (long long i = std::max(point, 0LL); i < static_cast<long long>(digits.size()); ++i)
    if (digits[static_cast<size_t>(i)] != '0') return Exact::kNotInteger;
  // The integer part, without leading zeros, then padded by the exponent.
  std::string whole = point <= 0 ? std::string() : digits.substr(0, std::min<size_t>(digits.size(), point));
  whole.erase(0, std::min(whole.find_first_not_of('0'), whole.size()));
  if (whole.empty()) {
    *magnitude = 0;
    return Exact::kInteger;
  }
  if (point > static_cast<long long>(digits.size())) whole.append(static_cast<size_t>(point) - digits.size(), '0');
  const std::string kLimit = std::to_string(kMaxJsonInteger);
  if (whole.size() > kLimit.size() || (whole.size() == kLimit.size() && whole > kLimit)) return Exact::kOutOfRange;
  *magnitude = std::stoull(whole);
  return Exact::kInteger;
}

// Objects this small are cheaper to check pairwise than to hash.
constexpr size_t kPairwiseKeyLimit = 16;

bool check_duplicate_keys(const cJSON& item, ProtocolError* err) {
  if (cJSON_IsObject(&item)) {
    size_t count = 0;
    for (const cJSON* child = item.child; child; child = child->next) ++count;
    if (count <= kPairwiseKeyLimit) {
      for (const cJSON* a = item.child; a; a = a->next) {
        for (const cJSON* b = a->next; b; b = b->next) {
          if (std::strcmp(a->string, b->string) == 0) {
            *err = make_error(ErrorCode::kDuplicateKey, "duplicate key " + quoted(a->string));
            return false;
          }
        }
      }
    } else {
      // Keys contain no NUL (the pre-pass rejected \u0000), so C-string views are exact.
      std::unordered_set<std::string_view> seen;
      seen.reserve(count);
      for (const cJSON* child = item.child; child; child = child->next) {
        if (!seen.insert(child->string).second) {
          *err = make_error(ErrorCode::kDuplicateKey, "duplicate key " + quoted(child->string));
          return false;
        }
      }
    }
  }
  if (cJSON_IsObject(&item) || cJSON_IsArray(&item)) {
    // Recursion depth is bounded by kMaxDepth, enforced by the pre-pass.
    for (const cJSON* child = item.child; child; child = child->next) {
      if (!check_duplicate_keys(*child, err)) return false;
    }
  }
  return true;
}

std::string format_double(double d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

}  // namespace

const char* json_type_name(const cJSON& item) {
  if (cJSON_IsString(&item)) return "string";
  if (cJSON_IsNumber(&item)) return "number";
  if (cJSON_IsBool(&item)) return "boolean";
  if (cJSON_IsNull(&item)) return "null";
  if (cJSON_IsArray(&item)) return "array";
  if (cJSON_IsObject(&item)) return "object";
  return "invalid";
}

JsonPtr parse_header(const char* data, size_t len, ProtocolError* err) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  if (len == 0) {
    *err = make_error(ErrorCode::kEmptyHeader, "empty header");
    return nullptr;
  }
  std::vector<NumberText> number_texts;  // usually none: plain integers need no text
  if (!prescan(bytes, len, err, &number_texts)) return nullptr;

  const char* end = nullptr;
  JsonPtr root(cJSON_ParseWithLengthOpts(data, len, &end, false));
  if (!root) {
    const size_t offset = end && end >= data ? static_cast<size_t>(end - data) : 0;
    *err = make_error(ErrorCode::kBadJson, "invalid JSON" + at(offset));
    return nullptr;
  }
  // cJSON stops after the first value and ignores the rest, so `{} {}` would pass.
  for (size_t i = static_cast<size_t>(end - data); i < len; ++i) {
    if (!is_json_space(bytes[i])) {
      *err = make_error(ErrorCode::kBadJson, "unexpected data after the JSON value" + at(i));
      return nullptr;
    }
  }
  if (!cJSON_IsObject(root.get())) {
    *err = make_error(ErrorCode::kNotObject,
                      std::string("header is a JSON ") + json_type_name(*root) + ", not an object");
    return nullptr;
  }
  if (!check_duplicate_keys(*root, err)) return nullptr;
  if (!number_texts.empty()) {
    size_t next = 0;
    keep_number_texts(root.get(), number_texts, &next, 0);
  }
  return root;
}

FieldReader::FieldReader(const cJSON& object, ProtocolError* err, std::string where)
    : object_(object), err_(err), where_(std::move(where)) {}

const cJSON* FieldReader::find(const char* name) const {
  return cJSON_GetObjectItemCaseSensitive(&object_, name);
}

bool FieldReader::fail(ErrorCode code, const char* name, const std::string& what) {
  std::string field = where_.empty() ? std::string(name) : where_ + "." + name;
  *err_ = make_error(code, "field \"" + field + "\"" + what);
  return false;
}

bool FieldReader::wrong_type(const char* name, const char* expected, const cJSON& item) {
  return fail(ErrorCode::kWrongType, name,
              std::string(": expected ") + expected + ", got " + json_type_name(item));
}

const cJSON* FieldReader::require(const char* name) {
  const cJSON* item = find(name);
  if (!item) fail(ErrorCode::kMissingField, name, " is missing");
  return item;
}

bool FieldReader::read_string(const char* name, size_t max_bytes, std::string* out) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsString(item)) return wrong_type(name, "a string", *item);
  const size_t n = std::strlen(item->valuestring);
  if (n > max_bytes) {
    return fail(ErrorCode::kBadSize, name,
                ": " + std::to_string(n) + " bytes exceeds the limit of " +
                    std::to_string(max_bytes));
  }
  out->assign(item->valuestring, n);
  return true;
}

bool FieldReader::read_optional_string(const char* name, size_t max_bytes,
                                       std::optional<std::string>* out) {
  out->reset();
  if (!find(name)) return true;
  std::string value;
  if (!read_string(name, max_bytes, &value)) return false;
  *out = std::move(value);
  return true;
}

bool FieldReader::read_bool(const char* name, bool* out) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsBool(item)) return wrong_type(name, "a boolean", *item);
  *out = cJSON_IsTrue(item);
  return true;
}

bool FieldReader::read_optional_bool(const char* name, bool* out) {
  return !find(name) || read_bool(name, out);
}

bool FieldReader::read_size(const char* name, uint64_t* out) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsNumber(item)) return wrong_type(name, "a number", *item);
  if (item->valuestring != nullptr) {  // judged from its text: see keep_number_texts
    bool negative = false;
    uint64_t magnitude = 0;
    Exact exact = exact_integer(item->valuestring, &negative, &magnitude);
    if (exact != Exact::kInteger || (negative && magnitude != 0)) {
      return fail(ErrorCode::kBadSize, name,
                  ": expected an integer from 0 to " + std::to_string(kMaxJsonInteger) + ", got " +
                      quoted(item->valuestring));
    }
    *out = magnitude;
    return true;
  }
  const double d = item->valuedouble;
  // Comparing against 2^53 as a double is exact: 2^53 is representable.
  if (!std::isfinite(d) || d < 0 || d > static_cast<double>(kMaxJsonInteger) ||
      d != std::floor(d)) {
    return fail(ErrorCode::kBadSize, name,
                ": expected an integer from 0 to " + std::to_string(kMaxJsonInteger) +
                    ", got " + format_double(d));
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool FieldReader::read_optional_size(const char* name, uint64_t* out) {
  return !find(name) || read_size(name, out);
}

bool FieldReader::read_int(const char* name, int64_t* out) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsNumber(item)) return wrong_type(name, "a number", *item);
  if (item->valuestring != nullptr) {  // judged from its text: see keep_number_texts
    bool negative = false;
    uint64_t magnitude = 0;
    if (exact_integer(item->valuestring, &negative, &magnitude) != Exact::kInteger) {
      return fail(ErrorCode::kBadSize, name,
                  ": expected an integer from -" + std::to_string(kMaxJsonInteger) + " to " +
                      std::to_string(kMaxJsonInteger) + ", got " + quoted(item->valuestring));
    }
    *out = negative ? -static_cast<int64_t>(magnitude) : static_cast<int64_t>(magnitude);
    return true;
  }
  const double d = item->valuedouble;
  const auto limit = static_cast<double>(kMaxJsonInteger);
  if (!std::isfinite(d) || d < -limit || d > limit || d != std::floor(d)) {
    return fail(ErrorCode::kBadSize, name,
                ": expected an integer from -" + std::to_string(kMaxJsonInteger) + " to " +
                    std::to_string(kMaxJsonInteger) + ", got " + format_double(d));
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool FieldReader::read_string_array(const char* name, size_t max_item_bytes,
                                    std::vector<std::string>* out) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsArray(item)) return wrong_type(name, "an array of strings", *item);
  out->clear();
  size_t index = 0;
  for (const cJSON* element = item->child; element; element = element->next, ++index) {
    auto element_name = [&] { return std::string(name) + "[" + std::to_string(index) + "]"; };
    if (!cJSON_IsString(element)) return wrong_type(element_name().c_str(), "a string", *element);
    const size_t n = std::strlen(element->valuestring);
    if (n > max_item_bytes) {
      return fail(ErrorCode::kBadSize, element_name().c_str(),
                  ": " + std::to_string(n) + " bytes exceeds the limit of " +
                      std::to_string(max_item_bytes));
    }
    out->emplace_back(element->valuestring, n);
  }
  return true;
}

bool FieldReader::read_hex(const char* name, uint8_t* out, size_t out_len) {
  const cJSON* item = require(name);
  if (!item) return false;
  if (!cJSON_IsString(item)) return wrong_type(name, "a hex string", *item);
  std::string why;
  if (!from_hex(item->valuestring, out, out_len, &why)) {
    return fail(ErrorCode::kBadSize, name, ": " + why);
  }
  return true;
}

}  // namespace protocol
