#include "apps/reactord/server.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>

#include "apps/common/human_units.h"
#include "apps/common/log.h"
#include "apps/reactord/partial_sweep.h"
#include "apps/reactord/session.h"
#include "protocol/features.h"
#include "protocol/messages.h"
#include "reactor/socket_ops.h"

namespace server {
namespace {

// How often a writable server looks for expired partial uploads (and at start).
constexpr auto kPartialSweepInterval = std::chrono::minutes(10);

}  // namespace

Server::Server(reactor::EventLoop& loop, Options options, std::unique_ptr<ServedRoot> root, app::Secret secret)
    : loop_(loop),
      options_(std::move(options)),
      root_(std::move(root)),
      secret_(std::move(secret)),
      work_queue_(loop),
      features_(protocol::server_features()) {
  root_->hide(secret_.dev, secret_.ino);
  tutorial_.file = options_.tutorial_file;
  tutorial_.md5 = options_.tutorial_md5;
  tutorial_.auth = options_.tutorial_auth;
  tutorial_.key = secret_.key;
  tutorial_.auth_timeout = options_.handshake_timeout;
}

Server::~Server() {
  if (sweep_timer_ != 0) loop_.cancel(sweep_timer_);
  if (grace_timer_ != 0) loop_.cancel(grace_timer_);
  if (partial_timer_ != 0) loop_.cancel(partial_timer_);
  sessions_.clear();
  retired_.clear();
  tutorials_.clear();
  retired_tutorials_.clear();
}

bool Server::make_tls(std::string* err) {
  protocol::TlsServerConfig config;
  config.secret = secret_.key;
  config.cert_file = options_.tls_cert;
  config.key_file = options_.tls_key;
  std::shared_ptr<protocol::TlsContext> fresh = protocol::TlsContext::server(config, err);
  if (!fresh) return false;
  tls_ = std::move(fresh);
  return true;
}

bool Server::check_tutorial_file(std::string* err) const {
  if (options_.tutorial_listen.empty() || tutorial_.file.empty()) return true;
  struct stat st {};
  protocol::ProtocolError refusal;
  if (root_->open_file(tutorial_.file, &st, &refusal)) return true;
  *err = "--tutorial-file: " + refusal.message;
  return false;
}

bool Server::start(const std::vector<Endpoint>& endpoints, std::string* err) {
  for (const Endpoint& endpoint : endpoints) {
    bool tls = endpoint.tls && !endpoint.tutorial;
    bool tutorial = endpoint.tutorial;
    if (tls && !tls_ && !make_tls(err)) return false;
    auto listener = reactor::Listener::open(
        loop_, endpoint.address,
        [this, tls, tutorial](reactor::UniqueFd fd, const reactor::SocketAddress& peer) {
          if (tutorial) return on_tutorial_accept(std::move(fd), peer);
          on_accept(std::move(fd), peer, tls);
        },
        err);
    if (!listener) return false;
    // Responses end with small frames (a get's trailer after a sendfile body, a pong):
    // with Nagle on, each would wait for the client's delayed ACK, ~40 ms. Linux copies
    // TCP_NODELAY from the listener to every socket accept() returns, which saves a
    // setsockopt per connection (tests/test_transfer.cc checks an accepted socket).
    if (!reactor::set_nodelay(listener->fd(), true, err)) return false;
    listener->set_error_handler([](const std::string& message) { app::log_warn("%s", message.c_str()); });
    const char* mode = tutorial ? "the socket tutorial's format"
                       : !tls   ? "plain"
                       : tls_->certificate_mode() ? "TLS, certificate"
                                                  : "TLS, pre-shared key";
    app::log_info("listening on %s (%s)", listener->local_address().to_string().c_str(), mode);
    if (tutorial)
      app::log_warn("the tutorial listener on %s speaks plain text%s: for learning, not for files that matter",
                    listener->local_address().to_string().c_str(),
                    options_.tutorial_auth || options_.tutorial_md5 ? " and trusts MD5" : "");
    listeners_.push_back(std::move(listener));
  }
  if (!loop_.on_signal(SIGINT, [this] { begin_shutdown("SIGINT"); }, err) ||
      !loop_.on_signal(SIGTERM, [this] { begin_shutdown("SIGTERM"); }, err) ||
      !loop_.on_signal(SIGHUP, [this] { reload_secret(); }, err))
    return false;
  // Redis-style: one sweep a second checks every session's deadlines, instead of a
  // timer per session that every request would have to cancel and re-arm.
  sweep_timer_ = loop_.run_every(std::chrono::seconds(1), [this] { sweep(); });
  if (options_.writable) {
    sweep_partials();
    partial_timer_ = loop_.run_every(kPartialSweepInterval, [this] { sweep_partials(); });
  }
  std::string rate_cap = options_.limit_rate > 0 ? ", each at most " + app::format_rate(static_cast<double>(options_.limit_rate)) + " each way" : "";
  app::log_info("serving \"%s\" (%s, %s loop, at most %llu connections%s%s)", root_->display_path().c_str(),
                root_->uses_openat2() ? "openat2" : "component walk", loop_.backend_name(),
                static_cast<unsigned long long>(options_.max_connections), rate_cap.c_str(),
                tls_ && tls_->ktls_offered() ? ", kernel TLS offered" : "");
  return true;
}

void Server::on_accept(reactor::UniqueFd fd, const reactor::SocketAddress& peer, bool tls) {
  if (shutting_down_) return;  // fd closes here
  if (session_count() >= options_.max_connections) {
    // Tell the client why before closing; a short frame fits any fresh socket buffer,
    // so this one non-blocking send either goes out whole or not at all. (A TLS client
    // reads it as a bad record and says what the server sent: see protocol/tls.cc.)
    std::string frame = protocol::encode(protocol::ErrorMessage{
        protocol::ErrorCode::kBusy, "the server is at its connection limit; try again later"});
    (void)::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    app::log_warn("%s refused: at the limit of %llu connections", peer.to_string().c_str(),
                  static_cast<unsigned long long>(options_.max_connections));
    return;
  }
  std::unique_ptr<reactor::Transport> transport;
  if (tls) {
    std::string err;
    transport = tls_->wrap(fd.get(), &err);
    if (!transport) {
      app::log_error("%s: %s", peer.to_string().c_str(), err.c_str());
      return;
    }
  }
  uint64_t id = next_id_++;
  auto session = std::make_unique<Session>(*this, id, std::move(fd), peer, std::move(transport));
  Session* raw = session.get();
  // The session's copy of the address text: log arguments are built even at -q.
  app::log_info("%s #%llu connected", raw->peer().c_str(), static_cast<unsigned long long>(id));
  sessions_.emplace(id, std::move(session));
  raw->start();
}

void Server::on_tutorial_accept(reactor::UniqueFd fd, const reactor::SocketAddress& peer) {
  if (shutting_down_) return;
  if (session_count() >= options_.max_connections) {
    app::log_warn("%s refused (tutorial): at the limit of %llu connections", peer.to_string().c_str(),
                  static_cast<unsigned long long>(options_.max_connections));
    return;  // the tutorial's format has no way to say why: the connection just closes
  }
  uint64_t id = next_id_++;
  auto session = std::make_unique<TutorialSession>(loop_, work_queue_, *root_, tutorial_, id, std::move(fd),
                                                   peer.to_string(), [this](TutorialSession* s) { retire_tutorial(s); });
  TutorialSession* raw = session.get();
  app::log_info("%s #%llu connected (tutorial)", peer.to_string().c_str(), static_cast<unsigned long long>(id));
  tutorials_.emplace(id, std::move(session));
  raw->start();
}

void Server::retire_tutorial(TutorialSession* session) {
  auto it = tutorials_.find(session->id());
  if (it == tutorials_.end()) return;
  retired_tutorials_.push_back(std::move(it->second));
  tutorials_.erase(it);
  if (retired_tutorials_.size() == 1) loop_.defer([this] { retired_tutorials_.clear(); });
  if (shutting_down_ && nothing_left()) loop_.defer([this] { finish_shutdown(); });
}

void Server::retire(Session* session) {
  auto it = sessions_.find(session->id());
  if (it == sessions_.end()) return;
  retired_.push_back(std::move(it->second));
  sessions_.erase(it);
  // Destroy after the current dispatch pass: the session may be deep in its own
  // callback right now (Redis's freeClientAsync, libuv's closing queue).
  if (retired_.size() == 1) loop_.defer([this] { retired_.clear(); });
  if (shutting_down_ && nothing_left()) loop_.defer([this] { finish_shutdown(); });
}

void Server::sweep_partials() {
  if (partial_sweep_running_ || shutting_down_) return;
  protocol::ProtocolError err;
  reactor::UniqueFd root = root_->open_directory("", &err);
  if (!root) return app::log_warn("cannot sweep old partial uploads: %s", err.message.c_str());
  auto fd = std::make_shared<reactor::UniqueFd>(std::move(root));
  auto result = std::make_shared<SweepResult>();
  auto ttl = std::chrono::duration_cast<std::chrono::seconds>(options_.partial_ttl);
  // A temporary is a crash's debris once no live upload could still be writing it.
  auto stale = std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout) + std::chrono::seconds(60);
  std::string why;
  partial_sweep_running_ = true;
  reactor::WorkQueue::Id id = work_queue_.submit(
      [fd, result, ttl, stale] { *result = server::sweep_partials(fd->get(), ttl, stale, time(nullptr)); },
      [this, result] {
        partial_sweep_running_ = false;
        if (result->removed > 0)
          app::log_info("removed %llu partial upload(s) older than their time (%llu directories looked at)",
                        static_cast<unsigned long long>(result->removed),
                        static_cast<unsigned long long>(result->directories));
        if (!result->error.empty()) app::log_warn("sweeping old partial uploads: %s", result->error.c_str());
      },
      &why);
  if (id == 0) {
    partial_sweep_running_ = false;
    app::log_warn("cannot sweep old partial uploads: %s", why.c_str());
  }
}

void Server::sweep() {
  reactor::EventLoop::Clock::time_point now = loop_.now();
  // Collect first: check_timeouts may close (retire) sessions, changing the table.
  std::vector<Session*> all;
  all.reserve(sessions_.size());
  for (auto& entry : sessions_) all.push_back(entry.second.get());
  for (Session* session : all) {
    if (session->state() != SessionState::kClosed) session->check_timeouts(now);
  }
  std::vector<TutorialSession*> tutorials;
  for (auto& entry : tutorials_) tutorials.push_back(entry.second.get());
  for (TutorialSession* session : tutorials) session->check_timeouts(now, options_.idle_timeout);
  throttle_.prune(now);
}

void Server::begin_shutdown(const char* why) {
  if (shutting_down_) {
    app::log_info("%s again: stopping now", why);
    finish_shutdown();
    return;
  }
  shutting_down_ = true;
  for (auto& listener : listeners_) listener->close();
  app::log_info("%s: no longer accepting; finishing %zu connection(s) (grace %.1f s)", why, sessions_.size(),
                std::chrono::duration<double>(options_.grace).count());
  std::vector<Session*> all;
  for (auto& entry : sessions_) all.push_back(entry.second.get());
  for (Session* session : all) session->begin_shutdown();
  // Tutorial downloads run to their end within the grace period; the chat has no end.
  std::vector<TutorialSession*> chats;
  for (auto& entry : tutorials_)
    if (tutorial_.file.empty()) chats.push_back(entry.second.get());
  for (TutorialSession* chat : chats) chat->close("the server is shutting down");
  if (nothing_left()) {
    loop_.defer([this] { finish_shutdown(); });
    return;
  }
  grace_timer_ = loop_.run_after(options_.grace, [this] {
    grace_timer_ = 0;
    app::log_warn("grace period over: closing %zu connection(s)", sessions_.size());
    finish_shutdown();
  });
}

void Server::finish_shutdown() {
  // Aborting the last sessions schedules this again (retire); once is enough.
  if (stopped_) return;
  stopped_ = true;
  std::vector<Session*> all;
  for (auto& entry : sessions_) all.push_back(entry.second.get());
  for (Session* session : all) session->abort("server stopping");
  std::vector<TutorialSession*> tutorials;
  for (auto& entry : tutorials_) tutorials.push_back(entry.second.get());
  for (TutorialSession* session : tutorials) session->close("server stopping");
  if (grace_timer_ != 0) {
    loop_.cancel(grace_timer_);
    grace_timer_ = 0;
  }
  app::log_info("stopped");
  loop_.stop();
}

void Server::reload_secret() {
  app::Secret fresh;
  std::string err;
  if (!app::load_secret(secret_.path, &fresh, &err)) {
    app::log_error("SIGHUP: keeping the current secret: %s", err.c_str());
    return;
  }
  app::Secret previous = std::move(secret_);
  secret_ = std::move(fresh);
  // New TLS connections use the new secret (or re-read certificate); those already up
  // keep the context they were made with.
  if (tls_ && !make_tls(&err)) {
    app::log_error("SIGHUP: keeping the current secret: %s", err.c_str());
    secret_ = std::move(previous);
    return;
  }
  root_->hide(secret_.dev, secret_.ino);
  tutorial_.key = secret_.key;
  app::log_info("SIGHUP: reloaded the secret from \"%s\"", secret_.path.c_str());
}

}  // namespace server
