/*
 * Hearth's own stand-in for TVM's src/support/ring_buffer.h (absent from the apache-tvm wheel):
 * a first-in first-out byte queue with the interface the RPC endpoint uses.
 */
#ifndef HEARTH_SRC_SUPPORT_RING_BUFFER_H_
#define HEARTH_SRC_SUPPORT_RING_BUFFER_H_

#include <tvm/ffi/error.h>

#include <cstddef>
#include <cstring>
#include <vector>

namespace tvm {
namespace support {

class RingBuffer {
 public:
  /*! \brief Number of bytes written and not yet read. */
  size_t bytes_available() const { return data_.size() - head_; }

  /*! \brief Make room for at least `n` unread bytes (an optimisation only). */
  void Reserve(size_t n) {
    Compact();
    if (data_.capacity() < n) data_.reserve(n);
  }

  /*! \brief Append `size` bytes. */
  void Write(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    data_.insert(data_.end(), bytes, bytes + size);
  }

  /*! \brief Take the oldest `size` bytes; that many must be available. */
  void Read(void* data, size_t size) {
    TVM_FFI_ICHECK_LE(size, bytes_available());
    std::memcpy(data, data_.data() + head_, size);
    head_ += size;
    Compact();
  }

  /*!
   * \brief Hand up to `max_nbytes` of the oldest bytes to `fsend(const void*, size_t) -> size_t`
   *  and drop as many as it reports consumed.
   * \return The number of bytes consumed.
   */
  template <typename FSend>
  size_t ReadWithCallback(FSend fsend, size_t max_nbytes) {
    const size_t size = max_nbytes < bytes_available() ? max_nbytes : bytes_available();
    const size_t sent = fsend(data_.data() + head_, size);
    TVM_FFI_ICHECK_LE(sent, size);
    head_ += sent;
    Compact();
    return sent;
  }

  /*!
   * \brief Let `frecv(void*, size_t) -> size_t` fill up to `max_nbytes` new bytes at the end.
   * \return The number of bytes it reported written.
   */
  template <typename FRecv>
  size_t WriteWithCallback(FRecv frecv, size_t max_nbytes) {
    const size_t old_size = data_.size();
    data_.resize(old_size + max_nbytes);
    const size_t received = frecv(data_.data() + old_size, max_nbytes);
    TVM_FFI_ICHECK_LE(received, max_nbytes);
    data_.resize(old_size + received);
    return received;
  }

 private:
  // Drop consumed bytes once they are at least half the buffer, so a long-lived queue stays small
  // while each byte is moved only a bounded number of times.
  void Compact() {
    if (head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    } else if (head_ * 2 >= data_.size()) {
      data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  std::vector<char> data_;
  size_t head_ = 0;
};

}  // namespace support
}  // namespace tvm

#endif  // HEARTH_SRC_SUPPORT_RING_BUFFER_H_
