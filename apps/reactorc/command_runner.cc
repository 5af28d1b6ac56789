#include "apps/reactorc/command_runner.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "apps/common/human_units.h"
#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
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

CommandRunner::CommandRunner(reactor::EventLoop& loop, const Options& options, const app::Secret& secret)
    : loop_(loop), options_(options), connection_(loop, secret, *this) {}

CommandRunner::~CommandRunner() {
  if (progress_timer_ != 0) loop_.cancel(progress_timer_);
}

bool CommandRunner::prepare() {
  if (options_.command != Command::kGet) return true;
  remote_ = options_.operands[0];
  std::string local;
  std::string err;
  if (!choose_local_path(remote_, options_.operands.size() > 1 ? options_.operands[1] : "", &local, &err)) {
    fail(kExitUsage, err);
    return false;
  }
  target_ = std::make_unique<DownloadTarget>();
  if (!target_->open(local, options_.force, &err)) {
    fail(kExitLocal, err);
    return false;
  }
  return true;
}

void CommandRunner::start(std::vector<reactor::SocketAddress> addresses) {
  connection_.connect(std::move(addresses), options_.timeout);
}

void CommandRunner::on_ready(Connection& connection) {
  if (options_.verbosity > 0)
    app::log_info("connected to %s (%s), authenticated", connection.peer().c_str(),
                  connection.server_software().c_str());
  // The request for the command, and the feature the server must offer for it.
  protocol::Message request;
  const char* feature = nullptr;
  switch (options_.command) {
    case Command::kGet: {
      protocol::GetRequest get;
      get.path = remote_;
      request = get;
      feature = "get";
      break;
    }
    case Command::kStat: {
      protocol::StatRequest stat;
      stat.path = options_.operands[0];
      request = stat;
      feature = "stat";
      break;
    }
    case Command::kList: {
      protocol::ListRequest list;
      list.path = options_.operands.empty() ? "" : options_.operands[0];
      request = list;
      feature = "list";
      break;
    }
    case Command::kPing:
      request = protocol::PingRequest{};
      feature = "ping";
      break;
    case Command::kSend: {
      protocol::MsgRequest msg;
      msg.text = options_.operands[0];
      request = msg;
      feature = "msg";
      break;
    }
    case Command::kBench:  // runs in bench.cc on its own connections, never here
      fail(kExitFailure, "internal error: bench is not run by CommandRunner");
      return;
  }
  if (!connection.server_offers(feature)) {
    fail(kExitRemote, std::string("the server (") + connection.server_software() + ") does not offer \"" + feature +
                          "\"");
    return;
  }
  sent_at_ = loop_.now();
  connection.send(request);
}

void CommandRunner::on_message(Connection& connection, protocol::Message& message) {
  if (done_) return;
  if (options_.command == Command::kGet) return on_get_message(message);
  if (options_.command == Command::kList) return on_list_message(message);
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
    fail(kExitRemote, std::string(protocol::to_string(error->code)) + ": " + app::escape_for_terminal(error->message));
    return;
  }
  if (auto* stat = std::get_if<protocol::StatReply>(&message)) {
    if (options_.verbosity >= 0) {
      std::printf("path:  %s\nkind:  %s\nsize:  %llu (%s)\nmtime: %s\nmode:  %04o\n",
                  app::escape_for_terminal(stat->path).c_str(), kind_name(stat->kind),
                  static_cast<unsigned long long>(stat->size), app::format_bytes(stat->size).c_str(),
                  format_time(stat->mtime).c_str(), stat->mode);
    }
    return finish(kExitOk);
  }
  if (std::get_if<protocol::Pong>(&message) != nullptr) {
    double ms = std::chrono::duration<double, std::milli>(loop_.now() - sent_at_).count();
    if (options_.verbosity >= 0)
      std::printf("pong from %s (%s): %.3f ms\n", connection.peer().c_str(), connection.server_software().c_str(), ms);
    return finish(kExitOk);
  }
  if (auto* ok = std::get_if<protocol::MsgOk>(&message)) {
    if (options_.verbosity >= 0)
      std::printf("message delivered to %s (%llu bytes)\n", connection.peer().c_str(),
                  static_cast<unsigned long long>(ok->bytes));
    return finish(kExitOk);
  }
  fail(kExitProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
}

void CommandRunner::on_list_message(protocol::Message& message) {
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
    fail(kExitRemote, std::string(protocol::to_string(error->code)) + ": " + app::escape_for_terminal(error->message));
    return;
  }
  if (auto* batch = std::get_if<protocol::Entries>(&message)) {
    // A hostile server could stream entries forever; a listing bigger than this is not
    // something a terminal user wants either.
    constexpr size_t kMaxEntries = 10'000'000;
    if (entries_.size() + batch->entries.size() > kMaxEntries) {
      fail(kExitProtocol, "the listing is larger than 10,000,000 entries; giving up");
      return;
    }
    for (protocol::Entry& entry : batch->entries) entries_.push_back(std::move(entry));
    return;
  }
  if (auto* end = std::get_if<protocol::ListEnd>(&message)) {
    print_listing();
    if (end->skipped > 0 && options_.verbosity >= 0)
      app::log_warn("%llu name(s) not shown: not valid UTF-8", static_cast<unsigned long long>(end->skipped));
    return finish(kExitOk);
  }
  fail(kExitProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
}

void CommandRunner::print_listing() {
  if (options_.verbosity < 0) return;
  std::sort(entries_.begin(), entries_.end(),
            [](const protocol::Entry& a, const protocol::Entry& b) { return a.name < b.name; });
  for (const protocol::Entry& entry : entries_) {
    char kind = entry.kind == protocol::EntryKind::kDir ? 'd' : entry.kind == protocol::EntryKind::kFile ? '-' : '?';
    std::string when = format_time(entry.mtime);
    std::printf("%c %12llu  %.16s  %s%s\n", kind, static_cast<unsigned long long>(entry.size), when.c_str(),
                app::escape_for_terminal(entry.name).c_str(), entry.kind == protocol::EntryKind::kDir ? "/" : "");
  }
}

void CommandRunner::on_get_message(protocol::Message& message) {
  if (auto* error = std::get_if<protocol::ErrorMessage>(&message)) {
    std::string reason = std::string(protocol::to_string(error->code)) + ": " + app::escape_for_terminal(error->message);
    if (header_seen_) return fail_transfer(kExitRemote, reason);
    return fail(kExitRemote, reason);
  }
  if (auto* header = std::get_if<protocol::FileHeader>(&message)) {
    if (header_seen_ || header->offset != 0) {
      fail(kExitProtocol, "unexpected file header from the server");
      return;
    }
    header_seen_ = true;
    hash_.emplace();
    expected_ = header->size;
    mtime_ = header->mtime;
    body_done_ = expected_ == 0;
    if (options_.verbosity >= 0) {
      bool tty = isatty(STDERR_FILENO) == 1;
      std::string label = app::escape_for_terminal(target_->final_path());
      progress_ = std::make_unique<Progress>(STDERR_FILENO, options_.progress, tty,
                                             app::stream_wants_color(STDERR_FILENO), label, expected_, 0);
      if (tty && options_.progress != ProgressStyle::kNone) {
        progress_->tick();
        progress_timer_ = loop_.run_every(std::chrono::milliseconds(100), [this] {
          if (progress_) progress_->tick();
        });
      }
    }
    return;
  }
  if (auto* end = std::get_if<protocol::End>(&message)) {
    if (!header_seen_ || !body_done_) {
      fail_transfer(kExitProtocol, "the server ended the transfer early");
      return;
    }
    protocol::Digest actual = hash_->finish();
    if (actual != end->sha256) {
      fail_transfer(kExitVerify, "verification failed: SHA-256 mismatch (expected " + protocol::to_hex(end->sha256) +
                                     ", got " + protocol::to_hex(actual) + "); nothing was kept");
      return;
    }
    std::string err;
    if (!target_->commit(mtime_, &err)) {
      fail_transfer(kExitLocal, err);
      return;
    }
    if (progress_) progress_->finish_ok("sha256 verified");
    if (options_.verbosity > 0) app::log_info("sha256 %s", protocol::to_hex(actual).c_str());
    return finish(kExitOk);
  }
  fail_transfer(kExitProtocol, std::string("unexpected reply from the server: ") + protocol::type_name(message));
}

void CommandRunner::on_body(Connection&, const char* data, size_t len, uint64_t remaining) {
  if (done_ || options_.command != Command::kGet || !header_seen_) {
    if (!done_) fail(kExitProtocol, "the server sent an unexpected body");
    return;
  }
  hash_->update(data, len);
  received_ += len;
  std::string err;
  if (!target_->write(data, len, &err)) {
    fail_transfer(kExitLocal, err);
    return;
  }
  if (progress_) progress_->update(received_);
  if (remaining == 0) body_done_ = true;
}

void CommandRunner::on_failure(Connection&, Failure failure, const std::string& message) {
  if (done_) return;
  if (header_seen_) return fail_transfer(exit_code_for(failure), message);
  fail(exit_code_for(failure), message);
}

void CommandRunner::interrupt(const char* signal_name) {
  if (done_) return;
  std::string reason = std::string("interrupted by ") + signal_name;
  if (header_seen_) return fail_transfer(kExitInterrupted, reason);
  fail(kExitInterrupted, reason);
}

void CommandRunner::fail_transfer(int code, const std::string& reason) {
  if (target_) target_->discard();
  if (progress_) {
    progress_->finish_failed(reason);
    progress_.reset();
    // The progress line already carries the reason; the log line would repeat it.
    finish(code);
    return;
  }
  fail(code, reason);
}

void CommandRunner::fail(int code, const std::string& message) {
  if (target_) target_->discard();
  app::log_error("%s", message.c_str());
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
