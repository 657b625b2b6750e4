# Seeds for fuzz_sweep_toml: the committed sweeps ([base] tables flat and kohya-sectioned, grids of
# numbers, paths, lists, variants, [sheet] with its own keys and the sheet keys, a base file name)
# plus every ```toml example of the docs that is a sweep, as written (its base = "train.toml" fails
# to read: the target's folder does not exist) and with that base replaced by a [base] table of
# training keys, so the example's grid, variants and [sheet] plan.
# Usage: python3 fuzz_sweep_toml.py OUT_DIR REPO_ROOT
import pathlib, re, sys
sys.path.insert(0, str(pathlib.Path(__file__).parent))
from doc_blocks import doc_blocks

BASE = ('[base]\npretrained_model_name_or_path = "model.safetensors"\ndataset_config = "dataset.toml"\n'
        'output_name = "doc"\nmax_train_epochs = 2\n')

out, root = pathlib.Path(sys.argv[1]), sys.argv[2]
for name, text in doc_blocks(root, "toml", lambda t: "[grid]" in t or "[[variants]]" in t):
    (out / (name + ".toml")).write_text(text, encoding="utf-8")
    lines = [l for l in text.splitlines(keepends=True) if not re.match(r"\s*(base\s*=|#\s*\[base\])", l)]
    first_table = next((i for i, l in enumerate(lines) if l.lstrip().startswith("[")), len(lines))
    (out / (name + "-base-table.toml")).write_text("".join(lines[:first_table]) + BASE + "".join(lines[first_table:]),
                                                   encoding="utf-8")
