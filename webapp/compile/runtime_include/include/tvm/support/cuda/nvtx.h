/*
 * Hearth's own stand-in for TVM's NVTX profiling header, which the apache-tvm wheel does not ship.
 * NVTX ranges mark CUDA profiler timelines; in a WebAssembly build there is no profiler, so the
 * range object does nothing.
 */
#ifndef HEARTH_TVM_SUPPORT_CUDA_NVTX_H_
#define HEARTH_TVM_SUPPORT_CUDA_NVTX_H_

#include <string>

namespace tvm {
namespace support {

class NVTXScopedRange {
 public:
  explicit NVTXScopedRange(const char*) {}
  explicit NVTXScopedRange(const std::string&) {}
  NVTXScopedRange(const NVTXScopedRange&) = delete;
  NVTXScopedRange& operator=(const NVTXScopedRange&) = delete;
};

}  // namespace support
}  // namespace tvm

#endif  // HEARTH_TVM_SUPPORT_CUDA_NVTX_H_
