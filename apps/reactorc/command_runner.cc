#include "apps/reactorc/command_runner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <ctime>

#include "apps/common/body_sink.h"
#include "apps/common/human_units.h"
#include "apps/common/log.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/local_path.h"
#include "apps/reactorc/resume_commands.h"
#include "protocol/content_hash.h"
#include "protocol/features.h"
#include "protocol/hex.h"

namespace client {
namespace {

const char* kind_name(protocol::EntryKind kind) {
  switch (kind) {
    case protocol::EntryKind::kFile: return "file";
    case protocol::EntryKind::kDir: return "directory";
    case protocol::EntryKind::kOther: return "other";
    case protocol::EntryKind::kLink: return "link";
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
    : loop_(loop),
      options_(options),
      secret_(secret),
      tls_(std::move(tls)),
      connection_(std::make_unique<Connection>(loop, secret, *this, tls_)) {}

CommandRunner::~CommandRunner() {
  if (progress_timer_ != 0) loop_.cancel(progress_timer_);
  if (retry_timer_ != 0) loop_.cancel(retry_timer_);
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
  if (options_.resume && !put->prepare_resume(&err)) {
    report_failure(kExitLocal, err);
    return false;
  }
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
  remote_ = remote;
  reactor::UniqueFd stream;
  std::string display;
  if (!open_stream_destination(local, &stream, &display, &err)) {
    report_failure(kExitLocal, err);
    return false;
  }
  if (stream) {
    if (options_.resume) {
      report_failure(kExitUsage, "-c resumes a download into a file; " + display + " is not one");
      return false;
    }
    auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kTree);
    sink->open_stream(std::move(stream), display);
    streaming_ = true;
    submit_get(std::move(sink), 0);
    return true;
  }
  std::string target;
  if (!resolve_destination(local, options_.force, &target, &err) || !open_parent(target, &dest_dir_, &dest_name_, &err) ||
      !PartialDownload::open(dest_dir_.get(), dest_name_, local, &partial_, &err)) {
    report_failure(kExitLocal, err);
    return false;
  }
  dest_display_ = local;
  // The destination is checked now (exists without --force, a directory), before any
  // traffic, whatever happens to the partial later.
  std::unique_ptr<app::BodySink> sink = partial_sink({}, 0, &err);
  if (!sink) {
    if (partial_.held() == 0) partial_.remove();
    report_failure(kExitLocal, err);
    return false;
  }
  if (options_.resume && partial_.held() > 0) {
    resuming_ = true;  // the get is made once the held chunks are checked
    sink->keep();      // this sink only checked the destination: it must not remove the partial
    return true;
  }
  if (partial_.held() > 0) {
    if (options_.verbosity >= 0)
      app::log_warn("discarding an earlier partial download of \"%s\" (%s held); -c would have resumed it",
                    app::escape_for_terminal(local).c_str(), app::format_bytes(partial_.held()).c_str());
    if (!partial_.truncate(0, &err)) {
      report_failure(kExitLocal, err);
      return false;
    }
  }
  submit_get(std::move(sink), 0);
  return true;
}

std::unique_ptr<app::BodySink> CommandRunner::partial_sink(const std::vector<protocol::Digest>& leaves,
                                                           uint64_t held, std::string* err) {
  auto sink = std::make_unique<app::BodySink>(app::BodySink::Hashing::kBackground, protocol::DigestKind::kTree);
  reactor::UniqueFd dir(fcntl(dest_dir_.get(), F_DUPFD_CLOEXEC, 0));
  if (!dir) {
    *err = std::string("dup: ") + std::strerror(errno);
    return nullptr;
  }
  reactor::UniqueFd file = partial_.dup_fd(err);
  if (!file) return nullptr;
  if (!sink->adopt(std::move(dir), dest_name_, dest_display_, options_.force, partial_.file_name(),
                   std::move(file), leaves, held, err))
    return nullptr;
  return sink;
}

// The get that fetches the body from `offset` (the whole file, or a resume's tail).
void CommandRunner::submit_get(std::unique_ptr<app::BodySink> sink, uint64_t offset) {
  auto get = std::make_unique<GetCommand>(remote_, std::move(sink), this, offset);
  if (partial_.is_open()) get->use_partial(&partial_, options_.server);
  get->keep_mode(options_.preserve && !streaming_);  // get -p
  get_ = get.get();
  command_ = std::move(get);
}

void CommandRunner::start_resume(Connection& connection) {
  if (connection.protocol_version() < protocol::kTreeVersion || !connection.server_offers(protocol::kFeatureDigests))
    return start_over(std::string("the server (") + connection.server_software() +
                      ") cannot verify a partial download (it has no chunk digests); starting over");
  leaves_wanted_ = partial_.held() / protocol::kChunkSize + 1;
  steps_.push_back(std::make_unique<DigestsCommand>(remote_, 0, leaves_wanted_));
  connection.submit(*steps_.back());
}

void CommandRunner::start_over(const std::string& why) {
  if (options_.verbosity >= 0) app::log_warn("%s", why.c_str());
  std::string err;
  std::unique_ptr<app::BodySink> sink;
  if (!partial_.truncate(0, &err) || !(sink = partial_sink({}, 0, &err))) return report_failure(kExitLocal, err);
  partial_.forget_note();
  resuming_ = false;
  submit_get(std::move(sink), 0);
  sent_at_ = loop_.now();
  connection_->submit(*command_);
}

void CommandRunner::on_resume_step(Command& command) {
  if (!command.succeeded()) return report_failure(command.result().exit_code, command.result().message);
  auto* digests = dynamic_cast<DigestsCommand*>(&command);
  if (digests == nullptr) return;  // a chunk fetched again and verified: the tail decides
  const protocol::DigestsReply& reply = digests->reply();
  if (leaves_.empty()) tree_ = reply;
  if (reply.size != tree_.size || reply.mtime != tree_.mtime || reply.root != tree_.root)
    return start_over("\"" + app::escape_for_terminal(remote_) + "\" changed on the server while resuming; starting over");
  leaves_.insert(leaves_.end(), digests->leaves().begin(), digests->leaves().end());
  uint64_t wanted = std::min<uint64_t>(leaves_wanted_, protocol::chunk_count(tree_.size));
  if (leaves_.size() < wanted && reply.count > 0) {
    steps_.push_back(std::make_unique<DigestsCommand>(remote_, leaves_.size(), wanted - leaves_.size()));
    connection_->submit(*steps_.back());
    return;
  }
  plan_resume();
}

// The digests are in: keep what matches, fetch again what does not, then the rest.
void CommandRunner::plan_resume() {
  PartialSource source{options_.server, remote_, tree_.size, tree_.mtime};
  std::string shown = app::escape_for_terminal(dest_display_);
  if (partial_.note()) {
    // Another path, or the same one changed since (size or time): what is held belongs
    // to another file. Another server address alone is no reason: a mirror, a proxy or a
    // new port serves the same file, and every chunk is checked against its digest anyway.
    const PartialSource& was = *partial_.note();
    if (was.path != source.path || was.size != source.size || was.mtime != source.mtime) {
      std::string what = was.path != source.path ? "of \"" + app::escape_for_terminal(was.path) + "\""
                                                 : "of another version of the file (its size or time differ)";
      return start_over("the partial download of \"" + shown + "\" was " + what + "; starting over");
    }
    if (was.server != source.server && options_.verbosity >= 0)
      app::log_info("the partial download of \"%s\" came from %s; checking it against %s", shown.c_str(),
                    app::escape_for_terminal(was.server).c_str(), app::escape_for_terminal(source.server).c_str());
  }
  std::string err;
  uint64_t held = std::min(partial_.held(), tree_.size);
  ChunkCheck check;
  auto checking = std::chrono::steady_clock::now();
  if (!check_chunks(partial_.fd(), held, tree_.size, leaves_, &check, &err)) return report_failure(kExitLocal, err);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - checking).count();
  uint64_t kept = std::min(check.checked * protocol::kChunkSize, tree_.size);
  if (!partial_.truncate(kept, &err) || !partial_.write_note(source, &err)) return report_failure(kExitLocal, err);
  uint64_t refetched = 0;
  for (uint64_t index : check.bad) {
    ChunkWanted chunk;
    chunk.index = index;
    chunk.offset = index * protocol::kChunkSize;
    chunk.length = protocol::chunk_length(tree_.size, index);
    chunk.leaf = leaves_[index];
    chunk.root = tree_.root;
    chunk.file_size = tree_.size;
    chunk.mtime = tree_.mtime;
    refetched += chunk.length;
    steps_.push_back(std::make_unique<ChunkGetCommand>(remote_, partial_.fd(), chunk));
    connection_->submit(*steps_.back());
  }
  if (options_.verbosity >= 0)
    app::log_info("resuming \"%s\": %llu bytes held, %llu verified and kept, %zu chunk(s) of %llu bytes fetched again "
                  "(checked in %.3f s, %.0f MB/s)",
                  shown.c_str(), static_cast<unsigned long long>(partial_.held()),
                  static_cast<unsigned long long>(kept - refetched), check.bad.size(),
                  static_cast<unsigned long long>(refetched), seconds,
                  seconds > 0 ? static_cast<double>(check.bytes_hashed) / seconds / 1e6 : 0.0);
  std::vector<protocol::Digest> verified(leaves_.begin(), leaves_.begin() + static_cast<std::ptrdiff_t>(check.checked));
  std::unique_ptr<app::BodySink> sink = partial_sink(verified, kept, &err);
  if (!sink) return report_failure(kExitLocal, err);
  submit_get(std::move(sink), kept);
  sent_at_ = loop_.now();
  connection_->submit(*command_);
}

void CommandRunner::start(std::vector<reactor::SocketAddress> addresses) {
  addresses_ = addresses;
  connection_->set_rate_limit(options_.limit_rate);
  connection_->connect(std::move(addresses), options_.timeout);
}

bool CommandRunner::should_retry(Failure failure) const {
  if (done_ || attempt_ >= options_.retry || streaming_) return false;
  if (options_.verb != Verb::kGet && options_.verb != Verb::kPut) return false;
  // A connection lost or gone silent; a refused connect only once the server has been
  // reached before (it is restarting): a wrong address fails at once, as curl and wget do.
  return failure == Failure::kClosed || failure == Failure::kTimeout ||
         (failure == Failure::kConnect && connected_once_);
}

void CommandRunner::schedule_retry(const std::string& message) {
  uint64_t total = 0;
  uint64_t done = 0;
  if (get_ != nullptr && get_->started()) {
    total = get_->expected_size();
    done = get_->held();
  } else if (put_ != nullptr) {
    total = put_->size();
    done = put_->sent();
  }
  if (progress_timer_ != 0) {
    loop_.cancel(progress_timer_);
    progress_timer_ = 0;
  }
  if (progress_) {
    if (!progress_origin_) progress_origin_ = progress_->origin();
    progress_->clear();
    progress_.reset();
  }
  auto delay = std::chrono::seconds(std::min<uint64_t>(uint64_t{1} << std::min<uint64_t>(attempt_, 5), 30));
  ++attempt_;
  std::string where = total > 0 ? " at " + std::to_string(done * 100 / total) + " %" : "";
  if (options_.verbosity >= 0)
    app::log_warn("%s%s; retrying in %lld s (%llu/%llu)", message.c_str(), where.c_str(),
                  static_cast<long long>(delay.count()), static_cast<unsigned long long>(attempt_),
                  static_cast<unsigned long long>(options_.retry));
  retry_timer_ = loop_.run_after(delay, [this] {
    retry_timer_ = 0;
    retry();
  });
}

// A new connection, and the command again: a get resumes from what the partial holds
// (every chunk checked again), a put -c from what the server kept, a put without -c
// from its first byte.
void CommandRunner::retry() {
  steps_.clear();
  leaves_.clear();
  tree_ = protocol::DigestsReply{};
  get_ = nullptr;
  put_ = nullptr;
  command_.reset();
  std::string err;
  if (options_.verb == Verb::kGet) {
    if (!partial_.refresh(&err)) return report_failure(kExitLocal, err);
    resuming_ = partial_.held() > 0;
    if (!resuming_) {
      // An attempt lost before its first body byte had nothing to keep and removed its
      // partial; writing on into that unlinked file would end in a rename of nothing.
      // The lock goes with the old one, so the name is free to take again.
      partial_ = PartialDownload{};
      if (!PartialDownload::open(dest_dir_.get(), dest_name_, dest_display_, &partial_, &err))
        return report_failure(kExitLocal, err);
      std::unique_ptr<app::BodySink> sink = partial_sink({}, 0, &err);
      if (!sink) return report_failure(kExitLocal, err);
      submit_get(std::move(sink), 0);
    }
  } else if (!prepare_put()) {
    return;  // reported
  }
  connection_ = std::make_unique<Connection>(loop_, secret_, *this, tls_);
  connection_->set_rate_limit(options_.limit_rate);
  connection_->connect(addresses_, options_.timeout);
}

std::unique_ptr<Command> CommandRunner::make_command(const Connection& connection) {
  const std::vector<std::string>& ops = options_.operands;
  switch (options_.verb) {
    case Verb::kStat: return std::make_unique<StatCommand>(ops[0]);
    case Verb::kList:
      return std::make_unique<ListCommand>(ops.empty() ? "" : ops[0],
                                           options_.long_listing && connection.server_offers(protocol::kFeatureLinks));
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
  connected_once_ = true;
  if (resuming_) return start_resume(connection);
  if (!command_) command_ = make_command(connection);
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
  if (ls_stat_ != nullptr && &command == ls_stat_.get()) {
    if (!command.succeeded()) return report_failure(command.result().exit_code, command.result().message);
    print_file_entry(ls_stat_->reply());
    return finish(kExitOk);
  }
  if (&command != command_.get()) return on_resume_step(command);
  // A file (or a link to one): described by a stat, as ls(1) describes a file operand.
  if (options_.verb == Verb::kList && !command.succeeded() &&
      command.result().remote_code == protocol::ErrorCode::kNotDirectory)
    return list_a_file();
  // A put -c refused because an earlier attempt's connection still holds the server's
  // partial: the server lets a silent one go, so this is worth the next retry.
  if (!command.succeeded() && put_ != nullptr && put_->refused_in_progress() && attempt_ < options_.retry)
    return schedule_retry(command.result().message);
  if (!command.succeeded()) return report_failure(command.result().exit_code, command.result().message);
  report_success();
}

void CommandRunner::report_success() {
  bool quiet = options_.verbosity < 0;
  switch (options_.verb) {
    case Verb::kGet:
      if (progress_) progress_->finish_ok("sha256 verified");
      if (options_.verbosity > 0)
        app::log_info("%s %s", get_->sink().digest_kind() == protocol::DigestKind::kTree ? "sha256 chunk-tree root" : "sha256",
                      protocol::to_hex(get_->digest()).c_str());
      break;
    case Verb::kPut:
      if (progress_) {
        progress_->update(put_->size());
        progress_->finish_ok("stored, sha256 verified by the server");
      }
      if (options_.verbosity > 0) app::log_info("sha256 chunk-tree root %s", protocol::to_hex(put_->digest()).c_str());
      break;
    case Verb::kStat: {
      const protocol::StatReply& stat = static_cast<StatCommand&>(*command_).reply();
      if (!quiet) {
        std::printf("path:  %s\nkind:  %s\nsize:  %llu (%s)\nmtime: %s\nmode:  %04o\n",
                    app::escape_for_terminal(stat.path).c_str(), kind_name(stat.kind),
                    static_cast<unsigned long long>(stat.size), app::format_bytes(stat.size).c_str(),
                    format_time(stat.mtime).c_str(), stat.mode);
        if (stat.target) std::printf("target: %s\n", app::escape_for_terminal(*stat.target).c_str());
      }
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
        std::printf("pong from %s (%s): %.3f ms\n", connection_->peer().c_str(), connection_->server_software().c_str(),
                    ms);
      }
      break;
    case Verb::kSend:
      if (!quiet)
        std::printf("message delivered to %s (%llu bytes)\n", connection_->peer().c_str(),
                    static_cast<unsigned long long>(static_cast<MsgCommand&>(*command_).bytes()));
      break;
    case Verb::kBench:
      break;
  }
  finish(kExitOk);
}

namespace {

// ls -l's first column: the type, then rwx for owner, group and others, with the
// set-id and sticky bits as ls(1) shows them. A mode the server did not send: '?'s.
std::string mode_column(protocol::EntryKind kind, std::optional<uint32_t> mode) {
  std::string text(1, kind == protocol::EntryKind::kDir    ? 'd'
                      : kind == protocol::EntryKind::kFile ? '-'
                      : kind == protocol::EntryKind::kLink ? 'l'
                                                           : '?');
  if (!mode) return text + "?????????";
  const uint32_t m = *mode;
  const char* const letters = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit) text += (m & (0400u >> bit)) ? letters[bit] : '-';
  auto special = [&text](size_t at, bool set, char with_x, char without_x) {
    if (set) text[at] = text[at] == '-' ? without_x : with_x;
  };
  special(3, (m & 04000) != 0, 's', 'S');
  special(6, (m & 02000) != 0, 's', 'S');
  special(9, (m & 01000) != 0, 't', 'T');
  return text;
}

struct ListingLine {
  std::string mode;
  std::string size;
  std::string when;
  std::string name;  // escaped, with its '/' or " -> target"
};

}  // namespace

void CommandRunner::print_listing(ListCommand& list) {
  if (options_.verbosity < 0) return;
  std::vector<protocol::Entry>& entries = list.entries();
  std::sort(entries.begin(), entries.end(),
            [](const protocol::Entry& a, const protocol::Entry& b) { return a.name < b.name; });
  std::vector<ListingLine> lines;
  lines.reserve(entries.size());
  size_t size_width = 0;
  for (const protocol::Entry& entry : entries) {
    ListingLine line;
    line.name = app::escape_for_terminal(entry.name);
    if (entry.kind == protocol::EntryKind::kDir) line.name += '/';
    if (!options_.long_listing) {
      std::printf("%s\n", line.name.c_str());
      continue;
    }
    if (entry.kind == protocol::EntryKind::kLink && entry.target)
      line.name += " -> " + app::escape_for_terminal(*entry.target);
    line.mode = mode_column(entry.kind, entry.mode);
    line.size = options_.human_sizes ? app::format_size_short(entry.size) : std::to_string(entry.size);
    line.when = format_time(entry.mtime).substr(0, 16);  // to the minute
    size_width = std::max(size_width, line.size.size());
    lines.push_back(std::move(line));
  }
  for (const ListingLine& line : lines)
    std::printf("%s  %*s  %s  %s\n", line.mode.c_str(), static_cast<int>(size_width), line.size.c_str(),
                line.when.c_str(), line.name.c_str());
}

void CommandRunner::list_a_file() {
  ls_stat_ = std::make_unique<StatCommand>(options_.operands.empty() ? "" : options_.operands[0]);
  connection_->submit(*ls_stat_);
}

void CommandRunner::print_file_entry(const protocol::StatReply& stat) {
  if (options_.verbosity < 0) return;
  // As ls(1) names a file operand: by the path as given.
  std::string name = app::escape_for_terminal(stat.path);
  if (!options_.long_listing) {
    std::printf("%s\n", name.c_str());
    return;
  }
  std::string size = options_.human_sizes ? app::format_size_short(stat.size) : std::to_string(stat.size);
  if (stat.target) name += " -> " + app::escape_for_terminal(*stat.target);
  std::printf("%s  %s  %s  %s\n", mode_column(stat.kind, stat.mode).c_str(), size.c_str(),
              format_time(stat.mtime).substr(0, 16).c_str(), name.c_str());
}

void CommandRunner::on_file(const protocol::FileHeader& header) {
  show_progress(get_->sink().display(), header.size, header.offset);
}

void CommandRunner::on_put_ready(uint64_t size, uint64_t offset) {
  if (options_.resume && put_->held_by_server() > 0 && options_.verbosity >= 0)
    app::log_info("resuming the upload of \"%s\": the server held %llu bytes, %llu of them this file's",
                  app::escape_for_terminal(put_label_).c_str(),
                  static_cast<unsigned long long>(put_->held_by_server()), static_cast<unsigned long long>(offset));
  show_progress(put_label_, size, offset);
}

void CommandRunner::show_progress(const std::string& label, uint64_t total, uint64_t start) {
  if (options_.verbosity < 0) return;
  bool tty = isatty(STDERR_FILENO) == 1;
  progress_ = std::make_unique<Progress>(STDERR_FILENO, options_.progress, tty, app::stream_wants_color(STDERR_FILENO),
                                         app::escape_for_terminal(label), total, start);
  if (progress_origin_) progress_->continue_from(*progress_origin_);
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
  // The command in flight, if any, has been abandoned (a download keeps its partial).
  if (should_retry(failure)) return schedule_retry(message);
  report_failure(exit_code_for(failure), message);
}

void CommandRunner::interrupt(const char* signal_name) {
  if (done_) return;
  std::string reason = std::string("interrupted by ") + signal_name;
  if (command_) command_->abandon(kExitInterrupted, reason);
  report_failure(kExitInterrupted, reason);
}

void CommandRunner::report_failure(int code, const std::string& message) {
  for (auto& step : steps_) step->abandon(code, message);
  if (command_) command_->abandon(code, message);  // a get keeps what it received for -c, or removes it
  std::string said = message;
  if (get_ != nullptr && get_->kept_partial())
    said += "; the partial download is kept: reactorc get -c resumes it";
  else if (resuming_ && get_ == nullptr && partial_.is_open() && partial_.held() > 0)
    said += "; the partial download is kept as it was";
  if (progress_ && put_ != nullptr) progress_->update(put_->sent());
  if (progress_) {
    // The progress line carries the reason; a log line would repeat it.
    progress_->finish_failed(said);
    progress_.reset();
  } else {
    app::log_error("%s", said.c_str());
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
  if (retry_timer_ != 0) {
    loop_.cancel(retry_timer_);
    retry_timer_ = 0;
  }
  connection_->close();
  std::fflush(stdout);
  loop_.stop();
}

}  // namespace client
