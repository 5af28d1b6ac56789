// protocol/messages: every message survives encode -> FrameDecoder -> parse_message, and
// every field rule maps to the contract's error code.

#include <criterion/criterion.h>

#include <cjson/cJSON.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "protocol/frame.h"
#include "protocol/hex.h"
#include "protocol/json_header.h"
#include "protocol/messages.h"
#include "protocol/utf8.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 30;

using namespace protocol;

namespace {

template <size_t N>
std::array<uint8_t, N> pattern(uint8_t seed) {
  std::array<uint8_t, N> a{};
  for (size_t i = 0; i < N; ++i) a[i] = static_cast<uint8_t>(seed + i * 7);
  return a;
}

// Encodes, decodes through a FrameDecoder fed in two pieces, and parses.
Message round_trip(const Message& in, const std::string& body = {}) {
  const std::string stream = encode(in) + body;
  FrameDecoder decoder;
  std::optional<Message> out;
  std::string got_body;
  const char* p = stream.data();
  size_t n = stream.size();
  for (int guard = 0; guard < 1000 && n > 0; ++guard) {
    size_t used = 0;
    const size_t slice = n > 7 ? n / 2 : n;
    const DecodeEvent ev = decoder.next(p, slice, &used);
    cr_assert_neq(ev.kind, DecodeEvent::kError, "%s: %s", type_name(in),
                  decoder.error().message.c_str());
    if (ev.kind == DecodeEvent::kHeader) {
      ProtocolError err;
      out = parse_message(decoder.header(), decoder.body_length(), &err);
      cr_assert(out.has_value(), "%s: %s %s", type_name(in), to_string(err.code),
                err.message.c_str());
    } else if (ev.kind == DecodeEvent::kBody) {
      got_body.append(ev.data, ev.size);
    }
    p += used;
    n -= used;
  }
  cr_assert_eq(n, 0u);
  cr_assert(decoder.at_frame_boundary());
  cr_assert(out.has_value());
  cr_assert(got_body == body);
  return *out;
}

template <typename T>
void expect_round_trip(const T& in, const std::string& body = {}) {
  const Message out = round_trip(in, body);
  const T* typed = std::get_if<T>(&out);
  cr_assert(typed != nullptr, "%s came back as %s", type_name(in), type_name(out));
  cr_assert(*typed == in, "%s changed in the round trip", type_name(in));
}

std::optional<Message> parse_text(const std::string& json, uint64_t body_length,
                                  ProtocolError* err) {
  JsonPtr header = parse_header(json, err);
  cr_assert(header, "test header rejected: %s", err->message.c_str());
  return parse_message(*header, body_length, err);
}

ProtocolError expect_error(const std::string& json, ErrorCode code, uint64_t body_length = 0) {
  ProtocolError err;
  std::optional<Message> m = parse_text(json, body_length, &err);
  cr_assert(!m.has_value(), "accepted %s", json.c_str());
  cr_assert_eq(err.code, code, "%s: got %s (%s), expected %s", json.c_str(), to_string(err.code),
               err.message.c_str(), to_string(code));
  return err;
}

Message expect_ok(const std::string& json, uint64_t body_length = 0) {
  ProtocolError err;
  std::optional<Message> m = parse_text(json, body_length, &err);
  cr_assert(m.has_value(), "rejected %s: %s %s", json.c_str(), to_string(err.code),
            err.message.c_str());
  return *m;
}

void expect_contains(const std::string& text, const char* needle) {
  cr_assert(text.find(needle) != std::string::npos, "\"%s\" lacks \"%s\"", text.c_str(), needle);
}

const std::string kHex64(64, 'a');

}  // namespace

// ---- round trips -----------------------------------------------------------------

Test(messages, round_trip_handshake, .timeout = kTimeout) {
  Hello hello;
  hello.server = "reactord/0.1.0";
  hello.features = {"get", "stat", "list", "ping", "msg", "resume"};
  hello.nonce = pattern<32>(1);
  expect_round_trip(hello);
  hello.features.clear();
  hello.proto = 7;
  expect_round_trip(hello);

  Auth auth;
  auth.client = "reactorc/0.1.0 \"quoted\" \xc3\xa9";
  auth.features = {"get", "future-thing"};
  auth.nonce = pattern<32>(2);
  auth.mac = pattern<32>(3);
  expect_round_trip(auth);

  AuthOk ok;
  ok.mac = pattern<32>(4);
  expect_round_trip(ok);
}

Test(messages, round_trip_requests, .timeout = kTimeout) {
  expect_round_trip(GetRequest{"dir/f.bin", 0, std::nullopt});
  expect_round_trip(GetRequest{"a b/\xe2\x82\xac\n\t\x01.txt", (uint64_t{1} << 53), std::nullopt});
  expect_round_trip(StatRequest{""});
  expect_round_trip(StatRequest{std::string(kMaxPathLen, 'p')});
  expect_round_trip(ListRequest{"."});
  expect_round_trip(PingRequest{});
  expect_round_trip(PingRequest{std::string()});
  expect_round_trip(PingRequest{std::string(kMaxTokenLen, 't')});
  expect_round_trip(MsgRequest{"hello \\ \" world"});
}

Test(messages, round_trip_replies, .timeout = kTimeout) {
  FileHeader file;
  file.path = "dir/f.bin";
  file.size = 10;
  file.offset = 4;
  file.mtime = -86400;
  file.mode = 0644;
  expect_round_trip(file, "456789");
  file.offset = 10;
  expect_round_trip(file);  // nothing left to send: no body

  expect_round_trip(End{pattern<32>(9), std::nullopt});

  StatReply stat;
  stat.path = "d";
  stat.kind = EntryKind::kDir;
  stat.size = 4096;
  stat.mtime = 1700000000;
  stat.mode = 07777;
  expect_round_trip(stat);
  StatReply link;
  link.path = "l";
  link.kind = EntryKind::kLink;
  link.size = 5;
  link.mode = 0777;
  link.target = "a.txt";
  expect_round_trip(link);

  Entries entries;
  entries.entries.push_back({"a", EntryKind::kFile, 1, 2, std::nullopt});
  entries.entries.push_back({"sub dir", EntryKind::kDir, 0, -5, std::nullopt});
  entries.entries.push_back({std::string(kMaxNameLen, 'n'), EntryKind::kOther, 1000000000000000, 0, std::nullopt});
  expect_round_trip(entries);
  expect_round_trip(Entries{});
  // A recursive listing's: each entry's mode, the frame's directory.
  Entries tree;
  tree.dir = "a/b c";
  tree.entries.push_back({"x", EntryKind::kFile, 3, 4, 0644});
  tree.entries.push_back({"y", EntryKind::kDir, 0, 5, 07755});
  expect_round_trip(tree);
  Entries top;
  top.dir = "";
  expect_round_trip(top);
  ListRequest recursive;
  recursive.path = "docs";
  recursive.recursive = true;
  expect_round_trip(recursive);
  expect_round_trip(MkdirRequest{"a/b", std::nullopt});
  expect_round_trip(MkdirRequest{"a/b", 0750});
  expect_round_trip(MkdirOk{"a/b", true});
  expect_round_trip(MkdirOk{"a", false});
  ListEnd end;
  end.count = 7;
  end.skipped = 1;
  end.unreadable = 2;
  expect_round_trip(end);
  end.vanished = 3;
  expect_round_trip(end);
  // Links: asked for in the list, carried as kind link with a target; the symlink request.
  ListRequest with_links;
  with_links.path = "docs";
  with_links.recursive = true;
  with_links.links = true;
  expect_round_trip(with_links);
  Entries links;
  links.dir = "";
  links.entries.push_back({"latest", EntryKind::kLink, 2, 9, 0777, std::string("v2")});
  links.entries.push_back({"odd", EntryKind::kLink, 1, 9, 0777, std::string("../with \"quote\"/\x01")});
  expect_round_trip(links);
  expect_round_trip(MkdirRequest{"a/b", 0750, int64_t{1764633600}});
  expect_round_trip(MkdirRequest{"a/b", std::nullopt, int64_t{-1}});
  expect_round_trip(SymlinkRequest{"docs/latest", "v2/index.html", false});
  expect_round_trip(SymlinkRequest{"docs/latest", "../x", true});
  expect_round_trip(SymlinkOk{"docs/latest", false, false});
  expect_round_trip(SymlinkOk{"docs/latest", true, false});
  expect_round_trip(SymlinkOk{"docs/latest", false, true});

  expect_round_trip(ListEnd{3, 1});
  expect_round_trip(Pong{});
  expect_round_trip(Pong{std::string("tok")});
  expect_round_trip(MsgOk{4096});

  // Version 2: put and its messages.
  expect_round_trip(PutRequest{"in/a.bin", 6, false, std::nullopt, std::nullopt});
  expect_round_trip(PutRequest{"in/a.bin", uint64_t{1} << 40, true, 0755u, int64_t{-5}});
  expect_round_trip(PutReady{"in/a.bin", 0});
  expect_round_trip(Data{6, std::nullopt}, "abcdef");
  expect_round_trip(Data{0, std::nullopt});
  Digest d{};
  d[0] = 0xab;
  expect_round_trip(PutDone{"in/a.bin", 6, d});
}

Test(messages, link_fields_are_checked, .timeout = kTimeout) {
  // A link entry without its target, or with an empty one, is malformed.
  expect_error(R"({"type":"entries","entries":[{"name":"l","kind":"link","size":1,"mtime":0}]})",
               ErrorCode::kMissingField);
  expect_error(R"({"type":"entries","entries":[{"name":"l","kind":"link","size":1,"mtime":0,"target":""}]})",
               ErrorCode::kBadSize);
  expect_error(R"({"type":"symlink","path":"a"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"symlink","path":"a","target":""})", ErrorCode::kBadSize);
  expect_error(R"({"type":"symlink","path":"a","target":7})", ErrorCode::kWrongType);
  expect_error(R"({"type":"symlink_ok","path":"a"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"mkdir","path":"a","mtime":"now"})", ErrorCode::kWrongType);
  // Optional fields stay off the wire when unset.
  cr_assert(encode(SymlinkRequest{"a", "b", false}).substr(4) == R"({"type":"symlink","path":"a","target":"b"})");
  cr_assert(encode(ListEnd{3, 0}).substr(4) == R"({"type":"list_end","count":3,"skipped":0})");
  cr_assert_eq(entry_kind_from_string("link"), EntryKind::kLink);
}

Test(messages, put_fields_are_checked, .timeout = kTimeout) {
  // Optional fields are absent from the encoding when unset.
  cr_assert(encode(PutRequest{"a", 1, false, std::nullopt, std::nullopt}).substr(4) ==
            R"({"type":"put","path":"a","size":1})");
  expect_error(R"({"type":"put","path":"a"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"put","size":1})", ErrorCode::kMissingField);
  expect_error(R"({"type":"put","path":"a","size":1,"force":1})", ErrorCode::kWrongType);
  expect_error(R"({"type":"put","path":"a","size":1,"mode":4096})", ErrorCode::kBadSize);
  expect_error(R"({"type":"put","path":"a","size":-1})", ErrorCode::kBadSize);
  expect_error(R"({"type":"put_ready","path":"a"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"put_done","path":"a","size":1,"root":"00"})", ErrorCode::kBadSize);
  expect_error(R"({"type":"put_done","path":"a","size":1,"sha256":")" + kHex64 + "\"}", ErrorCode::kMissingField);
  // Only file and data carry bodies.
  expect_error(R"({"type":"put","path":"a","size":1})", ErrorCode::kBadSize, 1);
  const Message data = expect_ok(R"({"type":"data"})", 7);
  cr_assert_eq(std::get<Data>(data).length, 7u);
  const Message put = expect_ok(R"({"type":"put","path":"a","size":3,"force":true,"mode":420,"mtime":9})");
  const auto& p = std::get<PutRequest>(put);
  cr_assert(p.force && p.mode == 420u && p.mtime == int64_t{9});
}

Test(messages, round_trip_every_error_code, .timeout = kTimeout) {
  for (int i = 0; i <= static_cast<int>(protocol::kLastErrorCode); ++i) {
    const auto code = static_cast<ErrorCode>(i);
    expect_round_trip(ErrorMessage{code, std::string("because ") + to_string(code)});
    cr_assert(error_code_from_string(to_string(code)) == code);
  }
  cr_assert(!error_code_from_string("Not_Found").has_value());
  cr_assert(is_fatal(ErrorCode::kBadJson));
  cr_assert(is_fatal(ErrorCode::kBusy));
  cr_assert(is_fatal(ErrorCode::kInternal));
  cr_assert(!is_fatal(ErrorCode::kBadPath));
  cr_assert(!is_fatal(ErrorCode::kFileChanged));
  cr_assert(!is_fatal(ErrorCode::kIoError));
}

Test(messages, integers_are_written_exactly, .timeout = kTimeout) {
  const std::string frame = encode(ListEnd{1000000000000000, uint64_t{1} << 53});
  expect_contains(frame, R"("count":1000000000000000)");
  expect_contains(frame, R"("skipped":9007199254740992)");
  FileHeader file{"f", 5, 2, -1234567890123, 0755, std::nullopt};
  const std::string header = encode(file).substr(kFramePrefixLen);
  cr_assert_str_eq(header.c_str(),
                   R"({"type":"file","path":"f","size":5,"offset":2,"mtime":-1234567890123,)"
                   R"("mode":493,"body":3})");
}

Test(messages, type_names, .timeout = kTimeout) {
  cr_assert_str_eq(type_name(Hello{}), "hello");
  cr_assert_str_eq(type_name(AuthOk{}), "auth_ok");
  cr_assert_str_eq(type_name(GetRequest{}), "get");
  cr_assert_str_eq(type_name(StatReply{}), "stat_ok");
  cr_assert_str_eq(type_name(ListEnd{}), "list_end");
  cr_assert_str_eq(type_name(MsgOk{}), "msg_ok");
  cr_assert_str_eq(type_name(ErrorMessage{}), "error");
}

// ---- rejections ------------------------------------------------------------------

Test(messages, missing_fields, .timeout = kTimeout) {
  const ProtocolError e = expect_error(R"({"type":"get"})", ErrorCode::kMissingField);
  cr_assert_str_eq(e.message.c_str(), "field \"path\" is missing");
  expect_error(R"({"path":"x"})", ErrorCode::kMissingField);  // no type
  expect_error(R"({"type":"msg"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"hello","proto":1,"server":"s","features":[]})", ErrorCode::kMissingField);
  expect_error(R"({"type":"auth_ok","proto":1})", ErrorCode::kMissingField);
  expect_error(R"({"type":"file","path":"f","size":1,"offset":0,"mtime":0})",
               ErrorCode::kMissingField, 1);
  expect_error(R"({"type":"list_end","count":1})", ErrorCode::kMissingField);
  expect_error(R"({"type":"error","code":"busy"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"entries"})", ErrorCode::kMissingField);
  expect_error(R"({"type":"entries","entries":[{"name":"a","kind":"file","size":1}]})",
               ErrorCode::kMissingField);
}

Test(messages, wrong_types, .timeout = kTimeout) {
  const ProtocolError e = expect_error(R"({"type":"get","path":"a","offset":"12"})", ErrorCode::kWrongType);
  cr_assert_str_eq(e.message.c_str(), "field \"offset\": expected a number, got string");
  expect_error(R"({"type":7})", ErrorCode::kWrongType);
  expect_error(R"({"type":"stat","path":7})", ErrorCode::kWrongType);
  expect_error(R"({"type":"stat","path":null})", ErrorCode::kWrongType);
  expect_error(R"({"type":"ping","token":null})", ErrorCode::kWrongType);
  expect_error(R"({"type":"ping","token":5})", ErrorCode::kWrongType);
  expect_error(R"({"type":"msg","text":["a"]})", ErrorCode::kWrongType);
  expect_error(R"({"type":"hello","proto":"1","server":"s","features":[],"nonce":")" + kHex64 + "\"}",
               ErrorCode::kWrongType);
  const ProtocolError f = expect_error(
      R"({"type":"hello","proto":1,"server":"s","features":["a",2],"nonce":")" + kHex64 + "\"}",
      ErrorCode::kWrongType);
  expect_contains(f.message, "field \"features[1]\"");
  expect_error(R"({"type":"hello","proto":1,"server":"s","features":"get","nonce":")" + kHex64 + "\"}",
               ErrorCode::kWrongType);
  expect_error(R"({"type":"end","sha256":1})", ErrorCode::kWrongType);
  expect_error(R"({"type":"entries","entries":{}})", ErrorCode::kWrongType);
  const ProtocolError g = expect_error(
      R"({"type":"entries","entries":[{"name":"a","kind":"file","size":1,"mtime":0},3]})",
      ErrorCode::kWrongType);
  cr_assert_str_eq(g.message.c_str(), "field \"entries[1]\": expected an object, got number");
  const ProtocolError h = expect_error(
      R"({"type":"entries","entries":[{"name":"a","kind":"file","size":1,"mtime":0},)"
      R"({"name":"b","kind":"file","size":true,"mtime":0}]})",
      ErrorCode::kWrongType);
  expect_contains(h.message, "field \"entries[1].size\"");
}

Test(messages, bad_sizes, .timeout = kTimeout) {
  const char* bad[] = {"-1", "1.5", "9007199254740994", "1e400", "-1e400", "1e300", "0.5", "-0.1"};
  for (const char* v : bad) {
    const ProtocolError e =
        expect_error(std::string(R"({"type":"get","path":"a","offset":)") + v + "}", ErrorCode::kBadSize);
    expect_contains(e.message, "field \"offset\"");
  }
  // Accepted spellings of integers.
  const Message m = expect_ok(R"({"type":"get","path":"a","offset":1.0e3})");
  cr_assert_eq(std::get<GetRequest>(m).offset, 1000u);
  cr_assert_eq(std::get<GetRequest>(expect_ok(R"({"type":"get","path":"a","offset":9007199254740992})")).offset,
               uint64_t{1} << 53);
  cr_assert_eq(std::get<GetRequest>(expect_ok(R"({"type":"get","path":"a","offset":-0})")).offset, 0u);

  expect_error(R"({"type":"msg_ok","bytes":-5})", ErrorCode::kBadSize);
  expect_error(R"({"type":"list_end","count":1,"skipped":2.5})", ErrorCode::kBadSize);
  // mtime is signed but still integral and bounded.
  expect_error(R"({"type":"stat_ok","path":"","kind":"dir","size":0,"mtime":1.5,"mode":0})", ErrorCode::kBadSize);
  expect_error(R"({"type":"stat_ok","path":"","kind":"dir","size":0,"mtime":-9007199254740994,"mode":0})",
               ErrorCode::kBadSize);
  const Message s = expect_ok(R"({"type":"stat_ok","path":"","kind":"dir","size":0,"mtime":-9007199254740992,"mode":0})");
  cr_assert_eq(std::get<StatReply>(s).mtime, -(int64_t{1} << 53));
  // mode holds permission bits only.
  expect_error(R"({"type":"stat_ok","path":"","kind":"dir","size":0,"mtime":0,"mode":4096})", ErrorCode::kBadSize);
}

Test(messages, unknown_type, .timeout = kTimeout) {
  const ProtocolError e = expect_error(R"({"type":"delete","path":"a"})", ErrorCode::kUnknownType);
  cr_assert_str_eq(e.message.c_str(), "unknown message type \"delete\"");
  expect_error(R"({"type":"PING"})", ErrorCode::kUnknownType);
  expect_error(R"({"type":""})", ErrorCode::kUnknownType);
  expect_error(R"({"type":"ping\n"})", ErrorCode::kUnknownType);
}

Test(messages, body_only_on_file, .timeout = kTimeout) {
  const ProtocolError e = expect_error(R"({"type":"ping"})", ErrorCode::kBadSize, 5);
  expect_contains(e.message, "\"ping\" cannot carry a body");
  expect_error(R"({"type":"get","path":"a"})", ErrorCode::kBadSize, 1);
  expect_error(R"({"type":"end","sha256":")" + kHex64 + "\"}", ErrorCode::kBadSize, 1);
  // Checked before the fields: a bodied ping with bad fields is still bad_size.
  expect_error(R"({"type":"ping","token":5})", ErrorCode::kBadSize, 1);
}

Test(messages, file_body_must_fit_the_file, .timeout = kTimeout) {
  const std::string file = R"({"type":"file","path":"f","size":10,"offset":4,"mtime":0,"mode":420})";
  cr_assert_not(std::get<FileHeader>(expect_ok(file, 6)).length.has_value(), "the rest of the file is no range");
  // Shorter: the answer to a ranged get (version 2).
  const Message ranged = expect_ok(file, 5);
  cr_assert_eq(std::get<FileHeader>(ranged).body_length(), 5u);
  cr_assert_eq(std::get<FileHeader>(ranged).length.value_or(0), 5u);
  cr_assert_eq(std::get<FileHeader>(expect_ok(file, 0)).body_length(), 0u);
  const ProtocolError e = expect_error(file, ErrorCode::kBadSize, 7);
  expect_contains(e.message, "field \"body\"");
  const ProtocolError f = expect_error(
      R"({"type":"file","path":"f","size":3,"offset":4,"mtime":0,"mode":420})", ErrorCode::kBadSize, 0);
  expect_contains(f.message, "field \"offset\"");
}

Test(messages, hex_fields, .timeout = kTimeout) {
  const std::string head = R"({"type":"auth_ok","proto":1,"mac":")";
  expect_ok(head + kHex64 + "\"}");
  const ProtocolError e = expect_error(head + std::string(63, 'a') + "\"}", ErrorCode::kBadSize);
  cr_assert_str_eq(e.message.c_str(), "field \"mac\": expected 64 hex digits, got 63");
  expect_error(head + std::string(65, 'a') + "\"}", ErrorCode::kBadSize);
  expect_error(head + "\"}", ErrorCode::kBadSize);
  expect_error(head + std::string(63, 'a') + "g\"}", ErrorCode::kBadSize);
  expect_error(R"({"type":"hello","proto":1,"server":"s","features":[],"nonce":"00"})", ErrorCode::kBadSize);
  // Uppercase is accepted on input.
  const Message m = expect_ok(head + std::string(64, 'F') + "\"}");
  Mac all_ff;
  all_ff.fill(0xff);
  cr_assert(std::get<AuthOk>(m).mac == all_ff);
}

Test(messages, string_limits, .timeout = kTimeout) {
  auto get = [](size_t len) { return R"({"type":"get","path":")" + std::string(len, 'p') + "\"}"; };
  expect_ok(get(kMaxPathLen));
  const ProtocolError e = expect_error(get(kMaxPathLen + 1), ErrorCode::kBadSize);
  cr_assert_str_eq(e.message.c_str(), "field \"path\": 4097 bytes exceeds the limit of 4096");
  // Bytes, not characters: 2049 two-byte characters are 4098 bytes.
  std::string wide;
  for (int i = 0; i < 2049; ++i) wide += "\xc3\xa9";
  expect_error(R"({"type":"stat","path":")" + wide + "\"}", ErrorCode::kBadSize);
  // Escapes count as the bytes they decode to.
  std::string escaped;
  for (size_t i = 0; i < kMaxPathLen; ++i) escaped += "\\n";
  expect_ok(R"({"type":"list","path":")" + escaped + "\"}");

  expect_ok(R"({"type":"ping","token":")" + std::string(256, 't') + "\"}");
  expect_error(R"({"type":"ping","token":")" + std::string(257, 't') + "\"}", ErrorCode::kBadSize);
  expect_error(R"({"type":"pong","token":")" + std::string(257, 't') + "\"}", ErrorCode::kBadSize);
  expect_ok(R"({"type":"msg","text":")" + std::string(4096, 'x') + "\"}");
  expect_error(R"({"type":"msg","text":")" + std::string(4097, 'x') + "\"}", ErrorCode::kBadSize);

  auto entry = [](const std::string& name) {
    return R"({"type":"entries","entries":[{"name":")" + name + R"(","kind":"file","size":1,"mtime":0}]})";
  };
  expect_ok(entry(std::string(255, 'n')));
  expect_error(entry(std::string(256, 'n')), ErrorCode::kBadSize);
  const ProtocolError n = expect_error(entry(""), ErrorCode::kBadSize);
  cr_assert_str_eq(n.message.c_str(), "field \"entries[0].name\": empty");
}

Test(messages, proto_versions, .timeout = kTimeout) {
  const std::string tail = R"(,"mac":")" + kHex64 + "\"}";
  const ProtocolError e = expect_error(R"({"type":"auth_ok","proto":0)" + tail, ErrorCode::kUnsupportedVersion);
  expect_contains(e.message, "field \"proto\"");
  expect_error(R"({"type":"auth_ok","proto":-1)" + tail, ErrorCode::kBadSize);
  expect_error(R"({"type":"auth_ok","proto":1.5)" + tail, ErrorCode::kBadSize);
  // A newer peer announces its highest version; choosing min() is the caller's job.
  cr_assert_eq(std::get<AuthOk>(expect_ok(R"({"type":"auth_ok","proto":2)" + tail)).proto, 2u);
}

Test(messages, unknown_fields_are_ignored, .timeout = kTimeout) {
  const Message m = expect_ok(
      R"({"future":{"deep":[1,2,{"x":null}]},"type":"get","path":"a","offset":3,"offset2":"z","Path":1})");
  cr_assert(std::get<GetRequest>(m) == (GetRequest{"a", 3, std::nullopt}));
  const Message p = expect_ok(R"({"type":"ping","x":1})");
  cr_assert(!std::get<PingRequest>(p).token.has_value());
  const Message e = expect_ok(
      R"({"type":"entries","entries":[{"name":"a","kind":"file","size":1,"mtime":0,"inode":9}],"more":true})");
  cr_assert_eq(std::get<Entries>(e).entries.size(), 1u);
}

// A link in stat_ok carries its target; without one it is malformed, as in entries.
Test(messages, a_link_in_stat_ok_needs_its_target, .timeout = kTimeout) {
  const Message m = expect_ok(R"({"type":"stat_ok","path":"l","kind":"link","size":1,"mtime":0,"mode":511,"target":"x"})");
  cr_assert(std::get<StatReply>(m).target == std::optional<std::string>("x"));
  expect_error(R"({"type":"stat_ok","path":"l","kind":"link","size":1,"mtime":0,"mode":511})", ErrorCode::kMissingField);
}

Test(messages, unknown_kind_is_other, .timeout = kTimeout) {
  const Message m = expect_ok(R"({"type":"stat_ok","path":"l","kind":"symlink","size":0,"mtime":0,"mode":511})");
  cr_assert_eq(std::get<StatReply>(m).kind, EntryKind::kOther);
  cr_assert_eq(entry_kind_from_string("file"), EntryKind::kFile);
  cr_assert_eq(entry_kind_from_string("dir"), EntryKind::kDir);
  cr_assert_eq(entry_kind_from_string("FILE"), EntryKind::kOther);
}

Test(messages, unknown_error_code_becomes_internal, .timeout = kTimeout) {
  const Message m = expect_ok(R"({"type":"error","code":"quota_exceeded","message":"too much"})");
  const auto& e = std::get<ErrorMessage>(m);
  cr_assert_eq(e.code, ErrorCode::kInternal);
  cr_assert_str_eq(e.message.c_str(), "unknown error code \"quota_exceeded\": too much");
  cr_assert(is_fatal(e.code));
  const Message k = expect_ok(R"({"type":"error","code":"not_found","message":"no such file"})");
  cr_assert(std::get<ErrorMessage>(k) == (ErrorMessage{ErrorCode::kNotFound, "no such file"}));
}

Test(messages, error_message_is_sanitized_on_encode, .timeout = kTimeout) {
  // Ill-formed UTF-8 and NUL would make the error frame itself a protocol violation.
  const std::string raw = std::string("bad \xff name \xed\xa0\x80 x") + std::string(1, '\0') + "end";
  const Message m = round_trip(ErrorMessage{ErrorCode::kIoError, raw});
  const std::string& text = std::get<ErrorMessage>(m).message;
  cr_assert(valid_utf8(text));
  cr_assert_str_eq(text.c_str(),
                   "bad \xef\xbf\xbd name \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd x\xef\xbf\xbd" "end");
  // Over-long messages are cut at a character boundary within the limit.
  std::string longer;
  while (longer.size() < kMaxErrorMessageLen + 10) longer += "\xe2\x82\xac";  // 3-byte euro
  const Message l = round_trip(ErrorMessage{ErrorCode::kIoError, longer});
  const std::string& cut = std::get<ErrorMessage>(l).message;
  cr_assert_leq(cut.size(), kMaxErrorMessageLen);
  cr_assert_gt(cut.size(), kMaxErrorMessageLen - 3);
  cr_assert(valid_utf8(cut));
}

// ---- entries packing -------------------------------------------------------------

Test(messages, entry_size_is_exact, .timeout = kTimeout) {
  std::vector<Entry> samples = {
      {"a", EntryKind::kFile, 0, 0, std::nullopt},
      {"with \"quotes\" and \\ slash", EntryKind::kDir, 123, -1, std::nullopt},
      {std::string("ctl \x01\x1f\b\f\n\r\t end"), EntryKind::kOther, uint64_t{1} << 53, -(int64_t{1} << 53), std::nullopt},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80 \x7f", EntryKind::kFile, 9999999999, 1700000000, std::nullopt},
      {std::string(255, 'z'), EntryKind::kDir, 1, 1, std::nullopt},
      {"with mode", EntryKind::kFile, 1, 1, 0644},
      {"mode 0", EntryKind::kDir, 1, 1, 0},
      {"mode max", EntryKind::kDir, 1, 1, 07777},
      {"link", EntryKind::kLink, 2, 1, 0777, std::string("v2")},
      {"odd link", EntryKind::kLink, 9, 1, std::nullopt, std::string("../\"q\"\\\x01/caf\xc3\xa9")},
  };
  Entries all;
  size_t sum = 0;
  for (const Entry& e : samples) {
    Entries one;
    one.entries.push_back(e);
    cr_assert_eq(encoded_header_size(one), kEntriesHeaderBase + encoded_entry_size(e), "entry %s",
                 e.name.c_str());
    all.entries.push_back(e);
    sum += encoded_entry_size(e);
  }
  cr_assert_eq(encoded_header_size(all), kEntriesHeaderBase + sum + samples.size() - 1);
  cr_assert_eq(encoded_header_size(Entries{}), kEntriesHeaderBase);
  // A recursive listing's "dir" adds exactly encoded_dir_size().
  for (const std::string& dir : {std::string(), std::string("a"), std::string("q\"u/\x01"), std::string(4096, 'd')}) {
    Entries framed = all;
    framed.dir = dir;
    cr_assert_eq(encoded_header_size(framed), encoded_header_size(all) + encoded_dir_size(dir), "dir %zu bytes",
                 dir.size());
  }
}

Test(messages, entries_packed_to_the_limit_decode, .timeout = kTimeout) {
  // Pack as a server would, then check the frame is within the limit and decodes.
  Entries batch;
  size_t size = kEntriesHeaderBase;
  for (int i = 0; i < 100000; ++i) {
    Entry e{"file-" + std::to_string(i) + std::string(static_cast<size_t>(i % 40), 'x'),
            EntryKind::kFile, static_cast<uint64_t>(i) * 1000, i, std::nullopt};
    const size_t add = encoded_entry_size(e) + (batch.entries.empty() ? 0 : 1);
    if (size + add > kMaxHeaderLen) break;
    size += add;
    batch.entries.push_back(std::move(e));
  }
  cr_assert_gt(batch.entries.size(), 100u);
  cr_assert_eq(encoded_header_size(batch), size);
  cr_assert_leq(size, kMaxHeaderLen);
  cr_assert_gt(size, kMaxHeaderLen - 100);
  expect_round_trip(batch);
}

Test(messages, version_2_ranges_roots_and_digests, .timeout = kTimeout) {
  GetRequest ranged{"big.iso", 3 << 20, uint64_t{1} << 20};
  expect_round_trip(ranged);
  cr_assert(encode(ranged).substr(4) == R"({"type":"get","path":"big.iso","offset":3145728,"length":1048576})");
  cr_assert(encode(GetRequest{"a", 0, std::nullopt}).substr(4) == R"({"type":"get","path":"a","offset":0})", "no length: none sent");
  FileHeader part;
  part.path = "big.iso";
  part.size = 10;
  part.offset = 2;
  part.length = 3;
  expect_round_trip(part, "abc");

  // The trailer: a root (version 2), a SHA-256 (version 1), both, never neither.
  End root;
  root.root = pattern<32>(4);
  expect_round_trip(root);
  End both = End::of(protocol::DigestKind::kSha256, pattern<32>(1));
  both.root = pattern<32>(2);
  expect_round_trip(both);
  cr_assert(*both.digest(protocol::DigestKind::kSha256) == pattern<32>(1));
  cr_assert(*both.digest(protocol::DigestKind::kTree) == pattern<32>(2));
  cr_assert_null(End::of(protocol::DigestKind::kSha256, pattern<32>(1)).digest(protocol::DigestKind::kTree));
  const ProtocolError none = expect_error(R"({"type":"end"})", ErrorCode::kMissingField);
  expect_contains(none.message, "root");
  expect_error(R"({"type":"end","root":"00"})", ErrorCode::kBadSize);

  expect_round_trip(DigestsRequest{"big.iso", 0, std::nullopt});
  expect_round_trip(DigestsRequest{"big.iso", 7, uint64_t{3}});
  cr_assert(encode(DigestsRequest{"a", 0, std::nullopt}).substr(4) == R"({"type":"digests","path":"a","from":0})");
  const Message defaults = expect_ok(R"({"type":"digests","path":"a"})");
  cr_assert_eq(std::get<DigestsRequest>(defaults).from, 0u);
  cr_assert_not(std::get<DigestsRequest>(defaults).count.has_value());
  expect_error(R"({"type":"digests","path":"a","from":-1})", ErrorCode::kBadSize);
  expect_error(R"({"type":"digests","path":"a"})", ErrorCode::kBadSize, 32);  // requests carry no body

  DigestsReply reply;
  reply.path = "big.iso";
  reply.size = (3 << 20) + 1;  // four chunks
  reply.mtime = 1764072000;
  reply.root = pattern<32>(5);
  reply.from = 1;
  reply.count = 3;
  expect_round_trip(reply, std::string(96, 'd'));
  const std::string head = R"({"type":"digests_ok","path":"a","size":3145729,"mtime":0,"chunk":1048576,"root":")" + kHex64 + R"(",)";
  expect_ok(head + R"("from":4,"count":0})");           // from the end: nothing
  expect_error(head + R"("from":1,"count":3})", ErrorCode::kBadSize, 95);  // the body is 32 per digest
  expect_error(head + R"("from":2,"count":3})", ErrorCode::kBadSize, 96);  // past the last chunk
  expect_error(head + R"("from":5,"count":0})", ErrorCode::kBadSize);
  const ProtocolError chunk = expect_error(
      R"({"type":"digests_ok","path":"a","size":1,"mtime":0,"chunk":4096,"root":")" + kHex64 + R"(","from":0,"count":1})",
      ErrorCode::kBadSize, 32);
  expect_contains(chunk.message, "chunk");
}

Test(messages, version_2_resumable_puts, .timeout = kTimeout) {
  PutRequest put{"big.iso", 3 << 20, false, std::nullopt, std::nullopt, true, pattern<32>(6)};
  expect_round_trip(put);
  cr_assert(encode(PutRequest{"a", 1, false, std::nullopt, std::nullopt, true, Digest{}}).substr(4) ==
            R"({"type":"put","path":"a","size":1,"resume":true,"root":")" + std::string(64, '0') + "\"}");
  expect_error(R"({"type":"put","path":"a","size":1,"resume":true})", ErrorCode::kMissingField);
  const Message plain = expect_ok(R"({"type":"put","path":"a","size":1,"root":"zz"})");  // ignored without resume
  cr_assert_not(std::get<PutRequest>(plain).resume);

  expect_round_trip(PutReady{"big.iso", 2 << 20, 2}, std::string(64, 'r'));
  expect_round_trip(PutReady{"big.iso", 0, 0});
  expect_error(R"({"type":"put_ready","path":"a","offset":1048576,"count":2})", ErrorCode::kBadSize, 64);  // 1 chunk held
  expect_error(R"({"type":"put_ready","path":"a","offset":1048576,"count":1})", ErrorCode::kBadSize, 31);

  expect_round_trip(Data{5, uint64_t{1} << 20}, "abcde");
  const Message data = expect_ok(R"({"type":"data","offset":7})", 3);
  cr_assert_eq(std::get<Data>(data).offset.value_or(0), 7u);
  cr_assert_not(std::get<Data>(expect_ok(R"({"type":"data"})", 3)).offset.has_value());
  cr_assert_str_eq(to_string(ErrorCode::kInProgress), "in_progress");
  cr_assert_not(is_fatal(ErrorCode::kInProgress));
}
