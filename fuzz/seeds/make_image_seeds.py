# Writes the committed image seeds of fuzz_image_header and fuzz_png_text: tiny real files as
# Pillow writes them (JPEG baseline/progressive/grayscale with EXIF orientation 1..8 in both byte
# orders, PNG with extra and text chunks and eXIf, WebP lossy/lossless/extended/animated with EXIF,
# BMP bottom-up/top-down/core-header/1..32 bpp) and PNG text chunks as lorastudio (A1111's PIL
# layout), ComfyUI and PIL's zTXt/iTXt write them. Not run by scripts/fuzz (its seeds are the
# committed output); rerun by hand with a Python that has Pillow:
#   python3 fuzz/seeds/make_image_seeds.py REPO_ROOT
import io, json, os, struct, sys, zlib

from PIL import Image, PngImagePlugin

root = sys.argv[1] if len(sys.argv) > 1 else "."
hdr_dir = os.path.join(root, "fuzz/seeds/fuzz_image_header")
txt_dir = os.path.join(root, "fuzz/seeds/fuzz_png_text")
os.makedirs(hdr_dir, exist_ok=True)
os.makedirs(txt_dir, exist_ok=True)


def picture(w=8, h=6, mode="RGB"):
    img = Image.new("RGB", (w, h))
    img.putdata([((x * 37) & 255, (y * 53) & 255, ((x + y) * 19) & 255) for y in range(h) for x in range(w)])
    return img.convert(mode)


def save(folder, name, img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(buf.getvalue())
    return buf.getvalue()


def tiff_orientation_block(orientation, big_endian=False, as_long=False):
    """A TIFF header with one IFD0 entry, tag 0x0112 (SHORT, or LONG as some writers do)."""
    e = ">" if big_endian else "<"
    typ, value = (4, struct.pack(e + "I", orientation)) if as_long else (3, struct.pack(e + "HH", orientation, 0))
    return (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", 1) + \
        struct.pack(e + "HHI", 0x0112, typ, 1) + value + struct.pack(e + "I", 0)


def exif_for(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "fuzz"  # Make: a second IFD0 entry, so the walk passes one before the tag
    return exif.tobytes()


# JPEG
for o in range(1, 9):
    save(hdr_dir, f"jpeg_orient{o}.jpg", picture(), "JPEG", quality=80, exif=exif_for(o))
save(hdr_dir, "jpeg_progressive.jpg", picture(16, 12), "JPEG", quality=70, progressive=True, exif=exif_for(6))
save(hdr_dir, "jpeg_gray.jpg", picture(5, 7, "L"), "JPEG", quality=90)
save(hdr_dir, "jpeg_subsampled_optimized.jpg", picture(17, 9), "JPEG", quality=60, subsampling=2, optimize=True)
# Big-endian EXIF (cameras) and LONG orientation: APP1 spliced in after SOI by hand.
base = io.BytesIO()
picture(6, 4).save(base, "JPEG", quality=75)
for name, tiff in (("jpeg_exif_mm.jpg", tiff_orientation_block(8, big_endian=True)),
                   ("jpeg_exif_long.jpg", tiff_orientation_block(5, as_long=True))):
    payload = b"Exif\0\0" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    with open(os.path.join(hdr_dir, name), "wb") as f:
        f.write(base.getvalue()[:2] + app1 + base.getvalue()[2:])

# PNG
save(hdr_dir, "png_rgb.png", picture(), "PNG")
save(hdr_dir, "png_rgba.png", picture(7, 5, "RGBA"), "PNG")
save(hdr_dir, "png_palette.png", picture(9, 3, "P"), "PNG")
save(hdr_dir, "png_gray16.png", picture(4, 4, "L").convert("I;16"), "PNG")
save(hdr_dir, "png_exif_orient6.png", picture(), "PNG", exif=exif_for(6))
info = PngImagePlugin.PngInfo()
info.add_text("Software", "fuzz")
info.add_text("Comment", "caf\u00e9", zip=True)
save(hdr_dir, "png_text_chunks.png", picture(3, 2), "PNG", pnginfo=info, dpi=(72, 72))

# WebP
save(hdr_dir, "webp_lossy.webp", picture(10, 6), "WEBP", quality=50)
save(hdr_dir, "webp_lossless.webp", picture(10, 6), "WEBP", lossless=True)
save(hdr_dir, "webp_alpha.webp", picture(9, 5, "RGBA"), "WEBP", quality=50)  # VP8X + ALPH + VP8
for o in (3, 6, 8):
    save(hdr_dir, f"webp_exif_orient{o}.webp", picture(8, 6), "WEBP", quality=50, exif=exif_for(o))
frames = [picture(6, 6), picture(6, 6).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
save(hdr_dir, "webp_animated.webp", frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50,
     lossless=True)

# BMP: Pillow writes bottom-up BITMAPINFOHEADER files.
for mode, name in (("RGB", "bmp_24.bmp"), ("1", "bmp_1.bmp"), ("P", "bmp_8.bmp"), ("RGBA", "bmp_32.bmp")):
    save(hdr_dir, name, picture(5, 3, mode), "BMP")
bottom_up = save(hdr_dir, "bmp_bottom_up.bmp", picture(4, 3), "BMP")
# Top-down: the same file with the height negated (rows then read first to last).
top_down = bytearray(bottom_up)
top_down[22:26] = struct.pack("<i", -3)
open(os.path.join(hdr_dir, "bmp_top_down.bmp"), "wb").write(top_down)
# BITMAPCOREHEADER (OS/2 1.x, 12 bytes), 24 bpp, 2x2, rows padded to 4 bytes.
rows = b"".join(bytes([r * 40, 100, 200] * 2) + b"\0\0" for r in range(2))
core = struct.pack("<IHHHH", 12, 2, 2, 1, 24)
open(os.path.join(hdr_dir, "bmp_core.bmp"), "wb").write(
    b"BM" + struct.pack("<IHHI", 14 + 12 + len(rows), 0, 0, 26) + core + rows)

# PNG text chunks.
def png_with(entries, img=None, **kw):
    info = PngImagePlugin.PngInfo()
    for kind, key, value, extra in entries:
        if kind == "text":
            info.add_text(key, value, **extra)
        else:
            info.add_itxt(key, value, **extra)
    buf = io.BytesIO()
    (img or picture(4, 3)).save(buf, "PNG", pnginfo=info, **kw)
    return buf.getvalue()


lorastudio_text = ("a photo of sks dog, (masterpiece:1.2), <lora:sks_dog:0.8>\nNegative prompt: lowres, bad anatomy\n"
                   "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 1024x1024, "
                   "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: \"sks_dog: 0123456789ab\", "
                   "Version: lorastudio 0.1.0")
comfy_prompt = {"3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 8, "sampler_name": "euler",
                "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
                "negative": ["7", 0], "latent_image": ["5", 0]}},
                "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery, caf\u00e9", "clip": ["4", 1]}}}
comfy_workflow = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [5, "fixed", 20]}],
                  "links": [[1, 4, 0, 3, 0, "MODEL"]], "version": 0.4}
cases = {
    "lorastudio_parameters.png": [("text", "parameters", lorastudio_text, {})],
    "lorastudio_parameters_utf8.png": [("text", "parameters", "\u732b, \U0001F600 best quality\nSteps: 20, "
                                        "Sampler: Euler a, CFG scale: 5.5, Seed: 7, Size: 832x1216", {})],
    "comfyui_prompt_workflow.png": [("text", "prompt", json.dumps(comfy_prompt), {}),
                                    ("text", "workflow", json.dumps(comfy_workflow), {})],
    "ztxt_latin1.png": [("text", "parameters", lorastudio_text, {"zip": True}), ("text", "Author", "J\u00f6rg", {"zip": True})],
    "itxt_compressed.png": [("itxt", "Description", "\u6771\u4eac\u306e\u591c", {"lang": "ja", "tkey": "\u8aac\u660e", "zip": True})],
    "itxt_plain_lang.png": [("itxt", "Title", "Stra\u00dfe \u2713", {"lang": "de-DE", "tkey": "Titel"}),
                            ("itxt", "parameters", "x\nSteps: 1, Sampler: Euler, CFG scale: 1, Seed: 0, Size: 64x64", {})],
    "mixed_duplicate_keys.png": [("text", "parameters", "first", {}), ("text", "parameters", "second", {"zip": True}),
                                 ("itxt", "Comment", "", {})],
}
for name, entries in cases.items():
    with open(os.path.join(txt_dir, name), "wb") as f:
        f.write(png_with(entries))
# Text after IDAT (PIL writes pnginfo before IDAT; other writers append at the end) and an eXIf chunk.
png = png_with([("text", "parameters", "before", {})], exif=exif_for(3))
iend = png.rindex(b"IEND") - 4
tail_text = b"late\0after IDAT"
chunk = struct.pack(">I", len(tail_text)) + b"tEXt" + tail_text + struct.pack(">I", zlib.crc32(b"tEXt" + tail_text))
open(os.path.join(txt_dir, "text_after_idat_exif.png"), "wb").write(png[:iend] + chunk + png[iend:])
