/*
 * Hearth's own stand-in for TVM's src/support/arena.h (absent from the apache-tvm wheel).
 * The RPC endpoint needs scratch memory that lives until the next RecycleAll(); one heap block per
 * request is enough for that (the browser runtime rarely, if ever, uses RPC).
 */
#ifndef HEARTH_SRC_SUPPORT_ARENA_H_
#define HEARTH_SRC_SUPPORT_ARENA_H_

#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

namespace tvm {
namespace support {

class Arena {
 public:
  /*! \brief Uninitialised, suitably aligned room for `count` values of T, freed by RecycleAll(). */
  template <typename T>
  T* allocate_(size_t count) {
    static_assert(std::is_trivially_destructible<T>::value, "the arena never runs destructors");
    const size_t units = (sizeof(T) * count + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    blocks_.emplace_back(new std::max_align_t[units == 0 ? 1 : units]);
    return reinterpret_cast<T*>(blocks_.back().get());
  }

  /*! \brief Free everything allocated so far. */
  void RecycleAll() { blocks_.clear(); }

 private:
  std::vector<std::unique_ptr<std::max_align_t[]>> blocks_;
};

}  // namespace support
}  // namespace tvm

#endif  // HEARTH_SRC_SUPPORT_ARENA_H_
