// The man pages against the code they describe, so neither can drift silently:
//
//   - every option `reactorc --help` / `reactord --help` lists is documented in the
//     page's OPTIONS section, with the same short/long pairing, and the page documents
//     no option the program lacks (OPTIONS and SYNOPSIS);
//   - every exit status constant in apps/reactorc/exit_codes.h and apps/reactord/server.h
//     is listed by number in EXIT STATUS, and nothing else is;
//   - the worked example of reactor-protocol(7) (secret, nonces, transcripts, MACs) is
//     recomputed with protocol::client_proof / server_proof and with raw HMAC-SHA256;
//   - every error code and message type of protocol/ appears in the protocol page, with
//     the right fatal/per-request kind;
//   - contrib/reactord.service passes only real options and stops after --grace;
//   - --version, --help and an unknown option behave as the pages say.
//
// Pages are read relative to the current directory (the test runner runs from the repo
// root); the programs come from $REACTOR_BUILD_DIR, default "build". The extraction
// follows the conventions noted at the top of each page: options are written with Fl,
// one option (short and long form) per .It line; exit statuses as plain numbers.

#include <criterion/criterion.h>

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/auth.h"
#include "protocol/error_code.h"
#include "protocol/hex.h"
#include "protocol/messages.h"

// One timeout for every test in this binary (see tests/test_auth.cc for why).
constexpr double kTimeout = 30;

namespace {

constexpr char kClientPage[] = "man/reactorc.1";
constexpr char kServerPage[] = "man/reactord.8";
constexpr char kProtocolPage[] = "man/reactor-protocol.7";
constexpr char kClientExitCodes[] = "apps/reactorc/exit_codes.h";
constexpr char kServerExitCodes[] = "apps/reactord/server.h";
constexpr char kUnit[] = "contrib/reactord.service";
constexpr int kRunTimeoutMs = 10'000;

// ---- files and mdoc ------------------------------------------------------------------

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  cr_assert(in.good(), "cannot open \"%s\" (run the tests from the repository root)", path.c_str());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

std::string trim(const std::string& text) {
  size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// The source lines of one ".Sh NAME" section, up to the next .Sh.
std::vector<std::string> section(const std::string& page, const std::string& name) {
  std::vector<std::string> lines = split_lines(read_text(page));
  std::vector<std::string> out;
  bool inside = false;
  bool found = false;
  for (const std::string& line : lines) {
    if (starts_with(line, ".Sh ")) {
      inside = trim(line.substr(4)) == name;
      found = found || inside;
      continue;
    }
    if (inside) out.push_back(line);
  }
  cr_assert(found, "%s has no section \"%s\"", page.c_str(), name.c_str());
  return out;
}

// The source lines of one ".Ss NAME" subsection, up to the next .Ss or .Sh.
std::vector<std::string> subsection(const std::string& page, const std::string& name) {
  std::vector<std::string> lines = split_lines(read_text(page));
  std::vector<std::string> out;
  bool inside = false;
  bool found = false;
  for (const std::string& line : lines) {
    if (starts_with(line, ".Ss ") || starts_with(line, ".Sh ")) {
      inside = starts_with(line, ".Ss ") && trim(line.substr(4)) == name;
      found = found || inside;
      continue;
    }
    if (inside) out.push_back(line);
  }
  cr_assert(found, "%s has no subsection \"%s\"", page.c_str(), name.c_str());
  return out;
}

// The options an mdoc line names with Fl: "Fl k" is -k, "Fl \-secret-file" is
// --secret-file, and with `clusters` "Fl fqv" is -f, -q and -v. A bare "Fl \-" (the
// end-of-options marker) and Fl followed by another macro name an option of no letters
// and are skipped.
std::set<std::string> fl_options(const std::string& line, bool clusters) {
  std::set<std::string> out;
  std::vector<std::string> words = split_words(line);
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i] != "Fl") continue;
    std::string word = replace_all(replace_all(words[i + 1], "\\-", "-"), "\\&", "");
    while (!word.empty() && std::strchr(",.;:)", word.back()) != nullptr) word.pop_back();
    if (starts_with(word, "-")) {
      if (word.size() > 1) out.insert("-" + word);
      continue;
    }
    bool alnum = !word.empty();
    for (char c : word) alnum = alnum && std::isalnum(static_cast<unsigned char>(c));
    if (!alnum) continue;
    if (word.size() == 1) {
      out.insert("-" + word);
    } else if (clusters && std::islower(static_cast<unsigned char>(word[0]))) {
      for (char c : word) out.insert(std::string("-") + c);
    }  // else a macro such as Ar or Ns: Fl alone
  }
  return out;
}

// Every .It line of the page's OPTIONS section that names options, one set per line.
std::vector<std::set<std::string>> documented_option_items(const std::string& page) {
  std::vector<std::set<std::string>> items;
  for (const std::string& line : section(page, "OPTIONS")) {
    if (!starts_with(line, ".It ")) continue;
    std::set<std::string> options = fl_options(line, false);
    if (!options.empty()) items.push_back(options);
  }
  cr_assert(!items.empty(), "%s: no options found in OPTIONS (written as .It Fl ...)", page);
  return items;
}

std::set<std::string> documented_options(const std::string& page) {
  std::set<std::string> all;
  for (const auto& item : documented_option_items(page)) all.insert(item.begin(), item.end());
  return all;
}

std::set<std::string> synopsis_options(const std::string& page) {
  std::set<std::string> all;
  for (const std::string& line : section(page, "SYNOPSIS")) {
    std::set<std::string> options = fl_options(line, true);
    all.insert(options.begin(), options.end());
  }
  return all;
}

// ---- running the programs ----------------------------------------------------------------

struct RunResult {
  bool exited = false;  // normally, with `code`
  int code = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
};

std::string program(const char* name) {
  const char* dir = std::getenv("REACTOR_BUILD_DIR");
  std::string path = std::string(dir != nullptr && dir[0] != '\0' ? dir : "build") + "/" + name;
  cr_assert(access(path.c_str(), X_OK) == 0, "%s is not an executable (%s); build it first",
            path.c_str(), std::strerror(errno));
  return path;
}

// fork + exec with stdin on /dev/null and both outputs captured; killed after
// kRunTimeoutMs. Nothing in here asserts, so no child outlives a failing test.
RunResult run(const std::vector<std::string>& argv) {
  RunResult result;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(out_pipe[1], 1) < 0 || dup2(err_pipe[1], 2) < 0) _exit(126);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return result;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRunTimeoutMs);
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    int n = poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got > 0 && sinks[i]->size() < (1u << 20)) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0) close(fd.fd);
  int status = 0;
  for (;;) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return result;
    if (result.timed_out || std::chrono::steady_clock::now() >= deadline) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return result;
    }
    usleep(2000);
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.code = WEXITSTATUS(status);
  }
  return result;
}

std::string describe(const RunResult& r) {
  std::string how = r.timed_out ? "timed out" : r.exited ? "exit " + std::to_string(r.code) : "killed";
  return how + "\n--- stdout ---\n" + r.out + "--- stderr ---\n" + r.err;
}

RunResult run_help(const char* name) {
  RunResult r = run({program(name), "--help"});
  cr_assert(r.exited && r.code == 0, "%s --help: %s", name, describe(r).c_str());
  return r;
}

// Options named in --help: "--name" words, and "-x" words (a cluster such as [-fqv]
// names each letter).
std::set<std::string> help_options(const std::string& help) {
  std::string text = help;
  for (char& c : text)
    if (std::strchr("[](),|=", c) != nullptr) c = ' ';
  std::set<std::string> out;
  for (const std::string& word : split_words(text)) {
    if (starts_with(word, "--") && word.size() > 2 && std::isalpha(static_cast<unsigned char>(word[2]))) {
      out.insert(word);
    } else if (word.size() > 1 && word[0] == '-' && word[1] != '-') {
      bool letters = true;
      for (size_t i = 1; i < word.size(); ++i) letters = letters && std::isalpha(static_cast<unsigned char>(word[i]));
      if (letters)
        for (size_t i = 1; i < word.size(); ++i) out.insert(std::string("-") + word[i]);
    }
  }
  return out;
}

// "-s, --server HOST:PORT   ..." lines of --help: the short form and its long form.
std::vector<std::pair<std::string, std::string>> help_pairs(const std::string& help) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const std::string& line : split_lines(help)) {
    std::vector<std::string> words = split_words(line);
    if (words.size() >= 2 && words[0].size() == 3 && words[0][0] == '-' && words[0][2] == ',' &&
        starts_with(words[1], "--"))
      pairs.emplace_back(words[0].substr(0, 2), words[1]);
  }
  return pairs;
}

std::string join(const std::set<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : " ") + item;
  return out;
}

void check_help_documented(const char* name, const char* page) {
  std::set<std::string> in_help = help_options(run_help(name).out);
  cr_assert(in_help.count("--help") == 1 && in_help.size() > 4, "%s --help: too few options found: %s", name,
            join(in_help).c_str());
  std::set<std::string> in_page = documented_options(page);
  std::set<std::string> missing;
  for (const std::string& option : in_help)
    if (in_page.count(option) == 0) missing.insert(option);
  cr_assert(missing.empty(), "%s --help lists options that %s does not document in OPTIONS: %s", name, page,
            join(missing).c_str());
}

void check_documented_exist(const char* name, const char* page) {
  std::set<std::string> in_help = help_options(run_help(name).out);
  std::set<std::string> extra;
  for (const std::string& option : documented_options(page))
    if (in_help.count(option) == 0) extra.insert(option);
  cr_assert(extra.empty(), "%s documents options in OPTIONS that %s --help does not list: %s", page, name,
            join(extra).c_str());
}

void check_synopsis(const char* name, const char* page) {
  std::set<std::string> in_help = help_options(run_help(name).out);
  std::set<std::string> in_synopsis = synopsis_options(page);
  cr_assert(!in_synopsis.empty(), "%s: no options found in SYNOPSIS", page);
  std::set<std::string> extra;
  for (const std::string& option : in_synopsis)
    if (in_help.count(option) == 0) extra.insert(option);
  cr_assert(extra.empty(), "%s's SYNOPSIS names options that %s --help does not list: %s", page, name,
            join(extra).c_str());
}

void check_pairs(const char* name, const char* page) {
  auto pairs = help_pairs(run_help(name).out);
  cr_assert(pairs.size() >= 4, "%s --help: found only %zu \"-x, --long\" lines", name, pairs.size());
  auto items = documented_option_items(page);
  for (const auto& pair : pairs) {
    bool together = false;
    for (const auto& item : items) together = together || (item.count(pair.first) && item.count(pair.second));
    cr_assert(together, "%s --help pairs %s with %s, but no .It line of %s's OPTIONS names both", name,
              pair.first.c_str(), pair.second.c_str(), page);
  }
}

// The shape of reactorc's final line (progress.cc's finish_ok) as a page writes it:
// "\[u2713] NAME  SIZE UNIT in TIME (RATE), sha256 verified", TIME being "1m44s" or
// "0.01 s" and RATE "97.1 MiB/s" or "...".
bool has_summary_shape(const std::string& line) {
  const std::string mark = "\\[u2713] ";
  if (line.rfind(mark, 0) != 0) return false;
  std::istringstream in(line.substr(mark.size()));
  std::string name, size, unit, in_word, time;
  if (!(in >> name >> size >> unit >> in_word >> time)) return false;
  if (line.compare(mark.size(), name.size() + 2, name + "  ") != 0) return false;
  if (size.find_first_not_of("0123456789.") != std::string::npos) return false;
  const std::set<std::string> units = {"B", "KiB", "MiB", "GiB"};
  if (units.count(unit) == 0 || in_word != "in") return false;
  std::string rest;
  std::getline(in, rest);
  if (rest.rfind(" s ", 0) == 0) rest = rest.substr(2);
  const std::string tail = "), sha256 verified";
  if (rest.rfind(" (", 0) != 0 || rest.size() < 2 + tail.size() ||
      rest.compare(rest.size() - tail.size(), tail.size(), tail) != 0)
    return false;
  std::string rate = rest.substr(2, rest.size() - 2 - tail.size());
  return rate == "..." || (rate.size() > 4 && rate.compare(rate.size() - 2, 2, "/s") == 0);
}

// A page's example of reactorc's final line has the shape reactorc prints, so that the
// examples cannot drift back to an invented "notes.pdf 100% ..." line.
Test(docs, example_summary_lines_have_the_real_shape, .timeout = kTimeout) {
  cr_assert(has_summary_shape("\\[u2713] big.iso  9.9 GiB in 1m44s (97.1 MiB/s), sha256 verified"));
  cr_assert(has_summary_shape("\\[u2713] a.pdf  1.2 MiB in 0.01 s (...), sha256 verified"));
  cr_assert_not(has_summary_shape("notes.pdf  100% 1.2 MiB  ...  sha256 verified"));
  cr_assert_not(has_summary_shape("\\[u2713] notes.pdf 100% 1.2 MiB in 1 s (1 MiB/s), sha256 verified"));
  size_t examples = 0;
  for (const char* page : {kClientPage, kServerPage}) {
    std::istringstream in(read_text(page));
    for (std::string line; std::getline(in, line);) {
      if (line.find("sha256 verified") == std::string::npos) continue;
      ++examples;
      cr_expect(has_summary_shape(line), "%s: an example final line unlike reactorc's: %s", page, line.c_str());
    }
  }
  cr_assert_geq(examples, 2, "expected an example final line in each of reactorc(1) and reactord(8)");
}

// The README stands alone in a clone: no path that leads outside the repository.
Test(docs, readme_points_at_nothing_outside_the_repository, .timeout = kTimeout) {
  std::string readme = read_text("README.md");
  cr_assert(readme.find("../") == std::string::npos, "README.md refers to a path outside the repository");
}

// ---- exit statuses ---------------------------------------------------------------------

// Every "kExit<Name> = <number>" in a header.
std::map<std::string, int> exit_constants(const std::string& header) {
  std::string text = read_text(header);
  std::map<std::string, int> out;
  for (size_t at = text.find("kExit"); at != std::string::npos; at = text.find("kExit", at + 1)) {
    size_t end = at;
    while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
    size_t eq = text.find_first_not_of(" \t", end);
    if (eq == std::string::npos || text[eq] != '=') continue;
    size_t digits = text.find_first_not_of(" \t", eq + 1);
    if (digits == std::string::npos || !std::isdigit(static_cast<unsigned char>(text[digits]))) continue;
    out[text.substr(at, end - at)] = std::atoi(text.c_str() + digits);
  }
  cr_assert(out.size() >= 3, "%s: found only %zu kExit constants", header.c_str(), out.size());
  return out;
}

// The numbers of EXIT STATUS's ".It N" lines.
std::set<int> documented_exit_statuses(const char* page) {
  std::set<int> out;
  for (const std::string& line : section(page, "EXIT STATUS")) {
    if (!starts_with(line, ".It ")) continue;
    for (const std::string& word : split_words(line.substr(4))) {
      bool number = !word.empty();
      for (char c : word) number = number && std::isdigit(static_cast<unsigned char>(c));
      if (number) {
        out.insert(std::atoi(word.c_str()));
        break;
      }
    }
  }
  return out;
}

void check_exit_statuses(const char* header, const char* page) {
  std::map<std::string, int> constants = exit_constants(header);
  std::set<int> documented = documented_exit_statuses(page);
  std::set<int> defined;
  for (const auto& constant : constants) {
    defined.insert(constant.second);
    cr_assert(documented.count(constant.second) == 1, "%s = %d (%s) is not listed in %s's EXIT STATUS",
              constant.first.c_str(), constant.second, header, page);
  }
  for (int status : documented)
    cr_assert(defined.count(status) == 1, "%s's EXIT STATUS lists %d, which %s does not define", page, status,
              header);
}

// ---- the worked example ------------------------------------------------------------------

struct Labelled {
  std::string label;               // the label line, e.g. "server nonce (32 bytes):"
  std::vector<std::string> lines;  // the indented lines after it, trimmed
};

// The first literal display of "Worked example", as label lines (at the left margin)
// each followed by its indented value lines.
std::map<std::string, Labelled> worked_example() {
  std::map<std::string, Labelled> out;
  bool in_display = false;
  bool seen_display = false;
  std::string key;
  for (const std::string& raw : subsection(kProtocolPage, "Worked example")) {
    if (!seen_display && starts_with(raw, ".Bd -literal")) {
      in_display = seen_display = true;
      continue;
    }
    if (!in_display) continue;
    if (starts_with(raw, ".Ed")) break;
    std::string line = replace_all(replace_all(raw, "\\&", ""), "\\e", "\\");
    if (line.empty()) continue;
    if (line[0] != ' ') {
      key = trim(line.substr(0, line.find_first_of("(:")));
      out[key].label = line;
    } else if (!key.empty()) {
      out[key].lines.push_back(trim(line));
    }
  }
  cr_assert(seen_display, "%s: no literal display in \"Worked example\"", kProtocolPage);
  return out;
}

const Labelled& item(const std::map<std::string, Labelled>& example, const char* key) {
  auto it = example.find(key);
  cr_assert(it != example.end() && !it->second.lines.empty(),
            "%s, Worked example: no \"%s\" label followed by an indented value", kProtocolPage, key);
  return it->second;
}

// "(87 bytes" in a label: the byte count the page claims, or -1.
long claimed_length(const Labelled& labelled) {
  size_t at = labelled.label.find('(');
  if (at == std::string::npos) return -1;
  return std::strtol(labelled.label.c_str() + at + 1, nullptr, 10);
}

template <size_t N>
std::array<uint8_t, N> hex_value(const std::map<std::string, Labelled>& example, const char* key) {
  std::array<uint8_t, N> bytes{};
  std::string err;
  const std::string& text = item(example, key).lines[0];
  cr_assert(protocol::from_hex(text, &bytes, &err), "%s, Worked example, %s: \"%s\": %s", kProtocolPage, key,
            text.c_str(), err.c_str());
  return bytes;
}

// "0010  63 6c 69 ..." rows: offset -> bytes, checked to be contiguous from `first`.
std::vector<uint8_t> hex_rows(const Labelled& labelled, size_t* first_offset) {
  std::vector<uint8_t> bytes;
  bool first = true;
  for (const std::string& row : labelled.lines) {
    std::vector<std::string> words = split_words(row);
    cr_assert(!words.empty(), "empty transcript row under \"%s\"", labelled.label.c_str());
    size_t offset = std::strtoul(words[0].c_str(), nullptr, 16);
    if (first) *first_offset = offset;
    first = false;
    cr_assert(offset == *first_offset + bytes.size(), "transcript row \"%s\" under \"%s\": offset should be %04zx",
              row.c_str(), labelled.label.c_str(), *first_offset + bytes.size());
    for (size_t i = 1; i < words.size(); ++i) {
      uint8_t byte = 0;
      cr_assert(words[i].size() == 2 && protocol::from_hex(words[i], &byte, 1), "bad byte \"%s\" in row \"%s\"",
                words[i].c_str(), row.c_str());
      bytes.push_back(byte);
    }
  }
  return bytes;
}

std::vector<uint8_t> transcript(const char* label, const protocol::Nonce& server_nonce,
                                const protocol::Nonce& client_nonce) {
  std::vector<uint8_t> out(label, label + std::strlen(label));
  out.push_back(0);
  out.insert(out.end(), server_nonce.begin(), server_nonce.end());
  out.insert(out.end(), client_nonce.begin(), client_nonce.end());
  return out;
}

std::string hex_of(const std::vector<uint8_t>& bytes) { return protocol::to_hex(bytes.data(), bytes.size()); }

// ---- protocol names --------------------------------------------------------------------

template <size_t... I>
std::set<std::string> all_type_names(std::index_sequence<I...>) {
  return {protocol::type_name(protocol::Message(std::in_place_index<I>))...};
}

// ".It Cm name Ta ..." rows of a .Bl -column list: name -> the words after it.
std::map<std::string, std::vector<std::string>> column_rows(const std::vector<std::string>& lines) {
  std::map<std::string, std::vector<std::string>> rows;
  for (const std::string& line : lines) {
    std::vector<std::string> words = split_words(line);
    if (words.size() >= 4 && words[0] == ".It" && words[1] == "Cm" && words[3] == "Ta")
      rows[words[2]] = std::vector<std::string>(words.begin() + 3, words.end());
  }
  return rows;
}

// ---- contrib/reactord.service ------------------------------------------------------------

std::string unit_value(const std::string& key) {
  for (const std::string& line : split_lines(read_text(kUnit)))
    if (starts_with(line, key + "=")) return line.substr(key.size() + 1);
  cr_assert_fail("%s has no %s= line", kUnit, key.c_str());
  return {};
}

}  // namespace

// ---- option drift -------------------------------------------------------------------------

Test(docs, reactorc_help_options_are_documented, .timeout = kTimeout) {
  check_help_documented("reactorc", kClientPage);
}

Test(docs, reactorc_documented_options_exist, .timeout = kTimeout) {
  check_documented_exist("reactorc", kClientPage);
}

Test(docs, reactorc_short_and_long_forms_pair_up, .timeout = kTimeout) { check_pairs("reactorc", kClientPage); }

Test(docs, reactorc_synopsis_options_exist, .timeout = kTimeout) { check_synopsis("reactorc", kClientPage); }

Test(docs, reactord_help_options_are_documented, .timeout = kTimeout) {
  check_help_documented("reactord", kServerPage);
}

Test(docs, reactord_documented_options_exist, .timeout = kTimeout) {
  check_documented_exist("reactord", kServerPage);
}

Test(docs, reactord_short_and_long_forms_pair_up, .timeout = kTimeout) { check_pairs("reactord", kServerPage); }

Test(docs, reactord_synopsis_options_exist, .timeout = kTimeout) { check_synopsis("reactord", kServerPage); }

Test(docs, reactorc_page_documents_end_of_options, .timeout = kTimeout) {
  bool found = false;
  for (const std::string& line : section(kClientPage, "OPTIONS"))
    found = found || trim(line) == ".It Fl \\-";
  cr_assert(found, "%s: OPTIONS does not document \"--\" (.It Fl \\-)", kClientPage);
}

// ---- exit statuses ------------------------------------------------------------------------

Test(docs, reactorc_exit_statuses_are_documented, .timeout = kTimeout) {
  check_exit_statuses(kClientExitCodes, kClientPage);
}

Test(docs, reactord_exit_statuses_are_documented, .timeout = kTimeout) {
  check_exit_statuses(kServerExitCodes, kServerPage);
}

// ---- reactor-protocol(7) -------------------------------------------------------------------

Test(docs, worked_example_client_mac, .timeout = kTimeout) {
  auto example = worked_example();
  const std::string secret = item(example, "secret").lines[0];
  auto server_nonce = hex_value<32>(example, "server nonce");
  auto client_nonce = hex_value<32>(example, "client nonce");
  auto documented = hex_value<32>(example, "client mac");
  std::string computed = protocol::to_hex(protocol::client_proof(secret, server_nonce, client_nonce));
  cr_assert(computed == protocol::to_hex(documented),
            "%s: the worked example's client mac is %s, but protocol::client_proof gives %s", kProtocolPage,
            protocol::to_hex(documented).c_str(), computed.c_str());
}

Test(docs, worked_example_server_mac, .timeout = kTimeout) {
  auto example = worked_example();
  const std::string secret = item(example, "secret").lines[0];
  auto server_nonce = hex_value<32>(example, "server nonce");
  auto client_nonce = hex_value<32>(example, "client nonce");
  auto documented = hex_value<32>(example, "server mac");
  std::string computed = protocol::to_hex(protocol::server_proof(secret, server_nonce, client_nonce));
  cr_assert(computed == protocol::to_hex(documented),
            "%s: the worked example's server mac is %s, but protocol::server_proof gives %s", kProtocolPage,
            protocol::to_hex(documented).c_str(), computed.c_str());
}

// The byte-exact transcript the page prints, and the byte counts its labels claim: an
// implementer following the dump with a plain HMAC-SHA256 must get the documented MAC.
Test(docs, worked_example_transcripts, .timeout = kTimeout) {
  auto example = worked_example();
  const std::string secret = item(example, "secret").lines[0];
  auto server_nonce = hex_value<32>(example, "server nonce");
  auto client_nonce = hex_value<32>(example, "client nonce");
  cr_assert(claimed_length(item(example, "secret")) == static_cast<long>(secret.size()),
            "the label \"%s\" claims another length than the %zu bytes of \"%s\"",
            item(example, "secret").label.c_str(), secret.size(), secret.c_str());
  cr_assert(claimed_length(item(example, "server nonce")) == 32 && claimed_length(item(example, "client nonce")) == 32,
            "the nonce labels must say 32 bytes");

  size_t first = 0;
  std::vector<uint8_t> dumped = hex_rows(item(example, "client transcript"), &first);
  std::vector<uint8_t> expected = transcript("reactor-auth-v1 client", server_nonce, client_nonce);
  cr_assert(first == 0, "the client transcript must start at offset 0000");
  cr_assert(hex_of(dumped) == hex_of(expected), "%s: client transcript\n  page %s\n  code %s", kProtocolPage,
            hex_of(dumped).c_str(), hex_of(expected).c_str());
  cr_assert(claimed_length(item(example, "client transcript")) == static_cast<long>(expected.size()),
            "the label \"%s\" should say %zu bytes", item(example, "client transcript").label.c_str(), expected.size());

  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  cr_assert(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), dumped.data(), dumped.size(), mac,
                 &mac_len) != nullptr);
  auto documented = hex_value<32>(example, "client mac");
  cr_assert(protocol::to_hex(mac, mac_len) == protocol::to_hex(documented),
            "HMAC-SHA256 of the printed client transcript is %s, the page says %s",
            protocol::to_hex(mac, mac_len).c_str(), protocol::to_hex(documented).c_str());

  std::vector<uint8_t> server_row = hex_rows(item(example, "server transcript"), &first);
  std::vector<uint8_t> server_expected = transcript("reactor-auth-v1 server", server_nonce, client_nonce);
  cr_assert(first + server_row.size() <= server_expected.size() && !server_row.empty(),
            "server transcript row out of range");
  std::vector<uint8_t> slice(server_expected.begin() + static_cast<long>(first),
                             server_expected.begin() + static_cast<long>(first + server_row.size()));
  cr_assert(hex_of(server_row) == hex_of(slice), "%s: server transcript row %04zx\n  page %s\n  code %s",
            kProtocolPage, first, hex_of(server_row).c_str(), hex_of(slice).c_str());
  // Outside the printed row the two transcripts must really be "the same".
  for (size_t i = 0; i < expected.size(); ++i)
    if (i < first || i >= first + server_row.size())
      cr_assert(expected[i] == server_expected[i], "the transcripts also differ at byte %zu", i);
}

Test(docs, protocol_error_codes_are_documented, .timeout = kTimeout) {
  auto rows = column_rows(section(kProtocolPage, "ERROR CODES"));
  std::set<std::string> known;
  for (int i = 0; i <= static_cast<int>(protocol::kLastErrorCode); ++i) {
    auto code = static_cast<protocol::ErrorCode>(i);
    std::string name = protocol::to_string(code);
    known.insert(name);
    auto row = rows.find(name);
    cr_assert(row != rows.end() && row->second.size() >= 2, "%s: ERROR CODES has no row for %s", kProtocolPage,
              name.c_str());
    const char* kind = protocol::is_fatal(code) ? "fatal" : "per-request";
    cr_assert(row->second[1] == kind, "%s: ERROR CODES says %s is %s; protocol::is_fatal says %s", kProtocolPage,
              name.c_str(), row->second[1].c_str(), kind);
  }
  for (const auto& row : rows)
    cr_assert(known.count(row.first) == 1, "%s: ERROR CODES lists %s, which protocol/error_code.h lacks",
              kProtocolPage, row.first.c_str());
}

Test(docs, protocol_message_types_are_documented, .timeout = kTimeout) {
  std::set<std::string> types = all_type_names(std::make_index_sequence<std::variant_size_v<protocol::Message>>());
  cr_assert(types.size() == std::variant_size_v<protocol::Message>);
  auto rows = column_rows(section(kProtocolPage, "MESSAGES"));
  std::set<std::string> items;  // the per-message field lists: ".It Cm stat , Cm list"
  for (const std::string& line : section(kProtocolPage, "MESSAGES")) {
    if (!starts_with(line, ".It Cm ") || line.find(" Ta ") != std::string::npos) continue;
    std::vector<std::string> words = split_words(line);
    for (size_t i = 1; i + 1 < words.size(); ++i)
      if (words[i] == "Cm") items.insert(words[i + 1]);
  }
  for (const std::string& type : types) {
    cr_assert(rows.count(type) == 1, "%s: the MESSAGES table has no row for \"%s\"", kProtocolPage, type.c_str());
    cr_assert(items.count(type) == 1, "%s: MESSAGES does not describe the fields of \"%s\"", kProtocolPage,
              type.c_str());
  }
  for (const auto& row : rows)
    cr_assert(types.count(row.first) == 1, "%s: MESSAGES lists \"%s\", which protocol/messages.h lacks",
              kProtocolPage, row.first.c_str());
}

// Every Xr to one of ours names a page that exists, wherever on the line the macro is
// (".Pq see Xr reactor-tutorial 7" too), and so does every "name(N)" in README.md.
Test(docs, cross_references_resolve, .timeout = kTimeout) {
  for (const char* page : {kClientPage, kServerPage, kProtocolPage, "man/reactor-tutorial.7"}) {
    for (const std::string& line : split_lines(read_text(page))) {
      std::vector<std::string> words = split_words(line);
      for (size_t i = 0; i + 2 < words.size(); ++i) {
        if ((words[i] != ".Xr" && words[i] != "Xr") || !starts_with(words[i + 1], "reactor")) continue;
        std::string target = "man/" + words[i + 1] + "." + words[i + 2].substr(0, 1);
        cr_assert(access(target.c_str(), R_OK) == 0, "%s refers to %s(%s), but there is no %s", page,
                  words[i + 1].c_str(), words[i + 2].c_str(), target.c_str());
      }
    }
  }
  std::string readme = read_text("README.md");
  for (size_t at = readme.find("reactor"); at != std::string::npos; at = readme.find("reactor", at + 1)) {
    size_t end = at;
    while (end < readme.size() && (std::isalnum(static_cast<unsigned char>(readme[end])) || readme[end] == '-')) ++end;
    if (end + 2 >= readme.size() || readme[end] != '(' || !std::isdigit(static_cast<unsigned char>(readme[end + 1])) ||
        readme[end + 2] != ')')
      continue;
    std::string target = "man/" + readme.substr(at, end - at) + "." + readme[end + 1];
    cr_assert(access(target.c_str(), R_OK) == 0, "README.md refers to %s, but there is no %s",
              readme.substr(at, end - at + 3).c_str(), target.c_str());
  }
}

// ---- contrib/reactord.service ------------------------------------------------------------

Test(docs, systemd_unit_passes_real_options, .timeout = kTimeout) {
  std::set<std::string> in_help = help_options(run_help("reactord").out);
  std::vector<std::string> words = split_words(unit_value("ExecStart"));
  cr_assert(words.size() > 1 && words[0].find("reactord") != std::string::npos, "%s: ExecStart does not run reactord",
            kUnit);
  bool has_secret = false;
  double grace = 10;  // reactord's default
  for (size_t i = 1; i < words.size(); ++i) {
    if (words[i][0] != '-') continue;
    std::string option = words[i].substr(0, words[i].find('='));
    cr_assert(in_help.count(option) == 1, "%s: ExecStart passes %s, which reactord --help does not list", kUnit,
              option.c_str());
    if (option == "-k" || option == "--secret-file") has_secret = true;
    if (option == "--grace" && i + 1 < words.size()) grace = std::strtod(words[i + 1].c_str(), nullptr);
  }
  cr_assert(has_secret, "%s: ExecStart should name the secret file with -k", kUnit);
  // After --grace, sessions may take up to 2 s to deliver their last error frame, and
  // the sweep runs once a second: systemd must not SIGKILL before that.
  double stop = std::strtod(unit_value("TimeoutStopSec").c_str(), nullptr);
  cr_assert(stop >= grace + 3, "%s: TimeoutStopSec=%g does not cover --grace %g plus 3 s", kUnit, stop, grace);
}

// The sandboxing issue 4 asks of the unit, each setting with the value that makes it
// protect, and the served root mounted read-only where ExecStart serves it.
Test(docs, systemd_unit_is_sandboxed, .timeout = kTimeout) {
  const std::pair<const char*, const char*> kRequired[] = {
      {"NoNewPrivileges", "yes"},     {"ProtectSystem", "strict"},    {"ProtectHome", "yes"},
      {"PrivateTmp", "yes"},          {"PrivateDevices", "yes"},      {"CapabilityBoundingSet", ""},
      {"DynamicUser", "yes"},         {"ProtectKernelTunables", "yes"}, {"ProtectKernelModules", "yes"},
      {"ProtectControlGroups", "yes"}, {"RestrictNamespaces", "yes"}, {"RestrictSUIDSGID", "yes"},
      {"MemoryDenyWriteExecute", "yes"}, {"LockPersonality", "yes"},  {"UMask", "0077"},
  };
  for (const auto& [key, value] : kRequired) {
    std::string got = unit_value(key);
    cr_assert_eq(got, std::string(value), "%s: %s=%s, expected %s", kUnit, key, got.c_str(), value);
  }
  std::vector<std::string> words = split_words(unit_value("ExecStart"));
  std::string root;
  for (size_t i = 1; i + 1 < words.size(); ++i)
    if (words[i] == "-r" || words[i] == "--root") root = words[i + 1];
  cr_assert(!root.empty(), "%s: ExecStart should name the served root with -r", kUnit);
  std::vector<std::string> read_only = split_words(unit_value("ReadOnlyPaths"));
  cr_assert(std::find(read_only.begin(), read_only.end(), root) != read_only.end(),
            "%s: ReadOnlyPaths does not cover the served root %s", kUnit, root.c_str());
  cr_assert(read_text(kServerPage).find("contrib/reactord.service") != std::string::npos,
            "%s does not document the unit", kServerPage);
}

// ---- behaviour the pages describe ----------------------------------------------------------

namespace {

void check_version(const char* name) {
  RunResult r = run({program(name), "--version"});
  cr_assert(r.exited && r.code == 0, "%s --version: %s", name, describe(r).c_str());
  const std::string prefix = std::string(name) + " ";
  cr_assert(starts_with(r.out, prefix), "%s --version should start with \"%s\": %s", name, prefix.c_str(),
            r.out.c_str());
  std::string version = split_words(r.out.substr(prefix.size())).at(0);
  int dots = 0;
  bool digits = !version.empty() && std::isdigit(static_cast<unsigned char>(version[0]));
  for (char c : version) {
    dots += c == '.';
    digits = digits && (std::isdigit(static_cast<unsigned char>(c)) || c == '.');
  }
  cr_assert(digits && dots == 2, "%s --version: \"%s\" is not a MAJOR.MINOR.PATCH version", name, version.c_str());
#ifdef REACTOR_VERSION
  cr_assert(version == REACTOR_VERSION, "%s --version says %s, the build says %s", name, version.c_str(),
            REACTOR_VERSION);
#endif
  cr_assert(r.err.empty(), "%s --version wrote to stderr: %s", name, r.err.c_str());
}

void check_help(const char* name) {
  RunResult r = run_help(name);
  const std::string usage = std::string("usage: ") + name;
  cr_assert(starts_with(r.out, usage), "%s --help should start with \"%s\": %s", name, usage.c_str(), r.out.c_str());
  cr_assert(r.err.empty(), "%s --help wrote to stderr: %s", name, r.err.c_str());
  RunResult short_form = run({program(name), "-h"});
  cr_assert(short_form.exited && short_form.code == 0 && short_form.out == r.out, "%s -h differs from --help: %s",
            name, describe(short_form).c_str());
}

void check_unknown_option(const char* name) {
  for (const char* option : {"--no-such-option", "-Z"}) {
    RunResult r = run({program(name), option});
    cr_assert(r.exited && r.code == 2, "%s %s should exit 2: %s", name, option, describe(r).c_str());
    const std::string prefix = std::string(name) + ": ";
    cr_assert(starts_with(r.err, prefix), "%s %s: stderr should start with \"%s\": %s", name, option, prefix.c_str(),
              r.err.c_str());
    cr_assert(r.err.find(option) != std::string::npos, "%s %s: the message should name the option: %s", name, option,
              r.err.c_str());
    cr_assert(r.out.empty(), "%s %s wrote to stdout: %s", name, option, r.out.c_str());
  }
}

}  // namespace

Test(cli, reactorc_version, .timeout = kTimeout) { check_version("reactorc"); }
Test(cli, reactord_version, .timeout = kTimeout) { check_version("reactord"); }
Test(cli, reactorc_help, .timeout = kTimeout) { check_help("reactorc"); }
Test(cli, reactord_help, .timeout = kTimeout) { check_help("reactord"); }
Test(cli, reactorc_unknown_option, .timeout = kTimeout) { check_unknown_option("reactorc"); }
Test(cli, reactord_unknown_option, .timeout = kTimeout) { check_unknown_option("reactord"); }
