// protocol/frame + protocol/json_header: the incremental decoder under every way of
// slicing a stream, and every header rule of the contract with its error code.

#include <criterion/criterion.h>

#include <cjson/cJSON.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "protocol/frame.h"
#include "protocol/json_header.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

// One timeout for every test in this binary: with mixed values Criterion 2.4.1's runner
// leaks timer bookkeeping, which fails the ASan build (seen with --jobs=2).
constexpr double kTimeout = 60;

using protocol::DecodeEvent;
using protocol::ErrorCode;
using protocol::FrameDecoder;
using protocol::ProtocolError;

namespace {

std::string prefix(uint32_t n) {
  const char bytes[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16 & 0xff),
                         static_cast<char>(n >> 8 & 0xff), static_cast<char>(n & 0xff)};
  return std::string(bytes, 4);
}

std::string frame(const std::string& header, const std::string& body = {}) {
  return prefix(static_cast<uint32_t>(header.size())) + header + body;
}

std::string body_header(size_t body_len) {
  return R"({"type":"file","path":"a","body":)" + std::to_string(body_len) + "}";
}

std::string print(const cJSON& json) {
  std::unique_ptr<char, decltype(&cJSON_free)> text(cJSON_PrintUnformatted(&json), &cJSON_free);
  return text ? std::string(text.get()) : std::string("<print failed>");
}

// Everything a decoder reported, in a form that does not depend on slicing.
struct Transcript {
  std::vector<std::string> headers;  // printed JSON + " body=" + body_length
  std::vector<std::string> bodies;   // one per header, chunks concatenated
  bool failed = false;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  std::string problem;  // a broken decoder promise, see feed()

  bool operator==(const Transcript& o) const {
    return problem.empty() && o.problem.empty() && headers == o.headers &&
           bodies == o.bodies && failed == o.failed &&
           (!failed || (code == o.code && message == o.message));
  }
};

// Feeds one slice, handling every event, and checks the decoder's promises about
// `consumed` and body pointers. A broken promise is recorded in t->problem (checked by
// the callers once, not per event: this loop runs millions of times). Returns false once
// the decoder has failed or a promise was broken.
bool feed(FrameDecoder& d, const char* data, size_t len, Transcript* t) {
  const char* const begin = data;
  const char* const end = data + len;
  auto broken = [t](const char* what) {
    if (t->problem.empty()) t->problem = what;
    return false;
  };
  // Each event consumes at least one byte or ends the slice, so len + 2 bounds the loop.
  const size_t limit = len + 2;
  for (size_t guard = 0; guard < limit; ++guard) {
    size_t used = 12345;
    const DecodeEvent ev = d.next(data, len, &used);
    if (used > len) return broken("consumed more than it was given");
    switch (ev.kind) {
      case DecodeEvent::kNeedMore:
        if (used != len) return broken("kNeedMore did not consume everything");
        return true;
      case DecodeEvent::kHeader:
        if (!d.has_header()) return broken("kHeader without a header");
        if (d.body_remaining() != d.body_length()) return broken("body_remaining != body_length");
        t->headers.push_back(print(d.header()) + " body=" + std::to_string(d.body_length()));
        t->bodies.emplace_back();
        break;
      case DecodeEvent::kBody:
        if (ev.size == 0 || used != ev.size) return broken("kBody size and consumed disagree");
        // The chunk is the caller's own bytes, never a copy.
        if (ev.data != data) return broken("kBody does not point at the unconsumed input");
        if (ev.data < begin || ev.data + ev.size > end) return broken("kBody outside the slice");
        if (t->bodies.empty()) return broken("kBody before any kHeader");
        t->bodies.back().append(ev.data, ev.size);
        break;
      case DecodeEvent::kError:
        if (used != 0) return broken("kError consumed bytes");
        if (!d.failed()) return broken("kError but not failed()");
        t->failed = true;
        t->code = d.error().code;
        t->message = d.error().message;
        return false;
    }
    data += used;
    len -= used;
  }
  return broken("decoder made no progress");
}

Transcript decode_with_cuts(const std::string& stream, const std::vector<size_t>& cuts,
                            size_t limit = protocol::kMaxHeaderLen) {
  FrameDecoder d(limit);
  Transcript t;
  size_t pos = 0;
  for (size_t cut : cuts) {
    if (!feed(d, stream.data() + pos, cut - pos, &t)) break;
    pos = cut;
  }
  if (pos <= stream.size() && !t.failed && t.problem.empty()) {
    feed(d, stream.data() + pos, stream.size() - pos, &t);
  }
  cr_assert(t.problem.empty(), "decoder broke a promise: %s", t.problem.c_str());
  return t;
}

Transcript decode_whole(const std::string& stream, size_t limit = protocol::kMaxHeaderLen) {
  return decode_with_cuts(stream, {}, limit);
}

Transcript decode_bytewise(const std::string& stream, size_t limit = protocol::kMaxHeaderLen) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return decode_with_cuts(stream, cuts, limit);
}

// A header that must be rejected with `code`, whole and byte by byte alike.
ProtocolError expect_rejected(const std::string& header, ErrorCode code,
                              size_t limit = protocol::kMaxHeaderLen) {
  const std::string stream = frame(header) + frame(R"({"type":"ping"})");
  const Transcript whole = decode_whole(stream, limit);
  cr_assert(whole.failed, "accepted: %s", header.c_str());
  cr_assert_eq(whole.code, code, "header %s: got %s (%s), expected %s", header.c_str(),
               protocol::to_string(whole.code), whole.message.c_str(), protocol::to_string(code));
  cr_assert(whole.headers.empty());
  cr_assert(!whole.message.empty());
  const Transcript bytewise = decode_bytewise(stream, limit);
  cr_assert(bytewise == whole, "byte-at-a-time differs for %s", header.c_str());
  return ProtocolError{whole.code, whole.message};
}

void expect_accepted(const std::string& header) {
  const Transcript t = decode_whole(frame(header));
  cr_assert(!t.failed, "rejected %s: %s %s", header.c_str(), protocol::to_string(t.code),
            t.message.c_str());
  cr_assert_eq(t.headers.size(), 1u);
}

std::string nested(int depth, const char* open, const char* close, const char* inner) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

// ~50 frames of mixed shapes: no body, small bodies, bodies larger than typical slices,
// headers with escapes and multi-byte UTF-8.
std::string mixed_stream() {
  std::string s;
  for (int i = 0; i < 50; ++i) {
    switch (i % 5) {
      case 0:
        s += frame(R"({"type":"ping","token":"t)" + std::to_string(i) + R"("})");
        break;
      case 1: {
        std::string body(static_cast<size_t>(i * 97 % 3001), '\0');
        for (size_t k = 0; k < body.size(); ++k) body[k] = static_cast<char>((k * 31 + i) & 0xff);
        s += frame(body_header(body.size()), body);
        break;
      }
      case 2:
        s += frame(R"({"type":"msg","text":"h\u00e9llo \"w\" \\ caf)"
                   "\xc3\xa9 \xf0\x9f\x98\x80\",\"n\":[1,2,{\"k\":null}]}");
        break;
      case 3:
        s += frame(body_header(1), "x");
        break;
      default:
        s += frame(R"(  {"type":"list","path":"d/)" + std::string(static_cast<size_t>(i), 'p') +
                   "\"}\r\n");
        break;
    }
  }
  return s;
}

}  // namespace

// ---- slicing ---------------------------------------------------------------------

Test(frame, one_frame_byte_at_a_time, .timeout = kTimeout) {
  const std::string stream = frame(body_header(5), "hello");
  const Transcript t = decode_bytewise(stream);
  cr_assert(!t.failed, "%s", t.message.c_str());
  cr_assert_eq(t.headers.size(), 1u);
  cr_assert_str_eq(t.headers[0].c_str(), R"({"type":"file","path":"a","body":5} body=5)");
  cr_assert_str_eq(t.bodies[0].c_str(), "hello");
}

Test(frame, many_frames_in_one_slice, .timeout = kTimeout) {
  std::string stream;
  for (int i = 0; i < 20; ++i) stream += frame(R"({"type":"ping","n":)" + std::to_string(i) + "}");
  stream += frame(body_header(3), "abc") + frame(R"({"type":"end"})");
  const Transcript t = decode_whole(stream);
  cr_assert(!t.failed);
  cr_assert_eq(t.headers.size(), 22u);
  cr_assert_str_eq(t.headers[7].c_str(), R"({"type":"ping","n":7} body=0)");
  cr_assert_str_eq(t.bodies[20].c_str(), "abc");
  cr_assert_str_eq(t.headers[21].c_str(), R"({"type":"end"} body=0)");
}

Test(frame, header_split_at_every_offset, .timeout = kTimeout) {
  const std::string first_frame =
      frame(R"({"type":"msg","text":"split me \u00e9 )" "\xe2\x82\xac" R"(","x":[1,{"y":2}]})");
  const std::string stream =
      first_frame + frame(body_header(4), "data") + frame(R"({"type":"ping"})");
  const Transcript reference = decode_whole(stream);
  cr_assert(!reference.failed);
  cr_assert_eq(reference.headers.size(), 3u);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    cr_assert(decode_with_cuts(stream, {cut}) == reference, "differs when cut at %zu", cut);
  }
  // And in three pieces, every pair of cuts within the first frame.
  const size_t first = first_frame.size();
  for (size_t a = 0; a <= first; ++a) {
    for (size_t b = a; b <= first; b += 3) {
      cr_assert(decode_with_cuts(stream, {a, b}) == reference, "differs at cuts %zu,%zu", a, b);
    }
  }
}

Test(frame, seeded_random_splits_of_mixed_stream, .timeout = kTimeout) {
  const std::string stream = mixed_stream();
  const Transcript reference = decode_whole(stream);
  cr_assert(!reference.failed, "%s", reference.message.c_str());
  cr_assert_eq(reference.headers.size(), 50u);
  cr_assert(decode_bytewise(stream) == reference);

  std::mt19937 rng(20240607);  // fixed: every run tries the same splits
  std::uniform_int_distribution<int> shape(0, 9);
  for (int iter = 0; iter < 500; ++iter) {
    std::vector<size_t> cuts;
    size_t pos = 0;
    while (true) {
      // Mostly small slices, sometimes large ones that span several frames.
      const int s = shape(rng);
      const size_t step = s < 6 ? std::uniform_int_distribution<size_t>(1, 16)(rng)
                          : s < 9 ? std::uniform_int_distribution<size_t>(1, 600)(rng)
                                  : std::uniform_int_distribution<size_t>(1, 20000)(rng);
      pos += step;
      if (pos >= stream.size()) break;
      cuts.push_back(pos);
    }
    cr_assert(decode_with_cuts(stream, cuts) == reference, "iteration %d differs", iter);
  }
}

Test(frame, empty_slices_change_nothing, .timeout = kTimeout) {
  const std::string stream = frame(body_header(2), "ok");
  FrameDecoder d;
  Transcript t;
  for (size_t i = 0; i < stream.size(); ++i) {
    cr_assert(feed(d, stream.data() + i, 0, &t));
    cr_assert(feed(d, stream.data() + i, 1, &t));
  }
  cr_assert(feed(d, nullptr, 0, &t));
  cr_assert_eq(t.headers.size(), 1u);
  cr_assert_str_eq(t.bodies[0].c_str(), "ok");
}

Test(frame, frame_boundary_and_buffering, .timeout = kTimeout) {
  const std::string stream = frame(body_header(3), "abc");
  FrameDecoder d;
  Transcript t;
  cr_assert(d.at_frame_boundary());
  cr_assert(feed(d, stream.data(), 2, &t));
  cr_assert(!d.at_frame_boundary());
  cr_assert_eq(d.buffered(), 2u);
  cr_assert(feed(d, stream.data() + 2, 10, &t));
  cr_assert_eq(d.buffered(), 8u);  // 8 header bytes held while the rest arrives
  cr_assert(feed(d, stream.data() + 12, stream.size() - 12 - 1, &t));
  cr_assert_eq(d.buffered(), 0u);
  cr_assert(!d.at_frame_boundary());  // inside the body
  cr_assert_eq(d.body_remaining(), 1u);
  cr_assert(feed(d, stream.data() + stream.size() - 1, 1, &t));
  cr_assert(d.at_frame_boundary());
  cr_assert_eq(d.body_remaining(), 0u);
  cr_assert_str_eq(t.bodies[0].c_str(), "abc");
}

Test(frame, huge_body_streams_without_buffering, .timeout = kTimeout) {
  const uint64_t declared = uint64_t{1} << 40;
  const std::string head = frame(body_header(declared));
  FrameDecoder d;
  size_t used = 0;
  DecodeEvent ev = d.next(head.data(), head.size(), &used);
  cr_assert_eq(ev.kind, DecodeEvent::kHeader);
  cr_assert_eq(used, head.size());
  cr_assert_eq(d.body_length(), declared);

  std::vector<char> chunk(64 * 1024, 'z');
  uint64_t fed = 0;
  for (int i = 0; i < 64; ++i) {  // 4 MiB, then stop: the rest never comes
    ev = d.next(chunk.data(), chunk.size(), &used);
    cr_assert_eq(ev.kind, DecodeEvent::kBody);
    cr_assert(ev.data == chunk.data());
    cr_assert_eq(ev.size, chunk.size());
    cr_assert_eq(used, chunk.size());
    fed += chunk.size();
    cr_assert_eq(d.body_remaining(), declared - fed);
    cr_assert_eq(d.buffered(), 0u);
  }
  ev = d.next(chunk.data(), 0, &used);
  cr_assert_eq(ev.kind, DecodeEvent::kNeedMore);
  cr_assert(!d.at_frame_boundary());
}

Test(frame, largest_body_is_2_pow_53, .timeout = kTimeout) {
  const Transcript ok = decode_whole(frame(body_header(uint64_t{1} << 53)));
  cr_assert(!ok.failed, "%s", ok.message.c_str());
  cr_assert_eq(ok.headers.size(), 1u);
  expect_rejected(body_header((uint64_t{1} << 53) + 2), ErrorCode::kBadSize);
}

Test(frame, bad_body_fields, .timeout = kTimeout) {
  expect_rejected(R"({"type":"file","body":-1})", ErrorCode::kBadSize);
  expect_rejected(R"({"type":"file","body":1.5})", ErrorCode::kBadSize);
  expect_rejected(R"({"type":"file","body":1e400})", ErrorCode::kBadSize);
  expect_rejected(R"({"type":"file","body":"12"})", ErrorCode::kWrongType);
  expect_rejected(R"({"type":"file","body":null})", ErrorCode::kWrongType);
  const ProtocolError e = expect_rejected(R"({"type":"file","body":2.5})", ErrorCode::kBadSize);
  cr_assert(e.message.find("field \"body\"") == 0, "%s", e.message.c_str());
}

// ---- length prefix ---------------------------------------------------------------

Test(frame, zero_length_is_empty_header, .timeout = kTimeout) {
  FrameDecoder d;
  size_t used = 99;
  const std::string zero = prefix(0);
  const DecodeEvent ev = d.next(zero.data(), zero.size(), &used);
  cr_assert_eq(ev.kind, DecodeEvent::kError);
  cr_assert_eq(d.error().code, ErrorCode::kEmptyHeader);
  cr_assert_eq(used, 0u);
}

Test(frame, over_limit_rejected_from_the_prefix_alone, .timeout = kTimeout) {
  FrameDecoder d;
  size_t used = 0;
  const std::string big = prefix(70000);
  // Three bytes: not yet known.
  cr_assert_eq(d.next(big.data(), 3, &used).kind, DecodeEvent::kNeedMore);
  // The fourth: rejected without a single header byte having arrived.
  const DecodeEvent ev = d.next(big.data() + 3, 1, &used);
  cr_assert_eq(ev.kind, DecodeEvent::kError);
  cr_assert_eq(d.error().code, ErrorCode::kHeaderTooLarge);
  cr_assert_str_eq(d.error().message.c_str(), "header length 70000 exceeds the limit of 65536");
  cr_assert_eq(d.buffered(), 0u);
  // Sticky: nothing more is consumed.
  const std::string more = frame(R"({"type":"ping"})");
  cr_assert_eq(d.next(more.data(), more.size(), &used).kind, DecodeEvent::kError);
  cr_assert_eq(used, 0u);
  const DecodeEvent again = d.next(more.data(), more.size(), &used);
  cr_assert_eq(again.kind, DecodeEvent::kError);
  cr_assert_eq(used, 0u);
}

Test(frame, limit_is_inclusive, .timeout = kTimeout) {
  // A header of exactly kMaxHeaderLen bytes: an object padded with spaces.
  std::string header = R"({"type":"ping"})";
  header.resize(protocol::kMaxHeaderLen, ' ');
  cr_assert_eq(decode_whole(frame(header)).headers.size(), 1u);
  header += ' ';
  expect_rejected(header, ErrorCode::kHeaderTooLarge);
  // 0xFFFFFFFF, the largest the prefix can say.
  FrameDecoder d;
  size_t used = 0;
  const std::string max = prefix(0xffffffffu);
  cr_assert_eq(d.next(max.data(), 4, &used).kind, DecodeEvent::kError);
  cr_assert_eq(d.error().code, ErrorCode::kHeaderTooLarge);
}

Test(frame, pre_auth_limit_then_raised, .timeout = kTimeout) {
  std::string big = R"({"type":"ping"})";
  big.resize(5000, ' ');
  const ProtocolError e =
      expect_rejected(big, ErrorCode::kHeaderTooLarge, protocol::kMaxHeaderLenBeforeAuth);
  cr_assert_str_eq(e.message.c_str(), "header length 5000 exceeds the limit of 4096");

  // The server raises the limit once auth succeeds.
  FrameDecoder d(protocol::kMaxHeaderLenBeforeAuth);
  Transcript t;
  const std::string auth = frame(R"({"type":"auth"})");
  cr_assert(feed(d, auth.data(), auth.size(), &t));
  d.set_header_limit(protocol::kMaxHeaderLen);
  cr_assert_eq(d.header_limit(), protocol::kMaxHeaderLen);
  const std::string after = frame(big);
  cr_assert(feed(d, after.data(), after.size(), &t));
  cr_assert_eq(t.headers.size(), 2u);

  // And lowering works the same way.
  FrameDecoder low;
  low.set_header_limit(protocol::kMaxHeaderLenBeforeAuth);
  Transcript t2;
  cr_assert(!feed(low, after.data(), after.size(), &t2));
  cr_assert(t2.problem.empty(), "%s", t2.problem.c_str());
  cr_assert_eq(t2.code, ErrorCode::kHeaderTooLarge);
}

// ---- header rules ----------------------------------------------------------------

Test(header, invalid_utf8, .timeout = kTimeout) {
  const char* bad[] = {
      "\xc0\xaf",          // overlong '/'
      "\xc1\xbf",          // overlong
      "\xe0\x80\xaf",      // overlong 3-byte
      "\xf0\x80\x80\xaf",  // overlong 4-byte
      "\xed\xa0\x80",      // surrogate U+D800
      "\xed\xbf\xbf",      // surrogate U+DFFF
      "\xf4\x90\x80\x80",  // U+110000
      "\xf5\x80\x80\x80",  // beyond
      "\xff",
      "\xfe",
      "\x80",              // lone continuation
      "\xe2\x82",          // truncated (followed by the closing quote)
      "\xc3",              // truncated
      "\xf0\x9f\x98",      // truncated 4-byte
  };
  for (const char* b : bad) {
    expect_rejected(std::string(R"({"type":"msg","text":")") + b + "\"}", ErrorCode::kBadUtf8);
  }
  // In a key, and outside any string.
  expect_rejected("{\"\xff\":1}", ErrorCode::kBadUtf8);
  expect_rejected("{\"type\":\"ping\"}\xe2\x82", ErrorCode::kBadUtf8);
  // Truncated at the very end of the header.
  expect_rejected("{\"type\":\"\xe2\x82", ErrorCode::kBadUtf8);
  // Valid extremes pass.
  expect_accepted("{\"t\":\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 "
                  "\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"}");
}

Test(header, invalid_json, .timeout = kTimeout) {
  const char* bad[] = {
      R"({"type":})",
      R"({"type" "ping"})",
      R"({)",
      R"({"type":"ping")",
      R"({"type":"ping",})",
      R"({"a":[1,2,]})",
      R"({'type':'ping'})",
      R"({type:"ping"})",
      R"({"a":01})",
      R"({"a":1.})",
      R"({"a":.5})",
      R"({"a":-})",
      R"({"a":1e})",
      R"({"a":+1})",
      R"({"a":0x10})",
      R"({"a":NaN})",
      R"({"a":Infinity})",
      R"({"a":tru})",
      R"({"a":nul})",
      R"({"a":"unterminated})",
      R"({"a":"\x"})",
      R"({"a":"\u12"})",
      R"({"a":"\u12g4"})",
      R"({"a":"\uZZZZ"})",
      R"({"a":"\ud800"})",        // lone high surrogate escape
      R"({"a":"\udc00"})",        // lone low surrogate escape
      R"({"a":"end\)",            // header ends inside an escape
      "\xef\xbb\xbf{\"a\":1}",    // byte-order mark
      " ",
      "\n",
  };
  for (const char* b : bad) expect_rejected(b, ErrorCode::kBadJson);
  expect_accepted(R"({"a":-0,"b":0.5,"c":-1.25e+3,"d":1E-2,"e":[],"f":{},"g":true,"h":false,"i":null})");
  expect_accepted(R"({"a":"\ud83d\ude00 \/ \b\f\n\r\t"})");
}

Test(header, trailing_data, .timeout = kTimeout) {
  expect_rejected(R"({"type":"ping"}x)", ErrorCode::kBadJson);
  const ProtocolError e = expect_rejected(R"({"type":"ping"} {})", ErrorCode::kBadJson);
  cr_assert(e.message.find("after the JSON value") != std::string::npos, "%s", e.message.c_str());
  expect_rejected(R"({"type":"ping"}})", ErrorCode::kBadJson);
  expect_rejected(R"({"type":"ping"}[])", ErrorCode::kBadJson);
  expect_rejected(std::string(R"({"type":"ping"})") + '\0', ErrorCode::kBadJson);
  expect_accepted(" \t\r\n{\"type\":\"ping\"} \t\r\n");
}

Test(header, control_characters, .timeout = kTimeout) {
  expect_rejected("{\"text\":\"a\x01z\"}", ErrorCode::kBadJson);
  expect_rejected("{\"text\":\"a\tz\"}", ErrorCode::kBadJson);   // raw tab inside a string
  expect_rejected("{\"text\":\"a\nz\"}", ErrorCode::kBadJson);
  expect_rejected("{\"te\x1fxt\":1}", ErrorCode::kBadJson);      // in a key
  expect_rejected(std::string("{\"text\":\"a\0z\"}", 13), ErrorCode::kBadJson);
  expect_rejected("{\"a\":1,\x01\"b\":2}", ErrorCode::kBadJson);  // outside strings
  expect_rejected("{\"a\":1\x0b}", ErrorCode::kBadJson);          // vertical tab is not JSON space
  expect_rejected("\x0c{\"a\":1}", ErrorCode::kBadJson);
  const ProtocolError e = expect_rejected("{\"t\":\"\x07\"}", ErrorCode::kBadJson);
  cr_assert(e.message.find("0x07") != std::string::npos, "%s", e.message.c_str());
  // DEL (0x7f) is not a control character to JSON.
  expect_accepted("{\"text\":\"a\x7fz\"}");
}

Test(header, not_an_object, .timeout = kTimeout) {
  expect_rejected("[1,2]", ErrorCode::kNotObject);
  expect_rejected("[]", ErrorCode::kNotObject);
  expect_rejected("42", ErrorCode::kNotObject);
  expect_rejected("-1.5", ErrorCode::kNotObject);
  expect_rejected(R"("type")", ErrorCode::kNotObject);
  expect_rejected("true", ErrorCode::kNotObject);
  const ProtocolError e = expect_rejected("null", ErrorCode::kNotObject);
  cr_assert_str_eq(e.message.c_str(), "header is a JSON null, not an object");
}

Test(header, nesting_depth, .timeout = kTimeout) {
  // The top object is level 1: seven more levels make 8, the limit.
  expect_accepted("{\"a\":" + nested(7, "[", "]", "1") + "}");
  expect_accepted("{\"a\":" + nested(7, "{\"a\":", "}", "1") + "}");
  expect_accepted(R"({"a":"[[[[[[[[[[[[{{{{{{{{{{"})");  // brackets in strings do not count
  expect_rejected("{\"a\":" + nested(8, "[", "]", "1") + "}", ErrorCode::kTooDeep);
  expect_rejected("{\"a\":" + nested(8, "{\"b\":", "}", "1") + "}", ErrorCode::kTooDeep);
  expect_rejected(nested(9, "[", "]", ""), ErrorCode::kTooDeep);
  // Deep and broken: too_deep is found first, before cJSON would recurse.
  expect_rejected(std::string(10000, '['), ErrorCode::kTooDeep);
  expect_rejected(nested(10000, "[", "]", ""), ErrorCode::kTooDeep);
  expect_rejected(nested(5000, "{\"a\":", "}", "1"), ErrorCode::kTooDeep);
  // Siblings do not add up: depth, not count.
  std::string wide = "{\"a\":[";
  for (int i = 0; i < 500; ++i) wide += (i ? "," : "") + nested(6, "[", "]", "1");
  expect_accepted(wide + "]}");
}

Test(header, direct_parse_of_deep_input_does_not_crash, .timeout = kTimeout) {
  // No length limit in front of parse_header itself: 1 MB of brackets.
  const std::string deep(1 << 20, '[');
  ProtocolError err;
  cr_assert(!protocol::parse_header(deep, &err));
  cr_assert_eq(err.code, ErrorCode::kTooDeep);
}

Test(header, duplicate_keys, .timeout = kTimeout) {
  const ProtocolError e =
      expect_rejected(R"({"path":"a","type":"stat","path":"b"})", ErrorCode::kDuplicateKey);
  cr_assert_str_eq(e.message.c_str(), "duplicate key \"path\"");
  expect_rejected(R"({"type":"x","a":{"b":1,"b":2}})", ErrorCode::kDuplicateKey);
  expect_rejected(R"({"type":"x","a":[{"k":1},{"k":1,"k":2}]})", ErrorCode::kDuplicateKey);
  // Equal after unescaping is equal.
  expect_rejected(R"({"a":1,"\u0061":2})", ErrorCode::kDuplicateKey);
  // Case matters; the same key in sibling objects is fine.
  expect_accepted(R"({"a":1,"A":2,"x":{"a":1},"y":{"a":1}})");

  // Thousands of keys in one object: hashed, not compared pairwise.
  std::string many = "{";
  for (int i = 0; i < 5000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  expect_accepted(many + "}");
  expect_rejected(many + ",\"k4321\":2}", ErrorCode::kDuplicateKey);
}

Test(header, nul_escapes, .timeout = kTimeout) {
  expect_rejected(R"({"type":"msg","text":"a\u0000b"})", ErrorCode::kNulInString);
  expect_rejected(R"({"ty\u0000pe":"msg"})", ErrorCode::kNulInString);
  expect_rejected(R"({"a":["x","\u0000"]})", ErrorCode::kNulInString);
  expect_rejected(R"({"a":"\\\u0000"})", ErrorCode::kNulInString);  // \\ then \u0000
  // An escaped backslash followed by the text u0000 is six ordinary characters.
  ProtocolError err;
  protocol::JsonPtr json = protocol::parse_header(R"({"text":"\\u0000"})", &err);
  cr_assert(json, "%s", err.message.c_str());
  const cJSON* text = cJSON_GetObjectItemCaseSensitive(json.get(), "text");
  cr_assert_str_eq(text->valuestring, "\\u0000");
  expect_accepted(R"({"a":"\\\\u0000"})");
  expect_accepted(R"({"a":"\u0001\u00100"})");
}

Test(header, first_problem_in_byte_order_wins, .timeout = kTimeout) {
  // Too deep before the bad UTF-8; bad UTF-8 before the NUL escape.
  expect_rejected("{\"a\":[[[[[[[[\"\xff\"]]]]]]]]}", ErrorCode::kTooDeep);
  expect_rejected("{\"a\":\"\xff\\u0000\"}", ErrorCode::kBadUtf8);
  expect_rejected("{\"a\":\"\\u0000\xff\"}", ErrorCode::kNulInString);
}

// ---- encoding --------------------------------------------------------------------

Test(frame, encode_frame_round_trips, .timeout = kTimeout) {
  ProtocolError err;
  protocol::JsonPtr json =
      protocol::parse_header(R"( { "type" : "msg", "text" : "caf\u00e9\n", "n" : [1, 2] } )", &err);
  cr_assert(json);
  const std::string encoded = protocol::encode_frame(*json);
  const std::string compact = "{\"type\":\"msg\",\"text\":\"caf\xc3\xa9\\n\",\"n\":[1,2]}";
  cr_assert_eq(encoded.size(), 4 + compact.size());
  cr_assert(encoded.compare(0, 4, prefix(static_cast<uint32_t>(compact.size()))) == 0);
  cr_assert(encoded.compare(4, std::string::npos, compact) == 0, "%s", encoded.c_str() + 4);
  std::string out = "xx";
  protocol::append_frame(out, *json);
  cr_assert(out == "xx" + encoded);
  const Transcript t = decode_whole(encoded);
  cr_assert_eq(t.headers.size(), 1u);
  const std::string expected = compact + " body=0";
  cr_assert_str_eq(t.headers[0].c_str(), expected.c_str());
}

// A parsed header is freed by the next call to next(): an idle connection keeps no tree
// from its last request, while body_length() still describes the body that streams.
Test(frame, header_is_released_by_the_next_call, .timeout = kTimeout) {
  const std::string stream = frame(body_header(3), "abc") + frame(R"({"type":"ping"})", "");
  FrameDecoder d;
  size_t used = 0;
  DecodeEvent ev = d.next(stream.data(), stream.size(), &used);
  cr_assert_eq(ev.kind, DecodeEvent::kHeader);
  cr_assert(d.has_header());
  size_t pos = used;
  ev = d.next(stream.data() + pos, stream.size() - pos, &used);
  cr_assert_eq(ev.kind, DecodeEvent::kBody);
  cr_assert_not(d.has_header(), "the header outlived the call after its event");
  cr_assert_eq(d.body_length(), 3u);
  pos += used;
  ev = d.next(stream.data() + pos, stream.size() - pos, &used);
  cr_assert_eq(ev.kind, DecodeEvent::kHeader);
  pos += used;
  ev = d.next(stream.data() + pos, stream.size() - pos, &used);
  cr_assert_eq(ev.kind, DecodeEvent::kNeedMore);
  cr_assert_not(d.has_header());
}

// encode_frame prints into a reusable buffer sized for the protocol's limit; a header
// beyond it (a peer with a larger limit could take one) takes cJSON's allocating path and
// must come out the same.
Test(frame, encoding_within_and_beyond_the_print_buffer, .timeout = kTimeout) {
  for (size_t len : {size_t{10}, protocol::kMaxHeaderLen - 40, protocol::kMaxHeaderLen + 1000}) {
    protocol::JsonPtr header(cJSON_CreateObject());
    cr_assert_not_null(cJSON_AddStringToObject(header.get(), "type", "msg"));
    cr_assert_not_null(cJSON_AddStringToObject(header.get(), "text", std::string(len, 'x').c_str()));
    std::string frame = protocol::encode_frame(*header);
    std::string expected_json = R"({"type":"msg","text":")" + std::string(len, 'x') + "\"}";
    cr_assert_eq(frame.size(), 4 + expected_json.size(), "length %zu", len);
    cr_assert(frame.compare(4, std::string::npos, expected_json) == 0, "length %zu", len);
    uint32_t prefix = static_cast<uint32_t>(static_cast<unsigned char>(frame[0])) << 24 |
                      static_cast<uint32_t>(static_cast<unsigned char>(frame[1])) << 16 |
                      static_cast<uint32_t>(static_cast<unsigned char>(frame[2])) << 8 |
                      static_cast<uint32_t>(static_cast<unsigned char>(frame[3]));
    cr_assert_eq(prefix, expected_json.size());
  }
}
