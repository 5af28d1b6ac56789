#pragma once
// The shared secret both programs authenticate with (see reactor-protocol(7)).
//
// It lives in a file so it never appears on a command line or in the environment, where
// other users could read it from /proc. The file must not be readable by group or
// others; a file that is would mean the secret is already known to people it should not
// be, so both programs refuse it rather than warn.

#include <sys/types.h>

#include <string>

namespace app {

// Shortest secret accepted: shorter ones are guessable offline from one recorded
// handshake (the MAC is a cheap function of secret and two public nonces).
constexpr size_t kMinSecretLength = 16;

struct Secret {
  std::string key;   // the file's bytes, trailing whitespace stripped
  std::string path;  // as given
  dev_t dev = 0;     // identity of the file, so the server can refuse to serve it
  ino_t ino = 0;
};

// $XDG_CONFIG_HOME/reactor/NAME, else $HOME/.config/reactor/NAME: where both programs
// keep their files. Empty (with *err) when neither variable gives an absolute directory.
std::string config_path(const char* name, std::string* err);

// config_path("secret").
std::string default_secret_path(std::string* err);

// Reads and checks a secret file: a regular file, not reached through a final symbolic
// link, owned by the effective user or root, not accessible by group or others, at
// least kMinSecretLength bytes once trailing whitespace is stripped.
bool load_secret(const std::string& path, Secret* out, std::string* err);

// Creates a fresh secret (64 lowercase hex characters from OpenSSL's RNG and a newline)
// at `path` with mode 0600, creating missing parent directories with mode 0700. Fails
// if the file already exists: it never overwrites a secret.
bool create_secret(const std::string& path, std::string* err);

}  // namespace app
