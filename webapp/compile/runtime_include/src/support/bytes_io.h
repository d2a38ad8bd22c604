/*
 * The TVM runtime sources include "src/support/bytes_io.h" by relative path; the apache-tvm wheel
 * lacks it, while the apache-tvm-tirx wheel ships the same in-memory streams as
 * <tvm/support/bytes_io.h> (put on the include path by webapp/compile/runtime.py).
 */
#ifndef HEARTH_SRC_SUPPORT_BYTES_IO_H_
#define HEARTH_SRC_SUPPORT_BYTES_IO_H_

#include <tvm/support/bytes_io.h>

#endif  // HEARTH_SRC_SUPPORT_BYTES_IO_H_
