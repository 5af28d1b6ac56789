#include "apps/reactorc/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <limits>

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
constexpr std::size_t kMinLabel = 8;
// A bar is drawn only if the label keeps this many columns beside it: a name cut to a
// few characters says less than the numbers and the bar together.
constexpr std::size_t kMinLabelBesideBar = 16;
// Field widths the values usually stay within, so the bar does not jitter as they change.
constexpr std::size_t kRateWidth = 11;  // "112.4 MiB/s"
constexpr std::size_t kEtaWidth = 6;    // "12.3 s"
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
      label_(make_safe(label)),
      total_(total),
      start_(start),
      done_(start),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      started_at_(clock_()),
      last_draw_(-std::numeric_limits<double>::infinity()) {
  measure_label();
  last_seen_ = start_;
  last_change_ = started_at_;
  record_sample(started_at_, start_);
  if (live_) {
    line_.reserve(256 + label_.size());
    scratch_.reserve(128);
  }
}

void Progress::set_label(std::string label) {
  label_ = make_safe(label);
  measure_label();
}

void Progress::measure_label() {
  label_starts_.clear();
  label_columns_before_.clear();
  basename_columns_ = 0;
  // The label's width is the sum over its code points, the same sums append_label cuts at.
  std::size_t before = 0;
  for (std::size_t i = 0; i < label_.size();) {
    std::size_t len = 1;
    while (i + len < label_.size() && (static_cast<unsigned char>(label_[i + len]) & 0xc0) == 0x80) ++len;
    label_starts_.push_back(i);
    label_columns_before_.push_back(before);
    before += app::display_width(std::string_view(label_).substr(i, len));
    i += len;
  }
  label_columns_ = before;
  std::size_t slash = label_.rfind('/');
  if (slash != std::string::npos) {
    auto it = std::lower_bound(label_starts_.begin(), label_starts_.end(), slash + 1);
    std::size_t index = static_cast<std::size_t>(it - label_starts_.begin());
    basename_columns_ = index < label_columns_before_.size() ? label_columns_ - label_columns_before_[index] : 0;
  }
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
  return kDefaultColumns;
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

// The label in `room` columns: whole, or elided in the middle keeping the file name (or
// at least twice as much of the end as of the start): "backups/...db-full.tar.zst".
void Progress::append_label(std::size_t room) {
  if (label_columns_ <= room) {
    line_ += label_;
    return;
  }
  if (room <= kEllipsis.size()) {
    line_ += app::truncate_to_width(label_, room);
    return;
  }
  std::size_t keep = room - kEllipsis.size();
  // Two thirds for the end, or the whole file name if it fits with a column to spare.
  std::size_t tail_target = std::max(keep - keep / 3, std::min(basename_columns_, keep - 1));
  std::string_view head = app::truncate_to_width(label_, keep - tail_target);
  line_ += head;
  line_ += kEllipsis;
  // The first code point from which the rest of the label fits in what is left.
  std::size_t tail_room = keep - app::display_width(head);
  auto first = std::lower_bound(label_columns_before_.begin(), label_columns_before_.end(),
                                label_columns_ - tail_room);
  if (first != label_columns_before_.end()) {
    line_ += std::string_view(label_).substr(label_starts_[static_cast<std::size_t>(first - label_columns_before_.begin())]);
  }
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

  char percent_text[8];
  std::snprintf(percent_text, sizeof percent_text, "%3u%%", percent);
  std::string total_text = app::format_bytes(total_);
  std::string done_text = app::format_bytes(done_);
  std::string rate_text = rate >= 0.0 ? app::format_rate(rate) : std::string("-- B/s");
  std::string eta_text = "--";
  if (stalled) {
    rate_text = "stalled";
  } else if (complete) {
    eta_text = app::format_duration(0.0);
  } else if (rate > 0.0) {
    eta_text = app::format_duration(static_cast<double>(total_ - done_) / rate);
  }
  std::string elapsed_text = app::format_duration(std::max(0.0, now - started_at_));

  // The numbers right of the bar. With fewer than all five, the least important go
  // first: elapsed time, then ETA, rate and bytes; the percentage always stays.
  auto build_fields = [&](int count) {
    scratch_.assign(" ");
    scratch_ += percent_text;
    if (count > 1) {
      scratch_ += ' ';
      append_padded(&scratch_, done_text, total_text.size());
      scratch_ += " / ";
      scratch_ += total_text;
    }
    if (count > 2) {
      scratch_ += ' ';
      append_padded(&scratch_, rate_text, kRateWidth);
    }
    if (count > 4) {
      scratch_ += ' ';
      append_padded(&scratch_, elapsed_text, kEtaWidth);
    }
    if (count > 3) {
      scratch_ += " ETA ";
      append_padded(&scratch_, eta_text, kEtaWidth);
    }
  };

  // The widest layout that fits, trying for each number of fields a bar of at least
  // kMinBar and then no bar: the bar shrinks, then goes, before any number does.
  std::size_t cols = columns();
  const std::size_t avail = cols > 1 ? cols - 1 : 1;
  const std::size_t label_sep = label_columns_ > 0 ? 1 : 0;
  const std::size_t label_min = std::min(label_columns_, kMinLabel);
  const std::size_t label_min_beside_bar = std::min(label_columns_, kMinLabelBesideBar);
  bool with_bar = false;
  bool fits = false;
  for (int fields = 5; fields >= 1 && !fits; --fields) {
    build_fields(fields);
    if (label_min_beside_bar + label_sep + kMinBar + 2 + scratch_.size() <= avail) {
      with_bar = fits = true;
    } else if (label_min + scratch_.size() <= avail) {
      fits = true;
    }
  }

  line_.assign("\r");
  if (with_bar) {
    std::size_t room = avail - scratch_.size() - 2 - label_sep;  // label and bar
    std::size_t bar = kMinBar;
    std::size_t label_room = room - kMinBar;
    if (label_columns_ + kMinBar <= room) {
      bar = std::min(kMaxBar, room - label_columns_);
      label_room = label_columns_;
    }
    append_label(label_room);
    if (label_sep > 0) line_ += ' ';
    line_ += '[';
    append_bar(bar, fraction, complete);
    line_ += ']';
    line_ += scratch_;
  } else if (fits) {
    append_label(std::min(label_columns_, avail - scratch_.size()));
    line_ += scratch_;
  } else {
    // Too narrow even for the percentage beside a short label: as much of the label as
    // fits, then the percentage.
    std::string_view percent_field(scratch_);
    if (percent_field.size() > avail) percent_field = percent_field.substr(percent_field.size() - avail);
    std::size_t room = avail - percent_field.size();
    if (room > 0) append_label(room);
    line_ += percent_field;
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
  line_ += label_;
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
  line_ += label_;
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
