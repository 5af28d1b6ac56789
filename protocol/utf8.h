#pragma once
// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF, no truncated sequences. The header parser uses it on raw frame bytes;
// the server uses valid_utf8() to skip directory names JSON cannot carry.

#include <cstddef>
#include <string_view>

namespace protocol {

// Length (1..4) of the well-formed sequence starting at p[0], or 0 if the bytes at
// p[0..avail) do not start one. avail must be at least 1.
size_t utf8_sequence_length(const unsigned char* p, size_t avail);

// True if all of text is well-formed. On false and if bad_offset is non-null, stores the
// offset of the first byte of the first ill-formed sequence.
bool valid_utf8(std::string_view text, size_t* bad_offset = nullptr);

}  // namespace protocol
