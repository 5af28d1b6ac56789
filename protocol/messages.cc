#include "protocol/messages.h"

#include <cstring>
#include <iterator>
#include <new>
#include <type_traits>
#include <utility>

#include "protocol/frame.h"
#include "protocol/hex.h"
#include "protocol/utf8.h"

namespace protocol {
namespace {

// Wire type names, indexed like the Message variant's alternatives.
constexpr const char* kTypeNames[] = {
    "hello", "auth",  "auth_ok", "get",     "stat",     "list", "ping",   "msg",
    "file",  "end",   "stat_ok", "entries", "list_end", "pong", "msg_ok", "error",
    "put",   "put_ready", "data",  "put_done", "digests", "digests_ok", "mkdir", "mkdir_ok",
    "symlink", "symlink_ok",
};
static_assert(std::size(kTypeNames) == std::variant_size_v<Message>,
              "kTypeNames must name every Message alternative");

// The variant index as a named constant, so the parse switch reads as type names.
template <typename T, typename Variant>
struct IndexOf;
template <typename T, typename... Ts>
struct IndexOf<T, std::variant<Ts...>> {
  static constexpr size_t value = [] {
    constexpr bool matches[] = {std::is_same_v<T, Ts>...};
    for (size_t i = 0; i < sizeof...(Ts); ++i) {
      if (matches[i]) return i;
    }
    return sizeof...(Ts);
  }();
};
template <typename T>
constexpr size_t kIndex = IndexOf<T, Message>::value;

// ---- parsing ----------------------------------------------------------------------

bool read_proto(FieldReader& r, uint64_t* proto) {
  if (!r.read_size("proto", proto)) return false;
  if (*proto == 0) {
    // "proto" is the sender's highest version; 0 means it cannot speak version 1.
    return r.fail(ErrorCode::kUnsupportedVersion, "proto",
                  ": 0; this side speaks version " + std::to_string(kProtocolVersion));
  }
  return true;
}

bool read_mode(FieldReader& r, uint32_t* mode) {
  uint64_t value = 0;
  if (!r.read_size("mode", &value)) return false;
  if (value > kMaxMode) {
    return r.fail(ErrorCode::kBadSize, "mode",
                  ": " + std::to_string(value) + " has bits outside 07777");
  }
  *mode = static_cast<uint32_t>(value);
  return true;
}

bool read_kind(FieldReader& r, EntryKind* kind) {
  std::string name;
  if (!r.read_string("kind", kMaxKindLen, &name)) return false;
  *kind = entry_kind_from_string(name);
  return true;
}

template <size_t N>
bool read_hex(FieldReader& r, const char* name, std::array<uint8_t, N>* out) {
  return r.read_hex(name, out->data(), N);
}

bool parse(FieldReader& r, Hello* m) {
  return read_proto(r, &m->proto) && r.read_string("server", kMaxSoftwareLen, &m->server) &&
         r.read_string_array("features", kMaxFeatureLen, &m->features) &&
         read_hex(r, "nonce", &m->nonce);
}

bool parse(FieldReader& r, Auth* m) {
  return read_proto(r, &m->proto) && r.read_string("client", kMaxSoftwareLen, &m->client) &&
         r.read_string_array("features", kMaxFeatureLen, &m->features) &&
         read_hex(r, "nonce", &m->nonce) && read_hex(r, "mac", &m->mac);
}

bool parse(FieldReader& r, AuthOk* m) {
  return read_proto(r, &m->proto) && read_hex(r, "mac", &m->mac);
}

bool read_optional(FieldReader& r, const char* name, std::optional<uint64_t>* out) {
  if (r.find(name) == nullptr) return true;
  uint64_t value = 0;
  if (!r.read_size(name, &value)) return false;
  *out = value;
  return true;
}

bool parse(FieldReader& r, GetRequest* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_optional_size("offset", &m->offset) &&
         read_optional(r, "length", &m->length);
}

bool parse(FieldReader& r, StatRequest* m) { return r.read_string("path", kMaxPathLen, &m->path); }
bool parse(FieldReader& r, ListRequest* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_optional_bool("recursive", &m->recursive) &&
         r.read_optional_bool("links", &m->links);
}

bool parse(FieldReader& r, PingRequest* m) {
  return r.read_optional_string("token", kMaxTokenLen, &m->token);
}

bool parse(FieldReader& r, MsgRequest* m) { return r.read_string("text", kMaxTextLen, &m->text); }

bool parse(FieldReader& r, FileHeader* m, uint64_t body_length) {
  if (!(r.read_string("path", kMaxPathLen, &m->path) && r.read_size("size", &m->size) &&
        r.read_size("offset", &m->offset) && r.read_int("mtime", &m->mtime) &&
        read_mode(r, &m->mode))) {
    return false;
  }
  if (m->offset > m->size) {
    return r.fail(ErrorCode::kBadSize, "offset",
                  ": " + std::to_string(m->offset) + " is beyond \"size\" " +
                      std::to_string(m->size));
  }
  if (body_length > m->size - m->offset) {
    return r.fail(ErrorCode::kBadSize, "body",
                  ": " + std::to_string(body_length) + " bytes, but size - offset is " +
                      std::to_string(m->size - m->offset));
  }
  if (body_length != m->size - m->offset) m->length = body_length;
  return true;
}

bool read_optional_digest(FieldReader& r, const char* name, std::optional<Digest>* out) {
  if (r.find(name) == nullptr) return true;
  Digest digest{};
  if (!read_hex(r, name, &digest)) return false;
  *out = digest;
  return true;
}

bool parse(FieldReader& r, End* m) {
  if (!(read_optional_digest(r, "sha256", &m->sha256) && read_optional_digest(r, "root", &m->root))) return false;
  // Which one the receiver needs depends on the version in use; one of them is needed.
  if (!m->sha256 && !m->root) return read_hex(r, "root", &m->root.emplace());
  return true;
}

bool parse(FieldReader& r, DigestsRequest* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_optional_size("from", &m->from) &&
         read_optional(r, "count", &m->count);
}

bool parse(FieldReader& r, MkdirRequest* m) {
  if (!r.read_string("path", kMaxPathLen, &m->path)) return false;
  if (r.find("mode") != nullptr) {
    uint32_t mode = 0;
    if (!read_mode(r, &mode)) return false;
    m->mode = mode;
  }
  if (r.find("mtime") != nullptr) {
    int64_t mtime = 0;
    if (!r.read_int("mtime", &mtime)) return false;
    m->mtime = mtime;
  }
  return true;
}

bool parse(FieldReader& r, MkdirOk* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_bool("created", &m->created);
}

bool read_target(FieldReader& r, std::string* target) {
  if (!r.read_string("target", kMaxPathLen, target)) return false;
  if (target->empty()) return r.fail(ErrorCode::kBadSize, "target", ": empty");
  return true;
}

bool parse(FieldReader& r, SymlinkRequest* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && read_target(r, &m->target) &&
         r.read_optional_bool("force", &m->force);
}

bool parse(FieldReader& r, SymlinkOk* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_bool("replaced", &m->replaced) &&
         r.read_optional_bool("unchanged", &m->unchanged);
}

bool parse(FieldReader& r, DigestsReply* m, uint64_t body_length) {
  if (!(r.read_string("path", kMaxPathLen, &m->path) && r.read_size("size", &m->size) &&
        r.read_int("mtime", &m->mtime) && r.read_size("chunk", &m->chunk) && read_hex(r, "root", &m->root) &&
        r.read_size("from", &m->from) && r.read_size("count", &m->count)))
    return false;
  if (m->chunk != kChunkSize)
    return r.fail(ErrorCode::kBadSize, "chunk", ": " + std::to_string(m->chunk) + "; version 2 chunks are " +
                                                    std::to_string(kChunkSize) + " bytes");
  uint64_t chunks = chunk_count(m->size);
  if (m->from > chunks || m->count > chunks - m->from || m->count > kMaxDigestsPerReply)
    return r.fail(ErrorCode::kBadSize, "count",
                  ": chunks " + std::to_string(m->from) + " + " + std::to_string(m->count) + " of a file of " +
                      std::to_string(chunks));
  if (body_length != m->count * sizeof(Digest))
    return r.fail(ErrorCode::kBadSize, "body",
                  ": " + std::to_string(body_length) + " bytes for " + std::to_string(m->count) + " digests");
  return true;
}

bool parse(FieldReader& r, PutRequest* m) {
  if (!(r.read_string("path", kMaxPathLen, &m->path) && r.read_size("size", &m->size) &&
        r.read_optional_bool("force", &m->force)))
    return false;
  if (r.find("mode") != nullptr) {
    uint32_t mode = 0;
    if (!read_mode(r, &mode)) return false;
    m->mode = mode;
  }
  if (r.find("mtime") != nullptr) {
    int64_t mtime = 0;
    if (!r.read_int("mtime", &mtime)) return false;
    m->mtime = mtime;
  }
  if (!r.read_optional_bool("resume", &m->resume)) return false;
  if (m->resume && !read_hex(r, "root", &m->root)) return false;
  return true;
}

bool parse(FieldReader& r, PutReady* m, uint64_t body_length) {
  if (!(r.read_string("path", kMaxPathLen, &m->path) && r.read_size("offset", &m->offset) &&
        r.read_optional_size("count", &m->count)))
    return false;
  if (m->count > chunk_count(m->offset) || body_length != m->body_length())
    return r.fail(ErrorCode::kBadSize, "count",
                  ": " + std::to_string(m->count) + " digests for " + std::to_string(m->offset) + " bytes held, " +
                      std::to_string(body_length) + " bytes of body");
  return true;
}

bool parse(FieldReader& r, PutDone* m) {
  return r.read_string("path", kMaxPathLen, &m->path) && r.read_size("size", &m->size) &&
         read_hex(r, "root", &m->root);
}

bool parse(FieldReader& r, StatReply* m) {
  if (!(r.read_string("path", kMaxPathLen, &m->path) && read_kind(r, &m->kind) &&
        r.read_size("size", &m->size) && r.read_int("mtime", &m->mtime) && read_mode(r, &m->mode)))
    return false;
  if (m->kind != EntryKind::kLink) return true;
  std::string target;
  if (!read_target(r, &target)) return false;
  m->target = std::move(target);
  return true;
}

bool parse_entry(const cJSON& item, size_t index, ProtocolError* err, Entry* e) {
  FieldReader r(item, err, "entries[" + std::to_string(index) + "]");
  if (!(r.read_string("name", kMaxNameLen, &e->name) && read_kind(r, &e->kind) &&
        r.read_size("size", &e->size) && r.read_int("mtime", &e->mtime))) {
    return false;
  }
  if (r.find("mode") != nullptr) {
    uint32_t mode = 0;
    if (!read_mode(r, &mode)) return false;
    e->mode = mode;
  }
  if (e->kind == EntryKind::kLink) {
    std::string target;
    if (!read_target(r, &target)) return false;
    e->target = std::move(target);
  }
  if (e->name.empty()) return r.fail(ErrorCode::kBadSize, "name", ": empty");
  return true;
}

bool parse(FieldReader& r, ProtocolError* err, Entries* m) {
  const cJSON* list = r.find("entries");
  if (!list) return r.fail(ErrorCode::kMissingField, "entries", " is missing");
  if (!cJSON_IsArray(list)) {
    return r.fail(ErrorCode::kWrongType, "entries",
                  std::string(": expected an array of objects, got ") + json_type_name(*list));
  }
  size_t index = 0;
  for (const cJSON* item = list->child; item; item = item->next, ++index) {
    if (!cJSON_IsObject(item)) {
      return r.fail(ErrorCode::kWrongType, ("entries[" + std::to_string(index) + "]").c_str(),
                    std::string(": expected an object, got ") + json_type_name(*item));
    }
    Entry entry;
    if (!parse_entry(*item, index, err, &entry)) return false;
    m->entries.push_back(std::move(entry));
  }
  if (r.find("dir") != nullptr) {
    std::string dir;
    if (!r.read_string("dir", kMaxPathLen, &dir)) return false;
    m->dir = std::move(dir);
  }
  return true;
}

bool parse(FieldReader& r, ListEnd* m) {
  return r.read_size("count", &m->count) && r.read_size("skipped", &m->skipped) &&
         r.read_optional_size("unreadable", &m->unreadable) && r.read_optional_size("vanished", &m->vanished);
}

bool parse(FieldReader& r, Pong* m) {
  return r.read_optional_string("token", kMaxTokenLen, &m->token);
}

bool parse(FieldReader& r, MsgOk* m) { return r.read_size("bytes", &m->bytes); }

bool parse(FieldReader& r, ErrorMessage* m) {
  std::string code;
  if (!(r.read_string("code", kMaxKindLen, &code) &&
        r.read_string("message", kMaxErrorMessageLen, &m->message))) {
    return false;
  }
  if (auto known = error_code_from_string(code)) {
    m->code = *known;
  } else {
    m->code = ErrorCode::kInternal;
    m->message = "unknown error code " + quoted(code) + ": " + m->message;
  }
  return true;
}

template <typename T>
std::optional<Message> parse_as(FieldReader& r) {
  T m;
  if (!parse(r, &m)) return std::nullopt;
  return Message(std::move(m));
}

// ---- encoding ---------------------------------------------------------------------

cJSON* checked(cJSON* item) {
  if (!item) throw std::bad_alloc();
  return item;
}

void add_string(cJSON* obj, const char* name, const std::string& value) {
  checked(cJSON_AddStringToObject(obj, name, value.c_str()));
}

// Raw number text, so every integer up to 2^53 prints exactly ("1000000000000000",
// not cJSON's "%1.15g" rendering "1e+15").
void add_uint(cJSON* obj, const char* name, uint64_t value) {
  checked(cJSON_AddRawToObject(obj, name, std::to_string(value).c_str()));
}

void add_int(cJSON* obj, const char* name, int64_t value) {
  checked(cJSON_AddRawToObject(obj, name, std::to_string(value).c_str()));
}

template <size_t N>
void add_hex(cJSON* obj, const char* name, const std::array<uint8_t, N>& bytes) {
  add_string(obj, name, to_hex(bytes));
}

void add_strings(cJSON* obj, const char* name, const std::vector<std::string>& values) {
  cJSON* array = checked(cJSON_AddArrayToObject(obj, name));
  for (const std::string& v : values) {
    cJSON* item = checked(cJSON_CreateString(v.c_str()));
    cJSON_AddItemToArray(array, item);
  }
}

constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD

// See encode()'s contract in messages.h.
std::string sanitize_error_message(const std::string& text) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (i < text.size()) {
    size_t n = utf8_sequence_length(p + i, text.size() - i);
    const bool bad = n == 0 || p[i] == 0;
    const size_t out_len = bad ? sizeof kReplacement - 1 : n;
    if (out.size() + out_len > kMaxErrorMessageLen) break;
    if (bad) {
      out.append(kReplacement);
      n = 1;
    } else {
      out.append(text, i, n);
    }
    i += n;
  }
  return out;
}

struct ToJson {
  cJSON* obj;

  void operator()(const Hello& m) const {
    add_uint(obj, "proto", m.proto);
    add_string(obj, "server", m.server);
    add_strings(obj, "features", m.features);
    add_hex(obj, "nonce", m.nonce);
  }
  void operator()(const Auth& m) const {
    add_uint(obj, "proto", m.proto);
    add_string(obj, "client", m.client);
    add_strings(obj, "features", m.features);
    add_hex(obj, "nonce", m.nonce);
    add_hex(obj, "mac", m.mac);
  }
  void operator()(const AuthOk& m) const {
    add_uint(obj, "proto", m.proto);
    add_hex(obj, "mac", m.mac);
  }
  void operator()(const GetRequest& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "offset", m.offset);
    if (m.length) add_uint(obj, "length", *m.length);
  }
  void operator()(const StatRequest& m) const { add_string(obj, "path", m.path); }
  void operator()(const ListRequest& m) const {
    add_string(obj, "path", m.path);
    if (m.recursive) checked(cJSON_AddTrueToObject(obj, "recursive"));
    if (m.links) checked(cJSON_AddTrueToObject(obj, "links"));
  }
  void operator()(const PingRequest& m) const {
    if (m.token) add_string(obj, "token", *m.token);
  }
  void operator()(const MsgRequest& m) const { add_string(obj, "text", m.text); }
  void operator()(const FileHeader& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "size", m.size);
    add_uint(obj, "offset", m.offset);
    add_int(obj, "mtime", m.mtime);
    add_uint(obj, "mode", m.mode);
    add_uint(obj, "body", m.offset <= m.size ? m.body_length() : 0);
  }
  void operator()(const End& m) const {
    if (m.sha256) add_hex(obj, "sha256", *m.sha256);
    if (m.root) add_hex(obj, "root", *m.root);
  }
  void operator()(const StatReply& m) const {
    add_string(obj, "path", m.path);
    add_string(obj, "kind", to_string(m.kind));
    add_uint(obj, "size", m.size);
    add_int(obj, "mtime", m.mtime);
    add_uint(obj, "mode", m.mode);
    if (m.target) add_string(obj, "target", *m.target);
  }
  void operator()(const Entries& m) const {
    cJSON* array = checked(cJSON_AddArrayToObject(obj, "entries"));
    for (const Entry& e : m.entries) {
      cJSON* item = checked(cJSON_CreateObject());
      cJSON_AddItemToArray(array, item);
      // Keep this order and these names in step with encoded_entry_size().
      add_string(item, "name", e.name);
      add_string(item, "kind", to_string(e.kind));
      add_uint(item, "size", e.size);
      add_int(item, "mtime", e.mtime);
      if (e.mode) add_uint(item, "mode", *e.mode);
      if (e.target) add_string(item, "target", *e.target);
    }
    if (m.dir) add_string(obj, "dir", *m.dir);
  }
  void operator()(const ListEnd& m) const {
    add_uint(obj, "count", m.count);
    add_uint(obj, "skipped", m.skipped);
    if (m.unreadable != 0) add_uint(obj, "unreadable", m.unreadable);
    if (m.vanished != 0) add_uint(obj, "vanished", m.vanished);
  }
  void operator()(const Pong& m) const {
    if (m.token) add_string(obj, "token", *m.token);
  }
  void operator()(const MsgOk& m) const { add_uint(obj, "bytes", m.bytes); }
  void operator()(const ErrorMessage& m) const {
    add_string(obj, "code", to_string(m.code));
    add_string(obj, "message", sanitize_error_message(m.message));
  }
  void operator()(const PutRequest& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "size", m.size);
    if (m.force) checked(cJSON_AddTrueToObject(obj, "force"));
    if (m.mode) add_uint(obj, "mode", *m.mode);
    if (m.mtime) add_int(obj, "mtime", *m.mtime);
    if (m.resume) {
      checked(cJSON_AddTrueToObject(obj, "resume"));
      add_hex(obj, "root", m.root);
    }
  }
  void operator()(const PutReady& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "offset", m.offset);
    if (m.count > 0) {
      add_uint(obj, "count", m.count);
      add_uint(obj, "body", m.body_length());
    }
  }
  void operator()(const Data& m) const {
    if (m.offset) add_uint(obj, "offset", *m.offset);
    add_uint(obj, "body", m.length);
  }
  void operator()(const PutDone& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "size", m.size);
    add_hex(obj, "root", m.root);
  }
  void operator()(const DigestsRequest& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "from", m.from);
    if (m.count) add_uint(obj, "count", *m.count);
  }
  void operator()(const DigestsReply& m) const {
    add_string(obj, "path", m.path);
    add_uint(obj, "size", m.size);
    add_int(obj, "mtime", m.mtime);
    add_uint(obj, "chunk", m.chunk);
    add_hex(obj, "root", m.root);
    add_uint(obj, "from", m.from);
    add_uint(obj, "count", m.count);
    add_uint(obj, "body", m.body_length());
  }
  void operator()(const MkdirRequest& m) const {
    add_string(obj, "path", m.path);
    if (m.mode) add_uint(obj, "mode", *m.mode);
    if (m.mtime) add_int(obj, "mtime", *m.mtime);
  }
  void operator()(const MkdirOk& m) const {
    add_string(obj, "path", m.path);
    checked(cJSON_AddBoolToObject(obj, "created", m.created ? 1 : 0));
  }
  void operator()(const SymlinkRequest& m) const {
    add_string(obj, "path", m.path);
    add_string(obj, "target", m.target);
    if (m.force) checked(cJSON_AddTrueToObject(obj, "force"));
  }
  void operator()(const SymlinkOk& m) const {
    add_string(obj, "path", m.path);
    checked(cJSON_AddBoolToObject(obj, "replaced", m.replaced ? 1 : 0));
    if (m.unchanged) checked(cJSON_AddTrueToObject(obj, "unchanged"));
  }
};

// Bytes cJSON_PrintUnformatted uses for a string: quotes, two-byte escapes for the
// characters JSON names, \u00XX for other control bytes, everything else verbatim.
size_t json_string_size(const std::string& s) {
  size_t n = 2;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      n += 2;
    } else if (c < 0x20) {
      n += 6;
    } else {
      n += 1;
    }
  }
  return n;
}

}  // namespace

const char* to_string(EntryKind kind) {
  switch (kind) {
    case EntryKind::kFile:
      return "file";
    case EntryKind::kDir:
      return "dir";
    case EntryKind::kLink:
      return "link";
    case EntryKind::kOther:
      break;
  }
  return "other";
}

EntryKind entry_kind_from_string(std::string_view name) {
  if (name == "file") return EntryKind::kFile;
  if (name == "dir") return EntryKind::kDir;
  if (name == "link") return EntryKind::kLink;
  return EntryKind::kOther;
}

const char* type_name(const Message& message) { return kTypeNames[message.index()]; }
const char* type_name(MessageType type) { return kTypeNames[static_cast<size_t>(type)]; }

std::optional<Message> parse_message(const cJSON& header, uint64_t body_length,
                                     ProtocolError* err) {
  FieldReader r(header, err);
  std::string type;
  // No length limit of its own: an overlong type is simply unknown.
  if (!r.read_string("type", kMaxHeaderLen, &type)) return std::nullopt;
  size_t index = std::size(kTypeNames);
  for (size_t i = 0; i < std::size(kTypeNames); ++i) {
    if (type == kTypeNames[i]) {
      index = i;
      break;
    }
  }
  if (index == std::size(kTypeNames)) {
    *err = ProtocolError{ErrorCode::kUnknownType, "unknown message type " + quoted(type)};
    return std::nullopt;
  }
  if (body_length > 0 && index != kIndex<FileHeader> && index != kIndex<Data> && index != kIndex<DigestsReply> &&
      index != kIndex<PutReady>) {
    *err = ProtocolError{ErrorCode::kBadSize, "message \"" + type + "\" cannot carry a body (" +
                                                  std::to_string(body_length) + " bytes announced)"};
    return std::nullopt;
  }
  switch (index) {
    case kIndex<Hello>:
      return parse_as<Hello>(r);
    case kIndex<Auth>:
      return parse_as<Auth>(r);
    case kIndex<AuthOk>:
      return parse_as<AuthOk>(r);
    case kIndex<GetRequest>:
      return parse_as<GetRequest>(r);
    case kIndex<StatRequest>:
      return parse_as<StatRequest>(r);
    case kIndex<ListRequest>:
      return parse_as<ListRequest>(r);
    case kIndex<PingRequest>:
      return parse_as<PingRequest>(r);
    case kIndex<MsgRequest>:
      return parse_as<MsgRequest>(r);
    case kIndex<FileHeader>: {
      FileHeader m;
      if (!parse(r, &m, body_length)) return std::nullopt;
      return Message(std::move(m));
    }
    case kIndex<End>:
      return parse_as<End>(r);
    case kIndex<StatReply>:
      return parse_as<StatReply>(r);
    case kIndex<Entries>: {
      Entries m;
      if (!parse(r, err, &m)) return std::nullopt;
      return Message(std::move(m));
    }
    case kIndex<ListEnd>:
      return parse_as<ListEnd>(r);
    case kIndex<Pong>:
      return parse_as<Pong>(r);
    case kIndex<MsgOk>:
      return parse_as<MsgOk>(r);
    case kIndex<ErrorMessage>:
      return parse_as<ErrorMessage>(r);
    case kIndex<PutRequest>:
      return parse_as<PutRequest>(r);
    case kIndex<PutReady>: {
      PutReady m;
      if (!parse(r, &m, body_length)) return std::nullopt;
      return Message(std::move(m));
    }
    case kIndex<Data>: {
      // The frame's "body" field is the length; the decoder has already read it.
      Data m{body_length, std::nullopt};
      if (!read_optional(r, "offset", &m.offset)) return std::nullopt;
      return Message(m);
    }
    case kIndex<PutDone>:
      return parse_as<PutDone>(r);
    case kIndex<DigestsRequest>:
      return parse_as<DigestsRequest>(r);
    case kIndex<DigestsReply>: {
      DigestsReply m;
      if (!parse(r, &m, body_length)) return std::nullopt;
      return Message(std::move(m));
    }
    case kIndex<MkdirRequest>:
      return parse_as<MkdirRequest>(r);
    case kIndex<MkdirOk>:
      return parse_as<MkdirOk>(r);
    case kIndex<SymlinkRequest>:
      return parse_as<SymlinkRequest>(r);
    case kIndex<SymlinkOk>:
      return parse_as<SymlinkOk>(r);
    default:
      break;
  }
  *err = ProtocolError{ErrorCode::kInternal, "no parser for message type " + quoted(type)};
  return std::nullopt;
}

JsonPtr to_json(const Message& message) {
  JsonPtr obj(checked(cJSON_CreateObject()));
  add_string(obj.get(), "type", type_name(message));
  std::visit(ToJson{obj.get()}, message);
  return obj;
}

void append_encoded(std::string& out, const Message& message) {
  append_frame(out, *to_json(message));
}

std::string encode(const Message& message) {
  std::string out;
  append_encoded(out, message);
  return out;
}

size_t encoded_header_size(const Message& message) { return encode(message).size() - kFramePrefixLen; }

size_t encoded_entry_size(const Entry& entry) {
  // {"name":…,"kind":…,"size":…,"mtime":…}
  constexpr size_t kFixed = sizeof(R"({"name":,"kind":,"size":,"mtime":})") - 1;
  size_t size = kFixed + json_string_size(entry.name) + json_string_size(to_string(entry.kind)) +
                std::to_string(entry.size).size() + std::to_string(entry.mtime).size();
  if (entry.mode) size += sizeof(R"(,"mode":)") - 1 + std::to_string(*entry.mode).size();
  if (entry.target) size += sizeof(R"(,"target":)") - 1 + json_string_size(*entry.target);
  return size;
}

size_t encoded_dir_size(const std::string& dir) { return sizeof(R"(,"dir":)") - 1 + json_string_size(dir); }

bool operator==(const Hello& a, const Hello& b) {
  return a.proto == b.proto && a.server == b.server && a.features == b.features &&
         a.nonce == b.nonce;
}
bool operator==(const Auth& a, const Auth& b) {
  return a.proto == b.proto && a.client == b.client && a.features == b.features &&
         a.nonce == b.nonce && a.mac == b.mac;
}
bool operator==(const AuthOk& a, const AuthOk& b) { return a.proto == b.proto && a.mac == b.mac; }
bool operator==(const GetRequest& a, const GetRequest& b) {
  return a.path == b.path && a.offset == b.offset && a.length == b.length;
}
bool operator==(const StatRequest& a, const StatRequest& b) { return a.path == b.path; }
bool operator==(const ListRequest& a, const ListRequest& b) {
  return a.path == b.path && a.recursive == b.recursive && a.links == b.links;
}
bool operator==(const PingRequest& a, const PingRequest& b) { return a.token == b.token; }
bool operator==(const MsgRequest& a, const MsgRequest& b) { return a.text == b.text; }
bool operator==(const FileHeader& a, const FileHeader& b) {
  return a.path == b.path && a.size == b.size && a.offset == b.offset && a.mtime == b.mtime &&
         a.mode == b.mode && a.body_length() == b.body_length();
}
bool operator==(const End& a, const End& b) { return a.sha256 == b.sha256 && a.root == b.root; }
bool operator==(const StatReply& a, const StatReply& b) {
  return a.path == b.path && a.kind == b.kind && a.size == b.size && a.mtime == b.mtime &&
         a.mode == b.mode && a.target == b.target;
}
bool operator==(const Entry& a, const Entry& b) {
  return a.name == b.name && a.kind == b.kind && a.size == b.size && a.mtime == b.mtime && a.mode == b.mode &&
         a.target == b.target;
}
bool operator==(const Entries& a, const Entries& b) { return a.entries == b.entries && a.dir == b.dir; }
bool operator==(const ListEnd& a, const ListEnd& b) {
  return a.count == b.count && a.skipped == b.skipped && a.unreadable == b.unreadable && a.vanished == b.vanished;
}
bool operator==(const Pong& a, const Pong& b) { return a.token == b.token; }
bool operator==(const MsgOk& a, const MsgOk& b) { return a.bytes == b.bytes; }
bool operator==(const ErrorMessage& a, const ErrorMessage& b) {
  return a.code == b.code && a.message == b.message;
}
bool operator==(const PutRequest& a, const PutRequest& b) {
  return a.path == b.path && a.size == b.size && a.force == b.force && a.mode == b.mode && a.mtime == b.mtime &&
         a.resume == b.resume && (!a.resume || a.root == b.root);
}
bool operator==(const PutReady& a, const PutReady& b) {
  return a.path == b.path && a.offset == b.offset && a.count == b.count;
}
bool operator==(const Data& a, const Data& b) { return a.length == b.length && a.offset == b.offset; }
bool operator==(const PutDone& a, const PutDone& b) {
  return a.path == b.path && a.size == b.size && a.root == b.root;
}
bool operator==(const DigestsRequest& a, const DigestsRequest& b) {
  return a.path == b.path && a.from == b.from && a.count == b.count;
}
bool operator==(const MkdirRequest& a, const MkdirRequest& b) {
  return a.path == b.path && a.mode == b.mode && a.mtime == b.mtime;
}
bool operator==(const MkdirOk& a, const MkdirOk& b) { return a.path == b.path && a.created == b.created; }
bool operator==(const SymlinkRequest& a, const SymlinkRequest& b) {
  return a.path == b.path && a.target == b.target && a.force == b.force;
}
bool operator==(const SymlinkOk& a, const SymlinkOk& b) {
  return a.path == b.path && a.replaced == b.replaced && a.unchanged == b.unchanged;
}
bool operator==(const DigestsReply& a, const DigestsReply& b) {
  return a.path == b.path && a.size == b.size && a.mtime == b.mtime && a.chunk == b.chunk && a.root == b.root &&
         a.from == b.from && a.count == b.count;
}

End End::of(DigestKind kind, const Digest& digest) {
  End end;
  (kind == DigestKind::kTree ? end.root : end.sha256) = digest;
  return end;
}

const Digest* End::digest(DigestKind kind) const {
  const std::optional<Digest>& d = kind == DigestKind::kTree ? root : sha256;
  return d ? &*d : nullptr;
}

}  // namespace protocol
