// The restricted unpickler for torch.save's data.pkl (see torch_pickle.h). The machine keeps every object in one arena and refers to them by index, so
// shared and self-referencing objects cost nothing and free nothing twice; no opcode recurses, and
// each creates at most one object, so work and memory stay linear in the pickle's size.
#include "io/torch_pickle.h"

#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace ls::io {
namespace {

enum class PkKind : uint8_t { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal,
                              kStorage, kTensor };
// The only callables a state dict needs; a global resolves to one of these or is refused.
enum class PkFunc : uint8_t { kOrderedDict, kRebuildTensor, kRebuildParameter,
                              kRebuildParameterWithState, kStorageType };

struct PkObject {
  PkKind kind = PkKind::kNone;
  PkFunc func = PkFunc::kOrderedDict;  // kGlobal
  Dtype dtype = Dtype::kF32;           // kGlobal of a storage type, kStorage
  int64_t number = 0;                  // kBool, kInt; kStorage: numel; kTensor: index in tensors
  double real = 0;                     // kFloat
  std::string_view text, text2;        // kString; kStorage: key, location (views into the pickle)
  std::vector<uint32_t> items;         // kTuple, kList; kDict: key, value, key, value, ...
};

// With its article, for messages: "an int", "a tensor", "None".
const char* pk_kind_name(PkKind kind) {
  switch (kind) {
    case PkKind::kNone: return "None";
    case PkKind::kBool: return "a bool";
    case PkKind::kInt: return "an int";
    case PkKind::kFloat: return "a float";
    case PkKind::kString: return "a str";
    case PkKind::kTuple: return "a tuple";
    case PkKind::kList: return "a list";
    case PkKind::kDict: return "a dict";
    case PkKind::kGlobal: return "a class or function";
    case PkKind::kStorage: return "a storage";
    case PkKind::kTensor: return "a tensor";
  }
  return "an object";
}

// torch.<Name>Storage -> dtype, as torch/storage.py _dtype_to_storage_type_map.
bool pk_storage_dtype(std::string_view name, Dtype* dtype) {
  static const std::pair<const char*, Dtype> kTable[] = {
      {"DoubleStorage", Dtype::kF64}, {"FloatStorage", Dtype::kF32}, {"HalfStorage", Dtype::kF16},
      {"BFloat16Storage", Dtype::kBF16}, {"LongStorage", Dtype::kI64}, {"IntStorage", Dtype::kI32},
      {"ShortStorage", Dtype::kI16}, {"CharStorage", Dtype::kI8}, {"ByteStorage", Dtype::kU8},
      {"BoolStorage", Dtype::kBool}};
  for (const auto& [n, d] : kTable) {
    if (name == n) {
      *dtype = d;
      return true;
    }
  }
  return false;
}

// A name from the file, quoted for a one-line message (escaped, long names cut).
std::string pk_quote(std::string_view text) {
  return core::json_quote(text.substr(0, 200)) + (text.size() > 200 ? "..." : "");
}

// Storage keys are decimal numbers and locations "cpu" / "cuda:0": far below this.
constexpr size_t kMaxStorageName = 256;

bool pk_starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

[[noreturn]] void pk_refuse_global(std::string_view module, std::string_view name, const std::string& label) {
  std::string qualified = pk_quote(std::string(module) + "." + std::string(name));
  // Protocol 2 writes Python 2's module names, which Python 3 maps back (Lib/_compat_pickle.py).
  for (const auto& [py2, py3] : {std::pair{"__builtin__", "builtins"}, {"commands", "subprocess"},
                                 {"copy_reg", "copyreg"}})
    if (module == py2) qualified += str_cat(" (Python 3: ", py3, ".", name, ")");
  const bool torch = module == "torch" || pk_starts_with(module, "torch.");
  std::string why;
  if (module == "torch" && name.size() > 7 && name.substr(name.size() - 7) == "Storage")
    why = ", a storage of a dtype this reader does not take (complex, quantized or untyped)";
  else if (module == "torch._utils" && pk_starts_with(name, "_rebuild_"))
    why = ", a kind of tensor this reader does not rebuild (float8 and uint16/32/64 tensors use "
          "_rebuild_tensor_v3; sparse, quantized and nested tensors have their own)";
  else if (module == "torch.nn" || pk_starts_with(module, "torch.nn."))
    why = ": the file holds a whole model object, not a state dict";
  else if (torch)
    why = ", a torch object that a state dict of tensors never holds";
  else
    why = ", which a state dict never uses";
  LS_FAIL(label, ": the pickle names ", qualified, why,
          "; refusing to load it (a pickle can run code): ",
          torch ? "save model.state_dict() with torch.save, or convert the file to safetensors with a tool you "
                  "trust"
                : "convert the file to safetensors with a tool you trust, or get the model's "
                  "model.safetensors");
}

class PkMachine {
 public:
  PkMachine(std::string_view data, const std::string& label) : data_(data), label_(label) {}

  // Runs to STOP; returns the object it yields.
  uint32_t run();

  const PkObject& at(uint32_t id) const { return objects_[id]; }
  const std::vector<TorchTensorInfo>& tensors() const { return tensors_; }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    LS_FAIL(label_, ": data.pkl, byte ", op_pos_, ": ", what, "; the file is damaged or is not a torch.save "
            "state dict");
  }
  void need(uint64_t n) const {
    if (n > data_.size() - pos_) fail("the pickle ends inside an opcode (truncated)");
  }
  uint64_t le(int n) {
    need(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += static_cast<uint64_t>(n);
    return v;
  }
  std::string_view take(uint64_t n) {
    need(n);
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail("a GLOBAL name runs to the end of the pickle");
    std::string_view s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  uint32_t make(PkObject object) {
    if (objects_.size() >= kMaxPickleObjects)
      fail("the pickle builds more than " + std::to_string(kMaxPickleObjects) + " objects");
    objects_.push_back(std::move(object));
    return static_cast<uint32_t>(objects_.size() - 1);
  }
  uint32_t make(PkKind kind, int64_t number = 0) {
    PkObject o;
    o.kind = kind;
    o.number = number;
    return make(std::move(o));
  }
  void push(uint32_t id) { stack_.push_back(id); }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  uint32_t pop() {
    if (stack_.size() <= floor()) fail("an opcode pops from an empty stack");
    const uint32_t id = stack_.back();
    stack_.pop_back();
    return id;
  }
  uint32_t top() const {
    if (stack_.size() <= floor()) fail("an opcode reads an empty stack");
    return stack_.back();
  }
  std::vector<uint32_t> pop_mark() {
    if (marks_.empty()) fail("an opcode needs a MARK and there is none");
    std::vector<uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  PkObject& expect(uint32_t id, PkKind kind, const char* what) {
    if (objects_[id].kind != kind)
      fail(std::string(what) + " is " + pk_kind_name(objects_[id].kind) + ", not " + pk_kind_name(kind));
    return objects_[id];
  }

  void push_string(uint64_t n) {
    PkObject o;
    o.kind = PkKind::kString;
    o.text = take(n);
    if (!core::is_valid_utf8(o.text)) fail("a string is not valid UTF-8");
    push(make(std::move(o)));
  }
  void push_int(uint64_t bytes) {  // LONG1 / LONG4: little-endian two's complement
    if (bytes > 8) fail("an integer of " + std::to_string(bytes) + " bytes (more than 64 bits)");
    const int n = static_cast<int>(bytes);
    uint64_t v = le(n);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
    push(make(PkKind::kInt, static_cast<int64_t>(v)));
  }
  void push_tuple(std::vector<uint32_t> items) {
    PkObject o;
    o.kind = PkKind::kTuple;
    o.items = std::move(items);
    push(make(std::move(o)));
  }
  void memo_put(uint64_t index) {
    if (index > std::numeric_limits<uint32_t>::max()) fail("a memo index past 2^32");
    memo_[static_cast<uint32_t>(index)] = top();
  }
  void memo_get(uint64_t index) {
    auto it = index > std::numeric_limits<uint32_t>::max() ? memo_.end() : memo_.find(static_cast<uint32_t>(index));
    if (it == memo_.end())
      fail("the pickle reads memo entry " + std::to_string(index) + ", which it never stored");
    push(it->second);
  }
  void resolve_global(std::string_view module, std::string_view name);
  void set_items(std::vector<uint32_t> items);
  void reduce();
  void build();
  void persistent_id();
  uint32_t rebuild_tensor(const std::vector<uint32_t>& args);
  uint32_t rebuild_parameter(const std::vector<uint32_t>& args, bool with_state);
  std::vector<int64_t> int_tuple(uint32_t id, const char* what);
  void step(uint8_t op);

  std::string_view data_;
  const std::string& label_;
  uint64_t pos_ = 0, op_pos_ = 0;
  std::vector<PkObject> objects_;
  std::vector<TorchTensorInfo> tensors_;
  std::vector<uint32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, uint32_t> memo_;
  bool stopped_ = false;
  uint32_t result_ = 0;
};

void PkMachine::resolve_global(std::string_view module, std::string_view name) {
  PkObject o;
  o.kind = PkKind::kGlobal;
  if (module == "collections" && name == "OrderedDict") {
    o.func = PkFunc::kOrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    o.func = PkFunc::kRebuildTensor;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    o.func = PkFunc::kRebuildParameter;
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    o.func = PkFunc::kRebuildParameterWithState;
  } else if (module == "torch" && pk_storage_dtype(name, &o.dtype)) {
    o.func = PkFunc::kStorageType;
  } else {
    pk_refuse_global(module, name, label_);
  }
  push(make(std::move(o)));
}

void PkMachine::set_items(std::vector<uint32_t> items) {
  if (items.size() % 2 != 0) fail("SETITEMS with an odd number of keys and values");
  PkObject& dict = expect(top(), PkKind::kDict, "the target of SETITEM");
  dict.items.insert(dict.items.end(), items.begin(), items.end());
}

std::vector<int64_t> PkMachine::int_tuple(uint32_t id, const char* what) {
  const PkObject& t = expect(id, PkKind::kTuple, what);
  if (t.items.size() > kMaxTensorDims)
    fail(std::string(what) + " has " + std::to_string(t.items.size()) + " dimensions (at most " +
         std::to_string(kMaxTensorDims) + ")");
  std::vector<int64_t> out;
  for (const uint32_t item : t.items) {
    const PkObject& v = expect(item, PkKind::kInt, what);
    if (v.number < 0) fail(std::string(what) + " has a negative entry " + std::to_string(v.number));
    out.push_back(v.number);
  }
  return out;
}

// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]).
uint32_t PkMachine::rebuild_tensor(const std::vector<uint32_t>& args) {
  if (args.size() != 6 && args.size() != 7)
    fail("_rebuild_tensor_v2 takes 6 or 7 arguments, the pickle passes " + std::to_string(args.size()));
  const PkObject& storage = expect(args[0], PkKind::kStorage, "a tensor's storage");
  TorchTensorInfo info;
  info.dtype = storage.dtype;
  info.storage_key.assign(storage.text);
  info.location.assign(storage.text2);
  info.storage_numel = storage.number;
  info.storage_offset = expect(args[1], PkKind::kInt, "a tensor's storage offset").number;
  if (info.storage_offset < 0) fail("a tensor has a negative storage offset");
  info.shape = int_tuple(args[2], "a tensor's size");
  info.stride = int_tuple(args[3], "a tensor's stride");
  if (info.shape.size() != info.stride.size()) fail("a tensor's size and stride differ in length");
  int64_t numel = 1;
  for (const int64_t d : info.shape)
    if (__builtin_mul_overflow(numel, d, &numel)) fail("a tensor's element count overflows 64 bits");
  info.requires_grad = expect(args[4], PkKind::kBool, "requires_grad").number != 0;
  // Hooks are callables: with no callable allowed, only an empty dict can arrive here anyway.
  if (!expect(args[5], PkKind::kDict, "backward_hooks").items.empty()) fail("a tensor carries backward hooks");
  if (args.size() == 7) {
    // {"conj": bool, "neg": bool} when a bit is set; only complex tensors have one.
    const PkObject& meta = objects_[args[6]];
    if (meta.kind == PkKind::kDict) {
      if (meta.items.size() > 4) fail("a tensor's metadata has more than conj and neg");
      for (size_t i = 1; i < meta.items.size(); i += 2)
        if (objects_[meta.items[i]].kind != PkKind::kBool || objects_[meta.items[i]].number != 0)
          fail("a tensor has its conj or neg bit set (tensor metadata)");
    } else if (meta.kind != PkKind::kNone) {
      fail("a tensor's metadata is " + std::string(pk_kind_name(meta.kind)));
    }
  }
  tensors_.push_back(std::move(info));
  return make(PkKind::kTensor, static_cast<int64_t>(tensors_.size() - 1));
}

// torch._utils._rebuild_parameter(data, requires_grad, backward_hooks) and
// _rebuild_parameter_with_state(..., state): the state (a Parameter's Python attributes) is dropped.
uint32_t PkMachine::rebuild_parameter(const std::vector<uint32_t>& args, bool with_state) {
  if (args.size() != (with_state ? 4u : 3u)) fail("a parameter is rebuilt with the wrong number of arguments");
  const PkObject& data = expect(args[0], PkKind::kTensor, "a parameter's data");
  TorchTensorInfo info = tensors_[static_cast<size_t>(data.number)];
  info.requires_grad = expect(args[1], PkKind::kBool, "requires_grad").number != 0;
  info.is_parameter = true;
  if (!expect(args[2], PkKind::kDict, "backward_hooks").items.empty()) fail("a parameter carries backward hooks");
  tensors_.push_back(std::move(info));
  return make(PkKind::kTensor, static_cast<int64_t>(tensors_.size() - 1));
}

void PkMachine::reduce() {
  const uint32_t args_id = pop();
  const PkFunc func = expect(pop(), PkKind::kGlobal, "the callable of REDUCE").func;
  const std::vector<uint32_t>& all = expect(args_id, PkKind::kTuple, "the arguments of REDUCE").items;
  // No allowed callable takes more than 7; checking first keeps a huge tuple reused through the memo
  // from being copied per call.
  if (all.size() > 7) fail("a call with " + std::to_string(all.size()) + " arguments");
  const std::vector<uint32_t> args = all;
  switch (func) {
    case PkFunc::kOrderedDict:
      if (!args.empty()) fail("OrderedDict is called with arguments");
      push(make(PkKind::kDict));
      return;
    case PkFunc::kRebuildTensor: push(rebuild_tensor(args)); return;
    case PkFunc::kRebuildParameter: push(rebuild_parameter(args, false)); return;
    case PkFunc::kRebuildParameterWithState: push(rebuild_parameter(args, true)); return;
    case PkFunc::kStorageType: fail("a storage class is called; torch.save only names them in persistent ids");
  }
}

// BUILD on an OrderedDict sets its attributes (nn.Module.state_dict()'s _metadata): checked, dropped.
void PkMachine::build() {
  const PkObject& state = objects_[pop()];
  expect(top(), PkKind::kDict, "the target of BUILD");
  const bool plain = state.kind == PkKind::kDict || state.kind == PkKind::kNone;
  const bool pair = state.kind == PkKind::kTuple && state.items.size() == 2;  // (state, slotstate)
  if (!plain && !pair) fail("BUILD with " + std::string(pk_kind_name(state.kind)) + " as its state");
}

// ('storage', torch.<Dtype>Storage, key, location, numel), as torch/serialization.py _save writes.
void PkMachine::persistent_id() {
  const PkObject& pid = expect(pop(), PkKind::kTuple, "a persistent id");
  if (pid.items.size() != 5) fail("a persistent id of " + std::to_string(pid.items.size()) + " fields, not 5");
  if (expect(pid.items[0], PkKind::kString, "a persistent id's kind").text != "storage")
    fail("a persistent id that is not a storage");
  const PkObject& type = expect(pid.items[1], PkKind::kGlobal, "a storage type");
  if (type.func != PkFunc::kStorageType) fail("a storage type that is not a torch.<Dtype>Storage");
  PkObject o;
  o.kind = PkKind::kStorage;
  o.dtype = type.dtype;
  o.text = expect(pid.items[2], PkKind::kString, "a storage key").text;
  o.text2 = expect(pid.items[3], PkKind::kString, "a storage location").text;
  // Every tensor record copies both, so they are bounded (torch writes "0", "1", ... and "cpu").
  if (o.text.size() > kMaxStorageName || o.text2.size() > kMaxStorageName)
    fail("a storage key or location longer than " + std::to_string(kMaxStorageName) + " bytes");
  o.number = expect(pid.items[4], PkKind::kInt, "a storage size").number;
  if (o.number < 0) fail("a storage of negative size");
  push(make(std::move(o)));
}

void PkMachine::step(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      const uint64_t v = le(1);
      if (v < 2 || v > 5) fail("pickle protocol " + std::to_string(v) + " (torch.save writes 2 to 5)");
      return;
    }
    case 0x95: need(le(8)); return;  // FRAME: announces the length of the opcodes that follow
    case '.': result_ = pop(); stopped_ = true; return;  // STOP
    case '(': marks_.push_back(stack_.size()); return;  // MARK
    case '0':  // POP (a MARK on top is popped instead, as CPython does)
      if (stack_.size() > floor()) stack_.pop_back(); else pop_mark();
      return;
    case '1': pop_mark(); return;  // POP_MARK
    case '2': push(top()); return;  // DUP
    case 'N': push(make(PkKind::kNone)); return;
    case 0x88: push(make(PkKind::kBool, 1)); return;  // NEWTRUE
    case 0x89: push(make(PkKind::kBool, 0)); return;  // NEWFALSE
    case 'J': push(make(PkKind::kInt, static_cast<int32_t>(le(4)))); return;  // BININT
    case 'K': push(make(PkKind::kInt, static_cast<int64_t>(le(1)))); return;  // BININT1
    case 'M': push(make(PkKind::kInt, static_cast<int64_t>(le(2)))); return;  // BININT2
    case 0x8a: push_int(le(1)); return;  // LONG1
    case 0x8b: {  // LONG4: a signed 4-byte length
      const auto n = static_cast<int32_t>(le(4));
      if (n < 0) fail("LONG4 with a negative length");
      push_int(static_cast<uint64_t>(n));
      return;
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      uint64_t bits = 0;
      for (const char c : take(8)) bits = (bits << 8) | static_cast<unsigned char>(c);
      PkObject o;
      o.kind = PkKind::kFloat;
      std::memcpy(&o.real, &bits, 8);
      push(make(std::move(o)));
      return;
    }
    case 'X': push_string(le(4)); return;  // BINUNICODE
    case 0x8c: push_string(le(1)); return;  // SHORT_BINUNICODE
    case 0x8d: push_string(le(8)); return;  // BINUNICODE8
    case ')': push_tuple({}); return;  // EMPTY_TUPLE
    case 't': push_tuple(pop_mark()); return;  // TUPLE
    case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
      std::vector<uint32_t> items(op - 0x84u);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push_tuple(std::move(items));
      return;
    }
    case ']': push(make(PkKind::kList)); return;  // EMPTY_LIST
    case 'a': {  // APPEND
      const uint32_t v = pop();
      expect(top(), PkKind::kList, "the target of APPEND").items.push_back(v);
      return;
    }
    case 'e': {  // APPENDS
      std::vector<uint32_t> items = pop_mark();
      auto& list = expect(top(), PkKind::kList, "the target of APPENDS").items;
      list.insert(list.end(), items.begin(), items.end());
      return;
    }
    case '}': push(make(PkKind::kDict)); return;  // EMPTY_DICT
    case 'd': {  // DICT
      std::vector<uint32_t> items = pop_mark();
      push(make(PkKind::kDict));
      set_items(std::move(items));
      return;
    }
    case 's': {  // SETITEM
      const uint32_t v = pop(), k = pop();
      set_items({k, v});
      return;
    }
    case 'u': set_items(pop_mark()); return;  // SETITEMS
    case 'c': {  // GLOBAL "module\nname\n"
      const std::string_view module = line(), name = line();
      resolve_global(module, name);
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      const uint32_t name = pop(), module = pop();
      resolve_global(expect(module, PkKind::kString, "a global's module").text,
                     expect(name, PkKind::kString, "a global's name").text);
      return;
    }
    case 'R': reduce(); return;
    case 'b': build(); return;
    case 'Q': persistent_id(); return;  // BINPERSID
    case 'q': memo_put(le(1)); return;  // BINPUT
    case 'r': memo_put(le(4)); return;  // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
    case 'h': memo_get(le(1)); return;  // BINGET
    case 'j': memo_get(le(4)); return;  // LONG_BINGET
    default: break;
  }
  static const char* hex = "0123456789abcdef";
  fail(std::string("opcode 0x") + hex[op >> 4] + hex[op & 15] +
       " is not one torch.save writes for a state dict (objects, bytes, sets and protocol-0 forms are refused)");
}

uint32_t PkMachine::run() {
  while (!stopped_) {
    op_pos_ = pos_;
    if (pos_ >= data_.size()) fail("the pickle ends before its STOP opcode (truncated)");
    step(static_cast<uint8_t>(data_[pos_++]));
  }
  return result_;
}

// The dict the records come from: the top level, or its "state_dict" / "model" entry when the top
// level holds other values too (a training checkpoint).
uint32_t pk_state_dict(const PkMachine& m, uint32_t root, const std::string& label) {
  const PkObject& top = m.at(root);
  LS_CHECK(top.kind == PkKind::kDict, label, ": the pickle holds ", pk_kind_name(top.kind),
           ", not a dict of tensors; this reader takes state dicts (torch.save(model.state_dict()))");
  bool all_tensors = true;
  for (size_t i = 1; i < top.items.size(); i += 2) all_tensors &= m.at(top.items[i]).kind == PkKind::kTensor;
  if (all_tensors) return root;
  for (const char* key : {"state_dict", "model"}) {
    for (size_t i = 0; i < top.items.size(); i += 2) {
      const PkObject& k = m.at(top.items[i]);
      if (k.kind == PkKind::kString && k.text == key && m.at(top.items[i + 1]).kind == PkKind::kDict)
        return top.items[i + 1];
    }
  }
  return root;  // the caller names the first entry that is not a tensor
}

}  // namespace

int64_t TorchTensorInfo::numel() const {
  int64_t n = 1;  // parse_state_dict_pickle has checked that the product fits
  for (const int64_t d : shape) n *= d;
  return n;
}

std::vector<TorchTensorInfo> parse_state_dict_pickle(std::string_view pickle, const std::string& label) {
  PkMachine machine(pickle, label);
  const uint32_t root = machine.run();
  const uint32_t dict_id = pk_state_dict(machine, root, label);
  const PkObject& dict = machine.at(dict_id);
  const std::string where = dict_id == root ? "" : " of the checkpoint's state dict";
  std::vector<TorchTensorInfo> out;
  // Python's dict keeps a repeated key at its first place with its last value. Keys are matched
  // by object first, so a name reused through the memo is hashed once: hashing stays linear.
  std::unordered_map<uint32_t, size_t> by_object;
  std::unordered_map<std::string_view, size_t> by_text;
  for (size_t i = 0; i < dict.items.size(); i += 2) {
    const PkObject& key = machine.at(dict.items[i]);
    const PkObject& value = machine.at(dict.items[i + 1]);
    LS_CHECK(key.kind == PkKind::kString, label, ": a key", where, " is ", pk_kind_name(key.kind),
             ", not a str; a state dict maps names to tensors");
    LS_CHECK(value.kind == PkKind::kTensor, label, ": entry ", pk_quote(key.text), where, " is ",
             pk_kind_name(value.kind), ", not a tensor; this reader takes state dicts (names to tensors)");
    size_t slot = out.size();
    if (auto it = by_object.find(dict.items[i]); it != by_object.end()) {
      slot = it->second;
    } else {
      slot = by_text.emplace(key.text, out.size()).first->second;
      by_object.emplace(dict.items[i], slot);
    }
    const TorchTensorInfo& info = machine.tensors()[static_cast<size_t>(value.number)];
    if (slot == out.size()) {
      out.push_back(info);
      out.back().name.assign(key.text);
    } else {  // the name stays: copying it again per repeat would be quadratic in a crafted file
      std::string name = std::move(out[slot].name);
      out[slot] = info;
      out[slot].name = std::move(name);
    }
  }
  return out;
}

}  // namespace ls::io
