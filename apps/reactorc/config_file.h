#pragma once
// reactorc's configuration file, ~/.config/reactor/config: defaults for options, and
// named servers, the way ~/.ssh/config names hosts, so that `reactorc -s backup get x`
// finds backup's address, secret file and TLS pin. The format (reactorc(1), FILES):
//
//   # a comment; blank lines are ignored
//   retry 5                      settings before any "server" line apply to every server
//   server backup                a named server, up to the next "server" line
//       address backup.example.org:9000
//       secret-file ~/.config/reactor/backup.secret
//       tls-pin sha256:3b5d...
//
// One setting a line: a key, spaces, a value (the rest of the line). Keys are the long
// options' names; yes/no for a flag. Parsing is strict: an unknown key, a bad value, a
// key given twice in one section or a server named twice is an error naming its line.
// The command line overrides the file, and a server's section overrides the top.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "apps/reactorc/options.h"

namespace client {

struct ConfigSetting {
  std::string key;
  std::string value;
  size_t line = 0;
};

struct ConfigServer {
  std::string name;
  size_t line = 0;
  std::vector<ConfigSetting> settings;
};

struct ConfigFile {
  std::string path;  // for messages: "PATH:LINE: ..."
  std::vector<ConfigSetting> global;
  std::vector<ConfigServer> servers;

  const ConfigServer* find(std::string_view name) const;
};

// Parses `text` (the file's contents) into `out`; checks keys, duplicates and names,
// not values. False with "PATH:LINE: why" in *err.
bool parse_config(std::string_view text, const std::string& path, ConfigFile* out, std::string* err);

// Reads and parses the file at `path`. A missing file is no error unless `must_exist`
// (named with -F): *found says whether there was one. Like ssh, refuses a file that
// another user could change (not ours or root's, or writable by group or others):
// whoever can edit it can send us to a server of their choosing.
bool load_config(const std::string& path, bool must_exist, ConfigFile* out, bool* found, std::string* err);

// Fills in what the command line left unsaid: from the section of the server that -s
// (or $REACTOR_SERVER) names, if the file has one, then from the top of the file. A
// named server's address replaces the name in options->server. Values are checked as
// the command line checks them: false with "PATH:LINE: why" in *err.
bool apply_config(const ConfigFile& config, Options* options, std::string* err);

// -F/--config, else config_path("config"), read and applied; "none" skips the file.
bool load_and_apply_config(Options* options, std::string* err);

}  // namespace client
