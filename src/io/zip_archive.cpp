// Read-only ZIP parsing for torch.save archives (see zip_archive.h): end of central directory
// (with the ZIP64 locator and record), central directory entries with their ZIP64 extra fields,
// local headers. Every read is preceded by a bounds check against the whole archive; sizes are
// 64-bit and sums are checked before they are formed, so no field can point outside the bytes.
#include "io/zip_archive.h"

#include <array>
#include <cstring>

#include "core/error.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace ls::io {
namespace {

constexpr uint32_t kZipLocalSig = 0x04034b50;
constexpr uint32_t kZipCentralSig = 0x02014b50;
constexpr uint32_t kZipEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint64_t kZipEndSize = 22, kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr uint64_t kZipCentralSize = 46, kZipLocalSize = 30;
constexpr char kZipTruncated[] =
    "the file is truncated or is not a zip archive (download or copy it again)";

// Little-endian fields; the caller has checked that [pos, pos + N) lies inside bytes.
uint64_t zip_le(std::string_view bytes, uint64_t pos, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[pos + i]);
  return v;
}
uint16_t zip_u16(std::string_view b, uint64_t pos) { return static_cast<uint16_t>(zip_le(b, pos, 2)); }
uint32_t zip_u32(std::string_view b, uint64_t pos) { return static_cast<uint32_t>(zip_le(b, pos, 4)); }
uint64_t zip_u64(std::string_view b, uint64_t pos) { return zip_le(b, pos, 8); }

// [pos, pos + n) inside [0, limit), without overflow.
bool zip_fits(uint64_t pos, uint64_t n, uint64_t limit) { return pos <= limit && n <= limit - pos; }

// A name from the file, quoted for a one-line message (escaped, long names cut).
std::string zip_quote(std::string_view text) {
  return core::json_quote(text.substr(0, 200)) + (text.size() > 200 ? "..." : "");
}

struct ZipDirectory {
  uint64_t entries = 0, offset = 0, size = 0;
  uint64_t end = 0;  // where the structures after the central directory begin
};

// The end of central directory record: the last signature whose comment reaches the file end.
uint64_t zip_find_end(std::string_view bytes, const std::string& label) {
  LS_CHECK(bytes.size() >= kZipEndSize, label, ": ", bytes.size(),
           " bytes is too short for a zip archive; ", kZipTruncated);
  const uint64_t last = bytes.size() - kZipEndSize;
  const uint64_t first = last > 0xffff ? last - 0xffff : 0;
  for (uint64_t pos = last + 1; pos-- > first;) {
    if (zip_u32(bytes, pos) == kZipEndSig && pos + kZipEndSize + zip_u16(bytes, pos + 20) == bytes.size())
      return pos;
  }
  LS_FAIL(label, ": no zip end-of-central-directory record; ", kZipTruncated);
}

ZipDirectory zip_read_directory(std::string_view bytes, const std::string& label) {
  const uint64_t end = zip_find_end(bytes, label);
  LS_CHECK(zip_u16(bytes, end + 4) == 0 && zip_u16(bytes, end + 6) == 0, label,
           ": a multi-disk (split) zip archive; join the parts into one file first");
  ZipDirectory dir;
  dir.entries = zip_u16(bytes, end + 10);
  dir.size = zip_u32(bytes, end + 12);
  dir.offset = zip_u32(bytes, end + 16);
  dir.end = end;
  LS_CHECK(zip_u16(bytes, end + 8) == dir.entries, label, ": the zip end record's entry counts disagree; ",
           kZipTruncated);
  if (end >= kZip64LocatorSize && zip_u32(bytes, end - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint64_t loc = end - kZip64LocatorSize;
    LS_CHECK(zip_u32(bytes, loc + 4) == 0 && zip_u32(bytes, loc + 16) <= 1, label,
             ": a multi-disk (split) ZIP64 archive; join the parts into one file first");
    const uint64_t rec = zip_u64(bytes, loc + 8);
    LS_CHECK(zip_fits(rec, kZip64EndSize, loc) && zip_u32(bytes, rec) == kZip64EndSig, label,
             ": the ZIP64 end record is missing or out of place; ", kZipTruncated);
    LS_CHECK(zip_u32(bytes, rec + 16) == 0 && zip_u32(bytes, rec + 20) == 0, label,
             ": a multi-disk (split) ZIP64 archive; join the parts into one file first");
    // torch (miniz) writes both records even for small files; a 32-bit field that is not the
    // "see ZIP64" value must then agree with its ZIP64 twin.
    const ZipDirectory narrow = dir;
    dir.entries = zip_u64(bytes, rec + 32);
    dir.size = zip_u64(bytes, rec + 40);
    dir.offset = zip_u64(bytes, rec + 48);
    dir.end = rec;
    LS_CHECK(zip_u64(bytes, rec + 24) == dir.entries &&
                 (narrow.entries == 0xffff || narrow.entries == dir.entries) &&
                 (narrow.size == 0xffffffff || narrow.size == dir.size) &&
                 (narrow.offset == 0xffffffff || narrow.offset == dir.offset),
             label, ": the zip end records disagree on the central directory; ", kZipTruncated);
  }
  LS_CHECK(zip_fits(dir.offset, dir.size, dir.end), label, ": the central directory [", dir.offset, ", +",
           dir.size, ") lies outside the ", dir.end, " bytes before the end record; ", kZipTruncated);
  LS_CHECK(dir.entries <= dir.size / kZipCentralSize, label, ": the end record claims ", dir.entries,
           " entries, more than a ", dir.size, "-byte central directory can hold; ", kZipTruncated);
  return dir;
}

// Sizes and offset of one central directory entry, the 0xffffffff ones replaced from its ZIP64
// extended information field (APPNOTE 4.5.3: present fields appear in this order).
struct ZipSizes {
  uint64_t compressed = 0, size = 0, local = 0;
  uint32_t disk = 0;
};

void zip_apply_zip64(std::string_view bytes, uint64_t extra, uint64_t extra_end, ZipSizes* s,
                     const std::string& where) {
  const bool need_size = s->size == 0xffffffff, need_comp = s->compressed == 0xffffffff;
  const bool need_local = s->local == 0xffffffff, need_disk = s->disk == 0xffff;
  while (extra_end - extra >= 4) {
    const uint16_t id = zip_u16(bytes, extra), len = zip_u16(bytes, extra + 2);
    const uint64_t body = extra + 4;
    LS_CHECK(zip_fits(body, len, extra_end), where, ": an extra field runs past its entry; ", kZipTruncated);
    if (id == 1) {
      uint64_t pos = body;
      const uint64_t stop = body + len;
      auto take = [&](uint64_t* field, int n) {
        LS_CHECK(zip_fits(pos, static_cast<uint64_t>(n), stop), where,
                 ": the ZIP64 extra field lacks a size or offset it must hold; ", kZipTruncated);
        *field = zip_le(bytes, pos, n);
        pos += static_cast<uint64_t>(n);
      };
      uint64_t disk = s->disk;
      if (need_size) take(&s->size, 8);
      if (need_comp) take(&s->compressed, 8);
      if (need_local) take(&s->local, 8);
      if (need_disk) take(&disk, 4);
      s->disk = static_cast<uint32_t>(disk);
      return;
    }
    extra = body + len;
  }
  LS_CHECK(!need_size && !need_comp && !need_local && !need_disk, where,
           ": sizes marked as ZIP64 but no ZIP64 extra field; ", kZipTruncated);
}

}  // namespace

uint32_t crc32(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (const char ch : bytes) c = table[(c ^ static_cast<unsigned char>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

ZipArchive::ZipArchive(std::string_view bytes, std::string label) : bytes_(bytes), label_(std::move(label)) {
  const ZipDirectory dir = zip_read_directory(bytes_, label_);
  const uint64_t cd_end = dir.offset + dir.size;
  entries_.reserve(static_cast<size_t>(dir.entries));
  uint64_t pos = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    LS_CHECK(zip_fits(pos, kZipCentralSize, cd_end) && zip_u32(bytes_, pos) == kZipCentralSig, label_,
             ": central directory entry ", i, " of ", dir.entries, " is missing or damaged; ", kZipTruncated);
    const uint16_t flags = zip_u16(bytes_, pos + 8), method = zip_u16(bytes_, pos + 10);
    const uint64_t name_len = zip_u16(bytes_, pos + 28), extra_len = zip_u16(bytes_, pos + 30);
    const uint64_t comment_len = zip_u16(bytes_, pos + 32);
    LS_CHECK(zip_fits(pos + kZipCentralSize, name_len + extra_len + comment_len, cd_end), label_,
             ": central directory entry ", i, " runs past the directory; ", kZipTruncated);
    ZipEntry entry;
    entry.name.assign(bytes_.substr(pos + kZipCentralSize, name_len));
    entry.crc32 = zip_u32(bytes_, pos + 16);
    const std::string where = label_ + ": zip entry " + zip_quote(entry.name);
    LS_CHECK(!entry.name.empty() && core::is_valid_utf8(entry.name), where,
             ": the name is empty or not UTF-8; ", kZipTruncated);
    ZipSizes s;
    s.compressed = zip_u32(bytes_, pos + 20);
    s.size = zip_u32(bytes_, pos + 24);
    s.disk = zip_u16(bytes_, pos + 34);
    s.local = zip_u32(bytes_, pos + 42);
    const uint64_t extra = pos + kZipCentralSize + name_len;
    zip_apply_zip64(bytes_, extra, extra + extra_len, &s, where);
    LS_CHECK(s.disk == 0, where, ": lies on another disk of a split archive; join the parts first");
    LS_CHECK((flags & 0x41) == 0, where, " is encrypted; torch.save never encrypts: use an unencrypted copy");
    LS_CHECK(method == 0, where, " is compressed (method ", method,
             "); torch.save stores entries uncompressed: re-save the file with torch.save or convert it "
             "to safetensors");
    LS_CHECK(s.compressed == s.size, where, ": stored sizes disagree (", s.compressed, " vs ", s.size,
             "); ", kZipTruncated);
    // The local header repeats the name and may carry a different extra field (padding, ZIP64).
    LS_CHECK(zip_fits(s.local, kZipLocalSize, dir.offset) && zip_u32(bytes_, s.local) == kZipLocalSig,
             where, ": its local header at ", s.local, " is missing; ", kZipTruncated);
    const uint64_t local_name = zip_u16(bytes_, s.local + 26), local_extra = zip_u16(bytes_, s.local + 28);
    const uint64_t data = s.local + kZipLocalSize + local_name + local_extra;  // < 2^64: local < size
    LS_CHECK(local_name == name_len && zip_fits(s.local + kZipLocalSize, local_name, dir.offset) &&
                 bytes_.substr(s.local + kZipLocalSize, local_name) == entry.name,
             where, ": the local header names another entry; ", kZipTruncated);
    LS_CHECK(zip_fits(data, s.size, dir.offset), where, ": its ", s.size, " bytes at ", data,
             " run past the data area (", dir.offset, " bytes); ", kZipTruncated);
    entry.offset = data;
    entry.size = s.size;
    LS_CHECK(index_.emplace(entry.name, entries_.size()).second, label_, ": the archive holds two entries named ",
             zip_quote(entry.name), "; it is damaged or was not written by torch.save");
    entries_.push_back(std::move(entry));
    pos += kZipCentralSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

void ZipArchive::verify_crc(const ZipEntry& entry) const {
  LS_CHECK(crc32(data(entry)) == entry.crc32, label_, ": zip entry ", zip_quote(entry.name),
           " fails its CRC-32 check; the file is damaged (download or copy it again)");
}

}  // namespace ls::io
