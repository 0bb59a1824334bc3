#include "server/service/wire_reader.h"

#include <algorithm>
#include <cstring>

namespace gameopt {

WireReader::WireReader(const std::vector<grpc::Slice>& slices) {
  chunks_.reserve(slices.size());
  for (const grpc::Slice& s : slices) {
    if (s.size() == 0) continue;
    chunks_.emplace_back(reinterpret_cast<const char*>(s.begin()), s.size());
    limit_ += s.size();
  }
}

bool WireReader::PushLimit(uint64_t length, uint64_t* old) {
  if (length > limit_ - position_) return false;
  *old = limit_;
  limit_ = position_ + length;
  return true;
}

bool WireReader::EnterMessage(uint64_t length, uint64_t* old) {
  if (depth_ <= 0 || !PushLimit(length, old)) return false;
  --depth_;
  return true;
}

inline const uint8_t* WireReader::Peek(uint64_t n) {
  if (n == 0 || n > limit_ - position_) return nullptr;
  SkipEmpty();
  const absl::string_view& chunk = chunks_[chunk_];
  if (chunk.size() - offset_ < n) return nullptr;
  return reinterpret_cast<const uint8_t*>(chunk.data()) + offset_;
}

// Inlined into its three callers, each with its own max_bytes.
inline WireReader::VarintBytes WireReader::ReadVarintBytes(int max_bytes) {
  VarintBytes v;
  if (position_ < limit_ && offset_ < chunks_[chunk_].size()) {
    const auto first = static_cast<uint8_t>(chunks_[chunk_][offset_]);
    if (first < 0x80) {  // most tags, lengths of names, small values
      ++offset_;
      ++position_;
      v.value = first;
      v.bytes = 1;
      v.ended = true;
      return v;
    }
  }
  const auto take = [&v](uint8_t byte) {
    v.value |= static_cast<uint64_t>(byte & 0x7f) << (7 * v.bytes);
    v.ended = (byte & 0x80) == 0;
    ++v.bytes;
  };
  if (const uint8_t* p = Peek(max_bytes)) {  // no checks per byte
    while (v.bytes < max_bytes && !v.ended) take(p[v.bytes]);
    offset_ += v.bytes;
    position_ += v.bytes;
    return v;
  }
  uint8_t byte;
  while (v.bytes < max_bytes && !v.ended && ReadByte(&byte)) take(byte);
  return v;
}

bool WireReader::ReadVarint(uint64_t* value) {
  const VarintBytes v = ReadVarintBytes(10);  // the bits past 64 dropped
  if (!v.ended) return false;                 // more than 10 bytes
  *value = v.value;
  return true;
}

bool WireReader::ReadFixed64(uint64_t* value) {
  uint64_t result = 0;
  for (int i = 0; i < 8; ++i) {
    uint8_t byte;
    if (!ReadByte(&byte)) return false;
    result |= static_cast<uint64_t>(byte) << (8 * i);
  }
  *value = result;
  return true;
}

bool WireReader::ReadTag(int* field, int* wire_type) {
  if (AtLimit()) return false;
  // Protobuf reads a tag as at most 5 bytes and keeps its low 32 bits.
  const VarintBytes v = ReadVarintBytes(5);
  const uint64_t tag = v.value & 0xffffffffu;
  *field = static_cast<int>(tag >> 3);
  *wire_type = static_cast<int>(tag & 7);
  last_field_ = *field;
  if (!v.ended || *field == 0) {
    bad_tag_ = true;  // not a clean end, even if at the limit now
    return false;
  }
  return true;
}

bool WireReader::ReadLength(uint64_t* length) {
  // Protobuf's ReadSize: at most 5 bytes, below 2 GiB (a fifth byte of 8
  // or more is a value of at least 2^31, refused below).
  const VarintBytes v = ReadVarintBytes(5);
  if (!v.ended || v.value > 0x7fffffff - 16) return false;
  *length = v.value;
  return v.value <= limit_ - position_;
}

bool WireReader::ReadPieces(uint64_t length,
                            std::vector<absl::string_view>* pieces) {
  if (length > limit_ - position_) return false;
  while (length > 0) {
    SkipEmpty();
    const absl::string_view& chunk = chunks_[chunk_];
    const uint64_t take = std::min<uint64_t>(length, chunk.size() - offset_);
    pieces->push_back(chunk.substr(offset_, take));
    offset_ += take;
    position_ += take;
    length -= take;
  }
  return true;
}

bool WireReader::ReadContiguous(uint64_t length, absl::string_view* out) {
  if (length > limit_ - position_) return false;
  if (length == 0) {
    *out = absl::string_view();
    return true;
  }
  SkipEmpty();
  const absl::string_view& chunk = chunks_[chunk_];
  if (chunk.size() - offset_ < length) return false;
  *out = chunk.substr(offset_, length);
  offset_ += length;
  position_ += length;
  return true;
}

bool WireReader::Skip(int wire_type) {
  uint64_t value;
  switch (wire_type) {
    case kVarint:
      return ReadVarint(&value);
    case kFixed64:
      return SkipBytes(8);
    case kLengthDelimited:
      return ReadLength(&value) && SkipBytes(value);
    case kFixed32:
      return SkipBytes(4);
    case kStartGroup:
      return SkipGroup(last_field_);
    default:  // an end group here, invalid wire types
      return false;
  }
}

bool WireReader::SkipGroup(int field) {
  if (depth_ <= 0) return false;
  --depth_;
  int inner, wire_type;
  while (ReadTag(&inner, &wire_type)) {
    if (wire_type == kEndGroup) {
      ++depth_;
      return inner == field;
    }
    if (!Skip(wire_type)) return false;
  }
  return false;  // the end of the message, or a bad tag, before the end
}

bool IsValidUtf8(absl::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    if (end - p >= 8) {  // ASCII (names, as a rule) eight bytes at a time
      uint64_t eight;
      std::memcpy(&eight, p, 8);
      if ((eight & 0x8080808080808080u) == 0) {
        p += 8;
        continue;
      }
    }
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;                               // continuation bytes
    unsigned char lo = 0x80, hi = 0xbf;  // the first one's range
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if (p[i] < 0x80 || p[i] > 0xbf) return false;
    }
    p += n + 1;
  }
  return true;
}

void WireReader::SkipEmpty() {
  while (offset_ == chunks_[chunk_].size()) {
    ++chunk_;
    offset_ = 0;
  }
}

bool WireReader::ReadByte(uint8_t* byte) {
  if (position_ >= limit_) return false;
  SkipEmpty();
  *byte = static_cast<uint8_t>(chunks_[chunk_][offset_]);
  ++offset_;
  ++position_;
  return true;
}

bool WireReader::SkipBytes(uint64_t n) {
  if (n > limit_ - position_) return false;
  while (n > 0) {
    SkipEmpty();
    const uint64_t take =
        std::min<uint64_t>(n, chunks_[chunk_].size() - offset_);
    offset_ += take;
    position_ += take;
    n -= take;
  }
  return true;
}

}  // namespace gameopt
