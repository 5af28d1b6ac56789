#include "apps/reactorc/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "apps/common/cli.h"
#include "apps/common/human_units.h"
#include "apps/common/terminal_text.h"

namespace client {
namespace {

constexpr std::string_view kErase = "\x1b[K";
constexpr std::string_view kReset = "\x1b[0m";
constexpr std::string_view kGreen = "\x1b[32m";
constexpr std::string_view kRed = "\x1b[31m";
// The tutorial picked among 31..37 at random; a fixed cycle is reproducible, and white
// (37) is left out because it vanishes on light backgrounds.
constexpr std::string_view kRainbow[] = {"\x1b[31m", "\x1b[33m", "\x1b[32m",
                                         "\x1b[36m", "\x1b[34m", "\x1b[35m"};
constexpr std::size_t kRainbowColors = sizeof kRainbow / sizeof kRainbow[0];
constexpr std::string_view kPlaneGlyph = "\xe2\x9c\x88";  // ✈ U+2708, one column
constexpr std::string_view kCheck = "\xe2\x9c\x93";       // ✓ U+2713
constexpr std::string_view kCross = "\xe2\x9c\x97";       // ✗ U+2717
constexpr std::string_view kEllipsis = "...";  // ASCII: "…" is two columns in CJK locales

constexpr std::size_t kDefaultColumns = 80;
constexpr std::size_t kMinBar = 10;
constexpr std::size_t kMaxBar = 40;
// The fewest columns a name is elided to before numbers give way to it: "s...r.gz".
constexpr std::size_t kMinLabel = 8;
constexpr std::string_view kEtaPrefix = "ETA ";
// Long enough to smooth bursty reads, short enough to follow a change of speed.
constexpr double kRateWindow = 2.0;

// Redraws happen from timers; a failed write or ioctl must not leak into the caller's errno.
class ErrnoGuard {
 public:
  ErrnoGuard() : saved_(errno) {}
  ~ErrnoGuard() { errno = saved_; }
  ErrnoGuard(const ErrnoGuard&) = delete;
  ErrnoGuard& operator=(const ErrnoGuard&) = delete;

 private:
  int saved_;
};

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string make_safe(std::string_view text) {
  return app::is_terminal_safe(text) ? std::string(text) : app::escape_for_terminal(text);
}

void append_padded(std::string* out, std::string_view text, std::size_t width) {
  if (text.size() < width) out->append(width - text.size(), ' ');
  out->append(text);
}

// $COLUMNS if it is a positive integer a terminal could report (at most 65535, as
// winsize's ws_col), else 0: anything else is ignored, as by GNU ls.
std::size_t columns_from_environment(const char* value) {
  uint64_t columns = 0;
  if (value == nullptr || !app::parse_count(value, 1, 65535, &columns)) return 0;
  return static_cast<std::size_t>(columns);
}

// Whether a field is shown when only `count` of them fit: elapsed time goes first, then
// the ETA, the rate, the bytes; the percentage stays to the last.
bool shown(std::size_t field, int count) {
  static constexpr int kKeptUpTo[] = {1, 2, 3, 5, 4};  // percent, bytes, rate, elapsed, ETA
  return kKeptUpTo[field] <= count;
}

}  // namespace

bool parse_progress_style(std::string_view text, ProgressStyle* style) {
  if (text == "bar") {
    *style = ProgressStyle::kBar;
  } else if (text == "plane") {
    *style = ProgressStyle::kPlane;
  } else if (text == "rainbow") {
    *style = ProgressStyle::kRainbow;
  } else if (text == "none") {
    *style = ProgressStyle::kNone;
  } else if (text == "json") {
    *style = ProgressStyle::kJson;
  } else {
    return false;
  }
  return true;
}

Progress::Progress(int fd, ProgressStyle style, bool is_terminal, bool color, std::string label,
                   uint64_t total, uint64_t start, Clock clock)
    : fd_(fd),
      style_(style),
      live_(is_terminal && style != ProgressStyle::kNone && style != ProgressStyle::kJson),
      color_(is_terminal && color && style != ProgressStyle::kNone && style != ProgressStyle::kJson),
      total_(total),
      start_(start),
      done_(start),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      started_at_(clock_()),
      last_draw_(-std::numeric_limits<double>::infinity()) {
  set_label(std::move(label));
  last_seen_ = start_;
  last_change_ = started_at_;
  record_sample(started_at_, start_);
  if (live_) line_.reserve(256 + label_.text.size());
}

void Progress::set_label(std::string label, std::string compact) {
  label_.assign(make_safe(label));
  if (!compact.empty()) {
    short_label_.assign(make_safe(compact));
    return;
  }
  std::size_t slash = label_.text.rfind('/');
  bool has_base = slash != std::string::npos && slash + 1 < label_.text.size();
  short_label_.assign(has_base ? label_.text.substr(slash + 1) : label_.text);
}

void Progress::Label::assign(std::string value) {
  text = std::move(value);
  starts.clear();
  columns_before.clear();
  // The width is the sum over the code points, the same sums append_label cuts at.
  std::size_t before = 0;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t len = 1;
    while (i + len < text.size() && (static_cast<unsigned char>(text[i + len]) & 0xc0) == 0x80) ++len;
    starts.push_back(i);
    columns_before.push_back(before);
    before += app::display_width(std::string_view(text).substr(i, len));
    i += len;
  }
  columns = before;
}

Progress::~Progress() {
  if (on_screen_ && !finished_) {
    ErrnoGuard guard;
    write_out("\n");
  }
}

// Ends a line that replaces the live one (line_ from its '\r'): `\x1b[K` clears what is
// left of the old line; a dumb terminal gets spaces over it instead.
void Progress::append_erase() {
  if (!dumb_) {
    line_ += kErase;
    return;
  }
  std::size_t start = !line_.empty() && line_[0] == '\r' ? 1 : 0;
  std::size_t width = app::display_width(std::string_view(line_).substr(start));
  if (drawn_columns_ > width) line_.append(drawn_columns_ - width, ' ');
  drawn_columns_ = width;
}

void Progress::tick() {
  if (!live_ || finished_) return;
  double now = clock_();
  if (now - last_draw_ < kRedrawInterval) return;
  redraw(now);
}

void Progress::clear() {
  if (!on_screen_) return;
  ErrnoGuard guard;
  line_.assign("\r");
  append_erase();
  if (dumb_) line_ += '\r';
  write_out(line_);
  on_screen_ = false;
  drawn_columns_ = 0;
  last_draw_ = -std::numeric_limits<double>::infinity();
}

std::size_t Progress::columns() const {
  if (columns_override_ > 0) return static_cast<std::size_t>(columns_override_);
  struct winsize size {};
  if (ioctl(fd_, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  // As GNU ls: where the terminal cannot tell (a serial line reports 0), the user can.
  std::size_t from_environment = columns_from_environment(std::getenv("COLUMNS"));
  return from_environment > 0 ? from_environment : kDefaultColumns;
}

void Progress::record_sample(double now, uint64_t bytes) {
  samples_[sample_next_] = Sample{now, bytes};
  sample_next_ = (sample_next_ + 1) % kSamples;
  if (sample_count_ < kSamples) ++sample_count_;
}

// Bytes per second since the oldest sample at most kRateWindow old (or, when redraws
// were sparse, since the newest one); negative when there is no interval to measure yet.
double Progress::smoothed_rate(double now) const {
  if (sample_count_ == 0) return -1.0;
  std::size_t oldest = (sample_next_ + kSamples - sample_count_) % kSamples;
  const Sample* ref = &samples_[(sample_next_ + kSamples - 1) % kSamples];
  for (std::size_t i = 0; i < sample_count_; ++i) {
    const Sample& sample = samples_[(oldest + i) % kSamples];
    if (now - sample.time <= kRateWindow) {
      ref = &sample;
      break;
    }
  }
  double elapsed = now - ref->time;
  if (!(elapsed > 1e-6)) return -1.0;
  if (done_ <= ref->bytes) return 0.0;
  return static_cast<double>(done_ - ref->bytes) / elapsed;
}

void Progress::append_bar(std::size_t width, double fraction, bool complete) {
  std::size_t filled = width;
  if (!complete) {
    filled = std::min(width - 1, static_cast<std::size_t>(fraction * static_cast<double>(width)));
  }
  if (style_ == ProgressStyle::kBar) {
    line_.append(filled, '=');
    if (filled < width) {
      line_ += '>';
      line_.append(width - filled - 1, ' ');
    }
    return;
  }
  std::string_view colour;
  if (color_ && filled > 0) {
    colour = style_ == ProgressStyle::kPlane ? kGreen : kRainbow[redraws_ % kRainbowColors];
  }
  line_ += colour;
  if (ascii_) {
    line_.append(filled, '=');
  } else {
    for (std::size_t i = 0; i < filled; ++i) line_ += kPlaneGlyph;
  }
  if (!colour.empty()) line_ += kReset;
  line_.append(width - filled, ' ');
}

// The label in `room` columns: whole; else the short form (a path's base name, a count
// without its noun); else that elided in the middle, keeping twice as much of its end,
// where an extension is, as of its start: "some-...ame.tar.gz".
void Progress::append_label(std::size_t room) {
  if (label_.columns <= room) {
    line_ += label_.text;
    return;
  }
  const Label& label = short_label_;
  if (label.columns <= room) {
    line_ += label.text;
    return;
  }
  if (room <= kEllipsis.size()) {
    line_ += app::truncate_to_width(label.text, room);
    return;
  }
  std::size_t keep = room - kEllipsis.size();
  std::string_view head = app::truncate_to_width(label.text, keep / 3);
  line_ += head;
  line_ += kEllipsis;
  // The first code point from which the rest of the label fits in what is left.
  std::size_t tail_room = keep - app::display_width(head);
  auto first = std::lower_bound(label.columns_before.begin(), label.columns_before.end(), label.columns - tail_room);
  if (first != label.columns_before.end()) {
    line_ += std::string_view(label.text).substr(label.starts[static_cast<std::size_t>(first - label.columns_before.begin())]);
  }
}

void Progress::set_field(Form form, Field field, std::string value, std::size_t usual_width) {
  std::size_t& width = widths_[form][field];
  width = std::max({width, usual_width, value.size()});
  values_[form][field] = std::move(value);
}

// The numbers in every form. Each field is padded to the widest it has been in this
// transfer, and at least to the widest it usually gets, so that redraws of the same state
// line up and the bar keeps its width as the values change.
void Progress::format_fields(unsigned percent, double rate, bool complete, bool stalled, double elapsed) {
  // No estimate while nothing arrives, nor before a rate is known.
  double eta = std::numeric_limits<double>::quiet_NaN();
  if (complete) {
    eta = 0.0;
  } else if (!stalled && rate > 0.0) {
    eta = static_cast<double>(total_ - done_) / rate;
  }
  char percent_text[8];
  std::snprintf(percent_text, sizeof percent_text, "%u%%", percent);
  set_field(kFull, kPercent, percent_text, 4);
  set_field(kCompact, kPercent, percent_text, 4);
  // 100% comes with the last byte, just before the final line replaces this one.
  set_field(kLetters, kPercent, percent_text, 3);

  // In the unit of the total: as wide at any count as at the last byte.
  constexpr app::UnitStyle kBytesStyle[] = {app::UnitStyle::kSpaced, app::UnitStyle::kCompact, app::UnitStyle::kLetters};
  for (Form form : {kFull, kCompact, kLetters}) {
    set_field(form, kBytes, app::format_bytes_of(done_, total_, kBytesStyle[form]),
              app::format_bytes_of(total_, total_, kBytesStyle[form]).size());
  }

  std::string rate_text = stalled ? "stalled" : rate >= 0.0 ? app::format_rate(rate) : "-- B/s";
  // "1023.9 KiB/s": a rate held about 1 MiB/s (--limit-rate 1M) takes four digits.
  set_field(kFull, kRate, rate_text, 12);
  set_field(kCompact, kRate, rate_text, 12);
  set_field(kLetters, kRate, stalled ? "stalled" : rate >= 0.0 ? app::format_rate_letters(rate) : "--B/s", 7);

  const std::string elapsed_text = app::format_duration(elapsed);
  const std::string eta_text = app::format_duration(eta);
  set_field(kFull, kElapsed, elapsed_text, 6);  // "12.3 s", "59m59s"
  set_field(kCompact, kElapsed, elapsed_text, 6);
  set_field(kLetters, kElapsed, app::format_duration_letters(elapsed), 5);
  set_field(kFull, kEta, eta_text, 6);
  set_field(kCompact, kEta, eta_text, 6);
  set_field(kLetters, kEta, app::format_duration_letters(eta), 5);
}

std::size_t Progress::fields_width(Form form, int count) const {
  std::size_t width = 0;
  for (std::size_t field = 0; field < kFields; ++field) {
    if (!shown(field, count)) continue;
    width += 1 + widths_[form][field] + (field == kEta ? kEtaPrefix.size() : 0);
  }
  return width;
}

void Progress::append_fields(Form form, int count) {
  for (std::size_t field = 0; field < kFields; ++field) {
    if (!shown(field, count)) continue;
    line_ += ' ';
    if (field == kEta) line_ += kEtaPrefix;
    append_padded(&line_, values_[form][field], widths_[form][field]);
  }
}

// The first layout that fits, in the order things are given up: the bar shrinks to
// kMinBar beside the whole label, then beside the short one; then it goes, and the
// label may be elided down to kMinLabel; then the numbers take their shorter forms; then
// they go one by one. `fields` 0: not even the percentage fits beside a short label.
Progress::Layout Progress::choose_layout(std::size_t avail) const {
  const std::size_t sep = label_.columns > 0 ? 1 : 0;
  // Never a cut name beside a bar: the bar takes columns the name could have had.
  for (const Label* label : {&label_, &short_label_}) {
    if (label->columns + sep + 2 + kMinBar + fields_width(kFull, kFields) <= avail) {
      return Layout{kFull, kFields, label};
    }
  }
  const std::size_t label_min = std::min(short_label_.columns, kMinLabel);
  for (Form form : {kFull, kCompact, kLetters}) {
    if (label_min + fields_width(form, kFields) <= avail) return Layout{form, kFields, nullptr};
  }
  for (int count = kFields - 1; count > 0; --count) {
    if (label_min + fields_width(kLetters, count) <= avail) return Layout{kLetters, count, nullptr};
  }
  return Layout{kLetters, 0, nullptr};
}

void Progress::redraw(double now) {
  ErrnoGuard guard;
  const bool complete = done_ >= total_;
  double fraction = 1.0;
  if (total_ > 0) {
    fraction = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  }
  // Never 100% before the last byte, whatever the rounding says.
  unsigned percent = complete ? 100U : std::min(99U, static_cast<unsigned>(fraction * 100.0));
  double rate = smoothed_rate(now);
  record_sample(now, done_);
  last_draw_ = now;
  if (done_ != last_seen_) {
    last_seen_ = done_;
    last_change_ = now;
  }
  const bool stalled = !complete && now - last_change_ >= kStallSeconds;
  format_fields(percent, rate, complete, stalled, std::max(0.0, now - started_at_));

  std::size_t cols = columns();
  const std::size_t avail = cols > 1 ? cols - 1 : 1;
  const Layout layout = choose_layout(avail);
  line_.assign("\r");
  if (layout.bar_label != nullptr) {
    const std::size_t sep = label_.columns > 0 ? 1 : 0;
    std::size_t room = avail - fields_width(kFull, kFields) - 2 - sep - layout.bar_label->columns;
    line_ += layout.bar_label->text;
    if (sep > 0) line_ += ' ';
    line_ += '[';
    append_bar(std::min(kMaxBar, room), fraction, complete);
    line_ += ']';
    append_fields(kFull, kFields);
  } else if (layout.fields > 0) {
    append_label(avail - fields_width(layout.form, layout.fields));
    append_fields(layout.form, layout.fields);
  } else {
    // Too narrow even for the percentage beside a short label: as much of the label as
    // fits, then as much of the percentage as fits, its '%' last.
    std::string percent_field = " " + values_[kFull][kPercent];
    std::string_view shown_part(percent_field);
    if (shown_part.size() > avail) shown_part.remove_prefix(shown_part.size() - avail);
    std::size_t room = avail - shown_part.size();
    if (room > 0) append_label(room);
    line_ += shown_part;
  }
  append_erase();
  write_out(line_);
  on_screen_ = true;
  ++redraws_;
}

void Progress::finish_ok(std::string_view detail) {
  if (finished_) return;
  finished_ = true;
  ErrnoGuard guard;
  double elapsed = std::max(0.0, clock_() - started_at_);
  uint64_t received = done_ > start_ ? done_ - start_ : 0;

  line_.clear();
  if (on_screen_) line_ += '\r';
  if (color_) line_ += kGreen;
  line_ += ascii_ ? std::string_view("OK") : kCheck;
  if (color_) line_ += kReset;
  line_ += ' ';
  line_ += label_.text;
  line_ += "  ";
  line_ += app::format_bytes(done_);
  line_ += " in ";
  line_ += app::format_duration(elapsed);
  if (elapsed > 0.0) {
    line_ += " (";
    line_ += app::format_rate(static_cast<double>(received) / elapsed);
    line_ += ')';
  }
  if (start_ > 0) {
    line_ += ", resumed at ";
    line_ += app::format_bytes(start_);
  }
  if (!detail.empty()) {
    line_ += ", ";
    line_ += make_safe(detail);
  }
  if (on_screen_) append_erase();
  line_ += '\n';
  write_out(line_);
  on_screen_ = false;
}

void Progress::finish_failed(std::string_view reason) {
  if (finished_) return;
  finished_ = true;
  ErrnoGuard guard;
  double elapsed = std::max(0.0, clock_() - started_at_);

  line_.clear();
  if (on_screen_) line_ += '\r';
  if (color_) line_ += kRed;
  line_ += ascii_ ? std::string_view("FAILED") : kCross;
  line_ += ' ';
  line_ += label_.text;
  line_ += ": ";
  line_ += make_safe(reason);
  line_ += " (";
  line_ += app::format_bytes(done_);
  line_ += " of ";
  line_ += app::format_bytes(total_);
  line_ += " after ";
  line_ += app::format_duration(elapsed);
  line_ += ')';
  if (color_) line_ += kReset;
  if (on_screen_) append_erase();
  line_ += '\n';
  write_out(line_);
  on_screen_ = false;
}

// One write(2) per line, so the line reaches the terminal whole. Retries EINTR (a few
// times) and a short write (once); gives up on EAGAIN rather than wait, and for good
// on any other error: a closed or broken stderr then costs nothing more.
void Progress::write_out(std::string_view data) {
  if (broken_) return;
  int interrupted = 0;
  int short_writes = 0;
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR && ++interrupted <= 8) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) broken_ = true;
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    if (!data.empty() && ++short_writes > 1) return;
  }
}

}  // namespace client
