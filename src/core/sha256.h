// SHA-256 (FIPS 180-4), for the hashes kohya writes into LoRA metadata (sshs_model_hash) and for
// content hashes of caches. Streaming: update() any number of times, then hex_digest().
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ls::core {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::array<uint8_t, 32> digest();  // finalises; call once
  std::string hex_digest();          // finalises; call once

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace ls::core
