// Text from outside (SMTP clients, peers, certificates) made safe to put
// into messages, logs and other text protocols.
//
// Attacker-controlled strings may hold any octets and be of any length:
// before such a string goes into an error message, a log line or a JSON
// document it is clipped and its invalid UTF-8 and control characters are
// escaped, so that it cannot break the format or hide the rest of the line.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_COMMON_TEXT_H_
#define RCPTGUARD_COMMON_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace rcptguard {

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 when
// `s` is empty or starts with a byte that begins no well-formed sequence.
size_t Utf8SequenceLength(std::string_view s);

// `s` as printable, valid UTF-8 of at most about `max_bytes` octets:
// control characters (C0, DEL) and octets that are not part of a
// well-formed UTF-8 sequence become \xHH; a backslash becomes "\\"; when
// longer than `max_bytes`, the text is cut on a character boundary and
// "...(N octets)" with the original length is appended.
std::string SafeText(std::string_view s, size_t max_bytes = 256);

// Appends `s` escaped for the inside of a JSON string (RFC 8259; also the
// quoted values of logfmt log lines): '"', '\\' and control characters
// escaped, and octets outside well-formed UTF-8 sequences as \u00HH (the
// Latin-1 character of that octet), so the result is valid UTF-8 and valid
// JSON whatever `s` holds. When `s` is longer than `max_bytes` (0: no
// limit), only its first `max_bytes` octets are escaped and
// "...(N octets)" is appended.
void AppendJsonEscaped(std::string& out, std::string_view s,
                       size_t max_bytes = 0);

// `s` as a quoted JSON string (AppendJsonEscaped between quotes).
std::string JsonQuote(std::string_view s);

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_TEXT_H_
