// quant/quant_scheme.h — how a weight tensor is quantized: bit width, symmetric or asymmetric, and granularity.
//
//   bits         2..8
//   symmetric    q in [-(2^(b-1) - 1), 2^(b-1) - 1], w ~ q * s          (zero point 0; int8 keeps -128 unused)
//   asymmetric   q in [0, 2^b - 1],                  w ~ (q - z) * s    (z an integer zero point in the same range)
//   granularity  per_tensor: one (s, z) for the whole (N,K) weight
//                per_channel: one per output channel (row n of W)
//                per_group: one per row and per group of group_size consecutive input channels (columns);
//                           the last group of a row is shorter when K is not a multiple of group_size
//
// A scheme is stored as JSON in the quantized checkpoint's "__metadata__" (quant/quantized_checkpoint.h):
//   {"bits": 4, "symmetric": true, "granularity": "per_group", "group_size": 128}
// ("group_size" only for per_group). Reading it back rejects unknown keys, granularities and out-of-range values
// with a message naming the offending field.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/json.h"

namespace bertforge::quant {

enum class Granularity : uint8_t { kPerTensor, kPerChannel, kPerGroup };

const char* granularity_name(Granularity g);  // "per_tensor", "per_channel", "per_group"
absl::StatusOr<Granularity> granularity_from_name(absl::string_view name);

struct QuantScheme {
  int bits = 8;
  bool symmetric = true;
  Granularity granularity = Granularity::kPerChannel;
  int64_t group_size = 128;  // used by per_group only

  static constexpr int kMinBits = 2;
  static constexpr int kMaxBits = 8;

  // The integer range of the codes: [qmin(), qmax()].
  int32_t qmin() const { return symmetric ? -((1 << (bits - 1)) - 1) : 0; }
  int32_t qmax() const { return symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  // Codes of 4 bits or fewer are stored two per byte (quant/weight_quant.h).
  bool packed() const { return bits <= 4; }

  // OK, or InvalidArgument naming the field out of range.
  absl::Status validate() const;

  Json to_json() const;
  // Strict: every required key present with the right type, no unknown key, then validate().
  static absl::StatusOr<QuantScheme> from_json(const Json& json);

  // "int4 symmetric per_group(128)": for logs and messages.
  std::string str() const;

  bool operator==(const QuantScheme& o) const {
    return bits == o.bits && symmetric == o.symmetric && granularity == o.granularity &&
           (granularity != Granularity::kPerGroup || group_size == o.group_size);
  }
  bool operator!=(const QuantScheme& o) const { return !(*this == o); }
};

// Common schemes.
inline QuantScheme int8_per_channel() { return {8, true, Granularity::kPerChannel, 128}; }
inline QuantScheme int4_per_group(int64_t group_size = 128, bool symmetric = false) {
  return {4, symmetric, Granularity::kPerGroup, group_size};
}

}  // namespace bertforge::quant
