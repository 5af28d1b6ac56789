#pragma once
// The download progress line on stderr, in the spirit of the tutorial's processBar:
// a plain `=>` bar, a green ✈ bar, or ✈ changing colour on every redraw.
//
//   movie.mp4 [==========>       ]  58% 116.0 MiB / 200.0 MiB  112.4 MiB/s 1.06 s ETA 0.78 s
//   ✓ movie.mp4  200.0 MiB in 1.84 s (108.7 MiB/s), sha256 verified
//   ✗ movie.mp4: connection reset by peer (12.0 MiB of 200.0 MiB after 0.31 s)
//
// The live line's fields after the bar: percentage, bytes, rate (`stalled` after
// kStallSeconds without a byte), elapsed time, ETA. Each keeps one width: the widest it
// can be (the bytes, in the unit of the total) or usually is (the rate and the times),
// wider only from the first value that needs more; redraws then line up and the bar
// keeps its width. As the
// terminal narrows, what goes first is the bar (it shrinks, then goes), then a path's
// directory, then the name is elided in the middle down to a few columns, then the
// numbers take shorter forms, then elapsed time, ETA and rate go; percentage and bytes
// stay to the last. At 40 columns:
//
//   film.mp4 58% 116/200M  112M/s ETA 0.78s
//
// On a terminal the line is redrawn in place (`\r`, text, `\x1b[K`) at most ten times a
// second and fitted to the terminal's width; the finished line replaces it. On a dumb
// terminal (set_dumb_terminal) spaces erase instead of `\x1b[K`; in a locale that is not
// UTF-8 (set_ascii) the glyphs become ASCII (`OK`, `FAILED`, `=`). Anywhere
// else (a pipe, a file, a CI log) nothing is written until the end, and then only the
// final line, with no control bytes and no colour. ProgressStyle::kNone also prints just
// the final line, so scripts still see a result; silencing everything is the caller's job.
//
// Output is best effort: one write(2) per redraw, retried on EINTR and once after a short
// write, never waiting on EAGAIN; a broken stderr never blocks or stops a download.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace client {

// kJson: one JSON object per line on standard output, for scripts (tree_report.h); a
// Progress given it draws nothing live, like kNone.
enum class ProgressStyle { kBar, kPlane, kRainbow, kNone, kJson };

// The value of --progress=: exactly "bar", "plane", "rainbow", "none" or "json".
bool parse_progress_style(std::string_view text, ProgressStyle* style);

class Progress {
 public:
  // Seconds on a monotonic clock; tests pass a fake one.
  using Clock = std::function<double()>;

  static constexpr double kRedrawInterval = 0.1;
  // No byte for this long and the rate reads "stalled", as in scp and wget.
  static constexpr double kStallSeconds = 3.0;

  // `fd` is borrowed (normally STDERR_FILENO) and must outlive this object.
  // `is_terminal`: isatty(fd); `color`: app::stream_wants_color(fd). Colour is only
  // ever used on a terminal. `label` is the local file name, normally already passed
  // through app::escape_for_terminal(); text that still holds control bytes or invalid
  // UTF-8 is escaped here, text that is already safe is not escaped twice. `total` is
  // the file's size and `start` the bytes already present when resuming: the rate
  // counts only bytes received now. An empty `clock` means std::chrono::steady_clock.
  Progress(int fd, ProgressStyle style, bool is_terminal, bool color, std::string label,
           uint64_t total, uint64_t start, Clock clock = {});
  // Leaves a line still on screen (finish_* never called) in place and ends it.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Bytes of the file present so far, `start` included. Only records: call it per chunk.
  void update(uint64_t done) { done_ = done; }
  // A transfer of many files: the label ("12/40 files") and the total grow as the
  // listing arrives. `compact` ("12/40") stands for the label where it does not fit
  // whole; without one, a path's base name does. Escaped like the constructor's label.
  void set_label(std::string label, std::string compact = {});
  void set_total(uint64_t total) { total_ = total; }

  // Where the transfer began, for a retry: the Progress of a later attempt continues from
  // the first one's origin, so that its elapsed time and the final line's average rate
  // count every attempt (and the pauses between them), and "resumed at" is said only if
  // the first attempt resumed. Both must read the same clock. The live rate still counts
  // only the bytes of this attempt.
  struct Origin {
    double time;
    uint64_t bytes;
  };
  Origin origin() const { return Origin{started_at_, start_}; }
  void continue_from(Origin origin) {
    started_at_ = origin.time;
    start_ = origin.bytes;
  }

  // Redraws if at least kRedrawInterval passed since the last redraw (the first tick
  // draws at once); otherwise costs one clock read. Does nothing off a terminal or with
  // kNone, or once finished.
  void tick();

  // Erases the live line so the caller can write something else; the next tick()
  // redraws at once.
  void clear();

  // The final line. finish_ok: size, elapsed time since construction, average rate of
  // the bytes received now, "resumed at X" when start > 0, then `detail` (for example
  // "sha256 verified") if not empty. finish_failed: the reason (escaped like the label)
  // and how far the download got. Only the first finish_* call writes anything.
  void finish_ok(std::string_view detail = {});
  void finish_failed(std::string_view reason);

  // Line width in columns; 0 (the default) asks the terminal (TIOCGWINSZ) at every
  // redraw, falling back to $COLUMNS if the terminal says nothing or 0 and that is a
  // positive integer, then to 80. The line uses one column less than this, so that it
  // never reaches the last column and wraps on terminals that wrap eagerly.
  void set_columns(int columns) { columns_override_ = columns; }
  // ASCII only (a locale that is not UTF-8): `OK`/`FAILED` for ✓/✗, `=` for ✈.
  void set_ascii(bool ascii) { ascii_ = ascii; }
  // A terminal that knows no escape sequences (TERM=dumb): the live line is erased by
  // padding with spaces, not `\x1b[K`, and no colour is used.
  void set_dumb_terminal(bool dumb) {
    dumb_ = dumb;
    if (dumb) color_ = false;
  }

 private:
  struct Sample {
    double time;
    uint64_t bytes;
  };
  static constexpr std::size_t kSamples = 32;
  // The forms of the numbers, widest first; an ever narrower terminal takes the next:
  // "4.7 MiB / 4.8 MiB  1.2 MiB/s 1.50 s", "4.7/4.8 MiB ...", "4.7/4.8M 1.2M/s 1.50s".
  enum Form { kFull, kCompact, kLetters, kForms };
  // In the order they are shown.
  enum Field { kPercent, kBytes, kRate, kElapsed, kEta, kFields };
  // A form of the label, measured once: where each code point starts and the columns
  // before it, so that it can be cut to a width at every redraw without measuring again.
  struct Label {
    std::string text;
    std::vector<std::size_t> starts;
    std::vector<std::size_t> columns_before;
    std::size_t columns = 0;
    void assign(std::string value);
  };
  // What a redraw shows: the numbers' form, how many of them in the order they are given
  // up (elapsed, ETA, rate, bytes, percentage), and the label beside the bar (none: no bar).
  struct Layout {
    Form form;
    int fields;
    const Label* bar_label;
  };

  void redraw(double now);
  double smoothed_rate(double now) const;
  void record_sample(double now, uint64_t bytes);
  std::size_t columns() const;
  void format_fields(unsigned percent, double rate, bool complete, bool stalled, double elapsed);
  void set_field(Form form, Field field, std::string value, std::size_t usual_width);
  std::size_t fields_width(Form form, int count) const;
  void append_fields(Form form, int count);
  Layout choose_layout(std::size_t avail) const;
  void append_bar(std::size_t width, double fraction, bool complete);
  void append_label(std::size_t room);
  void append_erase();
  void write_out(std::string_view data);

  int fd_;
  ProgressStyle style_;
  bool live_;
  bool color_;
  Label label_;
  Label short_label_;  // the compact label, a path's base name, or the label again
  uint64_t total_;
  uint64_t start_;
  uint64_t done_;
  Clock clock_;
  double started_at_;
  double last_draw_;
  bool on_screen_ = false;
  bool finished_ = false;
  bool broken_ = false;
  int columns_override_ = 0;
  bool ascii_ = false;
  bool dumb_ = false;
  uint64_t last_seen_ = 0;  // done_ at the last redraw, and when it last changed
  double last_change_ = 0.0;
  std::size_t drawn_columns_ = 0;  // of the live line on screen, for a dumb terminal
  uint64_t redraws_ = 0;
  std::array<Sample, kSamples> samples_{};
  std::size_t sample_next_ = 0;
  std::size_t sample_count_ = 0;
  // The numbers of the last redraw in every form, and the widest each has been.
  std::array<std::array<std::string, kFields>, kForms> values_;
  std::array<std::array<std::size_t, kFields>, kForms> widths_{};
  std::string line_;
};

}  // namespace client
