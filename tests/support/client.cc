#include "tests/support/client.h"

#include <algorithm>
#include <utility>

#include "tests/support/binaries.h"

namespace testsupport {
namespace {

std::string excerpt(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...(" + std::to_string(text.size()) + " bytes)";
}

SpawnOptions spawn_options(std::vector<std::string> argv, const RunOptions& options,
                           const std::string& output_dir, std::string name) {
  SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.env = options.env;
  // Whoever runs the suite may have a ~/.config/reactor/config of their own: unless a
  // test says where to look, reactorc looks where there is nothing.
  bool xdg_given = std::any_of(spawn.env.begin(), spawn.env.end(),
                               [](const auto& var) { return var.first == "XDG_CONFIG_HOME"; });
  if (!xdg_given) spawn.env.emplace_back("XDG_CONFIG_HOME", "/nonexistent/reactor-test-config");
  spawn.output_dir = output_dir;
  spawn.name = std::move(name);
  spawn.working_dir = options.working_dir;
  spawn.stdin_fd = options.stdin_fd;
  return spawn;
}

ClientResult collect(Process& proc, Millis timeout) {
  ClientResult result;
  result.status = proc.wait_exit(timeout);
  if (result.status.timed_out()) proc.kill_and_wait();
  result.stdout_text = proc.stdout_text();
  result.stderr_text = proc.stderr_text();
  return result;
}

ClientResult not_started(std::string why) {
  ClientResult result;
  result.spawn_error = std::move(why);
  return result;
}

}  // namespace

std::string ClientResult::describe() const {
  std::string out = status.describe();
  if (!spawn_error.empty()) out += "; spawn error: " + spawn_error;
  if (!stderr_text.empty()) out += "; stderr: " + excerpt(stderr_text, 2000);
  if (!stdout_text.empty()) out += "; stdout: " + excerpt(stdout_text, 500);
  return out;
}

ClientResult run_program(const std::vector<std::string>& argv, Millis timeout,
                         const RunOptions& options) {
  std::string err;
  std::optional<TempDir> own;
  std::string dir = options.output_dir;
  if (dir.empty()) {
    own = TempDir::create("reactor-run", &err);
    if (!own) return not_started(err);
    dir = own->path();
  }
  auto proc = Process::spawn(spawn_options(argv, options, dir, ""), &err);
  if (!proc) return not_started(err);
  return collect(*proc, timeout);
}

ClientResult run_client(const std::vector<std::string>& args, Millis timeout,
                        const RunOptions& options) {
  std::string binary = options.binary;
  if (binary.empty()) {
    std::string err;
    auto found = find_binary("reactorc", &err);
    if (!found) return not_started(err);
    binary = *found;
  }
  std::vector<std::string> argv{binary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, timeout, options);
}

std::optional<ClientBatch> ClientBatch::create(const RunOptions& options, std::string* err) {
  ClientBatch batch;
  batch.options_ = options;
  if (batch.options_.binary.empty()) {
    auto found = find_binary("reactorc", err);
    if (!found) return std::nullopt;
    batch.options_.binary = *found;
  }
  if (batch.options_.output_dir.empty()) {
    batch.own_dir_ = TempDir::create("reactor-clients", err);
    if (!batch.own_dir_) return std::nullopt;
    batch.options_.output_dir = batch.own_dir_->path();
  }
  return batch;
}

std::optional<size_t> ClientBatch::start(const std::vector<std::string>& args, std::string* err) {
  std::vector<std::string> argv{options_.binary};
  argv.insert(argv.end(), args.begin(), args.end());
  size_t index = clients_.size();
  auto proc = Process::spawn(
      spawn_options(std::move(argv), options_, options_.output_dir,
                    "client-" + std::to_string(index)),
      err);
  if (!proc) return std::nullopt;
  clients_.push_back(std::move(*proc));
  return index;
}

std::vector<ClientResult> ClientBatch::wait_all(Millis timeout) {
  testsupport::wait_all(clients_, timeout);
  std::vector<ClientResult> results;
  results.reserve(clients_.size());
  for (auto& proc : clients_) results.push_back(collect(proc, Millis(0)));
  return results;
}

}  // namespace testsupport
