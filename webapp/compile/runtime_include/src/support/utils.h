/*
 * Hearth's own stand-in for TVM's src/support/utils.h (absent from the apache-tvm wheel):
 * only the string helper the web runtime sources call.
 */
#ifndef HEARTH_SRC_SUPPORT_UTILS_H_
#define HEARTH_SRC_SUPPORT_UTILS_H_

#include <string>

namespace tvm {
namespace support {

// std::string parameters (not string_view): callers pass ffi::String, which converts to std::string.
/*! \brief Whether `value` begins with `prefix`. */
inline bool StartsWith(const std::string& value, const std::string& prefix) {
  return value.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace support
}  // namespace tvm

#endif  // HEARTH_SRC_SUPPORT_UTILS_H_
