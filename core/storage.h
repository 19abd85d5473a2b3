// Storage: a reference-counted block of bytes on one device.
//
// Tensors are views (shape, strides, offset) into a Storage; several tensors
// may share one. The bytes are freed when the last view goes away.
#pragma once

#include <cstddef>
#include <memory>

#include "core/device.h"

namespace bertforge {

class Storage {
 public:
  // Allocates `nbytes` (uninitialised) on `device`.
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace bertforge
