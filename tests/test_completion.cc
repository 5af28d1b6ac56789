// The shell completion of completions/ (installed by make install):
//
//   - bash: completions/reactorc.bash and reactord.bash are sourced into a bash
//     without rc files, COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT are set as readline
//     would, the function is called and COMPREPLY compared: commands, options, option
//     values, files, and remote paths listed by a real reactord through `reactorc ls`;
//     nothing, and not a byte of output, when the server cannot be reached;
//   - zsh (skipped when zsh or its zpty module is missing; scripts/deps.sh installs
//     it): the files parse (zsh -n), and an interactive zsh in a pty completes lines
//     with a compadd that records what it was offered;
//   - drift: every long option of `reactorc --help` and `reactord --help`, and every
//     command, appears in both completion files of its program.
//
// Files are read relative to the current directory (the runner runs from the repository
// root); the programs come from $REACTOR_BUILD_DIR, default "build" (tests/support).

#include <criterion/criterion.h>
// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/support/address.h"
#include "tests/support/assertions.h"
#include "tests/support/binaries.h"
#include "tests/support/black_hole.h"
#include "tests/support/client.h"
#include "tests/support/fd.h"
#include "tests/support/files.h"
#include "tests/support/fixture.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace testsupport;

TestSuite(completion, .timeout = 120);

namespace {

constexpr char kBashClient[] = "completions/reactorc.bash";
constexpr char kBashServer[] = "completions/reactord.bash";
constexpr char kZshClient[] = "completions/_reactorc";
constexpr char kZshServer[] = "completions/_reactord";

using Words = std::vector<std::string>;
using Set = std::set<std::string>;

std::string absolute(const std::string& relative) {
  char cwd[4096];
  cr_assert(getcwd(cwd, sizeof cwd) != nullptr, "getcwd: %s", std::strerror(errno));
  std::string path = path_join(cwd, relative);
  cr_assert(access(path.c_str(), R_OK) == 0, "cannot read %s (run the tests from the repository root)",
            path.c_str());
  return path;
}

std::string text_of(const std::string& relative) {
  auto text = read_file(absolute(relative));
  cr_assert(text.has_value(), "cannot read %s", relative.c_str());
  return *text;
}

std::string join(const Set& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "{" : ", ") + item;
  return out.empty() ? "{}" : out + "}";
}

// The build directory first in $PATH, so that "reactorc" as the typed program is the one
// under test.
EnvVars path_env() {
  const char* path = std::getenv("PATH");
  return {{"PATH", build_dir() + ":" + (path != nullptr ? path : "/usr/bin:/bin")}};
}

// ---- bash ------------------------------------------------------------------------------

struct Completed {
  Set replies;
  std::vector<std::string> ordered;
  std::string compopt;  // the options the function gave compopt, " -o filenames ..."
  ClientResult run;
};

// Sources FILE into `bash --norc --noprofile`, sets COMP_* for the line WORDS (the last one
// is the word being completed, the cursor at its end), calls FUNCTION and returns
// COMPREPLY. With stub_compopt, compopt (which only works inside a real completion)
// records its arguments instead. AFTER is more of the line after the cursor (COMP_POINT
// counts bytes, as bash does; the locale is UTF-8). Asserts that bash said nothing on
// stderr.
Completed complete_bash(const char* file, const char* function, const Words& words, bool stub_compopt = true,
                        const std::string& after = "") {
  static const char kScript[] = R"(file=$1 function=$2 stub=$3
shift 3
source "$file" || exit 90
if [ "$stub" = 1 ]; then compopt() { __compopt+=" $*"; }; fi
COMP_WORDS=("$@")
COMP_CWORD=$(($# - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=$(LC_ALL=C && printf '%s' "${#COMP_LINE}")
COMP_LINE+=$REACTOR_TEST_AFTER
"$function" || exit 91
for reply in "${COMPREPLY[@]}"; do printf 'reply:%s\n' "$reply"; done
printf 'compopt:%s\n' "${__compopt-}"
)";
  Words argv = {"bash", "--norc", "--noprofile", "-c", kScript, "bash", absolute(file), function,
                stub_compopt ? "1" : "0"};
  argv.insert(argv.end(), words.begin(), words.end());
  RunOptions options;
  options.env = path_env();
  options.env.push_back({"REACTOR_TEST_AFTER", after});
  options.env.push_back({"LC_ALL", "C.UTF-8"});
  Completed c;
  c.run = run_program(argv, Millis(30000), options);
  cr_assert(c.run.exited_with(0), "bash: %s", c.run.describe().c_str());
  cr_assert(c.run.stderr_text.empty(), "completion wrote to stderr: %s", c.run.stderr_text.c_str());
  bool ended = false;
  for (const std::string& line : lines_of(c.run.stdout_text)) {
    if (line.compare(0, 6, "reply:") == 0) {
      c.replies.insert(line.substr(6));
      c.ordered.push_back(line.substr(6));
    } else if (line.compare(0, 8, "compopt:") == 0) {
      c.compopt = line.substr(8);
      ended = true;
    } else {
      cr_assert_fail("stray output from the completion: \"%s\"", line.c_str());
    }
  }
  cr_assert(ended, "the script did not finish: %s", c.run.describe().c_str());
  return c;
}

Completed client(const Words& words) {
  Words line = {"reactorc"};
  line.insert(line.end(), words.begin(), words.end());
  return complete_bash(kBashClient, "_reactorc", line);
}

Completed server(const Words& words) {
  Words line = {"reactord"};
  line.insert(line.end(), words.begin(), words.end());
  return complete_bash(kBashServer, "_reactord", line);
}

#define ASSERT_REPLIES(completed, ...)                                                        \
  do {                                                                                        \
    const Set want_ = __VA_ARGS__;                                                            \
    const Completed& got_ = (completed);                                                      \
    cr_assert(got_.replies == want_, "replies %s, want %s", join(got_.replies).c_str(),       \
              join(want_).c_str());                                                           \
  } while (0)

bool has_option(const std::string& compopt, const std::string& option) {
  return (compopt + " ").find(" -o " + option + " ") != std::string::npos;
}

const Set kCommands = {"get", "put", "stat", "ls", "ping", "send", "bench"};

// root: a.txt, docs/notes.txt, docs/deep/x, "sp ace/f", "b c.txt".
ServeOptions tree() {
  ServeOptions o;
  o.prefix = "completion-test";
  o.files = {{"a.txt", "a\n"}, {"b c.txt", "b\n"}};
  return o;
}

Served serve_tree() {
  // write_file makes no parents: the directories first, in a root made by serve().
  ServeOptions o = tree();
  Served s = serve(o);
  std::string err;
  for (const char* dir : {"docs/deep", "sp ace"}) cr_assert(make_dirs(s.in_root(dir), &err), "%s", err.c_str());
  cr_assert(write_file(s.in_root("docs/notes.txt"), "n\n", &err), "%s", err.c_str());
  cr_assert(write_file(s.in_root("docs/deep/x"), "x\n", &err), "%s", err.c_str());
  cr_assert(write_file(s.in_root("sp ace/f"), "f\n", &err), "%s", err.c_str());
  return s;
}

// {"-s", ADDRESS, "-k", SECRET, "--progress=none", WORDS...}
Words connected(const Served& s, const Words& words) { return s.server.client_args(words); }

// ---- drift -----------------------------------------------------------------------------

std::string help_of(const char* name) {
  auto binary = find_binary(name);
  cr_assert(binary.has_value(), "%s not built", name);
  ClientResult r = run_program({*binary, "--help"}, Millis(10000));
  cr_assert(r.exited_with(0), "%s --help: %s", name, r.describe().c_str());
  return r.stdout_text;
}

// The "--name" words of --help.
Set long_options(const std::string& help) {
  Set out;
  std::string word;
  for (size_t i = 0; i + 2 < help.size(); ++i) {
    if (help.compare(i, 2, "--") != 0 || (i > 0 && help[i - 1] != ' ' && help[i - 1] != '[' && help[i - 1] != '|'))
      continue;
    size_t end = i + 2;
    while (end < help.size() && (std::isalnum(static_cast<unsigned char>(help[end])) || help[end] == '-')) ++end;
    if (end > i + 2 && std::isalpha(static_cast<unsigned char>(help[i + 2]))) out.insert(help.substr(i, end - i));
    i = end;
  }
  return out;
}

// TEXT names OPTION as a whole word: not followed by a letter, digit or '-', so that
// --tls does not pass for --tls-ca.
bool names(const std::string& text, const std::string& option) {
  for (size_t at = text.find(option); at != std::string::npos; at = text.find(option, at + 1)) {
    char after = at + option.size() < text.size() ? text[at + option.size()] : ' ';
    char before = at > 0 ? text[at - 1] : ' ';
    if (!std::isalnum(static_cast<unsigned char>(after)) && after != '-' && before != '-' &&
        !std::isalnum(static_cast<unsigned char>(before)))
      return true;
  }
  return false;
}

void check_drift(const char* program, const char* bash_file, const char* zsh_file) {
  Set options = long_options(help_of(program));
  cr_assert(options.size() > 8 && options.count("--help") == 1 && options.count("--backend") == 1,
            "%s --help: too few long options found: %s", program, join(options).c_str());
  for (const char* file : {bash_file, zsh_file}) {
    std::string text = text_of(file);
    Set missing;
    for (const std::string& option : options)
      if (!names(text, option)) missing.insert(option);
    cr_assert(missing.empty(), "%s --help lists options that %s does not complete: %s", program, file,
              join(missing).c_str());
  }
}

// ---- zsh -------------------------------------------------------------------------------

// Sourced by the interactive zsh: compinit with completions/ first in $fpath, and a
// compadd that appends every match it adds to $REACTOR_COMP_OUT, then "#done".
constexpr char kZshSetup[] = R"(PS1= PROMPT= RPROMPT=
fpath=($REACTOR_COMP_DIR $fpath)
autoload -Uz compinit && compinit -u -D
zstyle ':completion:*' insert-tab false
compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- "${(@)__hits}" >> $REACTOR_COMP_OUT
  builtin compadd "$@"
}
_reactor_capture_done() { print -r -- '#done' >> $REACTOR_COMP_OUT }
comppostfuncs=(_reactor_capture_done)
print ready
)";

// zsh -f DRIVER SETUP LINE: types LINE and a tab into an interactive zsh in a pty.
constexpr char kZshDriver[] = R"(zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "source ${(q)1}"
local reply
for i in {1..100}; do zpty -r -t z reply && [[ $reply == *ready* ]] && break; sleep 0.1; done
zpty -w -n z "$2"$'\t'
for i in {1..150}; do [[ -f $REACTOR_COMP_OUT ]] && grep -q '^#done' $REACTOR_COMP_OUT && break; sleep 0.1; done
zpty -d z
cat $REACTOR_COMP_OUT 2>/dev/null
)";

void require_zsh() {
  if (find_in_path("zsh").empty())
    cr_skip_test("zsh is not installed: the zsh completion is not checked (scripts/deps.sh installs zsh)");
}

void require_zpty() {
  require_zsh();
  ClientResult probe = run_program({"zsh", "-f", "-c", "zmodload zsh/zpty"}, Millis(10000));
  if (!probe.exited_with(0)) cr_skip_test("zsh has no zsh/zpty module here: %s", probe.describe().c_str());
}

// What zsh offers for LINE (typed as is, then a tab).
Set complete_zsh(const std::string& line, const EnvVars& extra = {}) {
  TempDir dir = *TempDir::create("completion-zsh");
  std::string err;
  cr_assert(write_file(dir.path("setup.zsh"), kZshSetup, &err), "%s", err.c_str());
  cr_assert(write_file(dir.path("driver.zsh"), kZshDriver, &err), "%s", err.c_str());
  RunOptions options;
  options.env = path_env();
  options.env.push_back({"REACTOR_COMP_DIR", absolute("completions")});
  options.env.push_back({"REACTOR_COMP_OUT", dir.path("matches")});
  options.env.insert(options.env.end(), extra.begin(), extra.end());
  options.working_dir = dir.path();
  ClientResult r = run_program({"zsh", "-f", dir.path("driver.zsh"), dir.path("setup.zsh"), line}, Millis(60000),
                               options);
  cr_assert(r.exited_with(0), "zsh: %s", r.describe().c_str());
  Set out;
  bool done = false;
  for (const std::string& match : lines_of(r.stdout_text)) {
    if (match == "#done") done = true;
    else out.insert(match);
  }
  cr_assert(done, "zsh did not finish completing \"%s\": %s", line.c_str(), r.describe().c_str());
  return out;
}

std::string shell_line(const Words& words) {
  std::string line;
  for (const std::string& w : words) line += (line.empty() ? "" : " ") + w;
  return line;
}

}  // namespace

// ---- bash: commands, options, values -----------------------------------------------------

Test(completion, bash_commands_after_the_program_and_its_options) {
  ASSERT_REPLIES(client({""}), kCommands);
  ASSERT_REPLIES(client({"p"}), {"put", "ping"});
  // Option values are skipped on the way: "none" and "3" are no commands.
  ASSERT_REPLIES(client({"-v", "--progress", "none", "-t", "3", "--plain", "s"}), {"stat", "send"});
  ASSERT_REPLIES(client({"--progress=bar", "-k", "secret", "-qs", "host:1", "b"}), {"bench"});
  // After the command, the operands: ping takes none.
  ASSERT_REPLIES(client({"ping", ""}), {});
}

Test(completion, bash_options_before_and_after_the_command) {
  ASSERT_REPLIES(client({"get", "--pr"}), {"--preserve", "--progress"});
  ASSERT_REPLIES(client({"--pr"}), {"--preserve", "--progress"});
  ASSERT_REPLIES(client({"ls", "--h"}), {"--help", "--human-readable"});
  ASSERT_REPLIES(client({"bench", "--j"}), {"--json"});
  // An option of another command is not offered once the command is known.
  ASSERT_REPLIES(client({"get", "--j"}), {});
  ASSERT_REPLIES(client({"stat", "--rec"}), {});
  ASSERT_REPLIES(client({"--tls-"}), {"--tls-ca", "--tls-pin"});
  ASSERT_REPLIES(client({"put", "--lim"}), {"--limit-rate"});
  ASSERT_REPLIES(client({"ls", "--lim"}), {});
  ASSERT_REPLIES(client({"--conf"}), {"--config"});
  Completed all = client({"-"});
  for (const char* option : {"-s", "--server", "-k", "--secret-file", "-c", "--continue", "--connections", "-l",
                             "--long", "--retry", "--links", "--insecure", "-V", "--version"})
    cr_assert(all.replies.count(option) == 1, "\"-\" does not offer %s: %s", option, join(all.replies).c_str());
  cr_assert(!has_option(all.compopt, "filenames"), "options completed as file names: %s", all.compopt.c_str());
  // The cursor in the middle of the line, after a word of multibyte characters.
  Words mid = {"reactorc", "--progress=\xc3\xa9\xc3\xa9", "get", "--pr"};
  ASSERT_REPLIES(complete_bash(kBashClient, "_reactorc", mid, true, " x.txt --json"), {"--preserve", "--progress"});
  // After --, a word with a dash is an operand, not an option.
  ASSERT_REPLIES(client({"send", "--", "--h"}), {});
}

Test(completion, bash_values_of_options) {
  ASSERT_REPLIES(client({"--progress", ""}), {"bar", "plane", "rainbow", "none", "json"});
  ASSERT_REPLIES(client({"get", "x", "--progress", "r"}), {"rainbow"});
  ASSERT_REPLIES(client({"--backend", ""}), {"epoll", "poll"});
  // --opt=value: readline replaces only the part after '=' (a COMP_WORDBREAKS character).
  ASSERT_REPLIES(client({"--progress=p"}), {"plane"});
  ASSERT_REPLIES(client({"--backend="}), {"epoll", "poll"});
  // An abbreviation, as getopt_long takes it.
  ASSERT_REPLIES(client({"--prog", "n"}), {"none"});
  ASSERT_REPLIES(client({"--back=e"}), {"epoll"});
  // bench's -c takes a number: nothing to offer; elsewhere -c is --continue, no value.
  ASSERT_REPLIES(client({"bench", "-c", ""}), {});
  ASSERT_REPLIES(client({"-c", "g"}), {"get"});
  // Values with no fixed set: nothing.
  ASSERT_REPLIES(client({"-t", ""}), {});
  ASSERT_REPLIES(client({"--retry", ""}), {});
  // bench's requests.
  ASSERT_REPLIES(client({"bench", ""}), {"ping", "get", "stat", "handshake", "idle"});
  ASSERT_REPLIES(client({"bench", "-n", "10", "h"}), {"handshake"});
}

Test(completion, bash_files_for_file_options_and_local_operands) {
  TempDir dir = *TempDir::create("completion-test");
  std::string err;
  cr_assert(write_file(dir.path("secret"), "s\n", &err), "%s", err.c_str());
  cr_assert(write_file(dir.path("sp ace"), "s\n", &err), "%s", err.c_str());
  cr_assert(make_dirs(dir.path("sub"), &err), "%s", err.c_str());
  const std::string d = dir.path() + "/";
  Completed k = client({"-k", d + "s"});
  ASSERT_REPLIES(k, {d + "secret", d + "sp ace", d + "sub"});
  cr_assert(has_option(k.compopt, "filenames"), "-k: no compopt -o filenames: %s", k.compopt.c_str());
  ASSERT_REPLIES(client({"--tls-ca", d + "se"}), {d + "secret"});
  ASSERT_REPLIES(client({"--secret-file=" + d + "se"}), {d + "secret"});
  // -F: a file, or none.
  ASSERT_REPLIES(client({"-F", d + "se"}), {d + "secret"});
  ASSERT_REPLIES(client({"--config", "no"}), {"none"});
  // A backslash-escaped space, as typed: the reply is the name, readline quotes it.
  ASSERT_REPLIES(client({"-k", d + "sp\\ "}), {d + "sp ace"});
  // put's LOCAL; get's second operand (an absolute path is local only).
  ASSERT_REPLIES(client({"put", d + "su"}), {d + "sub"});
  ASSERT_REPLIES(client({"-s", refused_address(), "get", "remote.txt", d + "se"}), {d + "secret"});
  // reactord: -r wants a directory, --tls-cert a file.
  ASSERT_REPLIES(server({"-r", d}), {d + "sub"});
  ASSERT_REPLIES(server({"--tls-cert", d + "se"}), {d + "secret"});
}

Test(completion, bash_reactord_options_and_values) {
  ASSERT_REPLIES(server({"--tls-"}), {"--tls-cert", "--tls-key"});
  ASSERT_REPLIES(server({"--backend", ""}), {"epoll", "poll"});
  ASSERT_REPLIES(server({"--backend=p"}), {"poll"});
  ASSERT_REPLIES(server({"-v", "--ha"}), {"--handshake-timeout"});
  ASSERT_REPLIES(server({"--grace", ""}), {});
  Completed all = server({""});
  for (const char* option : {"-r", "--root", "-w", "--writable", "--plain-listen", "--keep-free", "-V"})
    cr_assert(all.replies.count(option) == 1, "reactord does not offer %s: %s", option, join(all.replies).c_str());
}

// ---- bash: remote paths ----------------------------------------------------------------------

Test(completion, bash_remote_paths_from_a_real_server) {
  Served s = serve_tree();
  // get's REMOTE: the root's entries, directories with their slash.
  Completed root = client(connected(s, {"get", ""}));
  ASSERT_REPLIES(root, {"a.txt", "b c.txt", "docs/", "sp ace/"});
  cr_assert(has_option(root.compopt, "filenames"), "%s", root.compopt.c_str());
  cr_assert(!has_option(root.compopt, "nospace"), "nospace with several replies: %s", root.compopt.c_str());
  // A sub-directory's entries, with the directory in front.
  ASSERT_REPLIES(client(connected(s, {"ls", "docs/"})), {"docs/deep/", "docs/notes.txt"});
  ASSERT_REPLIES(client(connected(s, {"stat", "docs/n"})), {"docs/notes.txt"});
  ASSERT_REPLIES(client(connected(s, {"ls", "docs/deep/"})), {"docs/deep/x"});
  // One directory: no space after it, so that the next tab goes on inside it.
  Completed dir = client(connected(s, {"stat", "d"}));
  ASSERT_REPLIES(dir, {"docs/"});
  cr_assert(has_option(dir.compopt, "nospace"), "a directory without compopt -o nospace: %s", dir.compopt.c_str());
  Completed file = client(connected(s, {"stat", "a"}));
  ASSERT_REPLIES(file, {"a.txt"});
  cr_assert(!has_option(file.compopt, "nospace"), "a file with nospace: %s", file.compopt.c_str());
  // A name with a space, typed escaped or in an open quote.
  ASSERT_REPLIES(client(connected(s, {"ls", "sp\\ "})), {"sp ace/"});
  ASSERT_REPLIES(client(connected(s, {"ls", "'sp "})), {"sp ace/"});
  ASSERT_REPLIES(client(connected(s, {"ls", "sp\\ ace/"})), {"sp ace/f"});
  // put's REMOTE (its second operand) and bench get PATH.
  Completed put = client(connected(s, {"put", "/etc/hostname", "do"}));
  cr_assert(put.replies.count("docs/") == 1, "put REMOTE: %s", join(put.replies).c_str());
  ASSERT_REPLIES(client(connected(s, {"bench", "get", "b"})), {"b c.txt"});
  // The options may follow the command, in their other spellings; the -t given wins.
  Words after = {"reactorc", "ls", "--server=" + s.server.address(), "--secret-file", s.secret.path, "-t", "5", "a"};
  ASSERT_REPLIES(complete_bash(kBashClient, "_reactorc", after), {"a.txt"});
  // The program as typed, by its path.
  Words by_path = {*find_binary("reactorc"), "-s", s.server.address(), "-k", s.secret.path, "stat", "docs/"};
  ASSERT_REPLIES(complete_bash(kBashClient, "_reactorc", by_path), {"docs/deep/", "docs/notes.txt"});
  // The plain protocol, through the plain listener.
  ASSERT_REPLIES(client(s.server.plain_client_args({"stat", "a"})), {"a.txt"});
  // A server named in the configuration file (-F): -s completes its name, and the
  // listing goes through it.
  std::string config = s.in_dir("config");
  std::string err;
  cr_assert(write_file(config, "# test\nretry 2\nserver zq-box\n    address " + s.server.address() +
                                   "\n    secret-file " + s.secret.path + "\nserver zq-other\n    address 127.0.0.1:1\n",
                       &err),
            "%s", err.c_str());
  ASSERT_REPLIES(client({"-F", config, "-s", "zq-"}), {"zq-box", "zq-other"});
  ASSERT_REPLIES(client({"--config=" + config, "--server=zq-b"}), {"zq-box"});
  ASSERT_REPLIES(client({"-F", config, "-s", "zq-box", "stat", "docs/n"}), {"docs/notes.txt"});
  ASSERT_REPLIES(client({"stat", "-s", "zq-box", "--config", config, "a"}), {"a.txt"});
  ASSERT_REPLIES(client({"-F", config, "-s", "zq-other", "stat", "a"}), {});
  // A file given as a directory: nothing beneath it.
  ASSERT_REPLIES(client(connected(s, {"ls", "a.txt/"})), {});
  // ls -l on the line does not change what is listed for completion.
  ASSERT_REPLIES(client(connected(s, {"ls", "-l", "do"})), {"docs/"});
  stop_cleanly(s);
}

Test(completion, bash_nothing_when_the_server_cannot_be_reached) {
  TempDir dir = *TempDir::create("completion-test");
  auto secret = write_secret(dir.path());
  cr_assert(secret.has_value());
  // Refused, with the real compopt (which fails outside a completion): no reply, no output.
  Words refused = {"reactorc", "-s", refused_address(), "-k", secret->path, "ls", ""};
  Completed r = complete_bash(kBashClient, "_reactorc", refused, false);
  ASSERT_REPLIES(r, {});
  ASSERT_STR_EQ(r.run.stdout_text, "compopt:\n");
  // No secret file: reactorc fails before it connects, silently too.
  ASSERT_REPLIES(client({"-s", refused_address(), "-k", dir.path("missing"), "stat", ""}), {});
  // A server that never answers: the default -t 3 bounds the wait.
  BlackHole hole;
  std::string err;
  cr_assert(BlackHole::open(&hole, &err), "%s", err.c_str());
  auto start = Clock::now();
  ASSERT_REPLIES(client({"-s", hole.address(), "-k", secret->path, "get", ""}), {});
  double took = seconds_since(start);
  cr_assert(took < 9.0, "the completion waited %.1f s for a silent server", took);
}

// ---- drift ---------------------------------------------------------------------------------

Test(completion, every_long_option_is_completed) {
  check_drift("reactorc", kBashClient, kZshClient);
  check_drift("reactord", kBashServer, kZshServer);
  // And the check can fail: a name that is not an option is not found.
  cr_assert_not(names(text_of(kBashClient), "--no-such-option"));
  cr_assert_not(names("--tls-ca", "--tls"), "--tls passes for --tls-ca");
}

Test(completion, every_command_is_completed) {
  std::string help = help_of("reactorc");
  size_t from = help.find("\nCommands:\n");
  size_t to = help.find("\nOptions:\n");
  cr_assert(from != std::string::npos && to != std::string::npos && from < to, "reactorc --help has no Commands:");
  Set commands;
  for (const std::string& line : lines_of(help.substr(from + 11, to - from - 11))) {
    if (line.size() > 2 && line.compare(0, 2, "  ") == 0 && std::islower(static_cast<unsigned char>(line[2])))
      commands.insert(line.substr(2, line.find(' ', 2) - 2));
  }
  cr_assert(commands == kCommands, "reactorc --help's commands %s, the tests know %s", join(commands).c_str(),
            join(kCommands).c_str());
  ASSERT_REPLIES(client({""}), kCommands);
  std::string zsh = text_of(kZshClient);
  for (const std::string& command : commands)
    cr_assert(zsh.find("'" + command + ":") != std::string::npos, "%s does not describe %s", kZshClient,
              command.c_str());
}

// ---- zsh -----------------------------------------------------------------------------------

Test(completion, zsh_files_parse) {
  require_zsh();
  for (const char* file : {kZshClient, kZshServer}) {
    ClientResult r = run_program({"zsh", "-n", absolute(file)}, Millis(10000));
    cr_assert(r.exited_with(0) && r.stderr_text.empty(), "zsh -n %s: %s", file, r.describe().c_str());
    cr_assert(text_of(file).compare(0, 9, "#compdef ") == 0, "%s does not start with #compdef", file);
  }
}

Test(completion, zsh_commands_options_and_values) {
  require_zpty();
  cr_assert(complete_zsh("reactorc ") == kCommands, "reactorc: %s", join(complete_zsh("reactorc ")).c_str());
  Set got = complete_zsh("reactorc get --pr");
  cr_assert(got == Set({"--preserve", "--progress"}), "get --pr: %s", join(got).c_str());
  got = complete_zsh("reactorc --progress ");
  cr_assert(got == Set({"bar", "plane", "rainbow", "none", "json"}), "--progress: %s", join(got).c_str());
  got = complete_zsh("reactorc --backend=");
  cr_assert(got == Set({"epoll", "poll"}), "--backend=: %s", join(got).c_str());
  got = complete_zsh("reactorc bench ");
  cr_assert(got == Set({"ping", "get", "stat", "handshake", "idle"}), "bench: %s", join(got).c_str());
  got = complete_zsh("reactorc put --lim");
  cr_assert(got == Set({"--limit-rate"}), "put --lim: %s", join(got).c_str());
  got = complete_zsh("reactord --tls-");
  cr_assert(got == Set({"--tls-cert", "--tls-key"}), "reactord --tls-: %s", join(got).c_str());
  got = complete_zsh("reactord --backend ");
  cr_assert(got == Set({"epoll", "poll"}), "reactord --backend: %s", join(got).c_str());
}

Test(completion, zsh_remote_paths_from_a_real_server) {
  require_zpty();
  Served s = serve_tree();
  Words base = {"reactorc", "-s", s.server.address(), "-k", s.secret.path};
  auto line = [&](const Words& more) {
    Words w = base;
    w.insert(w.end(), more.begin(), more.end());
    return shell_line(w);
  };
  Set got = complete_zsh(line({"get", ""}));
  cr_assert(got == Set({"a.txt", "b\\ c.txt", "docs/", "sp\\ ace/"}), "get: %s", join(got).c_str());
  got = complete_zsh(line({"ls", "docs/"}));
  cr_assert(got == Set({"deep/", "notes.txt"}), "ls docs/: %s", join(got).c_str());
  got = complete_zsh(shell_line({"reactorc", "-s", refused_address(), "-k", s.secret.path, "stat", ""}));
  cr_assert(got.empty(), "an unreachable server: %s", join(got).c_str());
  // A server named in the configuration file: its name for -s, the listing through it.
  std::string config = s.in_dir("config");
  std::string err;
  cr_assert(write_file(config, "server zq-box\n    address " + s.server.address() + "\n    secret-file " +
                                   s.secret.path + "\n",
                       &err),
            "%s", err.c_str());
  got = complete_zsh(shell_line({"reactorc", "-F", config, "-s", "zq-"}));
  cr_assert(got.count("zq-box") == 1, "-s from the configuration file: %s", join(got).c_str());
  got = complete_zsh(shell_line({"reactorc", "-F", config, "-s", "zq-box", "ls", "do"}));
  cr_assert(got == Set({"docs/"}), "ls through a named server: %s", join(got).c_str());
  stop_cleanly(s);
}
