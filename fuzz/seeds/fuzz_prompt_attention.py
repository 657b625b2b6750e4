# Seeds for fuzz_prompt_attention: A1111-style prompts as people write them (nested emphasis, explicit
# weights, escaped brackets of artist names, BREAK between regions, unbalanced brackets, Unicode
# digits and blanks), every prompt literal the parser's own tests and the prompt-encoder tests feed
# it, and every prompt the docs show (`--prompt "..."`, `prompt = "..."`, `prompts = [...]`).
# Usage: python3 fuzz_prompt_attention.py OUT_DIR REPO_ROOT
import pathlib, re, sys

PROMPTS = {
    "tags": "masterpiece, best quality, (1girl:1.2), solo, ((detailed eyes)), [blurry], looking at viewer",
    "nested": "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    "escaped": "portrait by \\(artist\\), \\[wip\\], back\\\\slash, lone \\ backslash",
    "break": "a castle on a hill, sunset BREAK a dragon in the sky, (fire:1.1)\nBREAK\tclouds",
    "break_words": "BREAKING news, a BREAK_ b, xBREAK BREAK, \u00e9BREAK \u00e9 BREAK",
    "unbalanced": "((open bracket, [half closed), ] stray) close:1.2) (x:2",
    "weights": "(a:-0.5) (b:+.5) (c:1.) (d:0) (e:1e3) (f:\u0661.\u0665) (g: 1.2) (h:1.2.3",
    "deep": "(" * 40 + "deep" + ")" * 40 + " " + "[" * 40 + "shallow" + "]" * 40,
    "unicode": "\u5c11\u5973, (\u6771\u65b9:1.1), \u3000\u00a0spaced\u2028line, caf\u00e9 [na\u00efve]",
    "lora_tags": "sks dog, <lora:detail tweaker:0.8>, (red collar:1.2), [lowres:0.5]",
    "empty_groups": "()[]([]):1)\\",
    "negative": "(worst quality, low quality:1.4), (bad anatomy), [[[extra fingers]]], watermark",
}

# A C++ string literal's text, for the prompts in the tests.
def cpp_unescape(s):
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            c = s[i + 1]
            if c == "u":
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(c, c))
            i += 2
            continue
        out.append(s[i])
        i += 1
    return "".join(out)

out, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for name, text in PROMPTS.items():
    (out / name).write_text(text, encoding="utf-8")

literal = r'"((?:[^"\\]|\\.)*)"'
calls = re.compile(r"(?:parse_prompt_attention|chunk_prompt)\((?:[^,()]*,\s*)?" + literal)
assigned = re.compile(r"std::string prompt = " + literal)
for test in ["tests/text/test_prompt_attention.cpp", "tests/sample/test_prompt_encoder.cpp"]:
    path = root / test
    if not path.is_file():
        continue
    source = path.read_text(encoding="utf-8")
    for i, m in enumerate(list(calls.finditer(source)) + list(assigned.finditer(source))):
        (out / f"test-{path.stem}-{i}").write_text(cpp_unescape(m.group(1)), encoding="utf-8")

shown = re.compile(r'(?:--prompt |--negative_prompt |prompt = |negative_prompt = )"([^"\n]*)"|prompts = \[([^\]\n]*)\]')
for path in sorted((root / "docs").glob("*.md")) + [root / "README.md"]:
    if not path.is_file():
        continue
    n = 0
    for m in shown.finditer(path.read_text(encoding="utf-8")):
        for text in [m.group(1)] if m.group(1) is not None else re.findall(r'"([^"]*)"', m.group(2)):
            if text and text != "...":
                (out / f"doc-{path.stem}-{n}").write_text(text, encoding="utf-8")
                n += 1
