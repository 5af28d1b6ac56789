#include "protocol/error_code.h"

#include <cstdio>
#include <iterator>

namespace protocol {
namespace {

struct CodeName {
  ErrorCode code;
  const char* name;
};

// Indexed by the enum's value; the static_assert below keeps the two in step.
constexpr CodeName kCodeNames[] = {
    {ErrorCode::kEmptyHeader, "empty_header"},
    {ErrorCode::kHeaderTooLarge, "header_too_large"},
    {ErrorCode::kBadUtf8, "bad_utf8"},
    {ErrorCode::kBadJson, "bad_json"},
    {ErrorCode::kNotObject, "not_object"},
    {ErrorCode::kTooDeep, "too_deep"},
    {ErrorCode::kDuplicateKey, "duplicate_key"},
    {ErrorCode::kNulInString, "nul_in_string"},
    {ErrorCode::kMissingField, "missing_field"},
    {ErrorCode::kWrongType, "wrong_type"},
    {ErrorCode::kBadSize, "bad_size"},
    {ErrorCode::kUnknownType, "unknown_type"},
    {ErrorCode::kUnexpectedMessage, "unexpected_message"},
    {ErrorCode::kUnsupportedVersion, "unsupported_version"},
    {ErrorCode::kAuthFailed, "auth_failed"},
    {ErrorCode::kBusy, "busy"},
    {ErrorCode::kTimeout, "timeout"},
    {ErrorCode::kShuttingDown, "shutting_down"},
    {ErrorCode::kTlsRequired, "tls_required"},
    {ErrorCode::kInternal, "internal"},
    {ErrorCode::kBadPath, "bad_path"},
    {ErrorCode::kNotFound, "not_found"},
    {ErrorCode::kForbidden, "forbidden"},
    {ErrorCode::kIsDirectory, "is_directory"},
    {ErrorCode::kNotDirectory, "not_directory"},
    {ErrorCode::kNotRegular, "not_regular"},
    {ErrorCode::kBadOffset, "bad_offset"},
    {ErrorCode::kFileChanged, "file_changed"},
    {ErrorCode::kIoError, "io_error"},
    {ErrorCode::kReadOnly, "read_only"},
    {ErrorCode::kExists, "exists"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kNoSpace, "no_space"},
    {ErrorCode::kDigestMismatch, "digest_mismatch"},
    {ErrorCode::kInProgress, "in_progress"},
};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < std::size(kCodeNames); ++i) {
    if (static_cast<size_t>(kCodeNames[i].code) != i) return false;
  }
  return true;
}
static_assert(table_in_enum_order(), "kCodeNames must list ErrorCode in declaration order");
static_assert(std::size(kCodeNames) == static_cast<size_t>(kLastErrorCode) + 1,
              "kCodeNames must cover every ErrorCode");

constexpr size_t kQuotedMaxInput = 64;

}  // namespace

const char* to_string(ErrorCode code) {
  const auto i = static_cast<size_t>(code);
  return i < std::size(kCodeNames) ? kCodeNames[i].name : "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view name) {
  for (const CodeName& entry : kCodeNames) {
    if (name == entry.name) return entry.code;
  }
  return std::nullopt;
}

bool is_fatal(ErrorCode code) {
  // The fatal codes are declared first; kInternal is the last of them.
  return static_cast<int>(code) <= static_cast<int>(ErrorCode::kInternal);
}

bool refuse(ProtocolError* err, ErrorCode code, std::string message) {
  err->code = code;
  err->message = std::move(message);
  return false;
}

std::string quote_path(std::string_view path) { return "\"" + std::string(path) + "\""; }

std::string quoted(std::string_view text) {
  std::string out = "\"";
  const size_t n = text.size() < kQuotedMaxInput ? text.size() : kQuotedMaxInput;
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  out += '"';
  if (text.size() > n) out += "...";
  return out;
}

}  // namespace protocol
