#pragma once
// The error codes of the wire contract (man/reactor-protocol.7, "Errors") and the
// ProtocolError value every protocol/ function that can reject input fills in.

#include <optional>
#include <string>
#include <string_view>

namespace protocol {

enum class ErrorCode {
  // Fatal: the sender closes the connection after sending the error.
  kEmptyHeader,
  kHeaderTooLarge,
  kBadUtf8,
  kBadJson,
  kNotObject,
  kTooDeep,
  kDuplicateKey,
  kNulInString,
  kMissingField,
  kWrongType,
  kBadSize,
  kUnknownType,
  kUnexpectedMessage,
  kUnsupportedVersion,
  kAuthFailed,
  kBusy,
  kTimeout,
  kShuttingDown,
  kTlsRequired,
  kInternal,
  // Per request: the connection stays open.
  kBadPath,
  kNotFound,
  kForbidden,
  kIsDirectory,
  kNotDirectory,
  kNotRegular,
  kBadOffset,
  kFileChanged,
  kIoError,
  // Version 2: the put request.
  kReadOnly,
  kExists,
  kTooLarge,
  kNoSpace,
  kDigestMismatch,
  kInProgress,  // put with resume: another upload continues that file
};
// The last code, for loops over all of them.
inline constexpr ErrorCode kLastErrorCode = ErrorCode::kInProgress;

// The wire name, e.g. "header_too_large". Never null.
const char* to_string(ErrorCode code);

// Inverse of to_string; std::nullopt for a name this version does not know.
std::optional<ErrorCode> error_code_from_string(std::string_view name);

// True when the contract says the connection is closed after this error.
bool is_fatal(ErrorCode code);

// A rejection: the code to send back and a specific human message, e.g.
// `header length 70000 exceeds the limit of 65536`.
struct ProtocolError {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

// Fills *err and returns false, so that a refusal reads
// `return refuse(err, ErrorCode::kNotFound, "no such file: " + quote_path(path));`.
bool refuse(ProtocolError* err, ErrorCode code, std::string message);

// A request path in double quotes, whole and unescaped, for an error message: the error
// frame itself is made valid UTF-8 by encode(), and a client escapes what it shows.
std::string quote_path(std::string_view path);

// Peer-supplied text (keys, type names) quoted for an error message: printable ASCII
// is kept, every other byte becomes \xNN, and the result is cut at 64 input bytes.
// The output is plain ASCII, so it is safe to log and to send back in an error frame.
std::string quoted(std::string_view text);

}  // namespace protocol
