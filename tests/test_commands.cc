// The client's request state machines (apps/reactorc/command.h, get_command.h) fed
// messages and body chunks directly, without a connection, and the generic
// app::StateMachine they keep their state in (apps/common/state_machine.h).
#include <criterion/criterion.h>
// Criterion's Test() expands to a C-style cast of the test function.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "apps/common/body_sink.h"
#include "apps/common/log.h"
#include "apps/common/state_machine.h"
#include "apps/reactorc/command.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/get_command.h"
#include "protocol/error_code.h"
#include "protocol/features.h"
#include "protocol/hex.h"
#include "protocol/messages.h"
#include "protocol/sha256.h"
#include "reactor/unique_fd.h"
#include "tests/support/assertions.h"
#include "tests/support/files.h"
#include "tests/support/temp_dir.h"

// One timeout for every test in this binary (HACKING.md, "Criterion pitfalls").
TestSuite(commands, .timeout = 60);

using client::CommandState;
using client::GetCommand;
using protocol::Message;
using testsupport::TempDir;

namespace {

// ---- helpers

// Delivers one message, as a Connection would (on_message takes a non-const reference).
template <typename Command, typename M>
void deliver(Command& command, M message) {
  Message m = std::move(message);
  command.on_message(m);
}

protocol::FileHeader file_header(const std::string& path, uint64_t size, int64_t mtime = 1'600'000'000,
                                 uint64_t offset = 0) {
  protocol::FileHeader header;
  header.path = path;
  header.size = size;
  header.offset = offset;
  header.mtime = mtime;
  header.mode = 0755;
  return header;
}

// Version 2's trailer: the chunk-tree root.
protocol::Digest root_of(const std::string& content) {
  protocol::Digest root{};
  cr_assert(protocol::from_hex(testsupport::tree_root_hex(content), &root));
  return root;
}

protocol::End end_for(const std::string& content) {
  protocol::End end;
  end.root = root_of(content);
  return end;
}

protocol::ErrorMessage error_message(protocol::ErrorCode code, const std::string& text) {
  protocol::ErrorMessage error;
  error.code = code;
  error.message = text;
  return error;
}

protocol::Entry entry(const std::string& name, protocol::EntryKind kind, uint64_t size) {
  protocol::Entry e;
  e.name = name;
  e.kind = kind;
  e.size = size;
  e.mtime = 1'700'000'000;
  return e;
}

// Feeds `content` as body chunks of at most `chunk` bytes, with the remaining count a
// FrameDecoder would report.
void feed_body(client::Command& command, const std::string& content, size_t chunk) {
  size_t done = 0;
  while (done < content.size()) {
    size_t n = std::min(chunk, content.size() - done);
    done += n;
    command.on_body(content.data() + done - n, n, content.size() - done);
  }
}

std::string state_name(CommandState state) { return client::to_string(state); }

void expect_state(const client::Command& command, CommandState want) {
  cr_assert(command.state() == want, "state: got %s, want %s", client::to_string(command.state()),
            client::to_string(want));
}

void expect_failed(const client::Command& command, int exit_code) {
  expect_state(command, CommandState::kFailed);
  cr_assert(command.finished());
  cr_assert(!command.succeeded());
  cr_assert_eq(command.result().exit_code, exit_code, "exit code %d, want %d (message \"%s\")",
               command.result().exit_code, exit_code, command.result().message.c_str());
}

void expect_done(const client::Command& command) {
  cr_assert(command.state() == CommandState::kDone, "state %s, message \"%s\"",
            client::to_string(command.state()), command.result().message.c_str());
  cr_assert(command.finished());
  cr_assert(command.succeeded());
  cr_assert_eq(command.result().exit_code, 0);
  ASSERT_STR_EQ(command.result().message, "");
}

std::vector<std::string> dir_entries(const TempDir& dir) {
  std::string err;
  auto names = testsupport::list_dir(dir.path(), &err);
  cr_assert(names.has_value(), "%s", err.c_str());
  return *names;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return "[" + out + "]";
}

void expect_dir_empty(const TempDir& dir) {
  std::vector<std::string> names = dir_entries(dir);
  cr_assert(names.empty(), "expected an empty directory, found %s", join(names).c_str());
}

bool is_temp_for(const std::string& entry_name, const std::string& name) {
  const std::string prefix = "." + name + ".";
  const std::string suffix = ".part";
  // ".NAME." + six random characters + ".part"
  return entry_name.size() == prefix.size() + 6 + suffix.size() && entry_name.compare(0, prefix.size(), prefix) == 0 &&
         entry_name.compare(entry_name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A sink writing NAME into DIR, through an O_PATH directory descriptor.
std::unique_ptr<app::BodySink> file_sink(const TempDir& dir, const std::string& name, bool overwrite = false) {
  int fd = open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  cr_assert(fd >= 0, "open %s: %s", dir.path().c_str(), strerror(errno));
  auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
  std::string err;
  cr_assert(sink->open_file(reactor::UniqueFd(fd), name, "dl/" + name, overwrite, &err), "open_file: %s",
            err.c_str());
  return sink;
}

std::unique_ptr<app::BodySink> hash_sink() {
  return std::make_unique<app::BodySink>(app::BodySink::Hashing::kInline, protocol::DigestKind::kSha256);
}

// Content that is not one repeated byte, so misordered or dropped chunks show.
std::string sample_content(size_t size) {
  std::string out(size, '\0');
  uint32_t x = 2463534242u;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

class RecordingObserver final : public client::GetObserver {
 public:
  void on_file(const protocol::FileHeader& header) override { headers.push_back(header); }
  void on_received(uint64_t bytes) override { received.push_back(bytes); }

  std::vector<protocol::FileHeader> headers;
  std::vector<uint64_t> received;
};

// stderr into a pipe for the duration of one call: the state machine's error log.
class StderrCapture {
 public:
  StderrCapture() {
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    saved_ = dup(STDERR_FILENO);
    cr_assert(saved_ >= 0);
    cr_assert(dup2(write_fd_, STDERR_FILENO) >= 0);
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Puts stderr back and returns what was written meanwhile (one log line fits a pipe).
  std::string finish() {
    restore();
    std::string out;
    char buf[4096];
    for (int i = 0; i < 1000; ++i) {
      ssize_t n = read(read_fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    close(read_fd_);
    read_fd_ = -1;
    return out;
  }

 private:
  void restore() {
    if (saved_ >= 0) {
      dup2(saved_, STDERR_FILENO);
      close(saved_);
      saved_ = -1;
    }
    if (write_fd_ >= 0) {
      close(write_fd_);
      write_fd_ = -1;
    }
  }
  int read_fd_ = -1;
  int write_fd_ = -1;
  int saved_ = -1;
};

// ---- a state machine of its own for app::StateMachine

enum class Light { kRed, kGreen, kYellow, kOff };

const char* light_name(Light light) {
  switch (light) {
    case Light::kRed: return "red";
    case Light::kGreen: return "green";
    case Light::kYellow: return "yellow";
    case Light::kOff: return "off";
  }
  return "?";
}

constexpr app::Edge<Light> kLightEdges[] = {
    {Light::kRed, Light::kGreen},
    {Light::kGreen, Light::kYellow},
    {Light::kYellow, Light::kRed},
    {Light::kRed, Light::kOff},
};

constexpr app::Edge<Light> kOneEdge[] = {{Light::kOff, Light::kRed}};

}  // namespace

// ==== app::StateMachine

Test(commands, state_machine_starts_in_initial_state_and_knows_its_edges) {
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kRed, kDiagram);
  cr_assert(machine.state() == Light::kRed);
  cr_assert(machine.is(Light::kRed));
  cr_assert(!machine.is(Light::kGreen));
  for (const auto& edge : kLightEdges) {
    cr_assert(machine.has_edge(edge.from, edge.to), "%s -> %s", light_name(edge.from), light_name(edge.to));
  }
  // Reverse edges, self edges and edges out of a sink state are not in the table.
  cr_assert(!machine.has_edge(Light::kGreen, Light::kRed));
  cr_assert(!machine.has_edge(Light::kRed, Light::kYellow));
  cr_assert(!machine.has_edge(Light::kRed, Light::kRed));
  cr_assert(!machine.has_edge(Light::kOff, Light::kRed));
  cr_assert(!machine.has_edge(Light::kOff, Light::kOff));
}

Test(commands, state_machine_follows_allowed_edges) {
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kRed, kDiagram);
  auto who = [] { return std::string("light #1"); };
  cr_assert(machine.transition(Light::kGreen, who));
  cr_assert(machine.is(Light::kGreen));
  cr_assert(machine.transition(Light::kYellow, who));
  cr_assert(machine.is(Light::kYellow));
  cr_assert(machine.transition(Light::kRed, who));
  cr_assert(machine.is(Light::kRed));
  cr_assert(machine.transition(Light::kOff, who));
  cr_assert(machine.is(Light::kOff));
}

Test(commands, state_machine_refuses_edges_not_in_the_table) {
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kRed, kDiagram);
  auto who = [] { return std::string("light #1"); };
  cr_assert(!machine.transition(Light::kYellow, who));  // skips green
  cr_assert(machine.is(Light::kRed));
  cr_assert(!machine.transition(Light::kRed, who));  // no self edge
  cr_assert(machine.is(Light::kRed));
  cr_assert(machine.transition(Light::kGreen, who));
  cr_assert(!machine.transition(Light::kRed, who));  // no way back
  cr_assert(machine.is(Light::kGreen));
  cr_assert(!machine.transition(Light::kOff, who));
  cr_assert(machine.is(Light::kGreen));
  // A refusal does not wedge the machine: the allowed edge still works.
  cr_assert(machine.transition(Light::kYellow, who));
  cr_assert(machine.is(Light::kYellow));
}

Test(commands, state_machine_from_sink_state_refuses_everything) {
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kOff, kDiagram);
  auto who = [] { return std::string("light"); };
  for (Light next : {Light::kRed, Light::kGreen, Light::kYellow, Light::kOff}) {
    cr_assert(!machine.transition(next, who), "off -> %s", light_name(next));
    cr_assert(machine.is(Light::kOff));
  }
}

Test(commands, state_machine_with_a_single_edge) {
  static constexpr app::Diagram<Light> kDiagram{kOneEdge, light_name};
  app::StateMachine<Light> machine(Light::kOff, kDiagram);
  cr_assert(machine.has_edge(Light::kOff, Light::kRed));
  cr_assert(!machine.has_edge(Light::kRed, Light::kGreen));  // in kLightEdges, not in this table
  cr_assert(machine.transition(Light::kRed, [] { return std::string("one"); }));
  cr_assert(machine.is(Light::kRed));
  cr_assert(!machine.transition(Light::kGreen, [] { return std::string("one"); }));
  cr_assert(machine.is(Light::kRed));
}

Test(commands, state_machine_logs_a_refused_edge_as_an_error) {
  app::log_init("test_commands", app::LogLevel::kInfo, false);
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kGreen, kDiagram);
  int calls = 0;
  auto who = [&calls] {
    ++calls;
    return std::string("light #7");
  };
  StderrCapture capture;
  bool moved = machine.transition(Light::kRed, who);
  std::string logged = capture.finish();
  cr_assert(!moved);
  cr_assert(machine.is(Light::kGreen));
  cr_assert_eq(calls, 1);
  ASSERT_STR_EQ(logged, "test_commands: error: light #7: internal error: no transition green -> red\n");
}

Test(commands, state_machine_builds_no_name_for_an_allowed_edge_unless_debugging) {
  app::log_init("test_commands", app::LogLevel::kInfo, false);
  static constexpr app::Diagram<Light> kDiagram{kLightEdges, light_name};
  app::StateMachine<Light> machine(Light::kRed, kDiagram);
  int calls = 0;
  auto who = [&calls] {
    ++calls;
    return std::string("light #7");
  };
  StderrCapture quiet;
  cr_assert(machine.transition(Light::kGreen, who));
  std::string logged = quiet.finish();
  cr_assert_eq(calls, 0, "who() called %d times for an allowed edge at info level", calls);
  ASSERT_STR_EQ(logged, "");

  app::log_init("test_commands", app::LogLevel::kDebug, false);
  StderrCapture debug;
  cr_assert(machine.transition(Light::kYellow, who));
  logged = debug.finish();
  cr_assert_eq(calls, 1);
  ASSERT_STR_EQ(logged, "test_commands: light #7: green -> yellow\n");
  cr_assert(machine.is(Light::kYellow));
}

// ==== names and describe()

Test(commands, command_state_names) {
  ASSERT_STR_EQ(state_name(CommandState::kRequested), "requested");
  ASSERT_STR_EQ(state_name(CommandState::kReceiving), "receiving");
  ASSERT_STR_EQ(state_name(CommandState::kVerifying), "verifying");
  ASSERT_STR_EQ(state_name(CommandState::kCommitting), "committing");
  ASSERT_STR_EQ(state_name(CommandState::kDone), "done");
  ASSERT_STR_EQ(state_name(CommandState::kFailed), "failed");
}

Test(commands, describe_is_code_colon_message) {
  ASSERT_STR_EQ(client::describe(error_message(protocol::ErrorCode::kNotFound, "\"x\" does not exist")),
                "not_found: \"x\" does not exist");
  ASSERT_STR_EQ(client::describe(error_message(protocol::ErrorCode::kFileChanged, "")), "file_changed: ");
}

Test(commands, describe_escapes_the_message_for_the_terminal) {
  ASSERT_STR_EQ(client::describe(error_message(protocol::ErrorCode::kForbidden, "no\x1b[2J\r\nway\\")),
                "forbidden: no\\x1b[2J\\x0d\\x0away\\\\");
  // Printable UTF-8 passes unchanged.
  ASSERT_STR_EQ(client::describe(error_message(protocol::ErrorCode::kIoError, "\xe2\x9c\x88 down")),
                "io_error: \xe2\x9c\x88 down");
}

// ==== requests: what each command sends

Test(commands, requests_features_and_names) {
  client::StatCommand stat("a/b");
  client::PingCommand ping;
  client::MsgCommand msg("hello");
  client::ListCommand list("dir");
  GetCommand get("remote/file", hash_sink());

  Message m = stat.request();
  auto* stat_request = std::get_if<protocol::StatRequest>(&m);
  cr_assert(stat_request != nullptr, "stat sends %s", protocol::type_name(m));
  ASSERT_STR_EQ(stat_request->path, "a/b");
  ASSERT_STR_EQ(stat.feature(), protocol::kFeatureStat);
  ASSERT_STR_EQ(stat.name(), "stat");

  m = ping.request();
  cr_assert(std::get_if<protocol::PingRequest>(&m) != nullptr, "ping sends %s", protocol::type_name(m));
  ASSERT_STR_EQ(ping.feature(), protocol::kFeaturePing);
  ASSERT_STR_EQ(ping.name(), "ping");

  m = msg.request();
  auto* msg_request = std::get_if<protocol::MsgRequest>(&m);
  cr_assert(msg_request != nullptr, "msg sends %s", protocol::type_name(m));
  ASSERT_STR_EQ(msg_request->text, "hello");
  ASSERT_STR_EQ(msg.feature(), protocol::kFeatureMsg);
  ASSERT_STR_EQ(msg.name(), "msg");

  m = list.request();
  auto* list_request = std::get_if<protocol::ListRequest>(&m);
  cr_assert(list_request != nullptr, "list sends %s", protocol::type_name(m));
  ASSERT_STR_EQ(list_request->path, "dir");
  cr_assert(!list_request->links && !list_request->recursive);
  client::ListCommand long_list("dir", true);
  Message lm = long_list.request();
  cr_assert(std::get<protocol::ListRequest>(lm).links, "ls -l asks for links with their targets");
  ASSERT_STR_EQ(list.feature(), protocol::kFeatureList);
  ASSERT_STR_EQ(list.name(), "list");

  m = get.request();
  auto* get_request = std::get_if<protocol::GetRequest>(&m);
  cr_assert(get_request != nullptr, "get sends %s", protocol::type_name(m));
  ASSERT_STR_EQ(get_request->path, "remote/file");
  cr_assert_eq(get_request->offset, 0u);
  ASSERT_STR_EQ(get.feature(), protocol::kFeatureGet);
  ASSERT_STR_EQ(get.name(), "get");

  for (const client::Command* command : std::vector<const client::Command*>{&stat, &ping, &msg, &list, &get}) {
    expect_state(*command, CommandState::kRequested);
    cr_assert(!command->finished());
    cr_assert(!command->succeeded());
    cr_assert_eq(command->result().exit_code, 0);
  }
}

// ==== stat

Test(commands, stat_success_keeps_the_reply) {
  client::StatCommand stat("a/b");
  protocol::StatReply reply;
  reply.path = "a/b";
  reply.kind = protocol::EntryKind::kFile;
  reply.size = 12345;
  reply.mtime = 1'650'000'000;
  reply.mode = 0640;
  deliver(stat, reply);
  expect_done(stat);
  ASSERT_STR_EQ(stat.reply().path, "a/b");
  cr_assert(stat.reply().kind == protocol::EntryKind::kFile);
  cr_assert_eq(stat.reply().size, 12345u);
  cr_assert_eq(stat.reply().mtime, 1'650'000'000);
  cr_assert_eq(stat.reply().mode, 0640u);
}

Test(commands, stat_error_reply_is_remote_failure) {
  client::StatCommand stat("missing");
  auto error = error_message(protocol::ErrorCode::kNotFound, "\"missing\" does not exist");
  deliver(stat, error);
  expect_failed(stat, client::kExitRemote);
  ASSERT_STR_EQ(stat.result().message, client::describe(error));
  ASSERT_STR_EQ(stat.result().message, "not_found: \"missing\" does not exist");
}

Test(commands, stat_unexpected_reply_is_protocol_failure) {
  client::StatCommand stat("a");
  deliver(stat, protocol::Pong{});
  expect_failed(stat, client::kExitProtocol);
  ASSERT_STR_EQ(stat.result().message, "unexpected reply from the server: pong");
}

Test(commands, stat_refuses_a_body) {
  client::StatCommand stat("a");
  stat.on_body("xyz", 3, 0);
  expect_failed(stat, client::kExitProtocol);
  ASSERT_STR_EQ(stat.result().message, "the server sent an unexpected body");
}

// ==== ping

Test(commands, ping_success) {
  client::PingCommand ping;
  protocol::Pong pong;
  pong.token = "t0k";
  deliver(ping, pong);
  expect_done(ping);
}

Test(commands, ping_error_reply_is_remote_failure) {
  client::PingCommand ping;
  auto error = error_message(protocol::ErrorCode::kShuttingDown, "going away");
  deliver(ping, error);
  expect_failed(ping, client::kExitRemote);
  ASSERT_STR_EQ(ping.result().message, "shutting_down: going away");
}

Test(commands, ping_unexpected_reply_is_protocol_failure) {
  client::PingCommand ping;
  protocol::MsgOk ok;
  ok.bytes = 3;
  deliver(ping, ok);
  expect_failed(ping, client::kExitProtocol);
  ASSERT_STR_EQ(ping.result().message, "unexpected reply from the server: msg_ok");
}

// ==== msg

Test(commands, msg_success_records_bytes) {
  client::MsgCommand msg("hello");
  protocol::MsgOk ok;
  ok.bytes = 5;
  deliver(msg, ok);
  expect_done(msg);
  cr_assert_eq(msg.bytes(), 5u);
}

Test(commands, msg_error_reply_is_remote_failure) {
  client::MsgCommand msg("hello");
  auto error = error_message(protocol::ErrorCode::kIoError, "log\x07 full");
  deliver(msg, error);
  expect_failed(msg, client::kExitRemote);
  ASSERT_STR_EQ(msg.result().message, "io_error: log\\x07 full");
  cr_assert_eq(msg.bytes(), 0u);
}

Test(commands, msg_unexpected_reply_is_protocol_failure) {
  client::MsgCommand msg("hello");
  deliver(msg, protocol::Pong{});
  expect_failed(msg, client::kExitProtocol);
  ASSERT_STR_EQ(msg.result().message, "unexpected reply from the server: pong");
}

// ==== list

Test(commands, list_entries_across_frames_then_list_end) {
  client::ListCommand list("dir");
  protocol::Entries first;
  first.entries = {entry("b.txt", protocol::EntryKind::kFile, 10), entry("a", protocol::EntryKind::kDir, 0)};
  deliver(list, first);
  expect_state(list, CommandState::kReceiving);
  cr_assert(!list.finished());

  protocol::Entries second;
  second.entries = {entry("c", protocol::EntryKind::kOther, 0)};
  deliver(list, second);
  expect_state(list, CommandState::kReceiving);

  deliver(list, protocol::Entries{});  // an empty frame is harmless
  expect_state(list, CommandState::kReceiving);

  protocol::Entries third;
  third.entries = {entry("d.bin", protocol::EntryKind::kFile, 4096), entry("e", protocol::EntryKind::kFile, 1)};
  deliver(list, third);

  protocol::ListEnd end;
  end.count = 5;
  deliver(list, end);
  expect_done(list);
  cr_assert_eq(list.skipped(), 0u);

  const std::vector<protocol::Entry>& entries = list.entries();
  cr_assert_eq(entries.size(), 5u);
  const char* names[] = {"b.txt", "a", "c", "d.bin", "e"};  // arrival order; sorting is for display
  for (size_t i = 0; i < 5; ++i) ASSERT_STR_EQ(entries[i].name, names[i]);
  cr_assert(entries[0].kind == protocol::EntryKind::kFile);
  cr_assert_eq(entries[0].size, 10u);
  cr_assert(entries[1].kind == protocol::EntryKind::kDir);
  cr_assert(entries[2].kind == protocol::EntryKind::kOther);
  cr_assert_eq(entries[3].size, 4096u);
  cr_assert_eq(entries[4].mtime, 1'700'000'000);
}

Test(commands, list_empty_listing) {
  client::ListCommand list("empty");
  deliver(list, protocol::ListEnd{});
  expect_done(list);
  cr_assert(list.entries().empty());
  cr_assert_eq(list.skipped(), 0u);
}

Test(commands, list_records_skipped_count) {
  client::ListCommand list("dir");
  protocol::Entries batch;
  batch.entries = {entry("ok", protocol::EntryKind::kFile, 1)};
  deliver(list, batch);
  protocol::ListEnd end;
  end.count = 1;
  end.skipped = 3;
  deliver(list, end);
  expect_done(list);
  cr_assert_eq(list.skipped(), 3u);
  cr_assert_eq(list.entries().size(), 1u);
}

Test(commands, list_error_reply_is_remote_failure) {
  client::ListCommand list("nope");
  deliver(list, error_message(protocol::ErrorCode::kNotDirectory, "\"nope\" is not a directory"));
  expect_failed(list, client::kExitRemote);
  ASSERT_STR_EQ(list.result().message, "not_directory: \"nope\" is not a directory");
}

Test(commands, list_error_reply_mid_listing_is_remote_failure) {
  client::ListCommand list("dir");
  protocol::Entries batch;
  batch.entries = {entry("x", protocol::EntryKind::kFile, 1)};
  deliver(list, batch);
  expect_state(list, CommandState::kReceiving);
  deliver(list, error_message(protocol::ErrorCode::kIoError, "readdir failed"));
  expect_failed(list, client::kExitRemote);
  ASSERT_STR_EQ(list.result().message, "io_error: readdir failed");
}

Test(commands, list_unexpected_reply_is_protocol_failure) {
  client::ListCommand list("dir");
  deliver(list, protocol::Pong{});
  expect_failed(list, client::kExitProtocol);
  ASSERT_STR_EQ(list.result().message, "unexpected reply from the server: pong");
}

Test(commands, list_unexpected_reply_while_receiving_is_protocol_failure) {
  client::ListCommand list("dir");
  protocol::Entries batch;
  batch.entries = {entry("x", protocol::EntryKind::kFile, 1)};
  deliver(list, batch);
  deliver(list, protocol::StatReply{});
  expect_failed(list, client::kExitProtocol);
  ASSERT_STR_EQ(list.result().message, "unexpected reply from the server: stat_ok");
}

Test(commands, list_refuses_a_body) {
  client::ListCommand list("dir");
  list.on_body("x", 1, 0);
  expect_failed(list, client::kExitProtocol);
  ASSERT_STR_EQ(list.result().message, "the server sent an unexpected body");
}

// One batch over the cap. Default-constructed entries (short names live inline in the
// std::string) make this ~560 MB of plain memory and no copies: the command refuses the
// batch before it takes any of it.
Test(commands, list_refuses_a_batch_over_the_entry_cap) {
  cr_assert_eq(client::ListCommand::kMaxEntries, 10'000'000u);
  client::ListCommand list("huge");
  protocol::Entries batch;
  batch.entries.resize(client::ListCommand::kMaxEntries + 1);
  deliver(list, std::move(batch));
  expect_failed(list, client::kExitProtocol);
  ASSERT_STR_EQ(list.result().message, "the listing is larger than 10,000,000 entries; giving up");
  cr_assert(list.entries().empty());
}

// Exactly the cap is a listing; one more entry in a later frame is not.
Test(commands, list_cap_counts_across_frames_and_allows_exactly_the_cap) {
  client::ListCommand list("huge");
  {
    protocol::Entries batch;
    batch.entries.resize(client::ListCommand::kMaxEntries);
    deliver(list, std::move(batch));
  }
  expect_state(list, CommandState::kReceiving);
  cr_assert_eq(list.entries().size(), client::ListCommand::kMaxEntries);
  protocol::Entries one;
  one.entries = {entry("straw", protocol::EntryKind::kFile, 1)};
  deliver(list, one);
  expect_failed(list, client::kExitProtocol);
  ASSERT_STR_EQ(list.result().message, "the listing is larger than 10,000,000 entries; giving up");
}

// ==== abandon and results of finished commands

Test(commands, abandon_fails_an_unfinished_command) {
  client::StatCommand stat("a");
  stat.abandon(client::kExitProtocol, "the connection was lost");
  expect_failed(stat, client::kExitProtocol);
  ASSERT_STR_EQ(stat.result().message, "the connection was lost");

  client::ListCommand list("dir");
  protocol::Entries batch;
  batch.entries = {entry("x", protocol::EntryKind::kFile, 1)};
  deliver(list, batch);
  list.abandon(client::kExitInterrupted, "interrupted");
  expect_failed(list, client::kExitInterrupted);
  ASSERT_STR_EQ(list.result().message, "interrupted");
}

Test(commands, abandon_after_done_is_ignored) {
  client::PingCommand ping;
  deliver(ping, protocol::Pong{});
  expect_done(ping);
  ping.abandon(client::kExitProtocol, "the connection was lost");
  expect_done(ping);

  client::ListCommand list("dir");
  deliver(list, protocol::ListEnd{});
  list.abandon(client::kExitProtocol, "the connection was lost");
  expect_done(list);
}

Test(commands, a_failed_command_keeps_its_first_result) {
  client::MsgCommand msg("x");
  deliver(msg, error_message(protocol::ErrorCode::kBusy, "later"));
  expect_failed(msg, client::kExitRemote);
  msg.abandon(client::kExitProtocol, "the connection was lost");
  deliver(msg, error_message(protocol::ErrorCode::kInternal, "second"));
  expect_failed(msg, client::kExitRemote);
  ASSERT_STR_EQ(msg.result().message, "busy: later");
}

// ==== get

Test(commands, get_happy_path_writes_the_file) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("remote/out.bin", file_sink(*dir, "out.bin"), &observer);
  cr_assert(get.sink().has_file());

  const std::string content = sample_content(10000);
  const int64_t mtime = 1'234'567'890;
  deliver(get, file_header("remote/out.bin", content.size(), mtime));
  expect_state(get, CommandState::kReceiving);
  cr_assert(get.started());
  cr_assert_eq(observer.headers.size(), 1u);
  ASSERT_STR_EQ(observer.headers[0].path, "remote/out.bin");
  cr_assert_eq(observer.headers[0].size, content.size());
  cr_assert_eq(observer.headers[0].mtime, mtime);

  feed_body(get, content, 4096);  // 4096 + 4096 + 1808
  expect_state(get, CommandState::kReceiving);
  cr_assert_eq(get.received(), content.size());
  cr_assert_eq(observer.received.size(), 3u);
  cr_assert_eq(observer.received[0], 4096u);
  cr_assert_eq(observer.received[1], 8192u);
  cr_assert_eq(observer.received[2], 10000u);

  // Until verified, only the temporary exists.
  std::vector<std::string> names = dir_entries(*dir);
  cr_assert_eq(names.size(), 1u, "%s", join(names).c_str());
  cr_assert(is_temp_for(names[0], "out.bin"), "%s", names[0].c_str());
  ASSERT_STR_EQ(get.sink().temp_name(), names[0]);

  deliver(get, end_for(content));
  expect_done(get);
  cr_assert(get.digest() == root_of(content));

  names = dir_entries(*dir);
  cr_assert(names == std::vector<std::string>{"out.bin"}, "%s", join(names).c_str());
  auto data = testsupport::read_file(dir->path("out.bin"));
  cr_assert(data.has_value());
  cr_assert(*data == content, "content differs (%zu bytes, want %zu)", data->size(), content.size());

  struct stat st {};
  cr_assert_eq(stat(dir->path("out.bin").c_str(), &st), 0);
  cr_assert_eq(st.st_mtim.tv_sec, mtime);
  mode_t mask = umask(0);
  umask(mask);
  cr_assert_eq(st.st_mode & 07777, 0666 & ~mask, "mode %o", st.st_mode & 07777);
  cr_assert_eq(observer.headers.size(), 1u);
}

Test(commands, get_single_byte_chunks) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("r", file_sink(*dir, "f"), &observer);
  const std::string content = "hello, world";
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 1);
  cr_assert_eq(observer.received.size(), content.size());
  for (size_t i = 0; i < content.size(); ++i) cr_assert_eq(observer.received[i], i + 1);
  deliver(get, end_for(content));
  expect_done(get);
  auto data = testsupport::read_file(dir->path("f"));
  cr_assert(data.has_value());
  ASSERT_STR_EQ(*data, content);
}

Test(commands, get_overwrite_replaces_an_existing_file) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  cr_assert(testsupport::write_file(dir->path("f"), "old contents"));
  GetCommand get("r", file_sink(*dir, "f", /*overwrite=*/true));
  const std::string content = "new";
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 2);
  deliver(get, end_for(content));
  expect_done(get);
  auto data = testsupport::read_file(dir->path("f"));
  cr_assert(data.has_value());
  ASSERT_STR_EQ(*data, "new");
  cr_assert(dir_entries(*dir) == std::vector<std::string>{"f"}, "%s", join(dir_entries(*dir)).c_str());
}

Test(commands, get_digest_mismatch_keeps_nothing) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "out.bin"));
  const std::string content = sample_content(5000);
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 1500);
  protocol::End end = end_for("something else entirely");
  deliver(get, end);
  expect_failed(get, client::kExitVerify);

  protocol::Digest actual = root_of(content);
  cr_assert(get.digest() == actual);
  const std::string message = get.result().message;
  ASSERT_CONTAINS(message, "chunk-tree root mismatch");
  ASSERT_CONTAINS(message, "expected " + protocol::to_hex(*end.root));
  ASSERT_CONTAINS(message, "got " + protocol::to_hex(actual));
  ASSERT_CONTAINS(message, "nothing was kept");
  expect_dir_empty(*dir);
}

Test(commands, get_error_reply_before_header_is_remote_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("secret", file_sink(*dir, "secret"), &observer);
  auto error = error_message(protocol::ErrorCode::kForbidden, "\"secret\" is outside\x1b the root");
  deliver(get, error);
  expect_failed(get, client::kExitRemote);
  ASSERT_STR_EQ(get.result().message, client::describe(error));
  ASSERT_STR_EQ(get.result().message, "forbidden: \"secret\" is outside\\x1b the root");
  cr_assert(!get.started());
  cr_assert(observer.headers.empty());
  expect_dir_empty(*dir);  // the temporary open_file made is gone too
}

Test(commands, get_error_trailer_after_body_keeps_nothing) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  const std::string content = sample_content(3000);
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 1000);
  auto error = error_message(protocol::ErrorCode::kFileChanged, "\"r\" changed while it was being sent");
  deliver(get, error);
  expect_failed(get, client::kExitRemote);
  ASSERT_STR_EQ(get.result().message, "file_changed: \"r\" changed while it was being sent");
  cr_assert(get.started());
  expect_dir_empty(*dir);
}

Test(commands, get_end_before_header_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  deliver(get, end_for(""));
  expect_failed(get, client::kExitProtocol);
  ASSERT_CONTAINS(get.result().message, "ended the transfer early");
  expect_dir_empty(*dir);
}

Test(commands, get_end_before_all_body_bytes_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  const std::string content = sample_content(100);
  deliver(get, file_header("r", content.size()));
  get.on_body(content.data(), 60, 40);
  // The digest of what did arrive: the count, not the hash, must catch this.
  deliver(get, end_for(content.substr(0, 60)));
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "the server ended the transfer early");
  expect_dir_empty(*dir);
}

Test(commands, get_header_with_offset_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("r", file_sink(*dir, "f"), &observer);
  deliver(get, file_header("r", 100, 1'600'000'000, /*offset=*/10));
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "unexpected file header from the server");
  cr_assert(!get.started());
  cr_assert(observer.headers.empty());
  expect_dir_empty(*dir);
}

Test(commands, get_second_header_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("r", file_sink(*dir, "f"), &observer);
  deliver(get, file_header("r", 4));
  get.on_body("ab", 2, 2);
  deliver(get, file_header("r", 4));
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "unexpected file header from the server");
  cr_assert_eq(observer.headers.size(), 1u);
  expect_dir_empty(*dir);
}

Test(commands, get_second_header_after_complete_body_is_protocol_failure) {
  GetCommand get("r", hash_sink());
  deliver(get, file_header("r", 2));
  get.on_body("ab", 2, 0);
  deliver(get, file_header("r", 2));
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "unexpected file header from the server");
}

Test(commands, get_body_before_header_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("r", file_sink(*dir, "f"), &observer);
  get.on_body("abc", 3, 0);
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "the server sent an unexpected body");
  cr_assert_eq(get.received(), 0u);
  cr_assert(observer.received.empty());
  expect_dir_empty(*dir);
}

Test(commands, get_unexpected_reply_type_is_protocol_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  deliver(get, protocol::Pong{});
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "unexpected reply from the server: pong");
  expect_dir_empty(*dir);
}

Test(commands, get_unexpected_reply_mid_body_keeps_nothing) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  deliver(get, file_header("r", 10));
  get.on_body("01234", 5, 5);
  deliver(get, protocol::ListEnd{});
  expect_failed(get, client::kExitProtocol);
  ASSERT_STR_EQ(get.result().message, "unexpected reply from the server: list_end");
  expect_dir_empty(*dir);
}

Test(commands, get_abandon_mid_body_removes_the_temporary) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  deliver(get, file_header("r", 10));
  get.on_body("01234", 5, 5);
  std::vector<std::string> names = dir_entries(*dir);
  cr_assert_eq(names.size(), 1u, "%s", join(names).c_str());
  cr_assert(is_temp_for(names[0], "f"), "%s", names[0].c_str());

  get.abandon(client::kExitInterrupted, "interrupted: the partial download was removed");
  expect_failed(get, client::kExitInterrupted);
  ASSERT_STR_EQ(get.result().message, "interrupted: the partial download was removed");
  expect_dir_empty(*dir);

  // A finished get ignores whatever still arrives.
  get.on_body("56789", 5, 0);
  deliver(get, end_for("0123456789"));
  expect_failed(get, client::kExitInterrupted);
  cr_assert_eq(get.received(), 5u);
  expect_dir_empty(*dir);
}

Test(commands, get_abandon_before_header_removes_the_temporary) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  cr_assert_eq(dir_entries(*dir).size(), 1u);  // open_file created the temporary
  get.abandon(client::kExitProtocol, "the connection was lost");
  expect_failed(get, client::kExitProtocol);
  expect_dir_empty(*dir);
}

Test(commands, get_abandon_after_done_is_ignored) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  const std::string content = "done and dusted";
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 4);
  deliver(get, end_for(content));
  expect_done(get);
  get.abandon(client::kExitProtocol, "the connection was lost");
  expect_done(get);
  auto data = testsupport::read_file(dir->path("f"));
  cr_assert(data.has_value(), "the committed file was removed");
  ASSERT_STR_EQ(*data, content);
  // Nor does anything arriving later change it.
  deliver(get, error_message(protocol::ErrorCode::kIoError, "late"));
  expect_done(get);
  cr_assert(dir_entries(*dir) == std::vector<std::string>{"f"}, "%s", join(dir_entries(*dir)).c_str());
}

Test(commands, get_zero_length_file) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  RecordingObserver observer;
  GetCommand get("empty", file_sink(*dir, "empty"), &observer);
  deliver(get, file_header("empty", 0, 1'000'000'000));
  expect_state(get, CommandState::kReceiving);
  deliver(get, end_for(""));
  expect_done(get);
  cr_assert_eq(observer.headers.size(), 1u);
  cr_assert(observer.received.empty());
  cr_assert_eq(get.received(), 0u);
  cr_assert(dir_entries(*dir) == std::vector<std::string>{"empty"}, "%s", join(dir_entries(*dir)).c_str());
  auto size = testsupport::file_size(dir->path("empty"));
  cr_assert(size.has_value());
  cr_assert_eq(*size, 0u);
  struct stat st {};
  cr_assert_eq(stat(dir->path("empty").c_str(), &st), 0);
  cr_assert_eq(st.st_mtim.tv_sec, 1'000'000'000);
}

Test(commands, get_hash_only_sink_success) {
  RecordingObserver observer;
  GetCommand get("r", hash_sink(), &observer);
  cr_assert(!get.sink().has_file());
  const std::string content = sample_content(7777);
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 1000);
  cr_assert_eq(observer.received.size(), 8u);
  cr_assert_eq(observer.received.back(), 7777u);
  deliver(get, end_for(content));
  expect_done(get);
  cr_assert(get.digest() == root_of(content));
  cr_assert_eq(get.sink().written(), 7777u);
}

Test(commands, get_hash_only_sink_mismatch) {
  GetCommand get("r", hash_sink());
  const std::string content = "abc";
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 3);
  deliver(get, end_for("abd"));
  expect_failed(get, client::kExitVerify);
  ASSERT_CONTAINS(get.result().message, protocol::to_hex(root_of("abc")));
  ASSERT_CONTAINS(get.result().message, protocol::to_hex(root_of("abd")));
}

// reactorc's own sink hashes on a second thread; the command sees no difference.
Test(commands, get_background_hashing_sink) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  int fd = open(dir->path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  cr_assert(fd >= 0, "open %s: %s", dir->path().c_str(), strerror(errno));
  auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kSha256);
  std::string err;
  cr_assert(sink->open_file(reactor::UniqueFd(fd), "bg", "bg", false, &err), "open_file: %s", err.c_str());
  GetCommand get("r", std::move(sink));
  const std::string content = sample_content(300000);
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 65536);
  deliver(get, end_for(content));
  expect_done(get);
  cr_assert(get.digest() == root_of(content));
  std::string why;
  cr_assert(testsupport::write_file(dir->path("expected"), content));
  cr_assert(testsupport::files_equal(dir->path("bg"), dir->path("expected"), &why), "%s", why.c_str());
}

// A write error (here the file size limit: EFBIG) is a local failure, and the partial
// temporary goes.
Test(commands, get_write_error_is_local_failure) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  deliver(get, file_header("r", 64));
  const std::string content = sample_content(64);

  struct rlimit old_limit {};
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 16;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
  get.on_body(content.data(), content.size(), 0);
  setrlimit(RLIMIT_FSIZE, &old_limit);

  expect_failed(get, client::kExitLocal);
  ASSERT_CONTAINS(get.result().message, "dl/f");
  ASSERT_CONTAINS(get.result().message, strerror(EFBIG));
  expect_dir_empty(*dir);
}

// A file that appears under the final name during the download (no --force) is not
// clobbered: the commit fails locally and the download goes.
Test(commands, get_commit_refuses_a_file_that_appeared_meanwhile) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  GetCommand get("r", file_sink(*dir, "f"));
  const std::string content = "downloaded";
  deliver(get, file_header("r", content.size()));
  feed_body(get, content, 3);
  cr_assert(testsupport::write_file(dir->path("f"), "someone else's"));
  deliver(get, end_for(content));
  expect_failed(get, client::kExitLocal);
  ASSERT_STR_EQ(get.result().message, "\"dl/f\" appeared during the download; use --force to overwrite it");
  cr_assert(dir_entries(*dir) == std::vector<std::string>{"f"}, "%s", join(dir_entries(*dir)).c_str());
  auto data = testsupport::read_file(dir->path("f"));
  cr_assert(data.has_value());
  ASSERT_STR_EQ(*data, "someone else's");
}

// Destroyed before the end (reactorc exiting on a signal): no temporary stays behind.
Test(commands, get_destroyed_unfinished_leaves_nothing) {
  auto dir = TempDir::create("test-commands");
  cr_assert(dir.has_value());
  {
    GetCommand get("r", file_sink(*dir, "f"));
    deliver(get, file_header("r", 10));
    get.on_body("01234", 5, 5);
    cr_assert_eq(dir_entries(*dir).size(), 1u);
  }
  expect_dir_empty(*dir);
}
