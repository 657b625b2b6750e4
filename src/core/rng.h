// Seeded randomness for everything that is not a tensor (data order, crops, caption shuffles).
// Every consumer derives its own stream from (seed, parts...) so that a resumed run draws
// exactly what an uninterrupted one would, without saving generator states. The draws use
// only integer arithmetic on std::mt19937_64 (whose output is fixed by the C++ standard), so
// they are the same with every standard library.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace ls::core {

/// SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// 64-bit FNV-1a of a purpose name ("crop", "caption"...), to use as a derivation part.
inline uint64_t purpose_id(std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

/// A seed for one consumer: derive_seed(seed, {epoch, index, purpose_id("crop")}).
inline uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> parts) {
  uint64_t h = splitmix64(seed);
  for (uint64_t p : parts) h = splitmix64(h ^ splitmix64(p));
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  Rng(uint64_t seed, std::initializer_list<uint64_t> parts) : gen_(derive_seed(seed, parts)) {}

  uint64_t next() { return gen_(); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n), unbiased (rejection of the short tail). n must be > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = gen_();
    while (x >= limit) x = gen_();
    return x % n;
  }
  /// Uniform integer in [lo, hi], both ends included (Python's random.randint).
  int64_t range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  /// Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 gen_;
};

}  // namespace ls::core
