/*
 * Hearth's own stand-in for the compiler-rt half-float header that the apache-tvm wheel does not ship.
 * Only what the TVM web runtime sources use: widening an IEEE binary format to a wider one
 * (sort.cc compares float16 keys as float32).
 */
#ifndef HEARTH_BUILTIN_FP16_H_
#define HEARTH_BUILTIN_FP16_H_

#include <cstdint>
#include <cstring>

// Widen an IEEE-754 binary value (sign, exponent, SRC_SIG_BITS of mantissa, stored in SRC_REP_T)
// to the wider format DST_T. The name and template parameters are those the TVM sources call.
template <typename SRC_T, typename SRC_REP_T, int SRC_SIG_BITS, typename DST_T, typename DST_REP_T,
          int DST_SIG_BITS>
static inline DST_T __extendXfYf2__(SRC_T a) {
  static_assert(DST_SIG_BITS >= SRC_SIG_BITS, "only widening is supported");
  constexpr int kSrcBits = sizeof(SRC_REP_T) * 8;
  constexpr int kSrcExpBits = kSrcBits - SRC_SIG_BITS - 1;
  constexpr int kDstBits = sizeof(DST_REP_T) * 8;
  constexpr int kDstExpBits = kDstBits - DST_SIG_BITS - 1;
  constexpr uint64_t kSrcExpMax = (uint64_t{1} << kSrcExpBits) - 1;
  constexpr uint64_t kDstExpMax = (uint64_t{1} << kDstExpBits) - 1;
  constexpr int64_t kSrcBias = static_cast<int64_t>(kSrcExpMax >> 1);
  constexpr int64_t kDstBias = static_cast<int64_t>(kDstExpMax >> 1);
  constexpr uint64_t kSrcSigMask = (uint64_t{1} << SRC_SIG_BITS) - 1;
  constexpr int kSigShift = DST_SIG_BITS - SRC_SIG_BITS;

  SRC_REP_T src_rep;
  std::memcpy(&src_rep, &a, sizeof(src_rep));
  const uint64_t bits = static_cast<uint64_t>(src_rep);
  const uint64_t sign = bits >> (kSrcBits - 1);
  uint64_t exp = (bits >> SRC_SIG_BITS) & kSrcExpMax;
  uint64_t sig = bits & kSrcSigMask;

  uint64_t dst_exp;
  uint64_t dst_sig;
  if (exp == kSrcExpMax) {
    // Infinity or NaN: all-ones exponent; the mantissa (NaN payload) keeps its top bits.
    dst_exp = kDstExpMax;
    dst_sig = sig << kSigShift;
  } else if (exp != 0) {
    dst_exp = static_cast<uint64_t>(static_cast<int64_t>(exp) - kSrcBias + kDstBias);
    dst_sig = sig << kSigShift;
  } else if (sig == 0) {
    dst_exp = 0;
    dst_sig = 0;
  } else {
    // Subnormal source: shift until the implicit leading one appears, lowering the exponent.
    int64_t unbiased = 1 - kSrcBias;
    while ((sig & (uint64_t{1} << SRC_SIG_BITS)) == 0) {
      sig <<= 1;
      --unbiased;
    }
    sig &= kSrcSigMask;
    dst_exp = static_cast<uint64_t>(unbiased + kDstBias);
    dst_sig = sig << kSigShift;
  }
  const DST_REP_T dst_rep = static_cast<DST_REP_T>((sign << (kDstBits - 1)) |
                                                   (dst_exp << DST_SIG_BITS) | dst_sig);
  DST_T result;
  std::memcpy(&result, &dst_rep, sizeof(result));
  return result;
}

#endif  // HEARTH_BUILTIN_FP16_H_
