/*
 * Hearth's own stand-in for TVM's src/support/base64.h (absent from the apache-tvm wheel):
 * streams that write and read standard base64 (RFC 4648, '=' padding) over another stream.
 * tensor.cc uses them to put tensors into JSON.
 */
#ifndef HEARTH_SRC_SUPPORT_BASE64_H_
#define HEARTH_SRC_SUPPORT_BASE64_H_

#include <tvm/ffi/error.h>
#include <tvm/support/io.h>

#include <cstddef>
#include <cstdint>

namespace tvm {
namespace support {
namespace base64 {

inline const char* Alphabet() {
  return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

/*! \return The 6-bit value of a base64 character, or -1 for anything else. */
inline int Decode(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

inline bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace base64

/*! \brief Encodes what is written to it; call Finish() once at the end to flush the padding. */
class Base64OutStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;

  explicit Base64OutStream(Stream* out) : out_(out) {}

  size_t Write(const void* ptr, size_t size) override {
    const unsigned char* bytes = static_cast<const unsigned char*>(ptr);
    for (size_t i = 0; i < size; ++i) {
      group_[group_size_++] = bytes[i];
      if (group_size_ == 3) EmitGroup();
    }
    return size;
  }

  size_t Read(void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "Base64OutStream cannot be read";
    return 0;
  }

  /*! \brief Write the last partial group with '=' padding. */
  void Finish() {
    if (group_size_ != 0) EmitGroup();
  }

 private:
  void EmitGroup() {
    const char* alphabet = base64::Alphabet();
    for (size_t i = group_size_; i < 3; ++i) group_[i] = 0;
    const uint32_t v = (uint32_t{group_[0]} << 16) | (uint32_t{group_[1]} << 8) | group_[2];
    char text[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                    alphabet[v & 63]};
    if (group_size_ < 3) text[3] = '=';
    if (group_size_ < 2) text[2] = '=';
    out_->Write(text, 4);
    group_size_ = 0;
  }

  Stream* out_;
  unsigned char group_[3] = {0, 0, 0};
  size_t group_size_ = 0;
};

/*! \brief Decodes base64 read from another stream; call InitPosition() before the first Read. */
class Base64InStream : public Stream {
 public:
  using Stream::Read;
  using Stream::Write;

  explicit Base64InStream(Stream* in) : in_(in) {}

  /*! \brief Skip leading whitespace. */
  void InitPosition() {
    while (true) {
      char c;
      if (in_->Read(&c, 1) != 1) {
        ended_ = true;
        return;
      }
      if (!base64::IsSpace(c)) {
        pending_char_ = c;
        has_pending_char_ = true;
        return;
      }
    }
  }

  size_t Read(void* ptr, size_t size) override {
    unsigned char* out = static_cast<unsigned char*>(ptr);
    size_t done = 0;
    while (done < size) {
      if (decoded_pos_ == decoded_size_ && !DecodeGroup()) break;
      out[done++] = decoded_[decoded_pos_++];
    }
    return done;
  }

  size_t Write(const void*, size_t) override {
    TVM_FFI_THROW(InternalError) << "Base64InStream cannot be written";
    return 0;
  }

 private:
  // Next non-space character, or false at the end of the input.
  bool NextChar(char* c) {
    if (has_pending_char_) {
      has_pending_char_ = false;
      *c = pending_char_;
      return true;
    }
    while (!ended_) {
      if (in_->Read(c, 1) != 1) {
        ended_ = true;
        break;
      }
      if (!base64::IsSpace(*c)) return true;
    }
    return false;
  }

  // Decode the next four characters into up to three bytes; false when no input or padding is left.
  bool DecodeGroup() {
    if (finished_) return false;
    char text[4];
    size_t n = 0;
    while (n < 4 && NextChar(&text[n])) ++n;
    if (n == 0) return false;
    TVM_FFI_ICHECK_EQ(n, 4) << "base64 input length is not a multiple of 4";
    uint32_t v = 0;
    size_t bytes = 3;
    for (size_t i = 0; i < 4; ++i) {
      int d = 0;
      if (text[i] == '=') {
        TVM_FFI_ICHECK_GE(i, 2) << "misplaced '=' in base64 input";
        bytes = bytes < i - 1 ? bytes : i - 1;
        finished_ = true;
      } else {
        d = base64::Decode(text[i]);
        TVM_FFI_ICHECK(d >= 0 && !finished_) << "invalid base64 character '" << text[i] << "'";
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    decoded_[0] = static_cast<unsigned char>(v >> 16);
    decoded_[1] = static_cast<unsigned char>(v >> 8);
    decoded_[2] = static_cast<unsigned char>(v);
    decoded_pos_ = 0;
    decoded_size_ = bytes;
    return bytes != 0;
  }

  Stream* in_;
  char pending_char_ = 0;
  bool has_pending_char_ = false;
  bool ended_ = false;
  bool finished_ = false;
  unsigned char decoded_[3] = {0, 0, 0};
  size_t decoded_pos_ = 0;
  size_t decoded_size_ = 0;
};

}  // namespace support
}  // namespace tvm

#endif  // HEARTH_SRC_SUPPORT_BASE64_H_
