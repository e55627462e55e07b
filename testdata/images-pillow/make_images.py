"""Writes the PNG and JPEG variants ImageDecoderPillowParityTest decodes, and next to each (NAME.rgb) the bytes of
Pillow's Image.open(NAME).convert("RGB") - what transformers' image processors start from. Needs Pillow and numpy
(Debian: python3-pil python3-numpy); the goldens here were written with Pillow 9.4.

    python3 testdata/images-pillow/make_images.py

Some PNGs are written byte by byte below (16-bit RGB and RGBA, 2- and 4-bit gray, tRNS), which Pillow cannot save;
two ICC profiles come from Java's built-in linear-RGB and gray profiles (linear.icc, gray.icc, kept here).
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

os.chdir(os.path.dirname(os.path.abspath(__file__)))
rng = np.random.default_rng(7)
W, H = 37, 23
base = (np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1).sum(-1) * 3 % 256).astype(np.uint8)
rgb = np.stack([base, (base * 7) % 256, rng.integers(0, 256, (H, W), dtype=np.uint8)], -1).astype(np.uint8)
Image.fromarray(rgb, "RGB").save("rgb8.png")
Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (H, W), dtype=np.uint8)]), "RGBA").save("rgba8.png")
Image.fromarray(base, "L").save("gray8.png")
Image.fromarray(np.dstack([base, base[::-1]]), "LA").save("la8.png")
g16 = rng.integers(0, 65536, (H, W)).astype(np.int32)
g16[:, :5] = rng.integers(0, 256, (H, 5))
Image.fromarray(g16, "I").save("gray16.png")   # written as 16-bit grayscale
Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=50).save("palette.png")
Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=16).save("palette_trns.png", transparency=3)
Image.fromarray(base > 128).convert("1").save("bw1.png")
for q, sub in [(90, 0), (75, 2), (50, 1)]:
    Image.fromarray(rgb, "RGB").save(f"rgb_q{q}_s{sub}.jpg", quality=q, subsampling=sub)
Image.fromarray(base, "L").save("gray.jpg", quality=85)
Image.fromarray(rgb, "RGB").save("progressive.jpg", quality=80, progressive=True)
Image.fromarray(rgb, "RGB").convert("CMYK").save("cmyk.jpg", quality=90)
Image.fromarray(rgb, "RGB").save("icc_linear.jpg", quality=92, icc_profile=open("linear.icc", "rb").read())
Image.fromarray(base, "L").save("icc_gray.jpg", quality=90, icc_profile=open("gray.icc", "rb").read())

w, h = 19, 13


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(name, color_type, depth, rows, extra=b""):
    header = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    with open(name, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw))
                + chunk(b"IEND", b""))


def rows16(a):
    return [a[y].astype(">u2").tobytes() for y in range(h)]


png("rgb16.png", 2, 16, rows16(rng.integers(0, 65536, (h, w, 3))))
png("rgba16.png", 6, 16, rows16(rng.integers(0, 65536, (h, w, 4))))
png("la16.png", 4, 16, rows16(rng.integers(0, 65536, (h, w, 2))))
for depth in (2, 4):
    values = rng.integers(0, 2 ** depth, (h, w))
    packed = []
    for y in range(h):
        bits = "".join(format(v, f"0{depth}b") for v in values[y])
        bits += "0" * (-len(bits) % 8)
        packed.append(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    png(f"gray{depth}.png", 0, depth, packed)
gray = rng.integers(0, 256, (h, w)).astype(np.uint8)
png("gray8_trns.png", 0, 8, [gray[y].tobytes() for y in range(h)], chunk(b"tRNS", struct.pack(">H", int(gray[0, 0]))))

for name in sorted(os.listdir(".")):
    if name.endswith((".png", ".jpg")):
        with open(name + ".rgb", "wb") as f:
            f.write(np.asarray(Image.open(name).convert("RGB")).tobytes())
print("wrote", len([n for n in os.listdir(".") if n.endswith(".rgb")]), "images and their Pillow RGB bytes")
