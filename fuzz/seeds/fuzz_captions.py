# Seeds for fuzz_captions: real-shaped captions (WD14 tag lists, BLIP/Florence sentences, the
# examples of kohya's docs/config_README-en.md for keep_tokens_separator, secondary_separator and
# caption_prefix/suffix, non-ASCII tags, CRLF multi-line files) under option headers the target
# decodes: byte 0 flags (1 shuffle, 2 tag dropout, 4 caption dropout, 8 every-n-epochs,
# 16 keep_tokens_separator, 32 secondary_separator, 64 prefix, 128 suffix), byte 1 keep_tokens
# (low 5 bits) and every-n (high 3), byte 2 rates (low nibble tag dropout, high caption dropout
# in 15ths), byte 3 seed; then caption, caption_separator, keep_tokens_separator,
# secondary_separator, prefix, suffix separated by 0x1F.
# Usage: python3 fuzz_captions.py OUT_DIR REPO_ROOT
import os, sys

US = "\x1f"
captions = {
    "wd14": "1girl, solo, long hair, looking at viewer, smile, blue eyes, brown hair, shirt, white background, upper body",
    "sks": "sks dog, a photo of a dog sitting on grass, outdoors",
    "sentence": "a photograph of an astronaut riding a horse on the moon, highly detailed",
    "keep_sep": "1girl, hatsune miku, vocaloid ||| stage, microphone, white shirt, smile ||| best quality, rating: general",
    "secondary": "1girl, hatsune miku, vocaloid, upper body, looking at viewer, sky;;;cloud;;;day, outdoors",
    "empty_tags": "a,,b, ,c,",
    "unicode": "少女, 東方, ｓｋｓ, café au lait, naïve art, émoji 😀, \u00a0spaced\u3000tag",
    "multiline": "1girl, red dress\r\nsecond line, ignored\nthird",
    "underscores": "long_hair, looking_at_viewer, :d, ^_^, >_<, (artist:1.2), [blurry]",
    "wildcard": "1girl, hatsune miku, vocaloid, upper body, {simple|white} background, {{retro style}}",
}
# (name, flags, keep byte, rates byte, seed, separator, keep sep, secondary, prefix, suffix)
options = [
    ("plain", 0, 0, 0, 0, "", "", "", "", ""),
    ("shuffle", 1, 0, 0, 1, "", "", "", "", ""),
    ("shuffle_keep1", 1, 1, 0, 2, "", "", "", "", ""),
    ("shuffle_keep3_drop", 3, 3, 0x03, 3, "", "", "", "", ""),
    ("tag_drop_all", 2, 0, 0x0F, 4, "", "", "", "", ""),
    ("caption_drop", 5, 0, 0x80, 5, "", "", "", "", ""),
    ("every_n", 9, 0x40, 0, 6, "", "", "", "", ""),
    ("keep_sep", 17, 0, 0x02, 7, "", "|||", "", "", ""),
    ("secondary", 33, 0, 0x01, 8, "", "", ";;;", "", ""),
    ("prefix_suffix", 0xD1, 0, 0x01, 9, "", "|||", "", "1girl, hatsune miku, vocaloid |||",
     ", anime screencap ||| masterpiece, rating: general"),
    ("semicolon", 1, 2, 0, 10, ";", "", "", "", ""),
    ("space_sep", 3, 1, 0x05, 11, " ", "", "", "", ""),
    ("all", 0xFF, 0x22, 0x33, 12, ",", "|||", ";;;", "masterpiece, best quality,", ", from side"),
]
out = sys.argv[1]
for cname, text in captions.items():
    for oname, flags, keep, rates, seed, sep, ksep, ssep, prefix, suffix in options:
        body = US.join([text, sep, ksep, ssep, prefix, suffix]).encode("utf-8")
        with open(os.path.join(out, f"{cname}-{oname}"), "wb") as f:
            f.write(bytes([flags, keep, rates, seed]) + body)
