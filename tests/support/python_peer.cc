#include "tests/support/python_peer.h"

#include <criterion/criterion.h>
#include <unistd.h>

#include <utility>

namespace testsupport {

Process start_python_peer(const std::string& out_dir, const std::string& script, const std::vector<std::string>& args,
                          int* port) {
  static int serial = 0;
  SpawnOptions spawn;
  spawn.argv = {"python3", script};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.output_dir = out_dir;
  spawn.name = "python-peer-" + std::to_string(++serial);
  spawn.working_dir = out_dir;
  std::string err;
  std::optional<Process> proc = Process::spawn(spawn, &err);
  cr_assert(proc.has_value(), "%s", err.c_str());
  for (int i = 0; i < 500; ++i) {
    std::string out = proc->stdout_text();
    if (!out.empty() && out.find('\n') != std::string::npos) {
      *port = std::stoi(out);
      return std::move(*proc);
    }
    cr_assert(proc->running(), "%s exited: %s", script.c_str(), proc->stderr_text().c_str());
    usleep(10000);
  }
  cr_assert_fail("%s did not start: %s", script.c_str(), proc->stderr_text().c_str());
  return std::move(*proc);
}

}  // namespace testsupport
