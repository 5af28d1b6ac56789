#pragma once
// Sizes, rates and durations for people, and sizes from people (command-line options).

#include <cstdint>
#include <string>
#include <string_view>

namespace app {

// IEC units, powers of 1024. Below 1024 the exact count: "0 B", "1023 B". Above, the
// largest unit that keeps the value under 1024, with one decimal for KiB and MiB and two
// for GiB and larger, where a tenth is already 100 MiB: "1.0 KiB", "200.0 MiB",
// "1.50 GiB", "3.25 TiB". Rounding never shows 1024 of a unit: that is 1.00 of the next.
std::string format_bytes(uint64_t bytes);

// A size as `ls -h` prints it, for columns: the exact count below 1024 ("1023"), then
// one letter of powers of 1024, rounded up so a size is never shown smaller than it is,
// with one decimal below 10 ("1.0K", "9.9K", "10K", "2.9M", "1023M", "1.0G").
std::string format_size_short(uint64_t bytes);

// format_bytes() of a rate, rounded the same way, with "/s": "512 B/s", "112.4 MiB/s".
// Negative or NaN rates print as "0 B/s".
std::string format_rate(double bytes_per_second);

// `part` of `whole`, both in the unit and with the decimals `whole` is shown in, so that
// the text is never wider than for part == whole while part <= whole: a progress line
// can give it a fixed width. kSpaced as format_bytes(): "4.7 MiB / 4.8 MiB",
// "0.00 GiB / 1.50 GiB", "512 B / 1000 B"; kCompact: "4.7/4.8 MiB"; kLetters as `ls -h`
// letters sizes but rounded to the nearest, with no space, one decimal below 10 of the
// unit, none from there, and never four digits (999.5 KiB is "1.0M"): "4.7/4.8M",
// "116/200M", "512/999B".
enum class UnitStyle { kSpaced, kCompact, kLetters };
std::string format_bytes_of(uint64_t part, uint64_t whole, UnitStyle style);

// A rate in kLetters: "1.2M/s", "112M/s", "512B/s"; negative or NaN as "0B/s".
std::string format_rate_letters(double bytes_per_second);

// "0.42 s" below 10 s (two decimals), "12.3 s" below a minute (one decimal), "2m05s"
// below an hour, then "1h02m" (rounded to the minute). Negative means 0; NaN and
// infinity, as for an ETA that cannot be estimated yet, print as "--".
std::string format_duration(double seconds);

// format_duration() in at most five characters (below 10,000 hours), for a progress
// line in few columns: no space, and from ten minutes on no seconds, from ten hours on
// no minutes: "0.42s", "12.3s", "9m59s", "27m", "1h02m", "12h". "--" as there.
std::string format_duration_letters(double seconds);

// Parses a size: digits, an optional fraction, optional spaces, then an optional unit
// K, M, G, T, P or E (any case) alone or followed by "B" or "iB"; or a bare "B".
// Units are powers of 1024 whatever the spelling: "200M", "1G", "4096", "1.5GiB",
// "64 KiB". A fraction needs a unit and is rounded down to a whole byte. Signs,
// exponents, other whitespace, more than 18 fraction digits, and values above
// UINT64_MAX are rejected. On failure *out is untouched.
bool parse_size(std::string_view text, uint64_t* out);

}  // namespace app
