# Helper of the seed generators (not a target): the fenced code blocks of the repository's docs, so
# that every example a page shows is a seed of the parser that reads it.
import pathlib, re, textwrap

def doc_blocks(root, lang, keep=lambda text: True):
    """(name, text) of every ```lang block in docs/*.md and README.md for which keep(text) holds."""
    paths = sorted(pathlib.Path(root, "docs").glob("*.md")) + [pathlib.Path(root, "README.md")]
    fence = re.compile(r"^([ \t]*)```" + re.escape(lang) + r"[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)
    for path in paths:
        if not path.is_file():
            continue
        for i, m in enumerate(fence.finditer(path.read_text(encoding="utf-8"))):
            text = textwrap.dedent(m.group(2))
            if keep(text):
                yield f"doc-{path.stem}-{i}", text
