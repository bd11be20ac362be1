#!/usr/bin/env python3
"""extract-vmlinux.py VMLINUZ OUT - the uncompressed kernel ELF inside a bzImage, for qemu's PVH boot.

What the kernel's scripts/extract-vmlinux does: find each compressed payload after the setup code (xz,
zstd or gzip) and keep the first that decompresses to an ELF. Shared by setup.sh (Debian 12's kernel) and
src/test/matrix/kernel.sh (the other suites' kernels).
"""
import lzma
import subprocess
import sys
import zlib

data = open(sys.argv[1], 'rb').read()


def try_xz(off):
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])


def try_gz(off):
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[off:])


def try_zstd(off):
    return subprocess.run(['zstd', '-dcq'], input=data[off:], capture_output=True).stdout


for magic, fn in ((b'\xfd7zXZ\x00', try_xz), (b'\x28\xb5\x2f\xfd', try_zstd), (b'\x1f\x8b\x08', try_gz)):
    off = data.find(magic)
    while off >= 0:
        try:
            out = fn(off)
        except Exception:
            out = b''
        if out[:4] == b'\x7fELF':
            open(sys.argv[2], 'wb').write(out)
            sys.exit(0)
        off = data.find(magic, off + 1)
sys.exit('no ELF payload found in ' + sys.argv[1])
