#include "apps/reactorc/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "apps/common/cli.h"
#include "apps/common/human_units.h"
#include "apps/common/regular_file.h"
#include "apps/common/secret.h"
#include "reactor/errors.h"
#include "reactor/unique_fd.h"

namespace client {
namespace {

// Far beyond any hand-written file; keeps a mistaken -F /dev/zero-like path harmless.
constexpr size_t kMaxConfigBytes = 1024 * 1024;

// What a setting may say, and where. The security settings are one choice together:
// see apply_config.
struct KeySpec {
  const char* key;
  bool server_only;
  bool security;
};

const KeySpec kKeys[] = {
    {"address", true, false},    {"secret-file", false, false}, {"timeout", false, false},
    {"retry", false, false},     {"limit-rate", false, false},  {"progress", false, false},
    {"backend", false, false},   {"plain", false, true},        {"tls-ca", false, true},
    {"tls-pin", false, true},    {"insecure", false, true},
};

const KeySpec* find_key(std::string_view key) {
  for (const KeySpec& spec : kKeys)
    if (key == spec.key) return &spec;
  return nullptr;
}

// Edits (insert, delete, replace a letter) between two short words.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "limitrate", "Limit_Rate", "--limit-rate", "adress": the key meant, said back.
std::string suggestion(std::string_view key) {
  auto squash = [](std::string_view text) {
    std::string out;
    for (char c : text)
      if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  std::string want = squash(key);
  for (size_t tolerance = 0; tolerance <= 2; ++tolerance)
    for (const KeySpec& spec : kKeys)
      if (edit_distance(squash(spec.key), want) <= tolerance) return std::string(" (did you mean \"") + spec.key + "\"?)";
  if (want == "server" || want == "host") return " (a server section begins with \"server NAME\")";
  return {};
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string at(const std::string& path, size_t line) { return path + ":" + std::to_string(line) + ": "; }

bool valid_server_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return false;
  return true;
}

bool no_duplicate(const std::vector<ConfigSetting>& settings, std::string_view key, const std::string& path,
                  size_t line, std::string* err) {
  for (const ConfigSetting& s : settings) {
    if (s.key == key) {
      *err = at(path, line) + "\"" + std::string(key) + "\" is already set in this section, on line " +
             std::to_string(s.line);
      return false;
    }
  }
  return true;
}

bool parse_flag(const std::string& value, bool* out) {
  if (value == "yes" || value == "true" || value == "on") {
    *out = true;
    return true;
  }
  if (value == "no" || value == "false" || value == "off") {
    *out = false;
    return true;
  }
  return false;
}

// "~/x" is beneath $HOME; anything else must be absolute, so that a file does not
// mean something different in every directory reactorc is started from.
bool expand_path(const std::string& value, std::string* out, std::string* why) {
  if (value.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || home[0] != '/') {
      *why = "\"~/\" needs $HOME to be an absolute path";
      return false;
    }
    *out = std::string(home) + value.substr(1);
    return true;
  }
  if (value.empty() || value[0] != '/') {
    *why = "expected an absolute path or one beginning with ~/";
    return false;
  }
  *out = value;
  return true;
}

// One setting into `options`; false with the reason in *why.
bool apply_setting(const ConfigSetting& s, Options* options, std::string* why) {
  const std::string& v = s.value;
  if (s.key == "address") {
    if (v.find_first_of(" \t") != std::string::npos) {
      *why = "expected HOST[:PORT] or [IPV6][:PORT]";
      return false;
    }
    options->server = v;
    return true;
  }
  if (s.key == "secret-file") return expand_path(v, &options->secret_file, why);
  if (s.key == "tls-ca") return expand_path(v, &options->tls_ca, why);
  if (s.key == "timeout") {
    if (app::parse_seconds(v.c_str(), &options->timeout)) return true;
    *why = "expected seconds, e.g. 30";
    return false;
  }
  if (s.key == "retry") {
    if (app::parse_count(v.c_str(), 0, 100, &options->retry)) return true;
    *why = "expected 0 to 100";
    return false;
  }
  if (s.key == "limit-rate") {
    if (app::parse_size(v, &options->limit_rate) && options->limit_rate > 0) return true;
    *why = "expected bytes a second, e.g. 500K or 10M";
    return false;
  }
  if (s.key == "progress") {
    if (parse_progress_style(v, &options->progress)) return true;
    *why = "expected bar, plane, rainbow, none or json";
    return false;
  }
  if (s.key == "backend") {
    if (v == "epoll" || v == "poll") {
      options->backend = v;
      return true;
    }
    *why = "expected epoll or poll";
    return false;
  }
  if (s.key == "plain" || s.key == "insecure") {
    if (parse_flag(v, s.key == "plain" ? &options->plain : &options->insecure)) return true;
    *why = "expected yes or no";
    return false;
  }
  if (s.key == "tls-pin") {
    if (valid_tls_pin(v.c_str())) {
      options->tls_pin = v;
      return true;
    }
    *why = "expected sha256: and 64 hex digits";
    return false;
  }
  *why = "unknown setting";  // parse_config let through only known keys
  return false;
}

const ConfigSetting* find_setting(const std::vector<ConfigSetting>& settings, std::string_view key) {
  for (const ConfigSetting& s : settings)
    if (s.key == key) return &s;
  return nullptr;
}

bool has_security_setting(const std::vector<ConfigSetting>& settings) {
  return std::any_of(settings.begin(), settings.end(), [](const ConfigSetting& s) {
    const KeySpec* spec = find_key(s.key);
    return spec != nullptr && spec->security;
  });
}

}  // namespace

const ConfigServer* ConfigFile::find(std::string_view name) const {
  for (const ConfigServer& server : servers)
    if (server.name == name) return &server;
  return nullptr;
}

bool parse_config(std::string_view text, const std::string& path, ConfigFile* out, std::string* err) {
  *out = ConfigFile{};
  out->path = path;
  size_t line = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(start, end - start);
    start = end + 1;
    ++line;
    if (raw.find('\0') != std::string_view::npos) {
      *err = at(path, line) + "a NUL byte: this is not a text file";
      return false;
    }
    std::string_view content = trim(raw);
    if (content.empty() || content.front() == '#') continue;
    size_t gap = content.find_first_of(" \t");
    std::string key(content.substr(0, gap));
    std::string value(gap == std::string_view::npos ? std::string_view() : trim(content.substr(gap)));
    if (key == "server") {
      if (!valid_server_name(value)) {
        *err = at(path, line) + "\"server\" takes one name of letters, digits, '.', '-' and '_'" +
               (value.empty() ? std::string() : ", not \"" + value + "\"");
        return false;
      }
      if (const ConfigServer* before = out->find(value)) {
        *err = at(path, line) + "server \"" + value + "\" is already defined on line " + std::to_string(before->line);
        return false;
      }
      out->servers.push_back(ConfigServer{value, line, {}});
      continue;
    }
    const KeySpec* spec = find_key(key);
    if (spec == nullptr) {
      *err = at(path, line) + "unknown setting \"" + key + "\"" + suggestion(key);
      return false;
    }
    if (value.empty()) {
      *err = at(path, line) + "\"" + key + "\" needs a value";
      return false;
    }
    if (spec->server_only && out->servers.empty()) {
      *err = at(path, line) + "\"" + key + "\" belongs in a server section (after a \"server NAME\" line)";
      return false;
    }
    std::vector<ConfigSetting>& section = out->servers.empty() ? out->global : out->servers.back().settings;
    if (!no_duplicate(section, key, path, line, err)) return false;
    section.push_back(ConfigSetting{key, value, line});
  }
  return true;
}

bool load_config(const std::string& path, bool must_exist, ConfigFile* out, bool* found, std::string* err) {
  *found = false;
  struct stat st {};
  int open_errno = 0;
  reactor::UniqueFd fd = app::open_regular_file(path, "configuration file", 0, &st, &open_errno, err);
  if (!fd) {
    if (open_errno == ENOENT && !must_exist) {
      err->clear();
      return true;
    }
    return false;
  }
  if ((st.st_uid != getuid() && st.st_uid != 0) || (st.st_mode & 022) != 0) {
    *err = "configuration file \"" + path +
           "\" could be changed by another user (it must be yours and writable by you alone: chmod go-w)";
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes) {
    *err = "configuration file \"" + path + "\" is larger than 1 MiB";
    return false;
  }
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd.get(), &text[got], text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = reactor::sys_error("read configuration file", path);
      return false;
    }
    if (n == 0) break;  // shrank meanwhile: what was there
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  *found = true;
  return parse_config(text, path, out, err);
}

bool apply_config(const ConfigFile& config, Options* options, std::string* err) {
  std::string name = options->server;
  if (name.empty()) {
    const char* env = std::getenv("REACTOR_SERVER");
    if (env != nullptr) name = env;
  }
  const ConfigServer* server = name.empty() ? nullptr : config.find(name);
  // The security settings are one choice (plain, or TLS verified one way): taken whole
  // from the most specific place that makes it, never mixed, and not at all when the
  // command line makes it.
  bool cli_security = options->given.count("plain") || options->given.count("tls-ca") ||
                      options->given.count("tls-pin") || options->given.count("insecure");
  const std::vector<ConfigSetting>* security_from = nullptr;
  if (!cli_security) {
    if (server != nullptr && has_security_setting(server->settings)) {
      security_from = &server->settings;
    } else if (has_security_setting(config.global)) {
      security_from = &config.global;
    }
  }
  for (const KeySpec& spec : kKeys) {
    const ConfigSetting* setting = nullptr;
    if (spec.security) {
      if (security_from != nullptr) setting = find_setting(*security_from, spec.key);
    } else if (spec.server_only) {
      if (server != nullptr) setting = find_setting(server->settings, spec.key);
    } else if (!options->given.count(spec.key)) {
      if (server != nullptr) setting = find_setting(server->settings, spec.key);
      if (setting == nullptr) setting = find_setting(config.global, spec.key);
    }
    if (setting == nullptr) continue;
    std::string why;
    if (!apply_setting(*setting, options, &why)) {
      *err = at(config.path, setting->line) + "invalid " + setting->key + " \"" + setting->value + "\": " + why;
      return false;
    }
  }
  if (server != nullptr) {
    // The name stands for the server: without an address of its own, it is the host.
    if (find_setting(server->settings, "address") == nullptr) options->server = name;
    options->server_from = config.path + ":" + std::to_string(server->line);
  }
  if (options->plain && (!options->tls_ca.empty() || !options->tls_pin.empty() || options->insecure)) {
    const ConfigSetting* plain = security_from != nullptr ? find_setting(*security_from, "plain") : nullptr;
    *err = at(config.path, plain != nullptr ? plain->line : 0) +
           "plain speaks no TLS: tls-ca, tls-pin and insecure do not apply";
    return false;
  }
  return true;
}

bool load_and_apply_config(Options* options, std::string* err) {
  if (options->config_file == "none") return true;
  bool named = !options->config_file.empty();
  std::string path = options->config_file;
  if (!named) {
    std::string ignored;
    path = app::config_path("config", &ignored);
    if (path.empty()) return true;  // no home to look in: no file
  }
  ConfigFile config;
  bool found = false;
  if (!load_config(path, named, &config, &found, err)) return false;
  return !found || apply_config(config, options, err);
}

}  // namespace client
