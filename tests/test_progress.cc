// The download progress line: throttling, terminal and non-terminal output, styles,
// colour, width fitting, rates and ETA under a driven clock, and a broken stderr.
#include <criterion/criterion.h>
// Criterion's Test() expands to a C-style cast of the test function.
#pragma GCC diagnostic ignored "-Wold-style-cast"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "apps/common/terminal_text.h"
#include "apps/reactorc/progress.h"
#include "tests/support/pty.h"

using client::Progress;
using client::ProgressStyle;
using testsupport::open_pty;
using testsupport::Pty;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
const std::string kPlane = "\xe2\x9c\x88";
const std::string kCheck = "\xe2\x9c\x93";
const std::string kCross = "\xe2\x9c\x97";
constexpr ProgressStyle kDrawingStyles[] = {ProgressStyle::kBar, ProgressStyle::kPlane,
                                            ProgressStyle::kRainbow};

// Fake monotonic time. Steps in tests are binary fractions (1/8 s) so that sums are exact.
struct FakeClock {
  double now = 100.0;
  Progress::Clock fn() {
    return [this] { return now; };
  }
};

// A pipe standing in for stderr; the read end is non-blocking so take() never hangs.
class Capture {
 public:
  Capture() {
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    cr_assert_eq(fcntl(read_fd_, F_SETFL, O_NONBLOCK), 0);
  }
  ~Capture() {
    if (read_fd_ >= 0) close(read_fd_);
    if (write_fd_ >= 0) close(write_fd_);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  int fd() const { return write_fd_; }
  int read_fd() const { return read_fd_; }
  void close_read() {
    close(read_fd_);
    read_fd_ = -1;
  }

  // Everything written since the last take().
  std::string take() {
    std::string out;
    char buf[4096];
    for (int i = 0; i < 1024; ++i) {
      ssize_t n = read(read_fd_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

size_t count(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string_view::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Removes CSI sequences (ESC [ parameters final-byte): what remains is what is displayed.
std::string strip_csi(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b' && i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7e)) ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

// The lines a terminal would show one after another: split at '\r' and '\n'.
std::vector<std::string> screen_lines(std::string_view output) {
  std::vector<std::string> lines;
  std::string current;
  for (char c : output) {
    if (c == '\r' || c == '\n') {
      if (!current.empty()) lines.push_back(strip_csi(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) lines.push_back(strip_csi(current));
  return lines;
}

// Code points: independent of app::display_width, right for ASCII and ✈ (one column).
size_t code_points(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

// True when every ESC in `s` starts "\x1b[K", the only sequence a colourless line uses.
bool only_erase_sequences(std::string_view s) {
  for (size_t pos = s.find('\x1b'); pos != std::string_view::npos; pos = s.find('\x1b', pos + 1)) {
    if (s.substr(pos, 3) != "\x1b[K") return false;
  }
  return true;
}

// Drives a download of `total` bytes at `per_step` bytes every 1/8 s, ticking each step.
void drive(Progress* p, FakeClock* clock, uint64_t* done, int steps, uint64_t per_step) {
  for (int i = 0; i < steps; ++i) {
    clock->now += 0.125;
    *done += per_step;
    p->update(*done);
    p->tick();
  }
}

// A $COLUMNS the test runner happens to export would move every width this file expects.
void unset_columns() { unsetenv("COLUMNS"); }

}  // namespace

TestSuite(progress, .timeout = 10, .init = unset_columns);

Test(progress, parse_style) {
  ProgressStyle style = ProgressStyle::kNone;
  cr_assert(client::parse_progress_style("bar", &style));
  cr_assert(style == ProgressStyle::kBar);
  cr_assert(client::parse_progress_style("plane", &style));
  cr_assert(style == ProgressStyle::kPlane);
  cr_assert(client::parse_progress_style("rainbow", &style));
  cr_assert(style == ProgressStyle::kRainbow);
  cr_assert(client::parse_progress_style("none", &style));
  cr_assert(style == ProgressStyle::kNone);
  for (const char* bad : {"", "Bar", "bars", "plane ", "=bar", "rainbows", "0"}) {
    style = ProgressStyle::kPlane;
    cr_assert_not(client::parse_progress_style(bad, &style), "accepted \"%s\"", bad);
    cr_assert(style == ProgressStyle::kPlane, "changed the style on \"%s\"", bad);
  }
}

Test(progress, redraws_are_throttled) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 1000000, 0, clock.fn());
  for (int i = 0; i < 100; ++i) {
    clock.now = 100.0 + i * 0.0005;  // 100 updates and ticks within 50 ms
    p.update(static_cast<uint64_t>(i) * 1000);
    p.tick();
  }
  size_t redraws = count(out.take(), "\r");
  cr_assert(redraws >= 1 && redraws <= 2, "%zu redraws in 50 ms", redraws);

  clock.now = 100.125;
  p.tick();
  p.tick();
  cr_assert_eq(count(out.take(), "\r"), 1u, "one redraw once the interval has passed");
}

Test(progress, redraws_at_most_ten_a_second) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kPlane, true, true, "file.bin", 10000000, 0, clock.fn());
  for (int i = 0; i < 5000; ++i) {  // 5 s of ticks every millisecond
    clock.now = 100.0 + i * 0.001;
    p.update(static_cast<uint64_t>(i) * 2000);
    p.tick();
  }
  size_t redraws = count(out.take(), "\r");
  cr_assert(redraws >= 40 && redraws <= 51, "%zu redraws in 5 s", redraws);
}

Test(progress, not_a_terminal_prints_one_plain_line) {
  for (ProgressStyle style : {ProgressStyle::kBar, ProgressStyle::kPlane, ProgressStyle::kRainbow,
                              ProgressStyle::kNone}) {
    FakeClock clock;
    Capture out;
    uint64_t done = 0;
    // color=true on purpose: colour is never used off a terminal.
    Progress p(out.fd(), style, false, true, "file.bin", 64 * kMiB, 0, clock.fn());
    drive(&p, &clock, &done, 32, 2 * kMiB);
    cr_assert_eq(out.take(), "", "nothing before the end off a terminal");
    p.finish_ok("sha256 verified");
    std::string text = out.take();
    cr_assert_not(contains(text, "\x1b"), "ESC in %s", text.c_str());
    cr_assert_not(contains(text, "\r"), "CR in %s", text.c_str());
    cr_assert_eq(count(text, "\n"), 1u);
    cr_assert_eq(text.back(), '\n');
    cr_assert_eq(text, kCheck + " file.bin  64.0 MiB in 4.00 s (16.0 MiB/s), sha256 verified\n");
  }
}

Test(progress, not_a_terminal_failure_line) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kRainbow, false, true, "file.bin", 200 * kMiB, 0,
             clock.fn());
  p.update(12 * kMiB);
  p.tick();
  clock.now += 0.5;
  p.finish_failed("connection reset by peer");
  cr_assert_eq(out.take(),
               kCross + " file.bin: connection reset by peer (12.0 MiB of 200.0 MiB after 0.50 s)\n");
}

Test(progress, without_color_terminal_output_has_only_cr_and_erase) {
  for (ProgressStyle style : kDrawingStyles) {
    for (bool ok : {true, false}) {
      FakeClock clock;
      Capture out;
      uint64_t done = 0;
      Progress p(out.fd(), style, true, false, "file.bin", 64 * kMiB, 0, clock.fn());
      drive(&p, &clock, &done, 20, 2 * kMiB);
      if (ok) {
        p.finish_ok("sha256 verified");
      } else {
        p.finish_failed("disk full");
      }
      std::string text = out.take();
      cr_assert_geq(count(text, "\r"), 10u, "the line was redrawn");
      cr_assert(only_erase_sequences(text), "colour without colour: %s", text.c_str());
      cr_assert_eq(count(text, "\n"), 1u);
      cr_assert_eq(text.back(), '\n');
    }
  }
}

Test(progress, final_line_replaces_the_bar) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 4 * kMiB, 0, clock.fn());
  p.update(kMiB);
  p.tick();
  out.take();
  clock.now += 2.0;
  p.update(4 * kMiB);
  p.finish_ok("sha256 verified");
  cr_assert_eq(out.take(),
               "\r" + kCheck + " file.bin  4.0 MiB in 2.00 s (2.0 MiB/s), sha256 verified\x1b[K\n");
}

Test(progress, color_final_lines) {
  FakeClock clock;
  Capture out;
  {
    Progress p(out.fd(), ProgressStyle::kBar, true, true, "a.bin", 1024, 0, clock.fn());
    p.update(1024);
    clock.now += 1.0;
    p.finish_ok();
  }
  std::string ok = out.take();
  cr_assert_eq(ok, "\x1b[32m" + kCheck + "\x1b[0m a.bin  1.0 KiB in 1.00 s (1.0 KiB/s)\n");
  {
    Progress p(out.fd(), ProgressStyle::kBar, true, true, "a.bin", 1024, 0, clock.fn());
    p.finish_failed("no such file");
  }
  std::string failed = out.take();
  cr_assert(failed.rfind("\x1b[31m" + kCross + " a.bin: no such file", 0) == 0, "%s",
            failed.c_str());
  cr_assert(contains(failed, "\x1b[0m\n"));
}

Test(progress, bar_style_renders) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, true, "file.bin", 100 * kMiB, 0, clock.fn());
  p.set_columns(200);  // room for the widest bar, 40 columns
  p.update(50 * kMiB);
  p.tick();
  std::string text = out.take();
  cr_assert(contains(text, "[" + std::string(20, '=') + ">" + std::string(19, ' ') + "]"), "%s",
            text.c_str());
  cr_assert(contains(text, " 50%"), "%s", text.c_str());
  cr_assert(contains(text, "50.0 MiB / 100.0 MiB"), "%s", text.c_str());
  cr_assert(only_erase_sequences(text), "the plain bar has no colour");
}

Test(progress, plane_style_renders_green) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kPlane, true, true, "file.bin", 100 * kMiB, 0, clock.fn());
  p.set_columns(200);
  p.update(50 * kMiB);
  p.tick();
  std::string text = out.take();
  std::string planes;
  for (int i = 0; i < 20; ++i) planes += kPlane;
  cr_assert(contains(text, "[\x1b[32m" + planes + "\x1b[0m" + std::string(20, ' ') + "]"), "%s",
            text.c_str());
}

Test(progress, plane_style_without_color) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kPlane, true, false, "file.bin", 100 * kMiB, 0, clock.fn());
  p.update(50 * kMiB);
  p.tick();
  std::string text = out.take();
  cr_assert(contains(text, kPlane + kPlane), "%s", text.c_str());
  cr_assert(only_erase_sequences(text), "%s", text.c_str());
}

Test(progress, rainbow_changes_color_every_redraw_deterministically) {
  std::string runs[2];
  for (std::string& run : runs) {
    FakeClock clock;
    Capture out;
    Progress p(out.fd(), ProgressStyle::kRainbow, true, true, "file.bin", 100 * kMiB, 0,
               clock.fn());
    std::vector<std::string> colours;
    for (int i = 1; i <= 6; ++i) {
      clock.now += 0.125;
      p.update(static_cast<uint64_t>(i) * 10 * kMiB);
      p.tick();
      std::string text = out.take();
      run += text;
      size_t pos = text.find("\x1b[3");
      cr_assert_neq(pos, std::string::npos, "redraw %d has no colour: %s", i, text.c_str());
      colours.push_back(text.substr(pos, 5));
      cr_assert(contains(text, colours.back() + kPlane), "%s", text.c_str());
    }
    for (size_t i = 1; i < colours.size(); ++i) {
      cr_assert_neq(colours[i], colours[i - 1], "same colour on consecutive redraws");
    }
    cr_assert_geq(std::set<std::string>(colours.begin(), colours.end()).size(), 3u);
  }
  cr_assert_eq(runs[0], runs[1], "the same download must draw the same colours");
}

Test(progress, rainbow_without_color_is_plain) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kRainbow, true, false, "file.bin", 100 * kMiB, 0,
             clock.fn());
  drive(&p, &clock, &done, 10, 5 * kMiB);
  std::string text = out.take();
  cr_assert(contains(text, kPlane), "%s", text.c_str());
  cr_assert(only_erase_sequences(text), "%s", text.c_str());
}

Test(progress, none_style_prints_only_the_final_line) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  // Colour asked for and a terminal: --progress=none still writes no colour (reactorc(1)).
  Progress p(out.fd(), ProgressStyle::kNone, true, true, "file.bin", 64 * kMiB, 0, clock.fn());
  drive(&p, &clock, &done, 32, 2 * kMiB);
  cr_assert_eq(out.take(), "");
  p.finish_ok();
  cr_assert_eq(out.take(), kCheck + " file.bin  64.0 MiB in 4.00 s (16.0 MiB/s)\n");
}

Test(progress, zero_byte_total) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "empty", 0, 0, clock.fn());
  p.update(0);
  p.tick();
  std::string line = out.take();
  cr_assert(contains(line, "100%"), "%s", line.c_str());
  cr_assert(contains(line, "0 B / 0 B"), "%s", line.c_str());
  cr_assert(contains(line, "[=========="), "a full bar: %s", line.c_str());
  cr_assert_not(contains(line, ">"), "%s", line.c_str());
  p.finish_ok();
  std::string final_line = out.take();
  cr_assert_eq(final_line, "\r" + kCheck + " empty  0 B in 0.00 s\x1b[K\n");

  Progress later(out.fd(), ProgressStyle::kBar, false, false, "empty", 0, 0, clock.fn());
  clock.now += 0.5;
  later.finish_ok();
  cr_assert_eq(out.take(), kCheck + " empty  0 B in 0.50 s (0 B/s)\n");
}

Test(progress, no_nan_or_inf_anywhere) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "x", 0, 0, clock.fn());
  p.tick();                  // no time has passed: rate unknown
  clock.now += 0.25;
  p.update(0);
  p.tick();                  // time passed, nothing received
  p.finish_failed("gone");
  std::string text = out.take();
  for (const char* bad : {"nan", "inf", "NaN", "-"}) {
    std::string stripped = text;
    // "--" is the documented unknown rate and ETA.
    for (size_t pos; (pos = stripped.find("--")) != std::string::npos;) stripped.erase(pos, 2);
    cr_assert_not(contains(stripped, bad), "\"%s\" in %s", bad, text.c_str());
  }
}

Test(progress, rate_and_eta_follow_the_clock) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 100 * kMiB, 0, clock.fn());
  drive(&p, &clock, &done, 24, kMiB);  // 3 s at 8 MiB/s
  std::vector<std::string> lines = screen_lines(out.take());
  cr_assert_geq(lines.size(), 20u);
  const std::string& last = lines.back();
  cr_assert(contains(last, "24.0 MiB / 100.0 MiB"), "%s", last.c_str());
  cr_assert(contains(last, "8.0 MiB/s"), "%s", last.c_str());
  cr_assert(contains(last, "ETA 9.50 s"), "76 MiB at 8 MiB/s: %s", last.c_str());
  cr_assert(contains(last, " 24%"), "%s", last.c_str());

  // Twice the speed: after the ~2 s window the rate shows only the new speed.
  drive(&p, &clock, &done, 24, 2 * kMiB);
  lines = screen_lines(out.take());
  const std::string& faster = lines.back();
  cr_assert(contains(faster, "16.0 MiB/s"), "%s", faster.c_str());
  cr_assert(contains(faster, "ETA 1.75 s"), "28 MiB at 16 MiB/s: %s", faster.c_str());
}

Test(progress, rate_is_smoothed_over_bursts) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 1000 * kMiB, 0, clock.fn());
  uint64_t done = 0;
  // 8 MiB arrives every second in a single burst; ticks every 1/8 s in between.
  for (int i = 1; i <= 48; ++i) {
    clock.now += 0.125;
    if (i % 8 == 0) done += 8 * kMiB;
    p.update(done);
    p.tick();
  }
  std::vector<std::string> lines = screen_lines(out.take());
  cr_assert_geq(lines.size(), 40u);
  for (const std::string& line : lines) {
    if (contains(line, " 0.0 MiB / ")) continue;  // before the first burst 0 B/s is the truth
    cr_assert_not(contains(line, " 0 B/s"), "a gap between bursts shows as a stall: %s",
                  line.c_str());
  }
}

Test(progress, resumed_download_counts_only_new_bytes) {
  FakeClock clock;
  Capture out;
  uint64_t done = 50 * kMiB;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "part.bin", 100 * kMiB, done, clock.fn());
  p.update(done);
  drive(&p, &clock, &done, 16, kMiB);  // 2 s at 8 MiB/s
  const std::string last = screen_lines(out.take()).back();
  cr_assert(contains(last, "8.0 MiB/s"), "%s", last.c_str());
  cr_assert(contains(last, " 66%"), "%s", last.c_str());
  drive(&p, &clock, &done, 34, kMiB);
  p.finish_ok();
  std::string final_line = screen_lines(out.take()).back();
  cr_assert_eq(final_line, kCheck + " part.bin  100.0 MiB in 6.25 s (8.0 MiB/s), resumed at 50.0 MiB");
}

// After --retry the runner draws a new Progress from the first attempt's origin: the
// elapsed time goes on from there, and the final line counts every attempt's bytes.
Test(progress, a_retry_continues_from_the_first_attempt) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress::Origin origin{};
  {
    Progress first(out.fd(), ProgressStyle::kBar, true, false, "f.bin", 100 * kMiB, 0, clock.fn());
    drive(&first, &clock, &done, 16, kMiB);  // 2 s, 16 MiB
    origin = first.origin();
    first.clear();
  }
  clock.now += 1.0;  // the pause before the retry
  Progress again(out.fd(), ProgressStyle::kBar, true, false, "f.bin", 100 * kMiB, done, clock.fn());
  again.continue_from(origin);
  again.set_columns(100);
  out.take();
  drive(&again, &clock, &done, 8, kMiB);  // 1 s more
  std::string line = screen_lines(out.take()).back();
  cr_assert(contains(line, " 4.00 s ETA"), "elapsed since the first attempt: %s", line.c_str());
  cr_assert(contains(line, "8.0 MiB/s"), "the live rate is this attempt's: %s", line.c_str());
  done = 100 * kMiB;
  again.update(done);
  clock.now += 5.0;  // 9 s in all
  again.finish_ok();
  std::string final_line = screen_lines(out.take()).back();
  cr_assert_eq(final_line, kCheck + " f.bin  100.0 MiB in 9.00 s (11.1 MiB/s)", "no \"resumed at\": %s",
               final_line.c_str());
}

Test(progress, never_shows_100_percent_early_nor_more_than_100) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "f", 100000, 0, clock.fn());
  p.update(99999);
  p.tick();
  std::string line = out.take();
  cr_assert(contains(line, " 99%"), "%s", line.c_str());
  cr_assert(contains(line, ">]"), "the head stays visible: %s", line.c_str());
  clock.now += 1.0;
  p.update(500000);
  p.tick();
  line = out.take();
  cr_assert(contains(line, "100%"), "%s", line.c_str());
}

Test(progress, long_label_fits_80_columns) {
  const std::string label(300, 'a');
  for (ProgressStyle style : kDrawingStyles) {
    for (bool color : {false, true}) {
      FakeClock clock;
      Capture out;
      uint64_t done = 0;
      Progress p(out.fd(), style, true, color, label, 1000 * kMiB, 0, clock.fn());
      drive(&p, &clock, &done, 40, 25 * kMiB);  // a pipe has no size: 80 columns
      std::vector<std::string> lines = screen_lines(out.take());
      cr_assert_geq(lines.size(), 20u);
      for (const std::string& line : lines) {
        cr_assert_leq(code_points(line), 79u, "%zu columns: %s", code_points(line), line.c_str());
        cr_assert_geq(code_points(line), 70u, "the width is used: %s", line.c_str());
        cr_assert(contains(line, "aaa..."), "%s", line.c_str());
        cr_assert(contains(line, "%"), "%s", line.c_str());
        cr_assert(contains(line, "ETA"), "%s", line.c_str());
      }
    }
  }
}

Test(progress, wide_labels_are_measured_in_columns) {
  std::string cjk;
  for (int i = 0; i < 150; ++i) cjk += "中";
  std::string planes;
  for (int i = 0; i < 300; ++i) planes += kPlane;
  for (const std::string& label : {cjk, planes}) {
    FakeClock clock;
    Capture out;
    uint64_t done = 0;
    Progress p(out.fd(), ProgressStyle::kPlane, true, false, label, 100 * kMiB, 0, clock.fn());
    drive(&p, &clock, &done, 10, kMiB);
    std::vector<std::string> lines = screen_lines(out.take());
    cr_assert_geq(lines.size(), 5u);
    for (const std::string& line : lines) {
      size_t width = app::display_width(line);
      cr_assert_leq(width, 79u, "%zu columns: %s", width, line.c_str());
      cr_assert_geq(width, 70u, "%zu columns: %s", width, line.c_str());
    }
  }
  // ✈ is one column: 300 of them are cut after a number of code points, not bytes.
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, planes, 100, 0, clock.fn());
  p.tick();
  std::string line = screen_lines(out.take()).back();
  cr_assert_leq(code_points(line), 79u, "%s", line.c_str());
}

// The line of a download of "some-file-name.tar.gz" at 42 of 100 MiB, 8 MiB/s, on a
// terminal of `columns`.
std::string line_at(int columns) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kPlane, true, true, "some-file-name.tar.gz", 100 * kMiB, 0, clock.fn());
  p.set_columns(columns);
  drive(&p, &clock, &done, 42, kMiB);  // 5.25 s at 8 MiB/s; 58 MiB left: 7.25 s
  return screen_lines(out.take()).back();
}

bool has_bar(std::string_view line) { return contains(line, "[") && contains(line, "]"); }

// What a terminal narrower than the line needs gives way in this order: the bar, the
// name (elided down to a few columns), the long forms of the numbers, elapsed time, ETA,
// rate; the percentage and the bytes stay to the last.
Test(progress, narrow_terminals_degrade) {
  for (int columns : {120, 100, 80, 60, 50, 40, 30, 20, 12, 6, 2, 1}) {
    std::string line = line_at(columns);
    size_t limit = columns > 1 ? static_cast<size_t>(columns) - 1 : 1;
    cr_assert_leq(code_points(line), limit, "%d columns: \"%s\"", columns, line.c_str());
    if (columns >= 6) cr_assert(contains(line, "42%"), "%d columns: \"%s\"", columns, line.c_str());
    if (columns >= 30) cr_assert(contains(line, "/s"), "the rate from 30 columns: \"%s\"", line.c_str());
    if (columns >= 40) cr_assert(contains(line, "ETA 7.25"), "the ETA from 40 columns: \"%s\"", line.c_str());
    if (columns >= 50) cr_assert(contains(line, "5.25"), "the elapsed time from 50 columns: \"%s\"", line.c_str());
    if (columns >= 80) cr_assert(contains(line, "42.0 MiB / 100.0 MiB"), "%d: \"%s\"", columns, line.c_str());
    if (columns < 80) cr_assert_not(has_bar(line), "%d columns: \"%s\"", columns, line.c_str());
  }
  // 30 columns: name elided, percentage, bytes, rate.
  cr_assert_eq(line_at(30), "s...r.gz 42%  42/100M  8.0M/s");
  // 40: and the ETA.
  cr_assert_eq(line_at(40), "s...r.gz 42%  42/100M  8.0M/s ETA 7.25s");
  // 50: and the elapsed time, the name less elided.
  cr_assert_eq(line_at(50), "som...tar.gz 42%  42/100M  8.0M/s 5.25s ETA 7.25s");
  // 60: still the short forms, and what they leave goes to the name.
  cr_assert_eq(line_at(60), "some-file-name.tar.gz 42%  42/100M  8.0M/s 5.25s ETA 7.25s");
  // 62: the compact form beside the name at its fewest columns.
  cr_assert_eq(line_at(62), "so...r.gz  42%  42.0/100.0 MiB    8.0 MiB/s 5.25 s ETA 7.25 s");
  // 80: the whole name beside every number in full, the bar gone first.
  cr_assert_eq(line_at(80), "some-file-name.tar.gz  42%  42.0 MiB / 100.0 MiB    8.0 MiB/s 5.25 s ETA 7.25 s");
  cr_assert(has_bar(line_at(100)), "%s", line_at(100).c_str());
}

// Widening the terminal never takes a field away, and the bar comes only when every
// number is there in full and the name is not cut.
Test(progress, wider_never_shows_less) {
  size_t previous_fields = 0;
  for (int columns = 1; columns <= 160; ++columns) {
    std::string line = line_at(columns);
    size_t fields = 0;
    for (const char* field : {"42%", "42", "/s", "ETA", "5.25"}) fields += contains(line, field) ? 1 : 0;
    cr_assert_geq(fields, previous_fields, "%d columns: \"%s\"", columns, line.c_str());
    previous_fields = fields;
    if (has_bar(line)) {
      cr_assert(contains(line, "some-file-name.tar.gz [") && contains(line, "42.0 MiB / 100.0 MiB"), "%d: \"%s\"",
                columns, line.c_str());
    }
  }
}

// The verifier saw the bar move by a column between redraws: each field keeps the width
// it can have over the whole transfer, whatever its value now.
Test(progress, the_line_keeps_its_width_as_the_numbers_change) {
  const uint64_t total = 5033165;  // 4.8 MiB: the count passes through KiB ("512.0 KiB")
  for (int columns : {30, 40, 50, 60, 70, 80, 100}) {
    FakeClock clock;
    Capture out;
    uint64_t done = 0;
    Progress p(out.fd(), ProgressStyle::kBar, true, false, "dl1.bin", total, 0, clock.fn());
    p.set_columns(columns);
    drive(&p, &clock, &done, 1, 100);  // a few bytes first: "0 B" against "4.8 MiB"
    drive(&p, &clock, &done, 37, 128 * 1024);  // 1 MiB/s
    std::vector<std::string> lines = screen_lines(out.take());
    cr_assert_geq(lines.size(), 30u);
    for (const std::string& line : lines) {
      cr_assert_eq(code_points(line), code_points(lines.front()), "%d columns: \"%s\" after \"%s\"", columns,
                   line.c_str(), lines.front().c_str());
      cr_assert_eq(line.find(']'), lines.front().find(']'), "%d columns: \"%s\"", columns, line.c_str());
    }
    // The same state drawn again is the same line.
    p.clear();
    out.take();
    p.tick();
    cr_assert_eq(screen_lines(out.take()).back(), lines.back());
  }
}

// A rate that hovers about 1 MiB/s reads "1023.9 KiB/s" and "1.0 MiB/s" in turn (as with
// reactord --limit-rate 1M): the rate field has room for both, the bar does not move.
Test(progress, a_rate_about_a_unit_does_not_jitter) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "dl1.bin", 100 * kMiB, 0, clock.fn());
  p.set_columns(80);
  uint64_t done = 0;
  std::vector<size_t> bar_ends;
  std::set<std::string> rates;
  for (int i = 0; i < 200; ++i) {
    clock.now += 0.125;
    done += i % 2 == 0 ? 131000 : 131140;  // about 1023.9 KiB/s and 1.0 MiB/s
    p.update(done);
    p.tick();
    std::string line = screen_lines(out.take()).back();
    bar_ends.push_back(line.find(']'));
    if (contains(line, "1023.")) rates.insert("KiB");
    if (contains(line, " 1.0 MiB/s")) rates.insert("MiB");
  }
  cr_assert_eq(rates.size(), 2u, "the test should show both forms of the rate");
  for (size_t i = 1; i < bar_ends.size(); ++i) {
    cr_assert_eq(bar_ends[i], bar_ends[0], "the bar moved at redraw %zu", i);
  }
}

// A value wider than a field usually gets (an ETA of a hundred hours) widens it once,
// for the rest of the transfer: the line moves once, never back and forth.
Test(progress, a_field_widened_once_stays_wide) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "f.bin", 1000 * kMiB, 0, clock.fn());
  p.set_columns(100);
  uint64_t done = 0;
  drive(&p, &clock, &done, 16, 300);  // 2.4 KiB/s: an ETA past 100 h ("118h...")
  std::string slow = screen_lines(out.take()).back();
  cr_assert(contains(slow, "h"), "%s", slow.c_str());
  drive(&p, &clock, &done, 32, 8 * kMiB);  // 64 MiB/s: an ETA in seconds
  std::vector<std::string> lines = screen_lines(out.take());
  for (const std::string& line : lines) {
    cr_assert_eq(line.find(']'), slow.find(']'), "\"%s\" after \"%s\"", line.c_str(), slow.c_str());
    cr_assert_eq(code_points(line), code_points(slow), "\"%s\" after \"%s\"", line.c_str(), slow.c_str());
  }
}

Test(progress, eighty_columns_show_the_bar_and_every_number) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 100 * kMiB, 0, clock.fn());
  p.set_columns(80);
  drive(&p, &clock, &done, 12, kMiB);  // 1.5 s at 8 MiB/s
  std::string line = screen_lines(out.take()).back();
  cr_assert_leq(code_points(line), 79u, "%s", line.c_str());
  cr_assert(contains(line, "[") && contains(line, "12.0 MiB / 100.0 MiB") && contains(line, "8.0 MiB/s"), "%s",
            line.c_str());
  cr_assert(contains(line, "1.50 s ETA"), "the elapsed time, then the ETA: %s", line.c_str());
}

Test(progress, a_stall_reads_stalled_until_bytes_come_again) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "file.bin", 100 * kMiB, 0, clock.fn());
  p.set_columns(100);
  drive(&p, &clock, &done, 8, kMiB);
  for (int i = 0; i < 20; ++i) {  // 2.5 s without a byte: slowing, not yet stalled
    clock.now += 0.125;
    p.tick();
  }
  std::string slowing = screen_lines(out.take()).back();
  cr_assert(!contains(slowing, "stalled"), "%s", slowing.c_str());
  for (int i = 0; i < 8; ++i) {  // past 3 s
    clock.now += 0.125;
    p.tick();
  }
  std::string stalled = screen_lines(out.take()).back();
  cr_assert(contains(stalled, "stalled") && contains(stalled, "ETA     --"), "%s", stalled.c_str());
  drive(&p, &clock, &done, 1, kMiB);
  std::string again = screen_lines(out.take()).back();
  cr_assert(!contains(again, "stalled"), "%s", again.c_str());
}

std::string first_line_of(const std::string& label, int columns) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, label, 100 * kMiB, 0, clock.fn());
  p.set_columns(columns);
  p.update(kMiB);
  p.tick();
  return screen_lines(out.take()).back();
}

// A long local path gives up its directory first: the file name is what tells downloads
// apart, and it is cut (in the middle) only when it does not fit whole without a bar.
Test(progress, a_path_label_gives_up_its_directory_first) {
  const std::string path = "backups/2026/12/01/hosts/with/a/long/path/db-full.tar.zst";
  std::string line = first_line_of(path, 80);
  cr_assert_leq(code_points(line), 79u, "%s", line.c_str());
  cr_assert(line.rfind("db-full.tar.zst  ", 0) == 0, "the whole base name, no directory: %s", line.c_str());
  cr_assert(contains(line, "1.0 MiB / 100.0 MiB") && contains(line, "ETA"), "%s", line.c_str());
  // Room for a bar beside the base name, not beside the path: the directory goes first.
  std::string wide = first_line_of(path, 110);
  cr_assert(wide.rfind("db-full.tar.zst [", 0) == 0, "%s", wide.c_str());
  std::string wider = first_line_of(path, 140);
  cr_assert(wider.rfind(path + " [", 0) == 0, "%s", wider.c_str());

  // A long file name in a long directory: its start, "...", its end; never the directory.
  const std::string name = "database-dump-2026-12-01-full-nightly.tar.zst";  // 45 columns
  std::string cut = first_line_of("/var/backups/hosts/" + name, 80);
  cr_assert_leq(code_points(cut), 79u, "%s", cut.c_str());
  cr_assert(cut.rfind("datab", 0) == 0 && contains(cut, "...") && contains(cut, "ly.tar.zst "), "%s", cut.c_str());
  cr_assert_not(has_bar(cut), "no bar beside a cut name: %s", cut.c_str());
  std::string whole = first_line_of("/var/backups/hosts/" + name, 120);
  cr_assert(whole.rfind(name + " [", 0) == 0, "%s", whole.c_str());
  for (int columns = 20; columns <= 200; ++columns) {
    std::string any = first_line_of("/var/backups/hosts/" + name, columns);
    if (has_bar(any)) cr_assert(contains(any, name + " ["), "%d columns: %s", columns, any.c_str());
  }
}

// A count of files stands for itself: "12/40" where "12/40 files" does not fit, never
// the "40 files" after its '/' as if it were a path, nor an elided "12/...s".
Test(progress, a_compact_label_replaces_the_label) {
  for (int columns : {30, 40, 60, 200}) {
    FakeClock clock;
    Capture out;
    uint64_t done = 0;
    Progress p(out.fd(), ProgressStyle::kBar, true, false, "0/0 files", 0, 0, clock.fn());
    p.set_columns(columns);
    p.set_label("12/40 files", "12/40");
    p.set_total(100 * kMiB);
    drive(&p, &clock, &done, 16, kMiB);
    std::string line = screen_lines(out.take()).back();
    cr_assert_leq(code_points(line), static_cast<size_t>(columns) - 1, "%s", line.c_str());
    cr_assert(line.rfind(columns >= 200 ? "12/40 files [" : "12/40 ", 0) == 0, "%d columns: %s", columns,
              line.c_str());
    cr_assert(contains(line, "16%") && contains(line, "/s"), "%d columns: %s", columns, line.c_str());
    p.finish_ok();
    cr_assert(contains(out.take(), " 12/40 files  "), "the final line has the whole label");
  }
}

Test(progress, ascii_mode_writes_no_byte_above_127) {
  for (ProgressStyle style : kDrawingStyles) {
    for (bool ok : {true, false}) {
      FakeClock clock;
      Capture out;
      uint64_t done = 0;
      Progress p(out.fd(), style, true, true, "file.bin", 100 * kMiB, 0, clock.fn());
      p.set_ascii(true);
      drive(&p, &clock, &done, 8, 10 * kMiB);
      if (ok) {
        p.finish_ok("sha256 verified");
      } else {
        p.finish_failed("connection reset by peer");
      }
      std::string text = out.take();
      for (char c : text) cr_assert_lt(static_cast<unsigned char>(c), 0x80u, "%s", text.c_str());
      std::string last = screen_lines(text).back();
      cr_assert(last.rfind(ok ? "OK file.bin" : "FAILED file.bin", 0) == 0, "%s", last.c_str());
      cr_assert(contains(strip_csi(text), "[====="), "the bar is drawn with '=': %s", text.c_str());
    }
  }
}

Test(progress, a_dumb_terminal_gets_no_escape_sequences) {
  FakeClock clock;
  Capture out;
  uint64_t done = 0;
  Progress p(out.fd(), ProgressStyle::kRainbow, true, true, "file.bin", 100 * kMiB, 0, clock.fn());
  p.set_dumb_terminal(true);
  p.set_columns(100);
  drive(&p, &clock, &done, 8, 4 * kMiB);
  p.clear();
  p.tick();
  p.finish_ok("sha256 verified");
  std::string text = out.take();
  cr_assert(!contains(text, "\x1b"), "%s", text.c_str());
  // The final line is shorter than the live one: spaces cover what is left of it.
  std::string final_segment = text.substr(text.rfind('\r') + 1);
  cr_assert(contains(final_segment, "sha256 verified   "), "%s", final_segment.c_str());
  cr_assert_eq(final_segment.back(), '\n');
}

Test(progress, asks_the_terminal_for_its_width) {
  std::optional<Pty> pty = open_pty(/*raw=*/true);
  if (!pty) cr_skip_test("no pseudo-terminal here");
  const int master = pty->master.get();
  const int tty = pty->tty.get();
  struct winsize size = {};
  size.ws_col = 50;
  size.ws_row = 24;
  cr_assert_eq(ioctl(tty, TIOCSWINSZ, &size), 0);

  FakeClock clock;
  Progress p(tty, ProgressStyle::kBar, true, false, std::string(300, 'b'), 100 * kMiB, 0,
             clock.fn());
  p.update(10 * kMiB);
  p.tick();
  std::string text;
  char buf[1024];
  for (int i = 0; i < 200 && text.find("\x1b[K") == std::string::npos; ++i) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) text.append(buf, static_cast<size_t>(n));
    if (n <= 0) usleep(5000);
  }
  std::string line = screen_lines(text).back();
  cr_assert_leq(code_points(line), 49u, "%s", line.c_str());
  cr_assert_geq(code_points(line), 40u, "%s", line.c_str());
}

// The width of the live line of a download with a name long enough to fill any line.
size_t line_width_on(int fd, int read_fd) {
  FakeClock clock;
  Progress p(fd, ProgressStyle::kBar, true, false, std::string(300, 'b'), 100 * kMiB, 0, clock.fn());
  p.update(10 * kMiB);
  p.tick();
  std::string text;
  char buf[4096];
  for (int i = 0; i < 200 && text.find("\x1b[K") == std::string::npos; ++i) {
    ssize_t n = read(read_fd, buf, sizeof buf);
    if (n > 0) text.append(buf, static_cast<size_t>(n));
    if (n <= 0) usleep(5000);
  }
  return code_points(screen_lines(text).back());
}

// As GNU ls: when the terminal cannot tell its width, $COLUMNS can, if it is a positive
// integer; anything else is ignored for the default 80.
Test(progress, columns_from_the_environment_when_the_terminal_cannot_tell) {
  Capture out;  // a pipe: TIOCGWINSZ fails
  cr_assert_eq(line_width_on(out.fd(), out.read_fd()), 79u, "80 columns without $COLUMNS");
  setenv("COLUMNS", "40", 1);
  cr_assert_eq(line_width_on(out.fd(), out.read_fd()), 39u);
  setenv("COLUMNS", "132", 1);
  cr_assert_eq(line_width_on(out.fd(), out.read_fd()), 131u);
  for (const char* garbage : {"", "0", "-40", "+40", " 40", "40 ", "40x", "4O", "0x28", "65536",
                              "99999999999999999999999"}) {
    setenv("COLUMNS", garbage, 1);
    cr_assert_eq(line_width_on(out.fd(), out.read_fd()), 79u, "COLUMNS=\"%s\" should be ignored", garbage);
  }
}

Test(progress, columns_from_the_environment_when_the_terminal_says_0) {
  std::optional<Pty> pty = open_pty(/*raw=*/true);
  if (!pty) cr_skip_test("no pseudo-terminal here");
  const int master = pty->master.get();
  const int tty = pty->tty.get();
  struct winsize size = {};  // 0 columns, as a serial line reports
  cr_assert_eq(ioctl(tty, TIOCSWINSZ, &size), 0);
  setenv("COLUMNS", "44", 1);
  cr_assert_eq(line_width_on(tty, master), 43u);
  // A terminal that knows its width has the last word.
  size.ws_col = 50;
  cr_assert_eq(ioctl(tty, TIOCSWINSZ, &size), 0);
  cr_assert_eq(line_width_on(tty, master), 49u);
}

Test(progress, label_and_reason_cannot_inject_escapes) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "evil\x1b]0;pwned\a.txt", 100, 0,
             clock.fn());
  p.tick();
  p.finish_failed("server said \x1b[2J\xc2\x9b" "31m");
  std::string text = out.take();
  cr_assert(only_erase_sequences(text), "%s", text.c_str());
  cr_assert_not(contains(text, "\a"));
  cr_assert_not(contains(text, "\xc2\x9b"));
  cr_assert(contains(text, "evil\\x1b]0;pwned\\x07.txt"), "%s", text.c_str());
  cr_assert(contains(text, "server said \\x1b[2J\\xc2\\x9b31m"), "%s", text.c_str());
}

Test(progress, escaped_label_is_not_escaped_twice) {
  FakeClock clock;
  Capture out;
  std::string label = app::escape_for_terminal("a\x1b" "b\\c");
  Progress p(out.fd(), ProgressStyle::kBar, false, false, label, 100, 0, clock.fn());
  p.update(100);
  p.finish_ok();
  std::string text = out.take();
  cr_assert(contains(text, " a\\x1bb\\\\c  "), "%s", text.c_str());
}

Test(progress, finishes_once_and_stops_drawing) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "f", 100, 0, clock.fn());
  p.tick();
  p.update(100);
  p.finish_ok();
  p.finish_failed("late");
  p.finish_ok("again");
  clock.now += 5.0;
  p.tick();
  std::string text = out.take();
  cr_assert_eq(count(text, "\n"), 1u, "%s", text.c_str());
  cr_assert_not(contains(text, "late"));
  cr_assert(text.back() == '\n', "nothing after the final line: %s", text.c_str());
}

Test(progress, clear_erases_and_next_tick_redraws) {
  FakeClock clock;
  Capture out;
  Progress p(out.fd(), ProgressStyle::kBar, true, false, "f", 100, 0, clock.fn());
  p.clear();
  cr_assert_eq(out.take(), "", "nothing to clear yet");
  p.tick();
  out.take();
  p.clear();
  cr_assert_eq(out.take(), "\r\x1b[K");
  p.tick();  // same instant: not throttled after a clear
  cr_assert_eq(count(out.take(), "\r"), 1u);
  p.finish_ok();
}

Test(progress, destroyed_unfinished_ends_the_line) {
  FakeClock clock;
  Capture out;
  {
    Progress p(out.fd(), ProgressStyle::kBar, true, false, "f", 100, 0, clock.fn());
    p.update(10);
    p.tick();
  }
  std::string text = out.take();
  cr_assert_eq(count(text, "\n"), 1u);
  cr_assert_eq(text.back(), '\n');
  {
    Progress quiet(out.fd(), ProgressStyle::kBar, false, false, "f", 100, 0, clock.fn());
  }
  cr_assert_eq(out.take(), "", "nothing drawn, nothing to end");
}

Test(progress, broken_pipe_does_not_crash_or_touch_errno) {
  signal(SIGPIPE, SIG_IGN);
  FakeClock clock;
  Capture out;
  out.close_read();
  Progress p(out.fd(), ProgressStyle::kRainbow, true, true, "f", 100 * kMiB, 0, clock.fn());
  uint64_t done = 0;
  errno = EDOM;
  drive(&p, &clock, &done, 50, kMiB);
  p.clear();
  p.finish_failed("whatever");
  cr_assert_eq(errno, EDOM);
}

Test(progress, full_nonblocking_output_never_blocks) {
  FakeClock clock;
  Capture out;
  cr_assert_eq(fcntl(out.fd(), F_SETFL, O_NONBLOCK), 0);
  std::string filler(65536, 'x');
  for (int i = 0; i < 64; ++i) {
    if (write(out.fd(), filler.data(), filler.size()) < 0) break;
  }
  cr_assert_lt(write(out.fd(), "x", 1), 0, "the pipe should be full");
  Progress p(out.fd(), ProgressStyle::kPlane, true, true, "f", 100 * kMiB, 0, clock.fn());
  uint64_t done = 0;
  errno = EDOM;
  drive(&p, &clock, &done, 50, kMiB);  // the 10 s test timeout catches a block
  cr_assert_eq(errno, EDOM);
  // Once the reader catches up, output resumes: EAGAIN is not a broken stderr.
  out.take();
  clock.now += 1.0;
  p.tick();
  cr_assert(contains(out.take(), "\r"), "no redraw after EAGAIN");
  drive(&p, &clock, &done, 50, kMiB);
  p.finish_ok();
  cr_assert(contains(out.take(), kCheck + "\x1b[0m f  100.0 MiB in "));
}
