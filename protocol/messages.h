#pragma once
// Typed messages of protocol versions 1 and 2 and their one place of validation.
//
// parse_message() turns a header already accepted by parse_header() (frame.h's decoder
// does that) into one of the structs below, checking every field rule of the contract;
// encode() is its inverse. Code above this layer handles only typed values and never
// touches cJSON.

#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "protocol/content_hash.h"
#include "protocol/error_code.h"
#include "protocol/json_header.h"
#include "protocol/types.h"

namespace protocol {

// The highest protocol version this code speaks, and the version that added put,
// digests, ranged gets and the chunk tree. Both sides use the smaller of the two
// "proto" values (auth_ok repeats it).
inline constexpr uint64_t kProtocolVersion = 2;
inline constexpr uint64_t kMinProtocolVersion = 1;
inline constexpr uint64_t kPutVersion = 2;
inline constexpr uint64_t kTreeVersion = 2;
// The most chunk digests one digests_ok carries (2 MiB of body, 64 GiB of file).
inline constexpr uint64_t kMaxDigestsPerReply = 65536;

// String limits in bytes. Path, name, token and text come from the contract; the others
// are this implementation's, generous enough that no sane peer reaches them.
inline constexpr size_t kMaxPathLen = 4096;
inline constexpr size_t kMaxNameLen = 255;          // one directory entry name (>= 1 byte)
inline constexpr size_t kMaxTokenLen = 256;         // ping/pong token
inline constexpr size_t kMaxTextLen = 4096;         // msg text
inline constexpr size_t kMaxSoftwareLen = 256;      // hello "server", auth "client"
inline constexpr size_t kMaxFeatureLen = 255;       // one feature name
inline constexpr size_t kMaxKindLen = 64;           // stat_ok/entries "kind"
inline constexpr size_t kMaxErrorMessageLen = 8192; // error "message"; encode() truncates
inline constexpr uint32_t kMaxMode = 07777;         // permission bits only

enum class EntryKind { kFile, kDir, kOther, kLink };
const char* to_string(EntryKind kind);  // "file", "dir", "other", "link"
// Unknown names map to kOther: a newer server may distinguish more kinds, and to this
// client anything that is neither a file nor a directory is "other".
EntryKind entry_kind_from_string(std::string_view name);

// Handshake.
struct Hello {  // server -> client, first frame
  uint64_t proto = kProtocolVersion;
  std::string server;                 // e.g. "reactord/0.1.0"
  std::vector<std::string> features;  // unknown names are kept; the caller intersects
  Nonce nonce{};
};
struct Auth {  // client -> server
  uint64_t proto = kProtocolVersion;
  std::string client;
  std::vector<std::string> features;
  Nonce nonce{};
  Mac mac{};
};
struct AuthOk {  // server -> client
  uint64_t proto = kProtocolVersion;
  Mac mac{};
};

// Requests, client -> server.
struct GetRequest {
  std::string path;
  uint64_t offset = 0;  // optional on the wire; always sent by encode()
  std::optional<uint64_t> length;  // version 2: at most this many bytes from offset
};
struct StatRequest {
  std::string path;
};
struct ListRequest {
  std::string path;
  bool recursive = false;  // version 2, feature "tree"
  bool links = false;      // version 2, feature "links": symbolic links as kind link, with their target
};
struct PingRequest {
  std::optional<std::string> token;
};
struct MsgRequest {
  std::string text;
};
struct PutRequest {  // version 2
  std::string path;
  uint64_t size = 0;
  bool force = false;
  std::optional<uint32_t> mode;  // absent: the server's default
  std::optional<int64_t> mtime;  // absent: the time it is stored
  bool resume = false;            // continue a kept upload of this file
  Digest root{};                  // with resume: the file's chunk-tree root
};
struct Data {  // client -> server, after put_ready: the body, `length` bytes
  uint64_t length = 0;
  std::optional<uint64_t> offset;  // the first byte sent; absent: put_ready's offset
};

// Replies, server -> client.
struct FileHeader {  // "file": followed by a body of body_length() bytes
  std::string path;
  uint64_t size = 0;
  uint64_t offset = 0;  // invariant: offset <= size
  int64_t mtime = 0;
  uint32_t mode = 0;
  // A ranged get's body, when shorter than the rest of the file; invariant: at most
  // size - offset. On the wire it is the "body" field.
  std::optional<uint64_t> length;
  uint64_t body_length() const { return length ? *length : size - offset; }
};
struct End {  // trailer after a file body, either direction
  std::optional<Digest> sha256;  // version 1: the whole file's SHA-256
  std::optional<Digest> root;    // version 2: its chunk-tree root
  static End of(DigestKind kind, const Digest& digest);
  // The digest of that kind, or nullptr if the peer did not send it.
  const Digest* digest(DigestKind kind) const;
};
struct StatReply {  // "stat_ok"
  std::string path;
  EntryKind kind = EntryKind::kOther;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t mode = 0;
  std::optional<std::string> target = std::nullopt;  // kind link only: the link's contents
};
struct Entry {  // one element of "entries"
  std::string name;
  EntryKind kind = EntryKind::kOther;
  uint64_t size = 0;
  int64_t mtime = 0;
  std::optional<uint32_t> mode;  // reactord sends it in every listing; older servers in recursive ones only
  std::optional<std::string> target = std::nullopt;  // kind link only: the link's contents
};
struct Entries {
  std::vector<Entry> entries;
  std::optional<std::string> dir;  // recursive listings: the directory, relative to the listed one
};
struct ListEnd {
  uint64_t count = 0;
  uint64_t skipped = 0;
  uint64_t unreadable = 0;  // recursive listings: directories not descended into
  uint64_t vanished = 0;    // names gone between readdir and stat
};
struct Pong {
  std::optional<std::string> token;
};
struct MsgOk {
  uint64_t bytes = 0;
};
struct PutReady {  // "put_ready": the server holds `offset` bytes; `count` digests follow
  std::string path;
  uint64_t offset = 0;
  uint64_t count = 0;
  uint64_t body_length() const { return count * sizeof(Digest); }
};
struct PutDone {  // "put_done": stored
  std::string path;
  uint64_t size = 0;
  Digest root{};
};
struct DigestsRequest {  // "digests", version 2
  std::string path;
  uint64_t from = 0;             // the first chunk wanted
  std::optional<uint64_t> count;  // absent: all from `from`
};
struct DigestsReply {  // "digests_ok": followed by 32 * count bytes of digests
  std::string path;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint64_t chunk = kChunkSize;
  Digest root{};
  uint64_t from = 0;
  uint64_t count = 0;
  uint64_t body_length() const { return count * sizeof(Digest); }
};
struct MkdirRequest {  // "mkdir", version 2
  std::string path;
  std::optional<uint32_t> mode;  // absent: 0755
  std::optional<int64_t> mtime = std::nullopt;  // absent: left as it is
};
struct MkdirOk {  // "mkdir_ok"
  std::string path;
  bool created = false;  // false: it was there already
};
struct SymlinkRequest {  // "symlink", version 2, feature "links"
  std::string path;
  std::string target;  // relative; must stay beneath the served root
  bool force = false;  // replace a file or link already there
};
struct SymlinkOk {  // "symlink_ok"
  std::string path;
  bool replaced = false;   // something else was there
  bool unchanged = false;  // the same link was there already
};
// Either direction. A code this version does not know (from a newer peer) is parsed as
// kInternal, which is fatal, with the original name kept at the front of the message:
// `unknown error code "quota_exceeded": <original message>`. Treating the unknown as
// fatal is the safe reading: the receiver cannot know the connection is still usable.
struct ErrorMessage {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

using Message = std::variant<Hello, Auth, AuthOk, GetRequest, StatRequest, ListRequest, PingRequest,
                             MsgRequest, FileHeader, End, StatReply, Entries, ListEnd, Pong, MsgOk,
                             ErrorMessage, PutRequest, PutReady, Data, PutDone, DigestsRequest, DigestsReply,
                             MkdirRequest, MkdirOk, SymlinkRequest, SymlinkOk>;

// The Message alternatives by name, in variant order, for dispatch tables: a handler
// table row names the type it handles instead of testing std::get_if in a chain.
enum class MessageType : uint8_t {
  kHello, kAuth, kAuthOk, kGet, kStat, kList, kPing, kMsg,
  kFile, kEnd, kStatOk, kEntries, kListEnd, kPong, kMsgOk, kError,
  kPut, kPutReady, kData, kPutDone, kDigests, kDigestsOk, kMkdir, kMkdirOk, kSymlink, kSymlinkOk,
};
inline constexpr size_t kMessageTypes = 26;
static_assert(std::variant_size_v<Message> == kMessageTypes, "MessageType must name every Message alternative");
static_assert(std::is_same_v<std::variant_alternative_t<static_cast<size_t>(MessageType::kGet), Message>, GetRequest> &&
                  std::is_same_v<std::variant_alternative_t<static_cast<size_t>(MessageType::kError), Message>,
                                 ErrorMessage> &&
                  std::is_same_v<std::variant_alternative_t<static_cast<size_t>(MessageType::kDigestsOk), Message>,
                                 DigestsReply>,
              "MessageType follows the variant's order");
inline MessageType type_of(const Message& message) { return static_cast<MessageType>(message.index()); }

// The wire "type" of a message: "hello", "get", "stat_ok", ...
const char* type_name(const Message& message);
const char* type_name(MessageType type);

// Validates a header (from FrameDecoder::header()) whose frame announced body_length
// body bytes. Returns the message, or std::nullopt with *err set: missing_field,
// wrong_type, bad_size, unknown_type, or unsupported_version for "proto": 0.
// Only "file", "data", "digests_ok" and "put_ready" may have a body; a file's must be at most
// size - offset bytes (exactly that unless it answers a ranged get), a digests_ok's
// exactly 32 * count.
// Fields the contract does not define are ignored.
std::optional<Message> parse_message(const cJSON& header, uint64_t body_length, ProtocolError* err);

// The header as a cJSON object, fields in contract order, integers written exactly.
JsonPtr to_json(const Message& message);

// One whole frame: length prefix + header. For FileHeader the header carries
// "body": body_length(), for Data "body": length, for DigestsReply "body": 32 * count,
// and the caller sends that many bytes next.
// Preconditions, not checked: strings are valid UTF-8 without NUL bytes (the server
// skips directory entries that are not, see utf8.h), FileHeader.offset <= size, and
// the header fits the peer's kMaxHeaderLen (for Entries see encoded_entry_size below).
// ErrorMessage.message is the exception: encode() itself cuts it to
// kMaxErrorMessageLen bytes and replaces ill-formed UTF-8 and NUL bytes with U+FFFD,
// because an error frame must never itself be a protocol violation.
std::string encode(const Message& message);
void append_encoded(std::string& out, const Message& message);

// Exact size of the JSON header encode() would produce (the frame minus its 4-byte
// prefix). Costs an encode; fine for one-off checks.
size_t encoded_header_size(const Message& message);

// The cheap way to pack "entries" frames without encoding them repeatedly: an Entries
// header is exactly
//     kEntriesHeaderBase + sum(encoded_entry_size(e)) + (number of entries - 1)
// bytes (the last term is the commas; 0 for an empty list). A server adds entries while
// that stays <= kMaxHeaderLen and starts a new frame when the next would not fit.
inline constexpr size_t kEntriesHeaderBase = sizeof(R"({"type":"entries","entries":[]})") - 1;
size_t encoded_entry_size(const Entry& entry);
// What a recursive listing's "dir" adds to that: `,"dir":"..."`.
size_t encoded_dir_size(const std::string& dir);

bool operator==(const Hello& a, const Hello& b);
bool operator==(const Auth& a, const Auth& b);
bool operator==(const AuthOk& a, const AuthOk& b);
bool operator==(const GetRequest& a, const GetRequest& b);
bool operator==(const StatRequest& a, const StatRequest& b);
bool operator==(const ListRequest& a, const ListRequest& b);
bool operator==(const PingRequest& a, const PingRequest& b);
bool operator==(const MsgRequest& a, const MsgRequest& b);
bool operator==(const FileHeader& a, const FileHeader& b);
bool operator==(const End& a, const End& b);
bool operator==(const StatReply& a, const StatReply& b);
bool operator==(const Entry& a, const Entry& b);
bool operator==(const Entries& a, const Entries& b);
bool operator==(const ListEnd& a, const ListEnd& b);
bool operator==(const Pong& a, const Pong& b);
bool operator==(const MsgOk& a, const MsgOk& b);
bool operator==(const ErrorMessage& a, const ErrorMessage& b);
bool operator==(const PutRequest& a, const PutRequest& b);
bool operator==(const PutReady& a, const PutReady& b);
bool operator==(const Data& a, const Data& b);
bool operator==(const PutDone& a, const PutDone& b);
bool operator==(const DigestsRequest& a, const DigestsRequest& b);
bool operator==(const DigestsReply& a, const DigestsReply& b);
bool operator==(const MkdirRequest& a, const MkdirRequest& b);
bool operator==(const MkdirOk& a, const MkdirOk& b);
bool operator==(const SymlinkRequest& a, const SymlinkRequest& b);
bool operator==(const SymlinkOk& a, const SymlinkOk& b);

}  // namespace protocol
