// AlignedVector<T>: a std::vector whose data starts on a 64-byte boundary (a cache line, one AVX-512
// vector). For weights a kernel reads many times with full-width vector loads (the bf16 copies binding_lstm.cpp
// and binding_predict.cpp keep): the allocator only guarantees 16 bytes, and an unaligned 64-byte load that
// straddles two cache lines costs two (measured: a few per cent of the W1 forward, more at batch 1).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace ds {

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const noexcept { return false; }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace ds
