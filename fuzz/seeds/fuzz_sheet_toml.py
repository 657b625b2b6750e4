# Seeds for fuzz_sheet_toml: the committed sheet definitions (every axis kind, globs, prompts with
# A1111 emphasis, request keys and their aliases, LoRAs on every cell) plus every ```toml example of
# the docs that is a sheet definition. Usage: python3 fuzz_sheet_toml.py OUT_DIR REPO_ROOT
import pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from doc_blocks import doc_blocks

out, root = pathlib.Path(sys.argv[1]), sys.argv[2]
for name, text in doc_blocks(root, "toml", lambda t: "kind =" in t and "[grid]" not in t):
    (out / (name + ".toml")).write_text(text, encoding="utf-8")
