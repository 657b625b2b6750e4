// The restricted unpickler (io/torch_pickle) and the archive checks (io/torch_archive) on
// hand-built pickles and zips: records read exactly, every other global refused by name, pickle
// bombs (shared and cyclic structures) finish at once, every truncation and malformed field is an
// ls::Error, and each tensor is checked against its storage.
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "io/torch_archive.h"
#include "io/torch_pickle.h"
#include "io/zip_archive.h"
#include "support/support.h"

namespace {

using ls::io::Dtype;
using ls::io::TorchTensorInfo;
using ls::test::error_of;

// Protocol-2 opcodes as torch.save writes them (CPython Lib/pickle.py).
struct TpPickle {
  std::string b = "\x80\x02";

  TpPickle& op(char c) { b += c; return *this; }
  TpPickle& le32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b += static_cast<char>(v >> (8 * i));
    return *this;
  }
  TpPickle& str(std::string_view s) { op('X').le32(static_cast<uint32_t>(s.size())); b += s; return *this; }
  TpPickle& num(int32_t v) { return op('J').le32(static_cast<uint32_t>(v)); }
  TpPickle& global(std::string_view module, std::string_view name) {
    op('c');
    b += std::string(module) + "\n" + std::string(name) + "\n";
    return *this;
  }
  TpPickle& ints(const std::vector<int64_t>& v) {
    op('(');
    for (const int64_t x : v) num(static_cast<int32_t>(x));
    return op('t');
  }
  // _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, {})
  TpPickle& tensor(std::string_view key, int64_t numel, int64_t offset, const std::vector<int64_t>& shape,
                   const std::vector<int64_t>& stride, std::string_view type = "HalfStorage") {
    global("torch._utils", "_rebuild_tensor_v2").op('(').op('(').str("storage").global("torch", type);
    str(key).str("cpu").num(static_cast<int32_t>(numel)).op('t').op('Q');
    num(static_cast<int32_t>(offset)).ints(shape).ints(stride);
    return op('\x89').op('}').op('t').op('R');
  }
  std::string done() const { return b + "."; }
};

// {name: contiguous fp16 tensor of shape} for each entry, storages "0", "1", ...
std::string tp_state_dict(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  TpPickle p;
  p.op('}').op('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& shape = tensors[i].second;
    std::vector<int64_t> stride(shape.size(), 1);
    int64_t n = 1;
    for (size_t d = shape.size(); d-- > 0;) {
      stride[d] = n;
      n *= shape[d];
    }
    p.str(tensors[i].first).tensor(std::to_string(i), n, 0, shape, stride);
  }
  return p.op('u').done();
}

// A stored zip archive of (name, bytes) entries, as a minimal writer lays it out.
std::string tp_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  auto le = [](std::string& out, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out += static_cast<char>(v >> (8 * i));
  };
  std::string out, central;
  for (const auto& [name, data] : files) {
    const uint32_t crc = ls::io::crc32(data);
    const uint64_t offset = out.size();
    le(out, 0x04034b50, 4); le(out, 20, 2); le(out, 0, 2); le(out, 0, 2); le(out, 0, 4);
    le(out, crc, 4); le(out, data.size(), 4); le(out, data.size(), 4); le(out, name.size(), 2); le(out, 0, 2);
    out += name + data;
    le(central, 0x02014b50, 4); le(central, 20, 2); le(central, 20, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, crc, 4); le(central, data.size(), 4); le(central, data.size(), 4);
    le(central, name.size(), 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2); le(central, 0, 2);
    le(central, 0, 4); le(central, offset, 4);
    central += name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  le(out, 0x06054b50, 4); le(out, 0, 2); le(out, 0, 2); le(out, files.size(), 2); le(out, files.size(), 2);
  le(out, central.size(), 4); le(out, cd_offset, 4); le(out, 0, 2);
  return out;
}

// A torch.save-like archive "a/..." around a pickle, with storages of the given byte sizes.
std::string tp_archive(const std::string& pickle, const std::vector<size_t>& storage_bytes,
                       const std::string& byteorder = "little") {
  std::vector<std::pair<std::string, std::string>> files = {{"a/data.pkl", pickle}, {"a/byteorder", byteorder}};
  for (size_t i = 0; i < storage_bytes.size(); ++i)
    files.emplace_back("a/data/" + std::to_string(i), std::string(storage_bytes[i], '\x01'));
  files.emplace_back("a/version", "3\n");
  return tp_zip(files);
}

std::string tp_parse_error(const std::string& pickle) {
  return error_of([&] { ls::io::parse_state_dict_pickle(pickle, "m.bin"); });
}
std::string tp_index_error(const std::string& file) {
  return error_of([&] { ls::io::index_torch_save(file, "m.bin"); });
}

TEST(TorchPickle, ReadsAHandBuiltStateDictInOrder) {
  TpPickle p;
  p.op('}').op('(');
  p.str("w").tensor("0", 12, 0, {3, 4}, {4, 1});
  p.str("t").tensor("0", 12, 2, {2, 3}, {1, 4});  // a strided view of the same storage, offset 2
  p.str("s").tensor("1", 1, 0, {}, {}, "LongStorage");
  p.op('u');
  const auto records = ls::io::parse_state_dict_pickle(p.done(), "m.bin");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].name, "w");
  EXPECT_EQ(records[0].shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(records[1].name, "t");
  EXPECT_EQ(records[1].stride, (std::vector<int64_t>{1, 4}));
  EXPECT_EQ(records[1].storage_offset, 2);
  EXPECT_EQ(records[1].storage_key, "0");
  EXPECT_EQ(records[1].storage_numel, 12);
  EXPECT_EQ(records[1].dtype, Dtype::kF16);
  EXPECT_EQ(records[2].dtype, Dtype::kI64);
  EXPECT_TRUE(records[2].shape.empty());
  EXPECT_EQ(records[2].numel(), 1);
  EXPECT_EQ(records[2].location, "cpu");
  EXPECT_FALSE(records[2].requires_grad);
}

TEST(TorchPickle, RefusesEveryOtherGlobalByNameInOneLine) {
  const std::vector<std::pair<std::string, std::string>> globals = {
      {"posix", "system"}, {"os", "system"}, {"builtins", "eval"}, {"builtins", "exec"},
      {"__builtin__", "getattr"}, {"subprocess", "Popen"}, {"copyreg", "_reconstructor"},
      {"numpy.core.multiarray", "_reconstruct"}, {"__main__", "Model"}, {"collections", "defaultdict"},
      {"torch", "load"}, {"torch.nn.modules.linear", "Linear"}, {"torch._utils", "_rebuild_tensor_v3"},
      {"torch", "UntypedStorage"}, {"torch", "ComplexFloatStorage"}, {"torch._utils", "_rebuild_tensor"}};
  for (const auto& [module, name] : globals) {
    // The global is refused as it is named, before the REDUCE that would call it.
    TpPickle p;
    p.op('}').str("x").global(module, name).op('(').str("touch /tmp/x").op('t').op('R').op('s');
    const std::string error = tp_parse_error(p.done());
    EXPECT_NE(error.find("m.bin: the pickle names \"" + module + "." + name + "\""), std::string::npos) << error;
    EXPECT_NE(error.find("refusing to load it (a pickle can run code)"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    // The same through STACK_GLOBAL (protocol 4).
    TpPickle q;
    q.op('}').str("x").str(module).str(name).op('\x93');
    EXPECT_NE(tp_parse_error(q.done()).find("\"" + module + "." + name + "\""), std::string::npos);
  }
  TpPickle module;
  module.global("torch.nn.modules.linear", "Linear");
  EXPECT_NE(tp_parse_error(module.done()).find("the file holds a whole model object, not a state dict"),
            std::string::npos);
  TpPickle py2;
  py2.global("__builtin__", "eval");
  EXPECT_NE(tp_parse_error(py2.done()).find("\"__builtin__.eval\" (Python 3: builtins.eval)"), std::string::npos);
}

TEST(TorchPickle, ReadsTheCheckpointsStateDictEntry) {
  for (const char* key : {"state_dict", "model"}) {
    TpPickle p;
    p.op('}').op('(').str("epoch").num(3).str("lr").op('G').b += std::string(8, '\0');
    p.str(key).op('}').str("w").tensor("0", 2, 0, {2}, {1}).op('s').op('u');
    const auto records = ls::io::parse_state_dict_pickle(p.done(), "m.bin");
    ASSERT_EQ(records.size(), 1u) << key;
    EXPECT_EQ(records[0].name, "w");
  }
}

TEST(TorchPickle, SaysWhatTheTopLevelAndEntriesAre) {
  TpPickle list;
  list.op(']');
  EXPECT_NE(tp_parse_error(list.done()).find("m.bin: the pickle holds a list, not a dict of tensors"),
            std::string::npos);
  TpPickle entry;
  entry.op('}').str("w").tensor("0", 2, 0, {2}, {1}).op('s').str("epoch").num(3).op('s');
  EXPECT_NE(tp_parse_error(entry.done()).find("entry \"epoch\" is an int, not a tensor"), std::string::npos);
  TpPickle key;
  key.op('}').num(1).tensor("0", 2, 0, {2}, {1}).op('s');
  EXPECT_NE(tp_parse_error(key.done()).find("a key is an int, not a str"), std::string::npos);
  TpPickle empty;
  empty.op('}');
  EXPECT_TRUE(ls::io::parse_state_dict_pickle(empty.done(), "m.bin").empty());
}

TEST(TorchPickle, RepeatedKeyKeepsItsFirstPlaceAndLastValue) {
  // As Python's dict: {"a": x, "b": y, "a": z} == {"a": z, "b": y}, also when the key is a memo copy.
  TpPickle p;
  p.op('}').op('(').str("a").op('q').b += '\0';
  p.tensor("0", 2, 0, {2}, {1}).str("b").tensor("1", 3, 0, {3}, {1}).op('h').b += '\0';
  p.tensor("2", 4, 0, {4}, {1}).str("a").tensor("3", 5, 0, {5}, {1}).op('u');
  const auto records = ls::io::parse_state_dict_pickle(p.done(), "m.bin");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].name, "a");
  EXPECT_EQ(records[0].storage_key, "3");
  EXPECT_EQ(records[1].name, "b");
}

TEST(TorchPickle, SharedAndCyclicStructuresCostNothing) {
  // 2^60 logical elements from 60 levels of [L, L] through the memo, and a list that holds itself:
  // nothing walks them, so both end at once with the ordinary errors.
  TpPickle bomb;
  bomb.op(']').op('q').b += '\0';
  for (int level = 1; level <= 60; ++level) {
    bomb.op('(').op('h').b += static_cast<char>(level - 1);
    bomb.op('h').b += static_cast<char>(level - 1);
    bomb.op('t').op('q').b += static_cast<char>(level);  // TUPLE, BINPUT level
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(tp_parse_error(bomb.done()).find("holds a tuple"), std::string::npos);
  TpPickle cycle;
  cycle.op('}').str("x").op(']').op('q').b += '\0';
  cycle.op('h').b += '\0';
  cycle.op('a').op('s');
  EXPECT_NE(tp_parse_error(cycle.done()).find("entry \"x\" is a list"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(TorchPickle, RepeatedLongNamesAreNotCopiedPerUse) {
  // One 1 MiB key and one tensor reused 20000 times through the memo: copying the key per use
  // would move 20 GB; the reader keeps the first copy.
  TpPickle p;
  p.op('}').op('(').str(std::string(1 << 20, 'k')).op('q').b += '\0';
  p.tensor("0", 2, 0, {2}, {1}).op('q').b += '\1';
  for (int i = 0; i < 20000; ++i) {
    p.op('h').b += '\0';
    p.op('h').b += '\1';
  }
  p.op('u');
  const auto start = std::chrono::steady_clock::now();
  const auto records = ls::io::parse_state_dict_pickle(p.done(), "m.bin");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].name.size(), size_t(1) << 20);
  // Storage keys and locations, copied into every record, are bounded instead.
  TpPickle long_key;
  long_key.op('}').str("w").tensor(std::string(257, '0'), 2, 0, {2}, {1}).op('s');
  EXPECT_NE(tp_parse_error(long_key.done()).find("a storage key or location longer than 256 bytes"),
            std::string::npos);
}

TEST(TorchPickle, EveryTruncationIsAnError) {
  const std::string pickle = tp_state_dict({{"a", {2, 3}}, {"b", {}}});
  ASSERT_EQ(ls::io::parse_state_dict_pickle(pickle, "m.bin").size(), 2u);
  for (size_t n = 0; n < pickle.size(); ++n) {
    const std::string error = tp_parse_error(pickle.substr(0, n));
    EXPECT_NE(error.find("m.bin: data.pkl, byte "), std::string::npos) << n << ": " << error;
  }
}

TEST(TorchPickle, RefusesMalformedTensorsAndOpcodes) {
  auto tensor_error = [](const std::vector<int64_t>& shape, const std::vector<int64_t>& stride, int64_t offset) {
    TpPickle p;
    p.op('}').str("w").tensor("0", 4, offset, shape, stride).op('s');
    return tp_parse_error(p.done());
  };
  EXPECT_NE(tensor_error(std::vector<int64_t>(65, 1), std::vector<int64_t>(65, 1), 0).find("65 dimensions"),
            std::string::npos);
  EXPECT_NE(tensor_error({2}, {-1}, 0).find("negative"), std::string::npos);
  EXPECT_NE(tensor_error({-2}, {1}, 0).find("negative"), std::string::npos);
  EXPECT_NE(tensor_error({2}, {1}, -1).find("negative storage offset"), std::string::npos);
  EXPECT_NE(tensor_error({2, 3}, {1}, 0).find("size and stride differ"), std::string::npos);
  EXPECT_NE(tensor_error({1 << 30, 1 << 30, 1 << 30}, {0, 0, 0}, 0).find("overflows 64 bits"), std::string::npos);

  using namespace std::string_literals;  // the pickles hold NUL bytes
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80\x02\x81."s, "opcode 0x81"},                                  // NEWOBJ
      {"\x80\x02(i__main__\nX\n."s, "opcode 0x69"},                       // INST
      {"\x80\x02h\x05."s, "memo entry 5"},                                // BINGET of nothing
      {"\x80\x02\x8a\x09"s + std::string(9, '\x01') + ".", "9 bytes"},    // LONG1 past 64 bits
      {"\x80\x09}."s, "pickle protocol 9"},
      {"\x80\x02u."s, "needs a MARK"},
      {"\x80\x02."s, "empty stack"},
      {"\x80\x02X\x02\x00\x00\x00\xc3\x28."s, "not valid UTF-8"},
      {"\x80\x02\x95\xff\x00\x00\x00\x00\x00\x00\x00}."s, "truncated"},  // FRAME past the end
      {"\x80\x02}(X\x01\x00\x00\x00" "a}u."s, "is a dict, not a tensor"},
  };
  for (const auto& [pickle, expected] : cases) {
    const std::string error = tp_parse_error(pickle);
    EXPECT_NE(error.find(expected), std::string::npos) << expected << ": " << error;
  }
}

TEST(TorchArchive, ChecksEveryTensorAgainstItsStorage) {
  auto one = [](int64_t numel, int64_t offset, std::vector<int64_t> shape, std::vector<int64_t> stride,
                size_t bytes) {
    TpPickle p;
    p.op('}').str("w").tensor("0", numel, offset, shape, stride).op('s');
    return tp_index_error(tp_archive(p.done(), {bytes}));
  };
  EXPECT_EQ(one(12, 0, {3, 4}, {4, 1}, 24), "");
  EXPECT_EQ(one(12, 0, {4, 3}, {1, 4}, 24), "");    // transposed
  EXPECT_EQ(one(12, 11, {1}, {1}, 24), "");         // the last element
  EXPECT_EQ(one(0, 5, {0, 4}, {4, 1}, 0), "");      // empty: nothing is read
  EXPECT_EQ(one(4, 0, {1000, 4}, {0, 1}, 8), "");   // expanded
  EXPECT_NE(one(12, 1, {3, 4}, {4, 1}, 24).find("m.bin: tensor \"w\": shape, stride and offset 1 reach past "
                                                "its storage of 12 elements"), std::string::npos);
  EXPECT_NE(one(12, 0, {3, 4}, {5, 1}, 24).find("reach past"), std::string::npos);
  EXPECT_NE(one(12, 0, {3}, {1 << 30}, 24).find("reach past"), std::string::npos);
  EXPECT_NE(one(12, 0, {3, 4}, {4, 1}, 22).find("its storage holds 22 bytes, not 12 F16 elements"),
            std::string::npos);
  EXPECT_NE(one(1, 0, {1 << 15, 1 << 15}, {0, 0}, 2).find("repeats its 1 stored elements"), std::string::npos);
  TpPickle missing;
  missing.op('}').str("w").tensor("7", 2, 0, {2}, {1}).op('s');
  EXPECT_NE(tp_index_error(tp_archive(missing.done(), {4})).find("its storage \"data/7\" is not in the archive"),
            std::string::npos);
  TpPickle two_types;
  two_types.op('}').op('(').str("a").tensor("0", 2, 0, {2}, {1});
  two_types.str("b").tensor("0", 1, 0, {1}, {1}, "FloatStorage").op('u');
  EXPECT_NE(tp_index_error(tp_archive(two_types.done(), {4})).find("views storage \"0\" as F32"), std::string::npos);
}

TEST(TorchArchive, SaysWhatAFileThatIsNoTorchSaveArchiveIs) {
  const std::string pickle = tp_state_dict({{"w", {2}}});
  ASSERT_EQ(tp_index_error(tp_archive(pickle, {4})), "");
  const auto index = ls::io::index_torch_save(tp_archive(pickle, {4}), "m.bin");
  EXPECT_EQ(index.archive_name, "a");
  ASSERT_EQ(index.tensors.size(), 1u);
  EXPECT_EQ(index.tensors[0].storage_bytes, 4u);

  EXPECT_NE(tp_index_error(tp_archive(pickle, {4}, "big")).find("big-endian"), std::string::npos);
  EXPECT_NE(tp_index_error(tp_archive(pickle, {4}, "middle")).find("neither little nor big"), std::string::npos);
  // No byteorder record: torch before 1.? wrote none and such files are little-endian.
  EXPECT_EQ(tp_index_error(tp_zip({{"a/data.pkl", pickle}, {"a/data/0", "abcd"}})), "");
  EXPECT_NE(tp_index_error(tp_zip({{"a/version", "3\n"}})).find("has no \"a/data.pkl\""), std::string::npos);
  EXPECT_NE(tp_index_error(tp_zip({{"data.pkl", pickle}})).find("not inside a folder"), std::string::npos);
  EXPECT_NE(tp_index_error(tp_zip({{"a/data.pkl", pickle}, {"a/constants.pkl", ""}})).find("TorchScript"),
            std::string::npos);
  EXPECT_NE(tp_index_error(tp_zip({})).find("empty zip archive"), std::string::npos);
  EXPECT_NE(tp_index_error("").find("m.bin: the file is empty"), std::string::npos);
  EXPECT_NE(tp_index_error(pickle).find("a bare pickle"), std::string::npos);
  EXPECT_NE(tp_index_error(std::string("\x10\0\0\0\0\0\0\0{\"a\":1}        ", 24)).find("safetensors"),
            std::string::npos);
  EXPECT_NE(tp_index_error("hello world").find("not a torch.save file"), std::string::npos);
  // A flipped byte in data.pkl fails its CRC-32 before the pickle is read.
  std::string damaged = tp_archive(pickle, {4});
  damaged[damaged.find("storage")] = 'S';
  EXPECT_NE(tp_index_error(damaged).find("\"a/data.pkl\" fails its CRC-32 check"), std::string::npos);
}

}  // namespace
