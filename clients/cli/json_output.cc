#include "clients/cli/json_output.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/protobuf/util/time_util.h"

namespace rcptguard::cli {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void AppendMessage(std::string& out, const Message& message);

void AppendDouble(std::string& out, double v) {
  // JSON has no NaN or infinity.
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  absl::StrAppend(&out, v);
}

void AppendValue(std::string& out, const Message& message,
                 const FieldDescriptor* field, int index) {
  const Reflection* r = message.GetReflection();
  const bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      absl::StrAppend(&out, repeated
                                ? r->GetRepeatedInt32(message, field, index)
                                : r->GetInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      absl::StrAppend(&out, repeated
                                ? r->GetRepeatedInt64(message, field, index)
                                : r->GetInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      absl::StrAppend(&out, repeated
                                ? r->GetRepeatedUInt32(message, field, index)
                                : r->GetUInt32(message, field));
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      absl::StrAppend(&out, repeated
                                ? r->GetRepeatedUInt64(message, field, index)
                                : r->GetUInt64(message, field));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      AppendDouble(out, repeated ? r->GetRepeatedDouble(message, field, index)
                                 : r->GetDouble(message, field));
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      AppendDouble(out, repeated ? r->GetRepeatedFloat(message, field, index)
                                 : r->GetFloat(message, field));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (repeated ? r->GetRepeatedBool(message, field, index)
                       : r->GetBool(message, field))
                 ? "true"
                 : "false";
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int number = repeated
                             ? r->GetRepeatedEnumValue(message, field, index)
                             : r->GetEnumValue(message, field);
      const auto* value = field->enum_type()->FindValueByNumber(number);
      if (value != nullptr) {
        out += JsonQuote(value->name());
      } else {
        absl::StrAppend(&out, number);
      }
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& v =
          repeated
              ? r->GetRepeatedStringReference(message, field, index, &scratch)
              : r->GetStringReference(message, field, &scratch);
      out += JsonQuote(v);
      break;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub = repeated
                               ? r->GetRepeatedMessage(message, field, index)
                               : r->GetMessage(message, field);
      AppendMessage(out, sub);
      break;
    }
  }
}

void AppendMessage(std::string& out, const Message& message) {
  if (message.GetDescriptor()->full_name() == "google.protobuf.Timestamp") {
    google::protobuf::Timestamp ts;
    ts.CopyFrom(message);
    out += JsonQuote(google::protobuf::util::TimeUtil::ToString(ts));
    return;
  }
  out += '{';
  AppendJsonMembers(out, message);
  out += '}';
}

}  // namespace

void AppendJsonMembers(std::string& out, const Message& message,
                       std::string_view skip) {
  const auto* descriptor = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  bool first = true;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor* field = descriptor->field(i);
    if (field->name() == skip) continue;
    // An unset message field (e.g. a Timestamp never filled) is left out,
    // as protobuf's JSON printer does; scalars are always printed.
    if (!field->is_repeated() &&
        field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
        !r->HasField(message, field)) {
      continue;
    }
    if (!first) out += ", ";
    first = false;
    absl::StrAppend(&out, JsonQuote(field->name()), ": ");
    if (field->is_repeated()) {
      out += '[';
      const int n = r->FieldSize(message, field);
      for (int j = 0; j < n; ++j) {
        if (j > 0) out += ", ";
        AppendValue(out, message, field, j);
      }
      out += ']';
    } else {
      AppendValue(out, message, field, 0);
    }
  }
}

std::string ToJson(const Message& message) {
  std::string out;
  AppendMessage(out, message);
  out += '\n';
  return out;
}

}  // namespace rcptguard::cli
