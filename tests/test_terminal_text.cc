// escape_for_terminal, display_width, stream_wants_color, and the human units.
#include <criterion/criterion.h>
// Criterion's Test() expands to a C-style cast of the test function.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "apps/common/human_units.h"
#include "apps/common/terminal_text.h"
#include "tests/support/pty.h"

using namespace std::string_literals;

namespace {

void expect_escape(const std::string& in, const std::string& want) {
  std::string got = app::escape_for_terminal(in);
  cr_assert_eq(got, want, "escape_for_terminal: got \"%s\", want \"%s\"", got.c_str(), want.c_str());
}

void expect_bytes(uint64_t bytes, const char* want) {
  std::string got = app::format_bytes(bytes);
  cr_assert_str_eq(got.c_str(), want, "format_bytes(%llu)", static_cast<unsigned long long>(bytes));
}

void expect_rate(double rate, const char* want) {
  std::string got = app::format_rate(rate);
  cr_assert_str_eq(got.c_str(), want, "format_rate(%g)", rate);
}

void expect_duration(double seconds, const char* want) {
  std::string got = app::format_duration(seconds);
  cr_assert_str_eq(got.c_str(), want, "format_duration(%g)", seconds);
}

void expect_size(const char* text, uint64_t want) {
  uint64_t got = 12345;
  cr_assert(app::parse_size(text, &got), "parse_size(\"%s\") failed", text);
  cr_assert_eq(got, want, "parse_size(\"%s\") = %llu, want %llu", text,
               static_cast<unsigned long long>(got), static_cast<unsigned long long>(want));
}

void expect_bad_size(std::string_view text) {
  uint64_t got = 12345;
  std::string shown(text);
  cr_assert_not(app::parse_size(text, &got), "parse_size(\"%s\") accepted", shown.c_str());
  cr_assert_eq(got, 12345u, "parse_size wrote on failure");
}

}  // namespace

TestSuite(terminal_text, .timeout = 10);

Test(terminal_text, escapes_c0_controls) {
  expect_escape("a\x1b[2Jb", "a\\x1b[2Jb");
  expect_escape("bell\a", "bell\\x07");
  expect_escape("cr\rnl\n", "cr\\x0dnl\\x0a");
  expect_escape("tab\there", "tab\\x09here");
  expect_escape("nul"s + '\0' + "x", "nul\\x00x");
}

Test(terminal_text, escapes_del) { expect_escape("x\x7fy", "x\\x7fy"); }

Test(terminal_text, escapes_c1_csi) {
  // U+009B is CSI on its own: \x9b[2J clears the screen on terminals that accept C1.
  expect_escape("a\xc2\x9b" "2Jb", "a\\xc2\\x9b2Jb");
  expect_escape("\xc2\x80\xc2\x9f", "\\xc2\\x80\\xc2\\x9f");
  // U+00A0 is the first code point after C1 and is printable.
  expect_escape("\xc2\xa0", "\xc2\xa0");
}

Test(terminal_text, escapes_invalid_bytes) {
  expect_escape("\xff", "\\xff");
  expect_escape("a\xfe\xff" "b", "a\\xfe\\xffb");
  expect_escape("\x80x", "\\x80x");
  expect_escape("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
}

Test(terminal_text, escapes_truncated_sequence) {
  // 中 is e4 b8 ad: the first two bytes alone, then at the end of the text.
  expect_escape("\xe4\xb8" "A", "\\xe4\\xb8A");
  expect_escape("x\xe4\xb8", "x\\xe4\\xb8");
  // A truncated sequence followed by a valid character keeps the character.
  expect_escape("\xe4\xb8\xe4\xb8\xad", "\\xe4\\xb8\xe4\xb8\xad");
}

Test(terminal_text, escapes_overlong_and_surrogates) {
  expect_escape("\xc0\xaf", "\\xc0\\xaf");              // overlong '/'
  expect_escape("\xe0\x80\xaf", "\\xe0\\x80\\xaf");      // overlong, 3 bytes
  expect_escape("\xed\xa0\x80", "\\xed\\xa0\\x80");      // U+D800
  expect_escape("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  expect_escape("\xc1\x9b", "\\xc1\\x9b");              // overlong CSI
}

Test(terminal_text, escapes_backslash) {
  expect_escape("a\\b", "a\\\\b");
  // The escaped form of a literal "\x1b" differs from the escaped ESC byte.
  cr_assert_neq(app::escape_for_terminal("\\x1b"), app::escape_for_terminal("\x1b"));
}

Test(terminal_text, passes_valid_utf8) {
  expect_escape("\xe2\x9c\x88 plane", "\xe2\x9c\x88 plane");
  expect_escape("中文文件名.txt", "中文文件名.txt");
  expect_escape("emoji \xf0\x9f\x98\x80", "emoji \xf0\x9f\x98\x80");
  expect_escape("caf\xc3\xa9 ~!@#$%^&*()", "caf\xc3\xa9 ~!@#$%^&*()");
  expect_escape("", "");
}

Test(terminal_text, terminal_safe) {
  cr_assert(app::is_terminal_safe("中文 \xe2\x9c\x88 a\\b"));
  cr_assert(app::is_terminal_safe(app::escape_for_terminal("\x1b\xff\xc2\x9b")));
  cr_assert_not(app::is_terminal_safe("a\x1b"));
  cr_assert_not(app::is_terminal_safe("\xc2\x9b"));
  cr_assert_not(app::is_terminal_safe("\xff"));
  cr_assert_not(app::is_terminal_safe("\x7f"));
}

Test(terminal_text, display_width) {
  cr_assert_eq(app::display_width(""), 0u);
  cr_assert_eq(app::display_width("abc"), 3u);
  cr_assert_eq(app::display_width("\xe2\x9c\x88\xe2\x9c\x88"), 2u);
  cr_assert_eq(app::display_width("中文"), 4u);
  cr_assert_eq(app::display_width("\xea\xb0\x80"), 2u);          // 가
  cr_assert_eq(app::display_width("\xf0\x9f\x98\x80"), 2u);      // 😀
  cr_assert_eq(app::display_width("e\xcc\x81"), 1u);             // e + combining acute
  cr_assert_eq(app::display_width("\xe2\x9c\x88\xef\xb8\x8f"), 2u);  // ✈ + VS16 is an emoji
  cr_assert_eq(app::display_width("\xff\xfe"), 2u);
}

Test(terminal_text, truncate_to_width) {
  cr_assert_eq(app::truncate_to_width("abcdef", 3), "abc");
  cr_assert_eq(app::truncate_to_width("abc", 10), "abc");
  // A wide character that does not fit entirely is left out, not split.
  cr_assert_eq(app::truncate_to_width("中文字", 5), "中文");
  cr_assert_eq(app::truncate_to_width("\xe2\x9c\x88\xe2\x9c\x88\xe2\x9c\x88", 2),
               "\xe2\x9c\x88\xe2\x9c\x88");
  cr_assert_eq(app::truncate_to_width("e\xcc\x81x", 1), "e\xcc\x81");
  cr_assert_eq(app::truncate_to_width("abc", 0), "");
}

Test(terminal_text, color_never_on_a_pipe) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  unsetenv("NO_COLOR");
  setenv("TERM", "xterm-256color", 1);
  cr_assert_not(app::stream_wants_color(fds[1]));
  close(fds[0]);
  close(fds[1]);
}

Test(terminal_text, color_on_a_terminal_follows_no_color_and_term) {
  std::optional<testsupport::Pty> pty = testsupport::open_pty(/*raw=*/false);
  if (!pty) cr_skip_test("no pseudo-terminal here");
  const int tty = pty->tty.get();

  unsetenv("NO_COLOR");
  setenv("TERM", "xterm-256color", 1);
  cr_assert(app::stream_wants_color(tty));
  setenv("NO_COLOR", "", 1);
  cr_assert(app::stream_wants_color(tty), "an empty NO_COLOR does not disable colour");
  setenv("NO_COLOR", "1", 1);
  cr_assert_not(app::stream_wants_color(tty));
  setenv("NO_COLOR", "0", 1);
  cr_assert_not(app::stream_wants_color(tty), "any non-empty NO_COLOR disables colour");
  unsetenv("NO_COLOR");
  setenv("TERM", "dumb", 1);
  cr_assert_not(app::stream_wants_color(tty));
}

TestSuite(human_units, .timeout = 10);

Test(human_units, format_bytes) {
  expect_bytes(0, "0 B");
  expect_bytes(1, "1 B");
  expect_bytes(1023, "1023 B");
  expect_bytes(1024, "1.0 KiB");
  expect_bytes(1536, "1.5 KiB");
  expect_bytes(200ull << 20, "200.0 MiB");
  expect_bytes(3ull << 29, "1.50 GiB");
  expect_bytes((13ull << 40) / 4, "3.25 TiB");
  expect_bytes(std::numeric_limits<uint64_t>::max(), "16.00 EiB");
}

Test(human_units, format_bytes_never_shows_1024_of_a_unit) {
  expect_bytes(1024 * 1024 - 1, "1.0 MiB");
  expect_bytes(1024 * 1024 - 60, "1023.9 KiB");
  expect_bytes((1ull << 30) - 1, "1.00 GiB");
  expect_bytes((1ull << 40) - (1ull << 20), "1.00 TiB");
}

// What GNU ls -h prints for the same sizes (checked against coreutils 9.1).
Test(human_units, format_size_short_rounds_up_like_ls) {
  cr_assert(app::format_size_short(0) == "0");
  cr_assert(app::format_size_short(1023) == "1023");
  cr_assert(app::format_size_short(1024) == "1.0K");
  cr_assert(app::format_size_short(1025) == "1.1K");
  cr_assert(app::format_size_short(10239) == "10K");
  cr_assert(app::format_size_short(10240) == "10K");
  cr_assert(app::format_size_short(10241) == "11K");
  cr_assert(app::format_size_short(3000000) == "2.9M");
  cr_assert(app::format_size_short(1048575) == "1.0M");
  cr_assert(app::format_size_short(1073741824) == "1.0G");
  cr_assert(app::format_size_short(4294967303ull) == "4.1G");
  cr_assert(app::format_size_short(UINT64_MAX) == "16E");
}

Test(human_units, format_bytes_of_shares_the_unit_of_the_whole) {
  using app::UnitStyle;
  const uint64_t whole = 4 * 1048576 + 838861;  // 4.8 MiB
  cr_assert_eq(app::format_bytes_of(4928307, whole, UnitStyle::kSpaced), "4.7 MiB / 4.8 MiB");
  cr_assert_eq(app::format_bytes_of(4928307, whole, UnitStyle::kCompact), "4.7/4.8 MiB");
  cr_assert_eq(app::format_bytes_of(4928307, whole, UnitStyle::kLetters), "4.7/4.8M");
  cr_assert_eq(app::format_bytes_of(0, 3ull << 29, UnitStyle::kCompact), "0.00/1.50 GiB");
  cr_assert_eq(app::format_bytes_of(512 << 10, 3ull << 29, UnitStyle::kSpaced), "0.00 GiB / 1.50 GiB");
  cr_assert_eq(app::format_bytes_of(512, 1000, UnitStyle::kSpaced), "512 B / 1000 B");
  cr_assert_eq(app::format_bytes_of(116ull << 20, 200ull << 20, UnitStyle::kLetters), "116/200M");
  cr_assert_eq(app::format_bytes_of(512, 1000, UnitStyle::kCompact), "512/1000 B");
  cr_assert_eq(app::format_bytes_of(512, 999, UnitStyle::kLetters), "512/999B");
  // Never four digits: 1000 B is 0.98 KiB, and 1000 MiB 0.98 GiB.
  cr_assert_eq(app::format_bytes_of(512, 1000, UnitStyle::kLetters), "0.5/1.0K");
  cr_assert_eq(app::format_bytes_of(500ull << 20, 1000ull << 20, UnitStyle::kLetters), "0.5/1.0G");
  cr_assert_eq(app::format_bytes_of(0, 0, UnitStyle::kLetters), "0/0B");
  // 1023.96 KiB is shown as 1.0 MiB, and the part follows it into MiB.
  cr_assert_eq(app::format_bytes_of(1024, 1048535, UnitStyle::kCompact), "0.0/1.0 MiB");
  cr_assert_eq(app::format_bytes_of(1024, 1048535, UnitStyle::kLetters), "0.0/1.0M");
  // 9.96 MiB rounds to 10: no decimal, as for any whole from 10 of its unit.
  cr_assert_eq(app::format_bytes_of(5ull << 20, 10443817, UnitStyle::kLetters), "5/10M");
  // Never wider than the whole's own text, whatever the part up to it.
  for (uint64_t whole_size : {1000ull, 1048535ull, 4ull << 20, 200ull << 20, 3ull << 29, 10443817ull}) {
    for (auto style : {UnitStyle::kSpaced, UnitStyle::kCompact, UnitStyle::kLetters}) {
      const size_t widest = app::format_bytes_of(whole_size, whole_size, style).size();
      for (uint64_t part = 0; part <= whole_size; part += whole_size / 97 + 1) {
        size_t width = app::format_bytes_of(part, whole_size, style).size();
        cr_assert_leq(width, widest, "%llu of %llu", static_cast<unsigned long long>(part),
                      static_cast<unsigned long long>(whole_size));
      }
    }
  }
}

Test(human_units, format_rate_letters) {
  cr_assert_eq(app::format_rate_letters(1.2 * 1048576), "1.2M/s");
  cr_assert_eq(app::format_rate_letters(112.4 * 1048576), "112M/s");
  cr_assert_eq(app::format_rate_letters(512), "512B/s");
  cr_assert_eq(app::format_rate_letters(1023.7), "1.0K/s");
  cr_assert_eq(app::format_rate_letters(999.4 * 1024), "999K/s");
  cr_assert_eq(app::format_rate_letters(999.5 * 1024), "1.0M/s");
  cr_assert_eq(app::format_rate_letters(1023.7 * 1048576), "1.0G/s");
  cr_assert_eq(app::format_rate_letters(-5), "0B/s");
  cr_assert_eq(app::format_rate_letters(std::numeric_limits<double>::quiet_NaN()), "0B/s");
}

Test(human_units, format_rate) {
  expect_rate(112.4 * 1048576, "112.4 MiB/s");
  expect_rate(512, "512 B/s");
  expect_rate(0, "0 B/s");
  expect_rate(1023.7, "1.0 KiB/s");
  expect_rate(-5, "0 B/s");
  expect_rate(std::numeric_limits<double>::quiet_NaN(), "0 B/s");
  std::string huge = app::format_rate(std::numeric_limits<double>::infinity());
  cr_assert(huge.size() < 40 && huge.find("EiB/s") != std::string::npos, "%s", huge.c_str());
}

Test(human_units, format_duration) {
  expect_duration(0, "0.00 s");
  expect_duration(0.42, "0.42 s");
  expect_duration(9.994, "9.99 s");
  expect_duration(9.996, "10.0 s");
  expect_duration(12.34, "12.3 s");
  expect_duration(59.96, "1m00s");
  expect_duration(125, "2m05s");
  expect_duration(3599.4, "59m59s");
  expect_duration(3599.6, "1h00m");
  expect_duration(3720, "1h02m");
  expect_duration(100 * 3600 + 59, "100h01m");
  expect_duration(-3, "0.00 s");
  expect_duration(std::numeric_limits<double>::infinity(), "--");
  expect_duration(std::numeric_limits<double>::quiet_NaN(), "--");
}

Test(human_units, format_duration_letters_fits_five_characters) {
  const std::pair<double, const char*> cases[] = {
      {0, "0.00s"},    {0.42, "0.42s"},  {9.996, "10.0s"}, {59.94, "59.9s"},  {59.96, "1m00s"},
      {125, "2m05s"},  {599.4, "9m59s"}, {599.6, "10m"},   {1659, "28m"},     {3569, "59m"},
      {3571, "1h00m"}, {3720, "1h02m"},  {35969, "9h59m"}, {35971, "10h"},    {100 * 3600 + 1800, "101h"},
      {-3, "0.00s"},   {std::numeric_limits<double>::infinity(), "--"},
  };
  for (const auto& [seconds, want] : cases) {
    std::string got = app::format_duration_letters(seconds);
    cr_assert_str_eq(got.c_str(), want, "format_duration_letters(%g)", seconds);
  }
  for (double seconds = 0; seconds < 9990 * 3600.0; seconds = seconds * 1.01 + 0.37) {
    cr_assert_leq(app::format_duration_letters(seconds).size(), 5u, "%g", seconds);
  }
}

Test(human_units, parse_size_accepts) {
  expect_size("0", 0);
  expect_size("4096", 4096);
  expect_size("200M", 200ull << 20);
  expect_size("1G", 1ull << 30);
  expect_size("1.5GiB", 3ull << 29);
  expect_size("64 KiB", 64ull << 10);
  expect_size("2kb", 2048);
  expect_size("3T", 3ull << 40);
  expect_size("1E", 1ull << 60);
  expect_size("512B", 512);
  expect_size("1.1K", 1126);  // 1126.4 rounded down
  expect_size("18446744073709551615", std::numeric_limits<uint64_t>::max());
  expect_size("15.999999999999999999E", 18446744073709551614ull);
}

Test(human_units, parse_size_rejects) {
  for (const char* bad : {"", "M", " 1", "1 ", "-1", "+1", "1.5", "1.", ".5", "1.5B", "1e3",
                          "0x10", "1MM", "1Mi", "1MiBs", "1X", "1 2", "1\t", "1iB", "1,5G",
                          "1.0000000000000000000G"}) {
    expect_bad_size(bad);
  }
  expect_bad_size(std::string_view("1\0", 2));
}

Test(human_units, parse_size_rejects_overflow) {
  expect_bad_size("18446744073709551616");
  expect_bad_size("99999999999999999999999");
  expect_bad_size("16E");
  expect_bad_size("16384P");
  expect_bad_size("17179869184G");
  expect_bad_size("15.9999999999999999999E");
}

// Trojan Source (CVE-2021-42574): the bidirectional controls make a terminal show
// "txt.exe" as "exe.txt". All nine are escaped; the marks around them (U+200E, U+202F)
// are left alone.
Test(terminal_text, escapes_bidirectional_controls) {
  expect_escape("evil\xe2\x80\xaetxt.exe", "evil\\xe2\\x80\\xaetxt.exe");  // U+202E RLO
  const char* const kBidi[] = {"\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", "\xe2\x80\xae",
                               "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9"};
  for (const char* c : kBidi) {
    cr_assert_not(app::is_terminal_safe(c), "U+%02x%02x%02x is safe?", static_cast<unsigned char>(c[0]),
                  static_cast<unsigned char>(c[1]), static_cast<unsigned char>(c[2]));
    cr_assert(app::escape_for_terminal(c).find("\\x") == 0);
  }
  expect_escape("\xe2\x80\xa9x", "\xe2\x80\xa9x");  // U+2029, just before the range
  expect_escape("\xe2\x80\xafx", "\xe2\x80\xafx");  // U+202F, just after it
  expect_escape("\xe2\x81\xa5\xe2\x81\xaa", "\xe2\x81\xa5\xe2\x81\xaa");  // U+2065, U+206A
}

// The locale's codeset, as glibc reads it: LC_ALL over LC_CTYPE over LANG, empty = unset.
Test(terminal_text, locale_is_utf8_reads_the_codeset) {
  struct Case {
    const char* lc_all;
    const char* lc_ctype;
    const char* lang;
    bool utf8;
  };
  const Case cases[] = {
      {nullptr, nullptr, nullptr, false},          {nullptr, nullptr, "C", false},
      {nullptr, nullptr, "POSIX", false},          {nullptr, nullptr, "C.UTF-8", true},
      {nullptr, nullptr, "en_US.UTF-8", true},     {nullptr, nullptr, "de_DE.utf8@euro", true},
      {nullptr, nullptr, "en_US.ISO-8859-1", false}, {"C", nullptr, "en_US.UTF-8", false},
      {"", nullptr, "en_US.UTF-8", true},          {nullptr, "C.UTF-8", "C", true},
      {"en_GB.UTF-8", "C", "C", true},             {nullptr, nullptr, "utf8", false},
  };
  for (const Case& c : cases) {
    auto set = [](const char* name, const char* value) {
      if (value == nullptr) {
        unsetenv(name);
      } else {
        setenv(name, value, 1);
      }
    };
    set("LC_ALL", c.lc_all);
    set("LC_CTYPE", c.lc_ctype);
    set("LANG", c.lang);
    cr_expect_eq(app::locale_is_utf8(), c.utf8, "LC_ALL=%s LC_CTYPE=%s LANG=%s", c.lc_all ? c.lc_all : "(unset)",
                 c.lc_ctype ? c.lc_ctype : "(unset)", c.lang ? c.lang : "(unset)");
  }
}

Test(terminal_text, terminal_is_dumb_for_term_dumb_unset_or_empty) {
  setenv("TERM", "dumb", 1);
  cr_expect(app::terminal_is_dumb());
  setenv("TERM", "xterm-256color", 1);
  cr_expect(!app::terminal_is_dumb());
  setenv("TERM", "", 1);
  cr_expect(app::terminal_is_dumb());
  unsetenv("TERM");
  cr_expect(app::terminal_is_dumb());
}
