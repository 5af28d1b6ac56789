#pragma once
// Making untrusted text safe to show on a terminal or in a log, and measuring it.
//
// Anything that comes from a remote peer (file names, messages, error text) can carry
// escape sequences that retitle a window, move the cursor, rewrite earlier lines or, on
// some terminals, answer back into the input. escape_for_terminal() is the one filter
// such text passes through before it reaches stderr or a log.

#include <cstddef>
#include <string>
#include <string_view>

namespace app {

// Returns `text` with every byte that could control a terminal, or that is not part of
// valid UTF-8, written as `\xNN` (two lowercase hex digits):
//   - C0 controls (0x00..0x1f) and DEL (0x7f);
//   - C1 controls U+0080..U+009F (UTF-8 0xc2 0x80..0xc2 0x9f): both bytes are escaped;
//   - the bidirectional controls U+202A..U+202E and U+2066..U+2069, which reorder what a
//     terminal shows (Trojan Source): all three bytes are escaped;
//   - every byte of an invalid sequence: stray continuation bytes, truncated sequences,
//     overlong forms (0xc0 0xaf), UTF-16 surrogates, code points above U+10FFFF, 0xf5..0xff.
// A backslash becomes `\\`, so the output decodes back to exactly one input. Valid
// printable UTF-8 (✈, 中文, ...) passes unchanged.
std::string escape_for_terminal(std::string_view text);

// True when escape_for_terminal() would change nothing except double the backslashes:
// the text can be written to a terminal as is. Lets a sink accept text that a caller
// may or may not have escaped already without escaping it twice.
bool is_terminal_safe(std::string_view text);

// Columns the UTF-8 `text` occupies on a terminal: East Asian wide and fullwidth
// characters (CJK, Hangul, most emoji) count 2, combining marks and zero-width
// characters 0, everything else 1 (✈ U+2708 included); an invalid byte counts 1.
// Where terminals disagree it errs towards too many columns, never too few.
std::size_t display_width(std::string_view text);

// The longest prefix of `text` that fits in `columns`, cut on a character boundary.
std::string_view truncate_to_width(std::string_view text, std::size_t columns);

// Whether to colour output to `fd`: it is a terminal, NO_COLOR is unset or empty
// (https://no-color.org: any non-empty value disables colour), and TERM is not "dumb".
bool stream_wants_color(int fd);

// TERM is "dumb": a terminal that interprets no escape sequences (Emacs' shell, some CI
// consoles); `\r` still returns to the start of the line.
bool terminal_is_dumb();

// Whether the character set of the locale (LC_ALL, else LC_CTYPE, else LANG, the first
// that is set and not empty) is UTF-8. Unset, "C" and "POSIX" are ASCII, as in glibc.
bool locale_is_utf8();

}  // namespace app
