// reactorc's configuration file: the parser's strictness (every error names its line),
// and how settings combine with the command line (config_file.h). The file on disk
// (ownership and modes) and a whole run against a real server are at the end.

#include <criterion/criterion.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "apps/reactorc/config_file.h"
#include "apps/reactorc/options.h"
#include "tests/support/assertions.h"
#include "tests/support/client.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/server.h"
#include "tests/support/temp_dir.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using client::ConfigFile;
using client::Options;
using namespace testsupport;

namespace {

const char kPin[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

ConfigFile parsed(const std::string& text) {
  ConfigFile config;
  std::string err;
  cr_assert(client::parse_config(text, "cfg", &config, &err), "%s", err.c_str());
  return config;
}

std::string parse_error(const std::string& text) {
  ConfigFile config;
  std::string err;
  cr_assert_not(client::parse_config(text, "cfg", &config, &err), "accepted: %s", text.c_str());
  return err;
}

// Options as the command line left them, then the file applied.
Options applied(const std::string& text, Options options = {}) {
  ConfigFile config = parsed(text);
  std::string err;
  cr_assert(client::apply_config(config, &options, &err), "%s", err.c_str());
  return options;
}

std::string apply_error(const std::string& text, Options options = {}) {
  ConfigFile config = parsed(text);
  std::string err;
  cr_assert_not(client::apply_config(config, &options, &err), "applied: %s", text.c_str());
  return err;
}

Options named(const std::string& server, std::vector<std::string> given = {}) {
  Options o;
  o.server = server;
  for (std::string& key : given) o.given.insert(std::move(key));
  return o;
}

}  // namespace

TestSuite(config_file, .timeout = 30);

Test(config_file, sections_comments_and_blank_lines) {
  ConfigFile c = parsed(
      "# defaults\n"
      "retry 5\n"
      "\n"
      "   timeout   12  \r\n"
      "server backup\n"
      "    address backup.example.org:9100\n"
      "\t# indented comment\n"
      "    tls-pin " + std::string(kPin) + "\n"
      "server laptop\n"
      "limit-rate 1M");  // no final newline
  cr_assert_eq(c.global.size(), 2u);
  cr_assert(c.global[1].key == "timeout" && c.global[1].value == "12" && c.global[1].line == 4);
  cr_assert_eq(c.servers.size(), 2u);
  cr_assert(c.find("backup") != nullptr && c.find("backup")->settings.size() == 2);
  cr_assert(c.find("laptop")->settings[0].value == "1M" && c.find("laptop")->settings[0].line == 10);
  cr_assert(c.find("nope") == nullptr);
}

Test(config_file, every_error_names_its_line) {
  ASSERT_STR_EQ(parse_error("retry 1\nlimitrate 5\n"),
                "cfg:2: unknown setting \"limitrate\" (did you mean \"limit-rate\"?)");
  ASSERT_STR_EQ(parse_error("\n\nretry\n"), "cfg:3: \"retry\" needs a value");
  ASSERT_STR_EQ(parse_error("retry 1\nretry 2\n"), "cfg:2: \"retry\" is already set in this section, on line 1");
  ASSERT_STR_EQ(parse_error("server a\nserver b\nserver a\n"), "cfg:3: server \"a\" is already defined on line 1");
  ASSERT_STR_EQ(parse_error("address x:1\n"),
                "cfg:1: \"address\" belongs in a server section (after a \"server NAME\" line)");
  ASSERT_CONTAINS(parse_error("server two names\n"), "cfg:1: \"server\" takes one name");
  ASSERT_CONTAINS(parse_error("server\n"), "cfg:1: \"server\" takes one name");
  ASSERT_CONTAINS(parse_error(std::string("retry 1\nx\0y 2\n", 14)), "cfg:2: a NUL byte");
  ASSERT_STR_EQ(parse_error("Host x\n"), "cfg:1: unknown setting \"Host\" (a server section begins with \"server NAME\")");
  // A key may be set once per section: the same key in two sections is fine.
  parsed("retry 1\nserver a\nretry 2\nserver b\nretry 3\n");
}

Test(config_file, values_are_checked_as_on_the_command_line) {
  ASSERT_STR_EQ(apply_error("retry 101\n"), "cfg:1: invalid retry \"101\": expected 0 to 100");
  ASSERT_STR_EQ(apply_error("timeout soon\n"), "cfg:1: invalid timeout \"soon\": expected seconds, e.g. 30");
  ASSERT_CONTAINS(apply_error("\nlimit-rate 0\n"), "cfg:2: invalid limit-rate \"0\"");
  ASSERT_CONTAINS(apply_error("progress loud\n"), "cfg:1: invalid progress \"loud\"");
  ASSERT_CONTAINS(apply_error("backend kqueue\n"), "cfg:1: invalid backend \"kqueue\"");
  ASSERT_CONTAINS(apply_error("plain maybe\n"), "cfg:1: invalid plain \"maybe\": expected yes or no");
  ASSERT_CONTAINS(apply_error("tls-pin sha256:abc\n"), "cfg:1: invalid tls-pin");
  ASSERT_CONTAINS(apply_error("secret-file relative/secret\n"), "expected an absolute path or one beginning with ~/");
  ASSERT_CONTAINS(apply_error("server b\naddress two words\n", named("b")), "cfg:2: invalid address");
  ASSERT_CONTAINS(apply_error("plain yes\ntls-pin " + std::string(kPin) + "\n"), "cfg:1: plain speaks no TLS");
}

Test(config_file, a_named_server_supplies_its_address_and_settings) {
  const std::string text =
      "retry 5\n"
      "timeout 7\n"
      "server backup\n"
      "  address 10.1.2.3:9100\n"
      "  secret-file /etc/reactor/backup.secret\n"
      "  timeout 60\n"
      "  limit-rate 2M\n"
      "server bare\n"
      "  retry 0\n";
  Options o = applied(text, named("backup"));
  ASSERT_STR_EQ(o.server, "10.1.2.3:9100");
  ASSERT_STR_EQ(o.server_from, "cfg:3");
  ASSERT_STR_EQ(o.secret_file, "/etc/reactor/backup.secret");
  cr_assert_eq(o.timeout.count(), 60000);  // the section's, over the top's
  cr_assert_eq(o.retry, 5u);               // the top's, the section being silent
  cr_assert_eq(o.limit_rate, 2u * 1024 * 1024);
  // A server section without an address: its name is the host.
  Options b = applied(text, named("bare"));
  ASSERT_STR_EQ(b.server, "bare");
  cr_assert_eq(b.retry, 0u);
  // Not a name in the file: an address as before, with the top's settings only.
  Options other = applied(text, named("10.9.9.9"));
  ASSERT_STR_EQ(other.server, "10.9.9.9");
  cr_assert(other.server_from.empty());
  cr_assert_eq(other.timeout.count(), 7000);
  cr_assert(other.secret_file.empty() && other.limit_rate == 0);
}

Test(config_file, the_command_line_wins) {
  const std::string text = "server backup\n  address 10.1.2.3:9100\n  timeout 60\n  retry 9\n  progress json\n";
  Options o = named("backup", {"timeout", "progress"});
  o.timeout = std::chrono::milliseconds(1500);
  o.progress = client::ProgressStyle::kNone;
  Options got = applied(text, o);
  cr_assert_eq(got.timeout.count(), 1500);
  cr_assert(got.progress == client::ProgressStyle::kNone);
  cr_assert_eq(got.retry, 9u);
}

// plain, tls-ca, tls-pin and insecure are one choice: never a mix of two places.
Test(config_file, the_tls_choice_is_taken_whole) {
  const std::string text = "insecure yes\nserver pinned\n  tls-pin " + std::string(kPin) + "\nserver lan\n  plain yes\n";
  Options pinned = applied(text, named("pinned"));
  ASSERT_STR_EQ(pinned.tls_pin, kPin);
  cr_assert_not(pinned.insecure, "the top's insecure mixed into a section that chose a pin");
  Options lan = applied(text, named("lan"));
  cr_assert(lan.plain && !lan.insecure);
  Options elsewhere = applied(text, named("elsewhere"));
  cr_assert(elsewhere.insecure);
  // The command line's choice replaces the file's altogether.
  Options cli = named("lan", {"tls-ca"});
  cli.tls_ca = "/etc/ca.pem";
  Options got = applied(text, cli);
  cr_assert(!got.plain && got.tls_ca == "/etc/ca.pem");
}

Test(config_file, reactor_server_may_name_a_server) {
  cr_assert_eq(setenv("REACTOR_SERVER", "backup", 1), 0);
  Options o = applied("server backup\n  address 10.1.2.3:9100\n");
  unsetenv("REACTOR_SERVER");
  ASSERT_STR_EQ(o.server, "10.1.2.3:9100");
}

Test(config_file, tilde_means_home) {
  cr_assert_eq(setenv("HOME", "/home/someone", 1), 0);
  Options o = applied("secret-file ~/.config/reactor/s\ntls-ca ~/ca.pem\n");
  ASSERT_STR_EQ(o.secret_file, "/home/someone/.config/reactor/s");
  ASSERT_STR_EQ(o.tls_ca, "/home/someone/ca.pem");
}

Test(config_file, a_file_others_could_change_is_refused) {
  std::string err;
  std::optional<TempDir> dir = TempDir::create("config-test", &err);
  cr_assert(dir.has_value(), "%s", err.c_str());
  std::string path = dir->path("config");
  ConfigFile config;
  bool found = true;
  cr_assert(client::load_config(path, false, &config, &found, &err), "%s", err.c_str());
  cr_assert_not(found, "a missing default file is no file, not an error");
  cr_assert_not(client::load_config(path, true, &config, &found, &err), "a missing -F file is an error");
  ASSERT_CONTAINS(err, "No such file or directory");

  cr_assert(write_file(path, "retry 2\n"));
  cr_assert_eq(chmod(path.c_str(), 0620), 0);
  cr_assert_not(client::load_config(path, false, &config, &found, &err));
  ASSERT_CONTAINS(err, "could be changed by another user");
  cr_assert_eq(chmod(path.c_str(), 0602), 0);
  cr_assert_not(client::load_config(path, false, &config, &found, &err));
  cr_assert_eq(chmod(path.c_str(), 0644), 0);
  cr_assert(client::load_config(path, false, &config, &found, &err), "%s", err.c_str());
  cr_assert(found && config.global.size() == 1);
  cr_assert_not(client::load_config(dir->path(""), true, &config, &found, &err));
  ASSERT_CONTAINS(err, "not a regular file");
}

// End to end: `reactorc -s NAME` finds the address and the secret file in the default
// file; -F names another; -F none ignores it; a broken file stops reactorc before it
// connects, with status 9.
Test(config_file, reactorc_dash_s_name_uses_the_file) {
  ServeOptions so;
  so.prefix = "config-test";
  Served s = serve(so);
  std::string err;
  std::string xdg = s.dir.path("xdg");
  cr_assert(make_dirs(xdg + "/reactor", &err), "%s", err.c_str());
  const std::string config = xdg + "/reactor/config";
  cr_assert(write_file(config, "# test\nserver here\n  address " + s.server.address() + "\n  secret-file " +
                                   s.secret.path + "\n"));
  cr_assert_eq(chmod(config.c_str(), 0600), 0);
  RunOptions o;
  o.env = {{"XDG_CONFIG_HOME", xdg}};
  ClientResult r = run_client({"-s", "here", "ping"}, Millis(20000), o);
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stdout_text, "pong from " + s.server.address());

  r = run_client({"-F", "none", "-s", "here", "-t", "3", "ping"}, Millis(20000), o);
  cr_assert(!r.exited_with(0), "-F none still read the file: %s", r.describe().c_str());

  const std::string other = s.dir.path("other.conf");
  cr_assert(write_file(other, "server there\n  address " + s.server.address() + "\n  secret-file " + s.secret.path +
                                  "\n"));
  cr_assert_eq(chmod(other.c_str(), 0600), 0);
  r = run_client({"--config", other, "-s", "there", "ping"}, Millis(20000));
  cr_assert(r.exited_with(0), "%s", r.describe().c_str());

  cr_assert(write_file(config, "server here\n  adress 127.0.0.1:1\n"));
  r = run_client({"-s", "here", "ping"}, Millis(20000), o);
  cr_assert(r.exited_with(9), "%s", r.describe().c_str());
  ASSERT_CONTAINS(r.stderr_text, config + ":2: unknown setting \"adress\" (did you mean \"address\"?)");
  stop_cleanly(s);
}
