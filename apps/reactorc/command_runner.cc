#include "apps/reactorc/command_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "apps/common/body_sink.h"
#include "apps/common/human_units.h"
#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/local_path.h"
#include "protocol/hex.h"

namespace client {
namespace {

const char* kind_name(protocol::EntryKind kind) {
  switch (kind) {
    case protocol::EntryKind::kFile: return "file";
    case protocol::EntryKind::kDir: return "directory";
    case protocol::EntryKind::kOther: return "other";
  }
  return "?";
}

std::string format_time(int64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  char text[32];
  if (gmtime_r(&t, &tm) == nullptr || strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
    return std::to_string(seconds);
  return text;
}

}  // namespace

CommandRunner::CommandRunner(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
                             std::shared_ptr<protocol::TlsContext> tls)
    : loop_(loop), options_(options), connection_(loop, secret, *this, std::move(tls)) {}

CommandRunner::~CommandRunner() {
  if (progress_timer_ != 0) loop_.cancel(progress_timer_);
}

bool CommandRunner::prepare() {
  if (options_.verb == Verb::kGet) return prepare_get();
  if (options_.verb == Verb::kPut) return prepare_put();
  return true;
}

bool CommandRunner::prepare_put() {
  const std::string& local = options_.operands[0];
  std::string remote;
  std::string err;
  if (!choose_remote_path(local, options_.operands.size() > 1 ? options_.operands[1] : "", &remote, &err)) {
    report_failure(kExitUsage, err);
    return false;
  }
  if (remote.size() > protocol::kMaxPathLen) {
    report_failure(kExitUsage, "the remote path is " + std::to_string(remote.size()) +
                                   " bytes; the protocol allows at most " + std::to_string(protocol::kMaxPathLen));
    return false;
  }
  struct stat st {};
  reactor::UniqueFd file;
  if (!open_upload_source(local, &file, &st, &err)) {
    report_failure(kExitLocal, err);
    return false;
  }
  put_label_ = local;
  auto put = std::make_unique<PutCommand>(std::move(file), st, remote, options_.force, options_.preserve, this);
  put_ = put.get();
  command_ = std::move(put);
  return true;
}

bool CommandRunner::prepare_get() {
  const std::string& remote = options_.operands[0];
  std::string local;
  std::string err;
  if (!choose_local_path(remote, options_.operands.size() > 1 ? options_.operands[1] : "", &local, &err)) {
    report_failure(kExitUsage, err);
    return false;
  }
  auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kTree);
  reactor::UniqueFd stream;
  std::string display;
  if (!open_stream_destination(local, &stream, &display, &err)) {
    report_failure(kExitLocal, err);
    return false;
  }
  if (stream) {
    sink->open_stream(std::move(stream), display);
  } else {
    reactor::UniqueFd dir;
    std::string name;
    std::string target;
    if (!resolve_destination(local, options_.force, &target, &err) || !open_parent(target, &dir, &name, &err) ||
        !sink->open_file(std::move(dir), name, local, options_.force, &err)) {
      report_failure(kExitLocal, err);
      return false;
    }
  }
  auto get = std::make_unique<GetCommand>(remote, std::move(sink), this);
  get_ = get.get();
  command_ = std::move(get);
  return true;
}

void CommandRunner::start(std::vector<reactor::SocketAddress> addresses) {
  connection_.connect(std::move(addresses), options_.timeout);
}

std::unique_ptr<Command> CommandRunner::make_command() {
  const std::vector<std::string>& ops = options_.operands;
  switch (options_.verb) {
    case Verb::kStat: return std::make_unique<StatCommand>(ops[0]);
    case Verb::kList: return std::make_unique<ListCommand>(ops.empty() ? "" : ops[0]);
    case Verb::kPing: return std::make_unique<PingCommand>();
    case Verb::kSend: return std::make_unique<MsgCommand>(ops[0]);
    case Verb::kGet:    // made by prepare()
    case Verb::kPut:
    case Verb::kBench:  // runs in bench.cc on its own connections, never here
      break;
  }
  return nullptr;
}

void CommandRunner::on_ready(Connection& connection) {
  if (options_.verbosity > 0)
    app::log_info("connected to %s (%s), authenticated; %s", connection.peer().c_str(),
                  connection.server_software().c_str(), connection.security().c_str());
  if (!command_) command_ = make_command();
  if (!command_) {
    report_failure(kExitFailure, "internal error: no command to run");
    return;
  }
  if (options_.verb == Verb::kPut && connection.protocol_version() < protocol::kPutVersion) {
    report_failure(kExitRemote, std::string("the server (") + connection.server_software() + ") speaks protocol version " +
                                    std::to_string(connection.protocol_version()) + "; put needs version 2");
    return;
  }
  if (!connection.server_offers(command_->feature())) {
    report_failure(kExitRemote, std::string("the server (") + connection.server_software() + ") does not offer \"" +
                                    command_->feature() + "\"");
    return;
  }
  sent_at_ = loop_.now();
  connection.submit(*command_);
}

void CommandRunner::on_command_done(Connection&, Command& command) {
  if (done_) return;
  if (!command.succeeded()) return report_failure(command.result().exit_code, command.result().message);
  report_success();
}

void CommandRunner::report_success() {
  bool quiet = options_.verbosity < 0;
  switch (options_.verb) {
    case Verb::kGet:
      if (progress_) progress_->finish_ok("sha256 verified");
      if (options_.verbosity > 0) app::log_info("sha256 %s", protocol::to_hex(get_->digest()).c_str());
      break;
    case Verb::kPut:
      if (progress_) {
        progress_->update(put_->size());
        progress_->finish_ok("stored, sha256 verified by the server");
      }
      if (options_.verbosity > 0) app::log_info("sha256 %s", protocol::to_hex(put_->digest()).c_str());
      break;
    case Verb::kStat: {
      const protocol::StatReply& stat = static_cast<StatCommand&>(*command_).reply();
      if (!quiet)
        std::printf("path:  %s\nkind:  %s\nsize:  %llu (%s)\nmtime: %s\nmode:  %04o\n",
                    app::escape_for_terminal(stat.path).c_str(), kind_name(stat.kind),
                    static_cast<unsigned long long>(stat.size), app::format_bytes(stat.size).c_str(),
                    format_time(stat.mtime).c_str(), stat.mode);
      break;
    }
    case Verb::kList: {
      auto& list = static_cast<ListCommand&>(*command_);
      print_listing(list);
      if (list.skipped() > 0 && !quiet)
        app::log_warn("%llu name(s) not shown: not valid UTF-8", static_cast<unsigned long long>(list.skipped()));
      break;
    }
    case Verb::kPing:
      if (!quiet) {
        double ms = std::chrono::duration<double, std::milli>(loop_.now() - sent_at_).count();
        std::printf("pong from %s (%s): %.3f ms\n", connection_.peer().c_str(), connection_.server_software().c_str(),
                    ms);
      }
      break;
    case Verb::kSend:
      if (!quiet)
        std::printf("message delivered to %s (%llu bytes)\n", connection_.peer().c_str(),
                    static_cast<unsigned long long>(static_cast<MsgCommand&>(*command_).bytes()));
      break;
    case Verb::kBench:
      break;
  }
  finish(kExitOk);
}

void CommandRunner::print_listing(ListCommand& list) {
  if (options_.verbosity < 0) return;
  std::vector<protocol::Entry>& entries = list.entries();
  std::sort(entries.begin(), entries.end(),
            [](const protocol::Entry& a, const protocol::Entry& b) { return a.name < b.name; });
  for (const protocol::Entry& entry : entries) {
    char kind = entry.kind == protocol::EntryKind::kDir ? 'd' : entry.kind == protocol::EntryKind::kFile ? '-' : '?';
    std::string when = format_time(entry.mtime);
    std::printf("%c %12llu  %.16s  %s%s\n", kind, static_cast<unsigned long long>(entry.size), when.c_str(),
                app::escape_for_terminal(entry.name).c_str(), entry.kind == protocol::EntryKind::kDir ? "/" : "");
  }
}

void CommandRunner::on_file(const protocol::FileHeader& header) {
  show_progress(get_->sink().display(), header.size, 0);
}

void CommandRunner::on_put_ready(uint64_t size, uint64_t offset) { show_progress(put_label_, size, offset); }

void CommandRunner::show_progress(const std::string& label, uint64_t total, uint64_t start) {
  if (options_.verbosity < 0) return;
  bool tty = isatty(STDERR_FILENO) == 1;
  progress_ = std::make_unique<Progress>(STDERR_FILENO, options_.progress, tty, app::stream_wants_color(STDERR_FILENO),
                                         app::escape_for_terminal(label), total, start);
  progress_->set_ascii(!app::locale_is_utf8());
  progress_->set_dumb_terminal(tty && app::terminal_is_dumb());
  if (tty && options_.progress != ProgressStyle::kNone) {
    progress_->tick();
    progress_timer_ = loop_.run_every(std::chrono::milliseconds(100), [this] {
      if (!progress_) return;
      // An upload's progress is what the connection has taken so far.
      if (put_ != nullptr) progress_->update(put_->sent());
      progress_->tick();
    });
  }
}

void CommandRunner::on_received(uint64_t bytes) {
  if (progress_) progress_->update(bytes);
}

void CommandRunner::on_failure(Connection&, Failure failure, const std::string& message) {
  if (done_) return;
  // The command in flight, if any, has been abandoned (its partial file removed).
  report_failure(exit_code_for(failure), message);
}

void CommandRunner::interrupt(const char* signal_name) {
  if (done_) return;
  std::string reason = std::string("interrupted by ") + signal_name;
  if (command_) command_->abandon(kExitInterrupted, reason);
  report_failure(kExitInterrupted, reason);
}

void CommandRunner::report_failure(int code, const std::string& message) {
  if (command_) command_->abandon(code, message);  // a get removes what it received
  if (progress_ && put_ != nullptr) progress_->update(put_->sent());
  if (progress_) {
    // The progress line carries the reason; a log line would repeat it.
    progress_->finish_failed(message);
    progress_.reset();
  } else {
    app::log_error("%s", message.c_str());
  }
  finish(code);
}

void CommandRunner::finish(int code) {
  if (done_) return;
  done_ = true;
  exit_code_ = code;
  if (progress_timer_ != 0) {
    loop_.cancel(progress_timer_);
    progress_timer_ = 0;
  }
  connection_.close();
  std::fflush(stdout);
  loop_.stop();
}

}  // namespace client
