#include "apps/reactorc/tree_get.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/body_sink.h"
#include "apps/common/file_hash.h"
#include "apps/common/log.h"
#include "apps/common/symlink_at.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/local_path.h"
#include "apps/reactorc/resume_commands.h"
#include "protocol/content_hash.h"
#include "protocol/features.h"
#include "protocol/hex.h"
#include "reactor/errors.h"

namespace client {
namespace {

constexpr auto kKeepaliveInterval = std::chrono::seconds(60);
// Files at least this big hash on a thread of their own beside the loop; smaller ones
// inline, where a thread would cost more than it saves.
constexpr uint64_t kBackgroundHashing = 16ull << 20;



}  // namespace

bool TreeGet::handles(const Options& options) {
  return options.verb == Verb::kGet && (options.recursive || options.operands.size() > 2);
}

TreeGet::TreeGet(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
                 std::shared_ptr<protocol::TlsContext> tls)
    : loop_(loop),
      options_(options),
      secret_(secret),
      tls_(std::move(tls)),
      report_(options.progress, options.verbosity) {}

TreeGet::~TreeGet() {
  if (tick_timer_ != 0) loop_.cancel(tick_timer_);
  if (keepalive_timer_ != 0) loop_.cancel(keepalive_timer_);
}

bool TreeGet::prepare() {
  if (options_.resume) {
    app::log_error("-c resumes one file; it does not apply to get -r or to several sources");
    exit_code_ = kExitUsage;
    return false;
  }
  std::vector<std::string> operands = options_.operands;
  dest_ = operands.size() > 1 ? operands.back() : ".";
  if (operands.size() > 1) operands.pop_back();
  for (const std::string& remote : operands) {
    if (remote.size() > protocol::kMaxPathLen) {
      app::log_error("the path is %zu bytes; the protocol allows at most %zu", remote.size(), protocol::kMaxPathLen);
      exit_code_ = kExitUsage;
      return false;
    }
    sources_.push_back(Source{remote, normalise_remote(remote)});
  }
  struct stat st {};
  bool exists = stat(dest_.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    int fd = open(dest_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      app::log_error("%s", reactor::sys_error("open", dest_).c_str());
      exit_code_ = kExitLocal;
      return false;
    }
    into_dir_ = true;
    dest_dir_ = std::make_shared<const reactor::UniqueFd>(fd);
  } else if (sources_.size() > 1) {
    // cp and scp's rule: with several sources the last operand is a directory that exists.
    app::log_error("target \"%s\" is not a directory%s", app::escape_for_terminal(dest_).c_str(),
                   exists ? "" : " (it does not exist)");
    exit_code_ = kExitLocal;
    return false;
  } else {
    reactor::UniqueFd parent;
    std::string err;
    if (!open_parent(dest_, &parent, &dest_name_, &err)) {
      app::log_error("%s", err.c_str());
      exit_code_ = kExitLocal;
      return false;
    }
    dest_dir_ = std::make_shared<const reactor::UniqueFd>(std::move(parent));
  }
  return true;
}

bool TreeGet::target_for(const Source& source, SharedDir* parent, std::string* name, std::string* display,
                         std::string* err) const {
  *parent = dest_dir_;
  if (!into_dir_) {
    *name = dest_name_;
    *display = dest_;
    return true;
  }
  if (source.prefix.empty()) {  // the served root: its contents go straight into dest
    name->clear();
    *display = dest_;
    return true;
  }
  *name = last_name(source.prefix);
  if (*name == "..") {
    *err = "cannot name the copy of \"" + source.remote + "\"";
    return false;
  }
  *display = join_path(dest_, *name);
  return true;
}

void TreeGet::start(std::vector<reactor::SocketAddress> addresses) {
  std::vector<std::string> shown;
  for (const Source& source : sources_) shown.push_back(source.remote);
  report_.start(shown, dest_);
  tick_timer_ = loop_.run_every(std::chrono::milliseconds(100), [this] { report_.tick(); });
  lister_ = std::make_unique<Connection>(loop_, secret_, *this, tls_);
  data_ = std::make_unique<Connection>(loop_, secret_, *this, tls_);
  data_->set_rate_limit(options_.limit_rate);  // the listing's few bytes go uncapped
  lister_->connect(addresses, options_.timeout);
  data_->connect(std::move(addresses), options_.timeout);
}

void TreeGet::on_ready(Connection& connection) {
  if (options_.verbosity > 0) {
    app::log_info("connected to %s (%s), %s", connection.peer().c_str(), connection.server_software().c_str(),
                  connection.security().c_str());
  }
  if (++ready_ < 2) return;
  next_source();
}

void TreeGet::next_source() {
  if (done_) return;
  if (next_source_ >= sources_.size()) {
    sources_done_ = true;
    return maybe_finish();
  }
  const Source& source = sources_[next_source_];
  listing_step_ = std::make_unique<StatCommand>(source.remote);
  lister_->submit(*listing_step_);
}

void TreeGet::on_command_done(Connection& connection, Command& command) {
  if (done_) return;
  if (&connection == data_.get()) return on_data_done(command);
  for (auto it = keepalives_.begin(); it != keepalives_.end(); ++it) {
    if (it->get() == &command) {
      keepalives_.erase(it);
      return;
    }
  }
  if (&command != listing_step_.get()) return;
  if (auto* stat = dynamic_cast<StatCommand*>(&command)) return on_stat(*stat);
  if (auto* list = dynamic_cast<TreeListCommand*>(&command)) return on_listed(*list);
}

void TreeGet::on_stat(StatCommand& stat) {
  const Source& source = sources_[next_source_];
  std::string err;
  if (!stat.succeeded()) {
    report_.failed(source.remote, stat.result().message);
    ++next_source_;
    return next_source();
  }
  SharedDir parent;
  std::string name;
  std::string display;
  if (!target_for(source, &parent, &name, &display, &err)) {
    report_.failed(source.remote, err);
    ++next_source_;
    return next_source();
  }
  const protocol::StatReply& reply = stat.reply();
  if (reply.kind == protocol::EntryKind::kFile) {
    if (name.empty()) name = last_name(source.prefix);
    FileJob job{source.prefix, parent, name, display, reply.size, reply.mtime, false};
    report_.listed(1, reply.size);
    queue_.push_back(std::move(job));
    pump();
    ++next_source_;
    return next_source();
  }
  if (reply.kind != protocol::EntryKind::kDir) {
    report_.file_skipped(source.remote, display, "not a regular file or directory");
    ++next_source_;
    return next_source();
  }
  if (!options_.recursive) {
    report_.failed(source.remote, "is a directory; use -r to copy it");
    ++next_source_;
    return next_source();
  }
  if (lister_->protocol_version() < 2 || !lister_->server_offers(protocol::kFeatureTree)) {
    report_.failed(source.remote, "the server cannot list a tree (it does not offer \"tree\")");
    ++next_source_;
    return next_source();
  }
  SharedDir top = parent;
  if (!name.empty()) {
    if (!make_local_dir(parent->get(), name, display, &err)) {
      report_.failed(source.remote, err);
      ++next_source_;
      return next_source();
    }
    int fd = openat(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      report_.failed(source.remote, reactor::sys_error("open", display));
      ++next_source_;
      return next_source();
    }
    top = std::make_shared<const reactor::UniqueFd>(fd);
  }
  tree_ = std::make_unique<LocalTree>(top, display);
  tree_prefix_ = source.prefix;
  // The top directory's own mode and time, applied last like the others'.
  if (options_.preserve && !name.empty()) tree_->keep_meta(parent, name, display, reply.mode, reply.mtime);
  bool links = options_.links && lister_->server_offers(protocol::kFeatureLinks);
  if (options_.links && !links)
    report_.file_skipped(source.remote, display,
                         "the server cannot describe symbolic links (it does not offer \"links\"): they are skipped");
  listing_step_ = std::make_unique<TreeListCommand>(source.remote, links, *this);
  lister_->submit(*listing_step_);
}

void TreeGet::on_tree_entries(const std::vector<std::string>& dir, std::vector<protocol::Entry>& entries) {
  if (done_) return;
  std::string remote_dir = tree_prefix_;
  for (const std::string& part : dir) remote_dir = join_path(remote_dir, part);
  std::string err;
  SharedDir local = tree_->open(dir, &err);
  uint64_t files = 0;
  uint64_t bytes = 0;
  for (protocol::Entry& entry : entries) {
    std::string remote = join_path(remote_dir, entry.name);
    std::string shown = tree_->display(dir, entry.name);
    if (!local) {
      report_.file_failed(remote, shown, err);
      continue;
    }
    if (entry.kind == protocol::EntryKind::kDir) {
      std::string why;
      if (!tree_->make_dir(local, dir, entry.name, entry.mode.value_or(0755), entry.mtime, options_.preserve, &why))
        report_.failed(remote, why);
      continue;
    }
    if (entry.kind == protocol::EntryKind::kLink) {
      make_link(local, dir, entry, remote, shown);
      continue;
    }
    if (entry.kind != protocol::EntryKind::kFile) {
      report_.file_skipped(remote, shown,
                           options_.links ? "a special file, or a symbolic link whose target a listing cannot carry"
                                          : "a symbolic link or a special file (--links recreates links)");
      continue;
    }
    ++files;
    bytes += entry.size;
    queue_.push_back(FileJob{std::move(remote), local, entry.name, std::move(shown), entry.size, entry.mtime, true});
  }
  report_.listed(files, bytes);
  if (queue_.size() >= kQueueHigh && !lister_->input_paused()) {
    lister_->pause_input();
    keepalive_timer_ = loop_.run_every(kKeepaliveInterval, [this] { keepalive(); });
  }
  pump();
}

void TreeGet::keepalive() {
  // A ping queued behind the listing: its bytes are traffic to the server, whose idle
  // timer would otherwise take the paused listing for a client that stopped reading.
  auto ping = std::make_unique<PingCommand>();
  lister_->submit(*ping);
  keepalives_.push_back(std::move(ping));
}

void TreeGet::make_link(const SharedDir& local, const std::vector<std::string>& dir, const protocol::Entry& entry,
                        const std::string& remote, const std::string& shown) {
  // A server lists links as kind link only when asked (--links), and then always with a
  // target (the parser requires it); what it points to is the server's word, so it is
  // judged here, by the same rule the server applies to uploads.
  const std::string& target = entry.target.value_or(std::string());
  if (!options_.links) return report_.file_skipped(remote, shown, "a symbolic link (--links recreates links)");
  if (!app::link_stays_within(dir.size(), target)) {
    return report_.file_skipped(remote, shown, "a symbolic link to \"" + target + "\", which " +
                                                   app::link_escape_reason(target, "the copied tree"));
  }
  bool replaced = false;
  std::string why;
  switch (app::make_symlink_at(local->get(), entry.name, target, options_.force, shown, &replaced, &why)) {
    case app::SymlinkResult::kMade:
      return report_.link_done(remote, shown, target, false);
    case app::SymlinkResult::kUnchanged:
      return report_.link_done(remote, shown, target, true);
    case app::SymlinkResult::kExists:
      return report_.file_failed(remote, shown, "exists and is not this link; use --force to replace it");
    case app::SymlinkResult::kIsDirectory:
      return report_.file_failed(remote, shown, "a directory is in the way of the symbolic link; not replaced");
    case app::SymlinkResult::kFailed:
      break;
  }
  report_.file_failed(remote, shown, why);
}

void TreeGet::on_listed(TreeListCommand& list) {
  const Source& source = sources_[next_source_];
  if (!list.succeeded()) {
    report_.failed(source.remote, list.result().message);
    // A listing refused as a lie leaves the connection's stream in the middle of a
    // response: nothing more can be asked on it.
    if (list.result().exit_code == kExitProtocol) {
      pump();
      sources_done_ = true;
      next_source_ = sources_.size();
      lister_->close();
      return maybe_finish();
    }
  } else {
    const protocol::ListEnd& end = list.end();
    if (end.unreadable > 0)
      report_.failed(source.remote, std::to_string(end.unreadable) + " directories could not be read on the server");
    if (end.skipped > 0)
      report_.file_skipped(source.remote, tree_->display({}),
                           std::to_string(end.skipped) + " names that are not valid UTF-8 were left out by the server");
    if (end.vanished > 0)
      report_.file_skipped(source.remote, tree_->display({}),
                           std::to_string(end.vanished) + " names vanished on the server while it listed them");
  }
  // Its directories get their times once every file in them is written: at the end.
  done_trees_.push_back(std::move(tree_));
  ++next_source_;
  next_source();
}

void TreeGet::pump() {
  while (!done_ && !queue_.empty() && data_ && data_->state() == Connection::State::kReady &&
         flights_.size() < kWindowRequests && (flights_.empty() || bytes_in_flight_ < kWindowBytes)) {
    FileJob job = std::move(queue_.front());
    queue_.pop_front();
    start_job(std::move(job));
  }
  if (lister_ && lister_->input_paused() && queue_.size() < kQueueLow) {
    if (keepalive_timer_ != 0) {
      loop_.cancel(keepalive_timer_);
      keepalive_timer_ = 0;
    }
    lister_->resume_input();
  }
}

void TreeGet::start_job(FileJob job) {
  struct stat st {};
  if (fstatat(job.dir->get(), job.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno != ENOENT) return fail_file(job, reactor::sys_error("stat", job.local));
    job.absent = true;
    return submit_get(std::move(job));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail_file(job, S_ISLNK(st.st_mode) ? "exists and is a symbolic link; not replaced"
                                               : "exists and is not a regular file; not replaced");
  }
  if (static_cast<uint64_t>(st.st_size) == job.size) {
    if (st.st_mtim.tv_sec == job.mtime) {
      report_.file_unchanged(job.remote, job.local, job.size, "unchanged (same size and modification time)");
      return;
    }
    // Same size, another time: the content decides, by the server's chunk-tree root.
    Flight flight;
    flight.command = std::make_unique<DigestsCommand>(job.remote, 0, 0);
    flight.job = std::move(job);
    flight.purpose = Purpose::kQuickCheck;
    return submit_flight(std::move(flight));
  }
  if (!options_.force) return fail_file(job, "exists and differs; use --force to replace it");
  submit_get(std::move(job));
}

void TreeGet::submit_flight(Flight flight) {
  Command& command = *flight.command;
  flights_.push_back(std::move(flight));
  data_->submit(command);
}

void TreeGet::submit_get(FileJob job) {
  // Resuming needs the chunk tree (version 2's digests); small files are simply fetched
  // again, which costs less than a partial and its note would.
  if (job.size > protocol::kChunkSize && data_->protocol_version() >= protocol::kTreeVersion &&
      data_->server_offers(protocol::kFeatureDigests)) {
    submit_partial_get(job);
    return;
  }
  auto sink = std::make_unique<app::BodySink>(
      job.size >= kBackgroundHashing ? app::BodySink::Hashing::kBackground : app::BodySink::Hashing::kInline,
      protocol::digest_kind_for(data_->protocol_version()));
  std::string err;
  // Replacing is decided here, not by the sink: a file that differs was let through only
  // with --force; one that appeared meanwhile is not clobbered. A name just seen absent
  // is not looked up again: 10,000 small files would pay for it 10,000 times.
  struct stat st {};
  bool overwrite =
      options_.force && !job.absent && fstatat(job.dir->get(), job.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!sink->open_file(job.dir, job.name, job.local, overwrite, job.absent, &err)) return fail_file(job, err);
  auto get = std::make_unique<GetCommand>(job.remote, std::move(sink), this);
  if (job.listed) get->expect_size(job.size);
  get->keep_mode(options_.preserve);
  Flight flight;
  flight.command = std::move(get);
  bytes_in_flight_ += job.size;
  flight.job = std::move(job);
  submit_flight(std::move(flight));
}

bool TreeGet::submit_partial_get(FileJob& job) {
  auto partial = std::make_unique<PartialDownload>();
  std::string err;
  if (!PartialDownload::open(job.dir->get(), job.name, job.local, partial.get(), &err)) {
    fail_file(job, err);
    return false;
  }
  if (partial->held() == 0) {
    submit_get_into(std::move(job), std::move(partial), 0, {});
    return true;
  }
  // What an earlier run left: its chunks are worth keeping only where their digests
  // match the server's, so those come first (one for each chunk held, and the next).
  Flight flight;
  flight.command =
      std::make_unique<DigestsCommand>(job.remote, 0, partial->held() / protocol::kChunkSize + 1);
  flight.job = std::move(job);
  flight.purpose = Purpose::kResumeCheck;
  flight.partial = std::move(partial);
  submit_flight(std::move(flight));
  return true;
}

void TreeGet::on_resume_check(Flight& flight) {
  auto& digests = static_cast<DigestsCommand&>(*flight.command);
  FileJob& job = flight.job;
  PartialDownload& partial = *flight.partial;
  if (!digests.succeeded()) return fail_file(job, digests.result().message);
  const protocol::DigestsReply& reply = digests.reply();
  std::string err;
  // Held for another path, or another version of this one (the note says), or the file
  // changed since the listing: nothing of it is this file's.
  const std::optional<PartialSource>& was = partial.note();
  bool same_file = reply.size == job.size && (!was || (was->path == job.remote && was->size == reply.size &&
                                                       was->mtime == reply.mtime));
  uint64_t kept = 0;
  std::vector<protocol::Digest> verified;
  if (same_file) {
    ChunkCheck check;
    if (!check_chunks(partial.fd(), std::min(partial.held(), reply.size), reply.size, digests.leaves(), &check, &err))
      return fail_file(job, err);
    // The verified prefix is kept; from the first chunk that differs on, the file is
    // fetched again (a tree's files are fetched whole or resumed from one place).
    uint64_t good = check.bad.empty() ? check.checked : check.bad.front();
    kept = std::min(good * protocol::kChunkSize, reply.size);
    verified.assign(digests.leaves().begin(), digests.leaves().begin() + static_cast<std::ptrdiff_t>(good));
  }
  if (!partial.truncate(kept, &err)) return fail_file(job, err);
  report_.file_resumed(job.remote, job.local, partial.held(), kept, job.size);
  submit_get_into(std::move(job), std::move(flight.partial), kept, verified);
}

void TreeGet::submit_get_into(FileJob job, std::unique_ptr<PartialDownload> partial, uint64_t offset,
                              const std::vector<protocol::Digest>& leaves) {
  std::string err;
  auto sink = std::make_unique<app::BodySink>(
      job.size >= kBackgroundHashing ? app::BodySink::Hashing::kBackground : app::BodySink::Hashing::kInline,
      protocol::DigestKind::kTree);
  reactor::UniqueFd dir(fcntl(job.dir->get(), F_DUPFD_CLOEXEC, 0));
  if (!dir) return fail_file(job, reactor::sys_error("dup"));
  reactor::UniqueFd file = partial->dup_fd(&err);
  if (!file) return fail_file(job, err);
  struct stat st {};
  bool overwrite = options_.force && fstatat(job.dir->get(), job.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!sink->adopt(std::move(dir), job.name, job.local, overwrite, partial->file_name(), std::move(file), leaves, offset,
                   &err))
    return fail_file(job, err);
  auto get = std::make_unique<GetCommand>(job.remote, std::move(sink), this, offset);
  get->use_partial(partial.get(), options_.server);
  if (job.listed) get->expect_size(job.size);
  get->keep_mode(options_.preserve);
  Flight flight;
  flight.command = std::move(get);
  bytes_in_flight_ += job.size - offset;
  flight.job = std::move(job);
  flight.partial = std::move(partial);
  submit_flight(std::move(flight));
}

void TreeGet::on_received(uint64_t bytes) {
  received_now_ = bytes;
  report_.received(received_before_ + received_now_);
}

void TreeGet::on_data_done(Command& command) {
  if (flights_.empty() || flights_.front().command.get() != &command) return;  // not ours: cannot happen
  Flight flight = std::move(flights_.front());
  flights_.pop_front();
  if (flight.purpose == Purpose::kQuickCheck) {
    on_quick_check(flight);
  } else if (flight.purpose == Purpose::kResumeCheck) {
    on_resume_check(flight);
  } else {
    auto& get = static_cast<GetCommand&>(*flight.command);
    bytes_in_flight_ -= std::min(bytes_in_flight_, flight.job.size - get.offset());
    received_before_ += get.received();
    received_now_ = 0;
    report_.received(received_before_);
    if (get.succeeded()) {
      report_.file_done(flight.job.remote, flight.job.local, get.expected_size());
    } else {
      report_.file_failed(flight.job.remote, flight.job.local, get.result().message);
    }
  }
  pump();
  maybe_finish();
}

void TreeGet::on_quick_check(Flight& flight) {
  auto& digests = static_cast<DigestsCommand&>(*flight.command);
  FileJob& job = flight.job;
  if (!digests.succeeded()) return fail_file(job, digests.result().message);
  const protocol::DigestsReply& reply = digests.reply();
  protocol::Digest root{};
  if (reply.size == job.size && app::tree_root_at(job.dir->get(), job.name, job.size, &root) && root == reply.root) {
    if (options_.preserve) {
      // Same content: only the time (and mode) are brought in line.
      struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(reply.mtime), 0}};
      utimensat(job.dir->get(), job.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    report_.file_unchanged(job.remote, job.local, job.size, "unchanged (same content)");
    return;
  }
  if (!options_.force) return fail_file(job, "exists and differs; use --force to replace it");
  submit_get(std::move(job));
}

void TreeGet::fail_file(const FileJob& job, const std::string& why) {
  report_.file_failed(job.remote, job.local, why);
}

void TreeGet::maybe_finish() {
  if (done_ || !sources_done_ || !queue_.empty() || !flights_.empty()) return;
  std::vector<std::string> errors;
  for (auto& tree : done_trees_) tree->finish(&errors);
  for (const std::string& error : errors) report_.failed("-p", error);
  finish(report_.failures() > 0 ? kExitPartial : kExitOk);
}

void TreeGet::on_failure(Connection&, Failure failure, const std::string& message) {
  if (done_) return;
  finish(exit_code_for(failure), message);
}

void TreeGet::interrupt(const char* signal_name) {
  if (done_) return;
  finish(kExitInterrupted, std::string("interrupted by ") + signal_name);
}

void TreeGet::finish(int status, const std::string& fatal) {
  if (done_) return;
  done_ = true;
  exit_code_ = status;
  // Whatever is in flight is abandoned: its temporary files go, nothing is half-kept.
  if (lister_) lister_->close();
  if (data_) data_->close();
  flights_.clear();
  report_.finish(status, fatal);
  if (tick_timer_ != 0) {
    loop_.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  if (keepalive_timer_ != 0) {
    loop_.cancel(keepalive_timer_);
    keepalive_timer_ = 0;
  }
  loop_.stop();
}

}  // namespace client
