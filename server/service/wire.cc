#include "server/service/wire.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::service {

namespace {

// The calling thread's first block for CallArena.
std::vector<std::max_align_t>& ThreadBlock() {
  static thread_local std::vector<std::max_align_t> block(
      16384 / sizeof(std::max_align_t));
  return block;
}

}  // namespace

google::protobuf::ArenaOptions CallArena::Options() {
  std::vector<std::max_align_t>& block = ThreadBlock();
  google::protobuf::ArenaOptions options;
  options.initial_block = reinterpret_cast<char*>(block.data());
  options.initial_block_size = block.size() * sizeof(std::max_align_t);
  return options;
}

CallArena::~CallArena() {
  const size_t used = arena_->SpaceAllocated();
  // The arena's clean-up runs in its blocks: gone before the block grows.
  arena_.reset();
  std::vector<std::max_align_t>& block = ThreadBlock();
  const size_t have = block.size() * sizeof(std::max_align_t);
  if (used > have && have < kMaxBlockBytes) {
    size_t want = have;
    while (want < used && want < kMaxBlockBytes) want *= 2;
    block.assign(want / sizeof(std::max_align_t), std::max_align_t{});
  }
}
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::io::CodedInputStream;

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

const char* WireTypeName(uint32_t type) {
  switch (type) {
    case kVarint:
      return "varint";
    case kFixed64:
      return "64-bit";
    case kLengthDelimited:
      return "length-delimited";
    case kStartGroup:
    case kEndGroup:
      return "group";
    case kFixed32:
      return "32-bit";
  }
  return "invalid";
}

uint32_t ExpectedWireType(const FieldDescriptor& f) {
  switch (f.type()) {
    case FieldDescriptor::TYPE_DOUBLE:
    case FieldDescriptor::TYPE_FIXED64:
    case FieldDescriptor::TYPE_SFIXED64:
      return kFixed64;
    case FieldDescriptor::TYPE_FLOAT:
    case FieldDescriptor::TYPE_FIXED32:
    case FieldDescriptor::TYPE_SFIXED32:
      return kFixed32;
    case FieldDescriptor::TYPE_STRING:
    case FieldDescriptor::TYPE_BYTES:
    case FieldDescriptor::TYPE_MESSAGE:
      return kLengthDelimited;
    case FieldDescriptor::TYPE_GROUP:
      return kStartGroup;
    default:
      return kVarint;
  }
}

constexpr int kMaxDepth = 16;

std::string Describe(std::string_view data, const Descriptor* descriptor,
                     const std::string& prefix, int depth) {
  CodedInputStream in(reinterpret_cast<const uint8_t*>(data.data()),
                      static_cast<int>(data.size()));
  absl::flat_hash_map<int, int> seen;  // repeated fields: next index
  for (;;) {
    const int offset = in.CurrentPosition();
    if (static_cast<size_t>(offset) == data.size()) return "";
    const uint32_t tag = in.ReadTag();
    const int number = static_cast<int>(tag >> 3);
    const uint32_t type = tag & 7;
    if (tag == 0 || number == 0) {
      std::string where = "invalid field tag at octet ";
      absl::StrAppend(&where, offset);
      if (!prefix.empty()) {
        absl::StrAppend(&where, " of ", prefix.substr(0, prefix.size() - 1));
      }
      return where;
    }
    const FieldDescriptor* f =
        descriptor != nullptr ? descriptor->FindFieldByNumber(number) : nullptr;
    std::string name = f != nullptr ? absl::StrCat(prefix, f->name())
                                    : absl::StrCat(prefix, "field ", number);
    if (f != nullptr && f->is_repeated()) {
      absl::StrAppend(&name, "[", seen[number]++, "]");
    }
    if (f != nullptr) {
      const uint32_t expected = ExpectedWireType(*f);
      const bool packed = f->is_packable() && type == kLengthDelimited;
      if (type != expected && !packed) {
        return absl::StrCat(name, ": wire type ", WireTypeName(type),
                            ", expected ", WireTypeName(expected));
      }
    }
    switch (type) {
      case kVarint: {
        uint64_t v;
        if (!in.ReadVarint64(&v)) return absl::StrCat(name, ": truncated");
        break;
      }
      case kFixed64: {
        uint64_t v;
        if (!in.ReadLittleEndian64(&v))
          return absl::StrCat(name, ": truncated");
        break;
      }
      case kFixed32: {
        uint32_t v;
        if (!in.ReadLittleEndian32(&v))
          return absl::StrCat(name, ": truncated");
        break;
      }
      case kLengthDelimited: {
        uint32_t length;
        if (!in.ReadVarint32(&length)) {
          return absl::StrCat(name, ": truncated length");
        }
        const size_t start = static_cast<size_t>(in.CurrentPosition());
        if (length > data.size() - start) {
          return absl::StrCat(name, ": length ", length,
                              " runs past the end of the message");
        }
        const std::string_view value = data.substr(start, length);
        if (!in.Skip(static_cast<int>(length))) {
          return absl::StrCat(name, ": truncated");
        }
        if (f == nullptr) break;
        if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(value)) {
          return absl::StrCat(name, ": not valid UTF-8");
        }
        if (f->type() == FieldDescriptor::TYPE_MESSAGE) {
          if (depth >= kMaxDepth)
            return absl::StrCat(name, ": nested too deep");
          std::string inner = Describe(value, f->message_type(),
                                       absl::StrCat(name, "."), depth + 1);
          if (!inner.empty()) return inner;
        }
        break;
      }
      default:
        return absl::StrCat(name, ": wire type ", WireTypeName(type),
                            " is not used in this API");
    }
  }
}

}  // namespace

std::string DescribeMalformed(std::string_view data,
                              const Descriptor* descriptor) {
  return Describe(data, descriptor, "", 0);
}

absl::Status ParseMessage(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message) {
  // ProtoBufferReader wants a mutable buffer; a copy shares the slices.
  grpc::ByteBuffer copy(bytes);
  message->Clear();
  {
    grpc::ProtoBufferReader reader(&copy);
    if (reader.status().ok() && message->ParseFromZeroCopyStream(&reader)) {
      return absl::OkStatus();
    }
  }
  // The failure path only: flatten and find what is wrong.
  std::vector<grpc::Slice> slices;
  std::string flat;
  if (bytes.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      flat.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return MalformedError(flat, message->GetDescriptor());
}

absl::Status MalformedError(std::string_view data,
                            const google::protobuf::Descriptor* descriptor) {
  std::string why = DescribeMalformed(data, descriptor);
  if (why.empty()) why = "does not parse";
  return absl::InvalidArgumentError(
      absl::StrCat("not a valid ", descriptor->full_name(), ": ", why));
}

absl::Status SerializeMessage(const google::protobuf::Message& message,
                              grpc::ByteBuffer* bytes) {
  bool own = false;
  grpc::Status s =
      grpc::GenericSerialize<grpc::ProtoBufferWriter,
                             google::protobuf::Message>(message, bytes, &own);
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("cannot serialize the answer: ", s.error_message()));
}

namespace {

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* file,
                        int line, const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_FATAL) {
    LogError("protobuf",
             {{"file", file}, {"line", line}, {"message", message}});
    return;
  }
  static LogLimiter* const limiter = new LogLimiter(10);
  int64_t skipped = 0;
  if (!limiter->Allow(&skipped)) return;
  LogWarning("protobuf", {{"message", message},
                          {"file", file},
                          {"line", line},
                          {"similar_lines_left_out", skipped}});
}

}  // namespace

void InstallProtobufLogHandler() {
  google::protobuf::SetLogHandler(&ProtobufLogHandler);
}

absl::Status SplitBatchRequest(std::string_view data,
                               internal::ValidateBatchFrame* frame) {
  bool ok = frame->ParseFromArray(data.data(), static_cast<int>(data.size()));
  // protobuf keeps a known field of the wrong wire type (requests as a
  // varint) as an unknown field; a request would go unanswered, so that is
  // refused like a message that does not parse.
  const google::protobuf::UnknownFieldSet& unknown =
      frame->GetReflection()->GetUnknownFields(*frame);
  for (int i = 0; ok && i < unknown.field_count(); ++i) {
    const int number = unknown.field(i).number();
    ok = number != internal::ValidateBatchFrame::kBatchIdFieldNumber &&
         number != internal::ValidateBatchFrame::kRequestsFieldNumber;
  }
  if (!ok) return MalformedError(data, v1::ValidateBatchRequest::descriptor());
  if (frame->requests_size() > kMaxBatchRequests) {
    return absl::InvalidArgumentError(
        absl::StrCat("ValidateBatchRequest.requests: more than ",
                     kMaxBatchRequests, " requests in one message"));
  }
  return absl::OkStatus();
}

}  // namespace rcptguard::service
