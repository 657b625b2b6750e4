// Read-only ZIP archive over bytes in memory, for what torch.save writes (PyTorchStreamWriter over
// miniz: stored entries, data aligned to 64 bytes, ZIP64 records past 4 GiB). Format: PKWARE
// APPNOTE.TXT 6.3.10, sections 4.3 (layout), 4.4 (fields), 4.5.3 (ZIP64 extended information).
// Torch-free on purpose: the libFuzzer target fuzz/fuzz_torch_pickle.cpp links it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ls::io {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of the entry's data within the archive bytes
  uint64_t size = 0;
  uint32_t crc32 = 0;   // as the central directory records it
};

class ZipArchive {
 public:
  /// Parses the end records, the central directory and every entry's local header of `bytes`
  /// (the whole file, which must outlive the archive), checking each offset and size against
  /// bytes.size(). Compressed, encrypted and multi-disk archives are refused. Throws ls::Error
  /// "<label>: <what is wrong>; <what to do>" (one line).
  ZipArchive(std::string_view bytes, std::string label);

  /// In central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  /// nullptr if absent.
  const ZipEntry* find(const std::string& name) const;
  /// The entry's stored bytes (a view into the archive bytes).
  std::string_view data(const ZipEntry& entry) const { return bytes_.substr(entry.offset, entry.size); }
  /// ls::Error naming the entry when its bytes do not match the recorded CRC-32.
  void verify_crc(const ZipEntry& entry) const;
  const std::string& label() const { return label_; }

 private:
  std::string_view bytes_;
  std::string label_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

/// CRC-32 (ISO-HDLC, the one ZIP and zlib use) of bytes.
uint32_t crc32(std::string_view bytes);

}  // namespace ls::io
