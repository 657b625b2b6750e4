# Seeds for fuzz_train_toml: the committed configs (kohya flat and sectioned TOMLs, a GUI export
# with kohya keys lorastudio ignores or takes only off, an effective config lorastudio wrote) plus
# every ```toml example of the docs that is a training config (not a sweep, sheet or dataset).
# Usage: python3 fuzz_train_toml.py OUT_DIR REPO_ROOT
import pathlib, sys
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from doc_blocks import doc_blocks

out, root = pathlib.Path(sys.argv[1]), sys.argv[2]
other = ("[grid]", "[[variants]]", "[[datasets", "[x]", "[y]", "kind =")
for name, text in doc_blocks(root, "toml", lambda t: not any(s in t for s in other)):
    (out / (name + ".toml")).write_text(text, encoding="utf-8")
