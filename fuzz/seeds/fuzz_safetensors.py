# Seeds for fuzz_safetensors: small valid files as the Python/Rust writers lay them out (8-byte LE
# length, JSON padded with spaces to 8 bytes, data), covering metadata, 0-dim, empty and float8
# tensors.  Usage: python3 fuzz_safetensors.py OUT_DIR REPO_ROOT
import json, os, struct, sys

size = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
        "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}
cases = {
    "empty": ([], {}),
    "meta": ([], {"ss_network_dim": "16", "note": "caf\u00e9"}),
    "one_f32": ([("w", "F32", [2, 3])], {}),
    "mixed": ([("a", "F16", [4]), ("b", "BOOL", []), ("c", "I64", [2, 0]), ("d", "BF16", [1, 2, 1])],
              {"format": "pt"}),
    "f8": ([("e4", "F8_E4M3", [8]), ("e5", "F8_E5M2", [2, 4]), ("u", "U16", [3])], {}),
}
for name, (tensors, meta) in cases.items():
    header, offset = {}, 0
    if meta:
        header["__metadata__"] = meta
    for tname, dtype, shape in tensors:
        n = size[dtype]
        for d in shape:
            n *= d
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    data = bytes((i * 37) & 0xFF for i in range(offset))
    with open(os.path.join(sys.argv[1], name + ".safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
