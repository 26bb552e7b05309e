// LDIF reading: a streaming reader for RFC 2849 content LDIF.
//
// LdifReader turns a byte stream (an `ldifde` or `ldapsearch -LLL` export)
// into LdifRecords one at a time, so a file of millions of entries is read
// in bounded memory. It understands the whole content-LDIF syntax: an
// optional `version: 1` line, comments (folded ones too), folded lines,
// `attr: value`, `attr:: base64`, `dn::`, attribute options
// (`cn;lang-en`), CRLF or LF line ends, any number of blank lines between
// records, and a last line with or without a newline.
//
// Contract:
//   * Next() returns the next record, std::nullopt at the end of input, or
//     an InvalidArgument error whose message is "SOURCE:LINE: reason", LINE
//     being the 1-based physical line at fault: where the offending logical
//     line starts, the overlong or unreadable physical line itself, or for
//     record-wide limits the record's dn line. An error is final: every
//     later Next() returns it again. Callers must discard what they read
//     before an error (no partial directories).
//   * Not accepted: change records (`changetype:` / `control:`), URL values
//     (`attr:< file://...`), a version other than 1, invalid base64, a logical
//     line over kMaxLdifLineBytes, a record with over kMaxLdifRecordValues
//     attribute values or over kMaxLdifRecordBytes of values.
//   * Lenient where real exports are sloppy (see docs/ldap-mapping.md):
//     trailing spaces and tabs of plain values are dropped; plain values may
//     hold any bytes (UTF-8 from sloppy exporters, or a leading ':' / '<'
//     after the separating spaces); a line of only spaces and tabs where no
//     continuation can be is a blank line; base64 with non-zero pad bits is
//     accepted.
//
// Thread safety: an LdifReader is not thread-safe; use one reader per stream
// from one thread at a time. LdifRecord is a plain value type.
//
// Example:
//   std::ifstream in(path, std::ios::binary);
//   LdifReader reader(&in, path);
//   while (true) {
//     RG_ASSIGN_OR_RETURN(std::optional<LdifRecord> record, reader.Next());
//     if (!record.has_value()) break;
//     for (std::string_view mail : record->Values("mail")) ...
//   }
#ifndef RCPTGUARD_SERVER_LDIF_LDIF_H_
#define RCPTGUARD_SERVER_LDIF_LDIF_H_

#include <cstddef>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rcptguard::ldif {

// Memory bounds. A longer line, or a bigger record, is an error rather than
// an allocation an attacker-controlled (or corrupt) file can steer.
inline constexpr size_t kMaxLdifLineBytes = size_t{1} << 20;     // unfolded
inline constexpr size_t kMaxLdifRecordValues = 100000;           // per record
inline constexpr size_t kMaxLdifRecordBytes = size_t{64} << 20;  // per record

struct LdifAttribute {
  // Attribute type, lower-cased, without options ("mail" for "Mail;binary").
  std::string name;
  // ";binary" etc. as written (lower-cased), empty if none.
  std::string options;
  // Decoded value (base64 decoded for "::").
  std::string value;
};

struct LdifRecord {
  std::string dn;  // decoded
  int line = 0;    // line number where the record starts (1-based)
  std::vector<LdifAttribute> attributes;

  // All values of an attribute (name compared case-insensitively, options
  // ignored), in file order. The views point into this record.
  std::vector<std::string_view> Values(std::string_view name) const;
  // Whether one of the objectClass values equals `oc`, case-insensitively.
  bool HasObjectClass(std::string_view oc) const;
};

// Streaming RFC 2849 content-LDIF reader. Not thread-safe (one reader per
// stream).
class LdifReader {
 public:
  // `in` must outlive the reader. `source_name` prefixes error messages
  // (usually the file path).
  LdifReader(std::istream* in, std::string source_name);

  LdifReader(const LdifReader&) = delete;
  LdifReader& operator=(const LdifReader&) = delete;

  // Next record, std::nullopt at end of input, or InvalidArgument
  // "SOURCE:LINE: reason".
  absl::StatusOr<std::optional<LdifRecord>> Next();

 private:
  enum class ReadResult { kLine, kEof, kError };

  // Reads one physical line (without its LF or CRLF) into a view that stays
  // valid until the next call. kError (with line_error_) on a read error or
  // an overlong line.
  ReadResult ReadPhysicalLine(std::string_view* line);
  // Reads the next chunk of input into buffer_. False (and line_error_) on a
  // stream read error.
  bool Refill();
  // Reads one logical line (continuations unfolded) into logical_, its first
  // physical line number into logical_line_.
  ReadResult ReadLogicalLine();
  absl::Status Error(int line, std::string_view reason) const;
  absl::StatusOr<std::optional<LdifRecord>> Fail(absl::Status status);

  // Constant after construction.
  std::istream* const in_;
  const std::string source_name_;

  // Input buffer; [buffer_pos_, buffer_end_) is not yet consumed.
  std::string buffer_;
  size_t buffer_pos_ = 0;
  size_t buffer_end_ = 0;
  bool input_done_ = false;
  std::string long_line_;  // a physical line that spans buffer refills
  bool assembling_long_line_ = false;  // long_line_ is not complete yet
  int physical_line_ = 0;              // number of the last physical line read

  // One physical line of look-ahead, needed to see whether the next line
  // continues the current one.
  std::string lookahead_;
  int lookahead_line_ = 0;
  bool has_lookahead_ = false;

  std::string logical_;
  int logical_line_ = 0;

  bool version_allowed_ = true;  // nothing but comments seen yet
  bool at_end_ = false;
  absl::Status error_;  // sticky once set
  // Reason and line of a kError from the line readers: an overlong physical
  // line or a read error at that line, or an overlong unfolded line at the
  // line where it starts.
  std::string line_error_;
  int line_error_line_ = 0;
};

// Whether `description` is an LDAP attribute description as RFC 4512 writes
// it: a type name (letter, then letters, digits, '-') or numeric OID,
// followed by ";option" parts made of letters, digits and '-'. '_' is also
// accepted in names and options, as some directories allow it.
bool IsValidAttributeDescription(std::string_view description);

}  // namespace rcptguard::ldif

#endif  // RCPTGUARD_SERVER_LDIF_LDIF_H_
