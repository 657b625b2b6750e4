// torch.save's archive around data.pkl (see torch_archive.h): what a non-archive is, the top folder,
// the byteorder record, and every tensor checked against its data/<key> storage entry.
#include "io/torch_archive.h"

#include <unordered_map>

#include "core/error.h"
#include "core/strings.h"
#include "io/zip_archive.h"

namespace ls::io {
namespace {

// A name from the file, quoted for a one-line message (escaped, long names cut).
std::string ta_quote(std::string_view text) {
  return core::json_quote(text.substr(0, 200)) + (text.size() > 200 ? "..." : "");
}

// What a non-archive is, so the message can say what to do with it.
void ta_check_container(std::string_view file, const std::string& label) {
  LS_CHECK(!file.empty(), label, ": the file is empty; download or copy it again");
  // torch/serialization.py _legacy_save: pickle protocol 2, then LONG1 MAGIC_NUMBER 0x1950a86a20f9469cfc6c.
  static const char kLegacy[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
  LS_CHECK(file.substr(0, 14) != std::string_view(kLegacy, 14), label,
           ": a legacy torch.save file (the pre-1.6 format, not a zip archive), which this reader does not "
           "take; re-save it with torch.save in torch >= 1.6 (loading it in a Python you trust) or convert "
           "it to safetensors");
  LS_CHECK(static_cast<unsigned char>(file[0]) != 0x80, label,
           ": a bare pickle, not a torch.save zip archive; re-save it with torch.save or convert it to "
           "safetensors");
  LS_CHECK(!(file.size() > 9 && file[8] == '{' && file.substr(4, 4) == std::string_view("\0\0\0\0", 4)),
           label, ": looks like a safetensors file, not a torch.save archive; read it as safetensors");
  LS_CHECK(file.substr(0, 2) == "PK", label,
           ": not a torch.save file (no zip signature at its start; pytorch_model.bin is a zip archive "
           "since torch 1.6); check the file or download it again");
}

// offset + sum (size_i - 1) * stride_i < storage_numel for a non-empty view, without overflow.
bool ta_view_fits(const TorchTensorInfo& t) {
  if (t.numel() == 0) return true;
  int64_t last = t.storage_offset;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    int64_t step = 0;
    if (__builtin_mul_overflow(t.shape[i] - 1, t.stride[i], &step) || __builtin_add_overflow(last, step, &last))
      return false;
  }
  return last < t.storage_numel;
}

// A view may repeat elements (stride 0: an expand()ed buffer); its contiguous copy is what load()
// returns, so a tiny storage must not promise an unbounded copy.
constexpr uint64_t kMaxRepeatedViewBytes = uint64_t(1) << 28;

}  // namespace

TorchSaveIndex index_torch_save(std::string_view file, const std::string& label, bool verify_pickle_crc) {
  ta_check_container(file, label);
  const ZipArchive zip(file, label);
  TorchSaveIndex index;
  LS_CHECK(!zip.entries().empty(), label, ": an empty zip archive, not a torch.save file");
  // As torch's PyTorchStreamReader: the first entry's folder names the archive.
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  LS_CHECK(slash != std::string::npos && slash > 0, label, ": zip entry ", ta_quote(first),
           " is not inside a folder, as torch.save puts every entry; not a torch.save file");
  index.archive_name = first.substr(0, slash);
  const std::string prefix = index.archive_name + "/";
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  LS_CHECK(zip.find(prefix + "constants.pkl") == nullptr, label,
           ": a TorchScript archive (torch.jit.save), not a torch.save state dict; save model.state_dict() "
           "with torch.save or convert it to safetensors");
  LS_CHECK(pkl != nullptr, label, ": the zip archive has no ", ta_quote(prefix + "data.pkl"),
           "; not a torch.save file");
  // Files from before torch wrote a byteorder record were little-endian (torch reads them as native).
  if (const ZipEntry* order = zip.find(prefix + "byteorder")) {
    const std::string_view value = zip.data(*order);
    LS_CHECK(value != "big", label, ": saved on a big-endian machine; re-save it on a little-endian one or "
             "convert it to safetensors");
    LS_CHECK(value == "little", label, ": byteorder record ", ta_quote(value), " is neither little nor big; "
             "the file is damaged");
  }
  if (verify_pickle_crc) zip.verify_crc(*pkl);
  index.tensors = parse_state_dict_pickle(zip.data(*pkl), label);

  std::unordered_map<std::string, const TorchTensorInfo*> storages;
  for (TorchTensorInfo& t : index.tensors) {
    const std::string what = label + ": tensor " + ta_quote(t.name);
    auto [seen, fresh] = storages.emplace(t.storage_key, &t);
    LS_CHECK(fresh || (seen->second->dtype == t.dtype && seen->second->storage_numel == t.storage_numel), what,
             " views storage ", ta_quote(t.storage_key), " as ", dtype_name(t.dtype), " x ", t.storage_numel,
             " and tensor ", ta_quote(seen->second->name), " as ", dtype_name(seen->second->dtype), " x ",
             seen->second->storage_numel, "; the file is damaged");
    const ZipEntry* entry = zip.find(prefix + "data/" + t.storage_key);
    LS_CHECK(entry != nullptr, what, ": its storage ", ta_quote("data/" + t.storage_key),
             " is not in the archive; the file is damaged or truncated");
    const uint64_t elem = dtype_size(t.dtype);
    LS_CHECK(static_cast<uint64_t>(t.storage_numel) <= entry->size / elem &&
                 static_cast<uint64_t>(t.storage_numel) * elem == entry->size,
             what, ": its storage holds ", entry->size, " bytes, not ", t.storage_numel, " ",
             dtype_name(t.dtype), " elements; the file is damaged");
    LS_CHECK(ta_view_fits(t), what, ": shape, stride and offset ", t.storage_offset,
             " reach past its storage of ", t.storage_numel, " elements; the file is damaged");
    const auto numel = static_cast<uint64_t>(t.numel());
    LS_CHECK(numel <= static_cast<uint64_t>(t.storage_numel) || numel <= kMaxRepeatedViewBytes / elem, what,
             " repeats its ", t.storage_numel, " stored elements as ", numel,
             " (a stride-0 view); re-save it with .contiguous() or convert the file to safetensors");
    t.storage_begin = entry->offset;
    t.storage_bytes = entry->size;
  }
  return index;
}

}  // namespace ls::io
