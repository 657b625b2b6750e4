# Seeds for fuzz_text_clean: captions and prompts as they reach CLIP's cleaning (HTML escapes from
# scraped tags, mojibake and C1 controls, fullwidth forms, ligatures, curly quotes, CRLF and
# U+2028 line breaks, terminal colour escapes, controls, combining marks, case mappings that grow,
# CLIP's special tokens, invalid UTF-8), plus every string literal of the cleaning and tokenizer tests.
# Usage: python3 fuzz_text_clean.py OUT_DIR REPO_ROOT
import pathlib, re, sys

TEXTS = {
    "caption": "1girl, solo, long hair, looking at viewer, smile, blue eyes, white background",
    "html": "tom &amp; jerry, &lt;3, &quot;quoted&quot;, &#39;s, &#x41;&#128;&nbsp;&bogus; &amp;amp;lt;",
    "html_after_lt": "a < b &amp; c\n&lt;tag&gt; &fflig; &EACUTE;\r\n&amp;amp;\u2028<",
    "mojibake": "caf\u00c3\u00a9, \u00e2\u20ac\u0153smart\u00e2\u20ac\u009d, \u0080\u0081\u0093\u009d",
    "fullwidth": "\uff33\uff4b\uff53 \uff44\uff4f\uff47\uff01\u3000\uff08\uff11\uff09\uff06amp;",
    "ligatures": "\ufb01ne \ufb02ower \u0132sselmeer \u01c4 \u0149 \ufb06",
    "quotes": "\u2018single\u2019 \u201cdouble\u201d \u02bcapostrophe \u201b\u201f",
    "lines": "first\r\nsecond\rthird\u2028fourth\u2029fifth\u0085sixth\n\n",
    "ansi": "\x1b[31mred\x1b[0m \x1b[1;32;40mbold\x1b[m \x1b[12",
    "controls": "a\x00b\x01c\x08d\x0be\x0cf\x1cg\x1fh\x7fi\ufeffj\u206ak\ufffbl",
    "combining": "W\u030a y\u030a t\u0308 J\u030c e\u0301 A\u030a \u212b \u2126 \u0345\u0399",
    "case": "\u0130STANBUL \u03a3\u0391\u03a3 \u1e9e \u01c5 \u216b \u0130\u0307",
    "specials": "<|startoftext|>a photo<|endoftext|> <|\u017ftartoftext|> it's they're we'VE I'M",
    "numbers": "\u0661\u0662\u0663 \u00bd \u2163 \u4e00\u4e8c 123abc",
    "blanks": " \t\u00a0\u1680\u2000\u2003\u202f\u205f\u3000 padded \u001c\u001f ",
}
BYTES = {
    "invalid_utf8": b"caf\xc3 \xe0\x80 \xed\xa0\x80 \xf0\x9f\x98 \xc0\xaf \xf4\x90\x80\x80 \xff\xfe ok",
    "latin1": "na\u00efve caf\u00e9 r\u00e9sum\u00e9".encode("latin-1"),
    "bom": b"\xef\xbb\xbfbom at start, and \xef\xbb\xbf inside",
}

def cpp_literal_bytes(s):
    """The bytes of a C++ narrow string literal's text (\\x, \\u, \\U and the simple escapes)."""
    out, i = bytearray(), 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            c = s[i + 1]
            if c == "x":
                m = re.match(r"[0-9A-Fa-f]{1,2}", s[i + 2:])
                out.append(int(m.group(0), 16))
                i += 2 + len(m.group(0))
            elif c in "uU":
                n = 4 if c == "u" else 8
                out += chr(int(s[i + 2:i + 2 + n], 16)).encode("utf-8", "surrogatepass")
                i += 2 + n
            else:
                out += simple.get(c, c).encode("utf-8")
                i += 2
            continue
        out += s[i].encode("utf-8")
        i += 1
    return bytes(out)

out, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for name, text in TEXTS.items():
    (out / name).write_text(text, encoding="utf-8")
for name, data in BYTES.items():
    (out / name).write_bytes(data)

literal = re.compile(r'(?<![\w\'])"((?:[^"\\\n]|\\.)*)"')
for test in ["tests/text/test_text_clean.cpp", "tests/text/test_clip_tokenizer.cpp"]:
    path = root / test
    if not path.is_file():
        continue
    seen = set()
    for m in literal.finditer(path.read_text(encoding="utf-8")):
        data = cpp_literal_bytes(m.group(1))
        if len(data) >= 2 and data not in seen and not data.endswith((b".h", b".hpp", b".gz", b".txt")):
            seen.add(data)
            (out / f"test-{path.stem}-{len(seen)}").write_bytes(data)
