#include "apps/reactorc/tree_put.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "apps/common/file_hash.h"
#include "apps/common/log.h"
#include "apps/common/symlink_at.h"
#include "apps/common/terminal_text.h"
#include "apps/reactorc/exit_codes.h"
#include "apps/reactorc/local_path.h"
#include "apps/reactorc/local_tree.h"
#include "apps/reactorc/resume_commands.h"
#include "protocol/content_hash.h"
#include "protocol/features.h"
#include "reactor/errors.h"

namespace client {

bool TreePut::handles(const Options& options) {
  return options.verb == Verb::kPut && (options.recursive || options.operands.size() > 2);
}

TreePut::TreePut(reactor::EventLoop& loop, const Options& options, const app::Secret& secret,
                 std::shared_ptr<protocol::TlsContext> tls)
    : loop_(loop), options_(options), secret_(secret), tls_(std::move(tls)), report_(options.progress, options.verbosity) {}

TreePut::~TreePut() {
  if (tick_timer_ != 0) loop_.cancel(tick_timer_);
}

bool TreePut::prepare() {
  if (options_.resume) {
    app::log_error("-c resumes one file; it does not apply to put -r or to several sources");
    exit_code_ = kExitUsage;
    return false;
  }
  sources_ = options_.operands;
  std::string remote;
  if (sources_.size() > 1) {
    remote = sources_.back();
    sources_.pop_back();
  }
  if (remote.size() > protocol::kMaxPathLen) {
    app::log_error("the remote path is %zu bytes; the protocol allows at most %zu", remote.size(), protocol::kMaxPathLen);
    exit_code_ = kExitUsage;
    return false;
  }
  dest_ = normalise_remote(remote);
  return true;
}

void TreePut::start(std::vector<reactor::SocketAddress> addresses) {
  report_.start(sources_, dest_.empty() ? "." : dest_);
  tick_timer_ = loop_.run_every(std::chrono::milliseconds(100), [this] {
    uint64_t going = 0;  // of the uploads under way
    for (const auto& [command, flight] : flights_)
      if (flight.step == Step::kPut) going += static_cast<const PutCommand*>(command)->sent();
    report_.received(bytes_before_ + going);
    report_.tick();
  });
  connection_ = std::make_unique<Connection>(loop_, secret_, *this, tls_);
  connection_->set_rate_limit(options_.limit_rate);
  connection_->connect(std::move(addresses), options_.timeout);
}

void TreePut::on_ready(Connection& connection) {
  if (options_.verbosity > 0) {
    app::log_info("connected to %s (%s), %s", connection.peer().c_str(), connection.server_software().c_str(),
                  connection.security().c_str());
  }
  if (connection.protocol_version() < 2 || !connection.server_offers(protocol::kFeaturePut)) {
    return finish(kExitRemote, "the server (" + connection.server_software() + ") takes no uploads");
  }
  if (dest_.empty()) {  // the served root: every source lands inside it
    started_ = true;
    return pump();
  }
  submit(Step::kDestination, std::make_unique<StatCommand>(dest_), nullptr);
}

void TreePut::on_destination(StatCommand& stat) {
  // cp's rule: with several sources REMOTE is a directory that exists; with one, it is
  // the copy's name unless it is a directory.
  bool is_dir = stat.succeeded() && stat.reply().kind == protocol::EntryKind::kDir;
  bool missing = !stat.succeeded() && stat.result().remote_code == protocol::ErrorCode::kNotFound;
  if (sources_.size() > 1 && !is_dir) {
    return finish(kExitRemote, "target \"" + app::escape_for_terminal(dest_) + "\" is not a directory on the server" +
                                   (missing ? " (it does not exist)" : ""));
  }
  if (!stat.succeeded() && !missing) return finish(kExitRemote, stat.result().message);
  into_dir_ = is_dir;
  dest_is_file_ = stat.succeeded() && stat.reply().kind == protocol::EntryKind::kFile;
  started_ = true;
  pump();
}

bool TreePut::start_source() {
  const std::string& local = sources_[next_source_];
  std::string base = last_name(local);
  std::string remote = into_dir_ ? join_path(dest_, base) : dest_;
  struct stat st {};
  if (stat(local.c_str(), &st) != 0) {
    report_.failed(local, reactor::sys_error("stat", local));
    return false;
  }
  if (base.empty() || base == "." || base == "..") {
    if (!(S_ISDIR(st.st_mode) && !into_dir_) && !(S_ISDIR(st.st_mode) && dest_.empty())) {
      report_.failed(local, "cannot name the copy of \"" + local + "\" on the server; give REMOTE");
      return false;
    }
    remote = dest_;  // "put -r . photos": the contents of . into photos
  }
  if (S_ISREG(st.st_mode)) {
    auto job = std::make_shared<Job>();
    job->local = local;
    job->remote = remote;
    reactor::UniqueFd parent;
    std::string name;
    std::string err;
    if (!open_parent(local, &parent, &name, &err)) {
      report_.failed(local, err);
      return false;
    }
    job->name = name;
    job->parent = std::make_shared<const reactor::UniqueFd>(std::move(parent));
    job->st = st;
    report_.listed(1, static_cast<uint64_t>(st.st_size));
    submit(Step::kStat, std::make_unique<StatCommand>(remote), job);
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    report_.file_skipped(remote, local, "not a regular file or directory");
    return false;
  }
  if (!options_.recursive) {
    report_.failed(local, "is a directory; use -r to copy it");
    return false;
  }
  if (dest_is_file_) {
    report_.failed(local, "\"" + dest_ + "\" is a file on the server, not a directory");
    return false;
  }
  if (!connection_->server_offers(protocol::kFeatureMkdir)) {
    report_.failed(local, "the server cannot make directories (it does not offer \"mkdir\")");
    return false;
  }
  reactor::UniqueFd top(open(local.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string err;
  if (!top) {
    report_.failed(local, reactor::sys_error("open", local));
    return false;
  }
  walk_ = std::make_unique<LocalWalk>(std::move(top), &err);
  if (!walk_->ok()) {
    report_.failed(local, err);
    walk_.reset();
    return false;
  }
  walk_local_ = local;
  walk_remote_ = remote;
  if (!remote.empty()) submit_mkdir(remote, st);
  return true;
}

void TreePut::submit_mkdir(const std::string& remote, const struct stat& st) {
  std::optional<uint32_t> mode;
  std::optional<int64_t> mtime;
  if (options_.preserve) {
    mode = static_cast<uint32_t>(st.st_mode & 0777);
    mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
  }
  submit(Step::kMkdir, std::make_unique<MkdirCommand>(remote, mode), nullptr, remote, mtime);
}

void TreePut::pump() {
  while (!done_ && started_ && flights_.size() < kWindowRequests) {
    if (!walk_) {
      if (next_source_ >= sources_.size()) break;
      bool walking = start_source();
      ++next_source_;
      if (!walking) continue;
    }
    LocalWalk::Item item;
    if (!walk_->next(&item)) {
      walk_.reset();
      continue;
    }
    std::string local = join_path(walk_local_, item.path);
    std::string remote = join_path(walk_remote_, item.path);
    switch (item.kind) {
      case LocalWalk::Item::kDir:
        submit_mkdir(remote, item.st);
        break;
      case LocalWalk::Item::kFile: {
        auto job = std::make_shared<Job>();
        job->local = local;
        job->remote = remote;
        job->parent = item.parent;
        job->name = item.name;
        job->st = item.st;
        report_.listed(1, static_cast<uint64_t>(item.st.st_size));
        submit(Step::kStat, std::make_unique<StatCommand>(remote), job);
        break;
      }
      case LocalWalk::Item::kOther:
        if (S_ISLNK(item.st.st_mode)) {
          put_link(item, local, remote);
        } else {
          report_.file_skipped(remote, local, item.why);
        }
        break;
      case LocalWalk::Item::kUnreadable:
        report_.failed(local, "not copied: " + item.why);
        break;
    }
  }
  // Everything is in: the directories' times, deepest first (the reverse of the walk's
  // pre-order puts every directory after those inside it).
  if (!done_ && started_ && !walk_ && next_source_ >= sources_.size() && flights_.empty()) setting_times_ = true;
  while (setting_times_ && !done_ && !dir_times_.empty() && flights_.size() < kWindowRequests) {
    DirTime last = std::move(dir_times_.back());
    dir_times_.pop_back();
    submit(Step::kDirTime, std::make_unique<MkdirCommand>(last.remote, std::nullopt, last.mtime), nullptr, last.remote);
  }
  maybe_finish();
}

void TreePut::put_link(const LocalWalk::Item& item, const std::string& local, const std::string& remote) {
  if (!options_.links) return report_.file_skipped(remote, local, item.why + " (--links recreates links)");
  int errnum = 0;
  std::optional<std::string> read = app::read_link_target(item.parent->get(), item.name.c_str(), &errnum);
  if (!read && errnum != 0) return report_.file_failed(remote, local, reactor::sys_error(errnum, "readlink", local));
  if (!read) {
    return report_.file_skipped(remote, local,
                                "a symbolic link whose target the protocol cannot carry (longer than 4096 bytes, "
                                "or not valid UTF-8)");
  }
  const std::string& target = *read;
  if (!app::link_stays_within(app::depth_of(item.path), target)) {
    return report_.file_skipped(remote, local, "a symbolic link to \"" + target + "\", which " +
                                                   app::link_escape_reason(target, "the copied tree"));
  }
  if (!connection_->server_offers(protocol::kFeatureLinks))
    return report_.file_skipped(remote, local, "a symbolic link, and the server cannot make links (no \"links\")");
  auto job = std::make_shared<Job>();
  job->local = local;
  job->remote = remote;
  submit(Step::kSymlink, std::make_unique<SymlinkCommand>(remote, target, options_.force), job);
}

void TreePut::submit(Step step, std::unique_ptr<Command> command, std::shared_ptr<Job> job, std::string what,
                     std::optional<int64_t> dir_mtime) {
  Command& ref = *command;
  flights_[&ref] = Flight{std::move(command), step, std::move(job), std::move(what), dir_mtime};
  connection_->submit(ref);
}

void TreePut::on_command_done(Connection&, Command& command) {
  if (done_) return;
  auto it = flights_.find(&command);
  if (it == flights_.end()) return;
  Flight flight = std::move(it->second);
  flights_.erase(it);
  switch (flight.step) {
    case Step::kDestination:
      on_destination(static_cast<StatCommand&>(command));
      return;
    case Step::kMkdir:
      if (!command.succeeded()) {
        report_.failed(flight.what, command.result().message);
      } else if (flight.dir_mtime) {
        dir_times_.push_back(DirTime{flight.what, *flight.dir_mtime});
      }
      break;
    case Step::kDirTime:
      if (!command.succeeded()) report_.failed(flight.what, "set its time: " + command.result().message);
      break;
    case Step::kSymlink: {
      auto& link = static_cast<SymlinkCommand&>(command);
      if (link.succeeded()) {
        report_.link_done(flight.job->remote, flight.job->local, link.target(), link.unchanged());
      } else {
        report_.file_failed(flight.job->remote, flight.job->local, link.result().message);
      }
      break;
    }
    case Step::kStat:
      on_stat(flight.job, static_cast<StatCommand&>(command));
      break;
    case Step::kDigests:
      on_digests(flight.job, command);
      break;
    case Step::kPut: {
      auto& put = static_cast<PutCommand&>(command);
      bytes_before_ += put.sent();
      report_.received(bytes_before_);
      if (put.succeeded()) {
        report_.file_done(flight.job->remote, flight.job->local, put.size());
      } else {
        report_.file_failed(flight.job->remote, flight.job->local, put.result().message);
      }
      break;
    }
  }
  pump();
}

void TreePut::on_stat(const std::shared_ptr<Job>& job, StatCommand& stat) {
  if (!stat.succeeded()) {
    if (stat.result().remote_code == protocol::ErrorCode::kNotFound) return submit_put(job);
    return report_.file_failed(job->remote, job->local, stat.result().message);
  }
  const protocol::StatReply& reply = stat.reply();
  if (reply.kind != protocol::EntryKind::kFile)
    return report_.file_failed(job->remote, job->local, "exists on the server and is not a regular file; not replaced");
  job->exists = true;
  uint64_t size = static_cast<uint64_t>(job->st.st_size);
  if (reply.size == size) {
    if (reply.mtime == static_cast<int64_t>(job->st.st_mtim.tv_sec))
      return report_.file_unchanged(job->remote, job->local, size, "unchanged (same size and modification time)");
    if (connection_->server_offers(protocol::kFeatureDigests))
      return submit(Step::kDigests, std::make_unique<DigestsCommand>(job->remote, 0, 0), job);
  }
  if (!options_.force)
    return report_.file_failed(job->remote, job->local, "exists on the server and differs; use --force to replace it");
  submit_put(job);
}

void TreePut::on_digests(const std::shared_ptr<Job>& job, Command& command) {
  auto& digests = static_cast<DigestsCommand&>(command);
  if (!digests.succeeded()) return report_.file_failed(job->remote, job->local, digests.result().message);
  protocol::Digest root{};
  uint64_t size = static_cast<uint64_t>(job->st.st_size);
  if (digests.reply().size == size && app::tree_root_at(job->parent->get(), job->name, size, &root) && root == digests.reply().root)
    return report_.file_unchanged(job->remote, job->local, size, "unchanged (same content)");
  if (!options_.force)
    return report_.file_failed(job->remote, job->local, "exists on the server and differs; use --force to replace it");
  submit_put(job);
}

void TreePut::submit_put(const std::shared_ptr<Job>& job) {
  // Opened now, not when walked: at most one file per request in flight is open.
  reactor::UniqueFd fd(openat(job->parent->get(), job->name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  struct stat st {};
  if (!fd || fstat(fd.get(), &st) != 0) return report_.file_failed(job->remote, job->local, reactor::sys_error("open", job->local));
  if (!S_ISREG(st.st_mode))
    return report_.file_failed(job->remote, job->local, "is no longer a regular file");
  auto put = std::make_unique<PutCommand>(std::move(fd), st, job->remote, options_.force && job->exists,
                                          options_.preserve, this);
  // Small files go eagerly, their data right behind the request; a big one waits for
  // the go-ahead, so that a refusal does not cost its whole body.
  put->set_eager(connection_->server_offers(protocol::kFeatureEagerPut) &&
                 static_cast<uint64_t>(st.st_size) <= kEagerLimit);
  submit(Step::kPut, std::move(put), job);
}

void TreePut::maybe_finish() {
  if (done_ || !started_ || walk_ || next_source_ < sources_.size() || !flights_.empty() || !dir_times_.empty()) return;
  finish(report_.failures() > 0 ? kExitPartial : kExitOk);
}

void TreePut::on_failure(Connection&, Failure failure, const std::string& message) {
  if (done_) return;
  finish(exit_code_for(failure), message);
}

void TreePut::interrupt(const char* signal_name) {
  if (done_) return;
  finish(kExitInterrupted, std::string("interrupted by ") + signal_name);
}

void TreePut::finish(int status, const std::string& fatal) {
  if (done_) return;
  done_ = true;
  exit_code_ = status;
  // An upload cut off here stores nothing: the server keeps no file without its end.
  if (connection_) connection_->close();
  flights_.clear();
  report_.finish(status, fatal);
  if (tick_timer_ != 0) {
    loop_.cancel(tick_timer_);
    tick_timer_ = 0;
  }
  loop_.stop();
}

}  // namespace client
