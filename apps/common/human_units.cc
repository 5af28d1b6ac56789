#include "apps/common/human_units.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace app {
namespace {

constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
constexpr const char* kLetters[] = {"B", "K", "M", "G", "T", "P", "E"};
constexpr int kLastUnit = 6;

int decimals_for(int unit) { return unit >= 3 ? 2 : 1; }

bool rounds_to_1024(double value, int decimals) {
  double scale = decimals == 2 ? 100.0 : 10.0;
  return std::round(value * scale) / scale >= 1024.0;
}

// A value in the unit it is shown in: `unit` indexes kUnits (or kLetters).
struct Scaled {
  double value;
  int unit;
  int decimals;
};

// The unit and decimals format_bytes() uses for `value` (>= 0 and finite).
Scaled scale_iec(double value) {
  if (value < 1023.5) return Scaled{value, 0, 0};
  int unit = 0;
  while (value >= 1024.0 && unit < kLastUnit) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0 || (unit < kLastUnit && rounds_to_1024(value, decimals_for(unit)))) {
    value /= 1024.0;
    ++unit;
  }
  return Scaled{value, unit, decimals_for(unit)};
}

// As `ls -h` letters a size, but rounded to the nearest: one decimal below 10 of a
// unit, none from there. Never four digits: from 999.5 of a unit on, the next one, as
// 0.98 rounds to "1.0".
Scaled scale_letters(double value) {
  int unit = 0;
  while (std::round(value) >= 1000.0 && unit < kLastUnit) {
    value /= 1024.0;
    ++unit;
  }
  int decimals = unit > 0 && std::round(value * 10.0) < 100.0 ? 1 : 0;
  return Scaled{value, unit, decimals};
}

// `value` >= 0 and finite; `exact` is used below 1024 so that byte counts print exactly.
std::string format_iec(double value, uint64_t exact, const char* suffix) {
  char buf[64];
  Scaled scaled = scale_iec(value);
  if (scaled.unit == 0) {
    std::snprintf(buf, sizeof buf, "%llu B%s", static_cast<unsigned long long>(exact), suffix);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.*f %s%s", scaled.decimals, scaled.value, kUnits[scaled.unit], suffix);
  return buf;
}

double unit_size(int unit) { return std::ldexp(1.0, 10 * unit); }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return format_iec(0.0, bytes, "");
  return format_iec(static_cast<double>(bytes), 0, "");
}

std::string format_size_short(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes);
  static const char kUnits[] = "KMGTPE";
  // Integer arithmetic: tenths of the unit, rounded up, exact at any size.
  uint64_t divisor = 1024;
  for (size_t unit = 0; unit < sizeof kUnits - 1; ++unit, divisor *= 1024) {
    bool last = unit == sizeof kUnits - 2;
    uint64_t whole = bytes / divisor;
    uint64_t rest = bytes % divisor;
    // ceil(bytes * 10 / divisor): whole tenths, plus a partial one, computed as
    // rest * 5 / (divisor / 2) so that it fits 64 bits even at the exbibyte.
    const uint64_t half = divisor / 2;
    uint64_t ceil_tenths = whole * 10 + (rest * 5 + half - 1) / half;
    if (ceil_tenths < 100) {
      char text[16];
      std::snprintf(text, sizeof text, "%llu.%llu%c", static_cast<unsigned long long>(ceil_tenths / 10),
                    static_cast<unsigned long long>(ceil_tenths % 10), kUnits[unit]);
      return text;
    }
    uint64_t ceil_whole = whole + (rest != 0 ? 1 : 0);
    if (ceil_whole < 1024 || last) return std::to_string(ceil_whole) + kUnits[unit];
  }
  return std::to_string(bytes);  // not reached: the last unit always answers
}

std::string format_rate(double bytes_per_second) {
  double value = bytes_per_second;
  if (!(value >= 0.0)) value = 0.0;
  // Far beyond any real rate, and keeps the text bounded.
  if (value > 1e30) value = 1e30;
  uint64_t exact = value < 1023.5 ? static_cast<uint64_t>(std::llround(value)) : 0;
  return format_iec(value, exact, "/s");
}

std::string format_bytes_of(uint64_t part, uint64_t whole, UnitStyle style) {
  const bool letters = style == UnitStyle::kLetters;
  Scaled scaled = letters ? scale_letters(static_cast<double>(whole)) : scale_iec(static_cast<double>(whole));
  auto number = [&](uint64_t bytes) {
    if (scaled.unit == 0) return std::to_string(bytes);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", scaled.decimals, static_cast<double>(bytes) / unit_size(scaled.unit));
    return std::string(buf);
  };
  const std::string unit = letters ? kLetters[scaled.unit] : std::string(" ") + kUnits[scaled.unit];
  if (style == UnitStyle::kSpaced) return number(part) + unit + " / " + number(whole) + unit;
  return number(part) + "/" + number(whole) + unit;
}

std::string format_rate_letters(double bytes_per_second) {
  double value = bytes_per_second;
  if (!(value >= 0.0)) value = 0.0;
  if (value > 1e30) value = 1e30;
  Scaled scaled = scale_letters(value);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s/s", scaled.decimals, scaled.value, kLetters[scaled.unit]);
  return buf;
}

std::string format_duration(double seconds) {
  if (std::isnan(seconds) || std::isinf(seconds)) return "--";
  if (seconds < 0.0) seconds = 0.0;
  // Past a million hours nobody reads the digits; the cap keeps llround defined.
  if (seconds > 3.6e9) seconds = 3.6e9;
  char buf[48];
  if (std::llround(seconds * 100.0) < 1000) {
    std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  } else if (std::llround(seconds * 10.0) < 600) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else {
    long long total = std::llround(seconds);
    if (total < 3600) {
      std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
    } else {
      long long minutes = (total + 30) / 60;
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", minutes / 60, minutes % 60);
    }
  }
  return buf;
}

std::string format_duration_letters(double seconds) {
  if (std::isnan(seconds) || std::isinf(seconds)) return "--";
  if (seconds < 0.0) seconds = 0.0;
  if (seconds > 3.6e9) seconds = 3.6e9;
  char buf[48];
  if (std::llround(seconds * 10.0) < 600) {
    std::snprintf(buf, sizeof buf, std::llround(seconds * 100.0) < 1000 ? "%.2fs" : "%.1fs", seconds);
    return buf;
  }
  long long total = std::llround(seconds);
  long long minutes = (total + 30) / 60;
  if (total < 600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
  } else if (minutes < 60) {
    std::snprintf(buf, sizeof buf, "%lldm", minutes);
  } else if (minutes < 600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", minutes / 60, minutes % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldh", (minutes + 30) / 60);
  }
  return buf;
}

bool parse_size(std::string_view text, uint64_t* out) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  std::size_t i = 0;
  const std::size_t n = text.size();

  uint64_t whole = 0;
  std::size_t whole_digits = 0;
  for (; i < n && is_digit(text[i]); ++i, ++whole_digits) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (whole > (kMax - digit) / 10) return false;
    whole = whole * 10 + digit;
  }
  if (whole_digits == 0) return false;

  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  bool has_fraction = false;
  if (i < n && text[i] == '.') {
    has_fraction = true;
    ++i;
    std::size_t digits = 0;
    for (; i < n && is_digit(text[i]); ++i, ++digits) {
      if (digits == 18) return false;
      fraction = fraction * 10 + static_cast<uint64_t>(text[i] - '0');
      fraction_scale *= 10;
    }
    if (digits == 0) return false;
  }

  std::size_t spaces = 0;
  for (; i < n && text[i] == ' '; ++i) ++spaces;
  std::string_view unit = text.substr(i);
  if (spaces > 0 && unit.empty()) return false;

  unsigned shift = 0;
  if (!unit.empty()) {
    static constexpr std::string_view kLetters = "kmgtpe";
    std::size_t letter = kLetters.find(lower(unit[0]));
    if (letter != std::string_view::npos) {
      shift = static_cast<unsigned>(10 * (letter + 1));
      unit.remove_prefix(1);
      if (unit.size() == 2 && lower(unit[0]) == 'i' && lower(unit[1]) == 'b') {
        unit.remove_prefix(2);
      } else if (unit.size() == 1 && lower(unit[0]) == 'b') {
        unit.remove_prefix(1);
      }
    } else if (unit.size() == 1 && lower(unit[0]) == 'b') {
      unit.remove_prefix(1);
    }
    if (!unit.empty()) return false;
  }
  if (has_fraction && shift == 0) return false;

  if (shift > 0 && whole > (kMax >> shift)) return false;
  uint64_t value = whole << shift;
  if (has_fraction) {
    // fraction < 10^18 and 2^shift <= 2^60: the product needs more than 64 bits.
    __extension__ typedef unsigned __int128 Wide;
    Wide part = static_cast<Wide>(fraction) * (static_cast<Wide>(1) << shift) / fraction_scale;
    if (part > kMax - value) return false;
    value += static_cast<uint64_t>(part);
  }
  *out = value;
  return true;
}

}  // namespace app
