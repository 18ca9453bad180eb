#!/usr/bin/env python3
"""An independent decoder of compeft payload encoding 3 (`ternary-gap`), written from docs/FORMAT.md alone.

    python3 Fixtures/decode_gap.py CONTAINER.cpeft
        For every tensor with encoding 3, prints {name: {"nonzero", "mask_sha256", "signs_sha256", "runs"}} as
        JSON: mask packed LSB first in ceil(count/8) bytes, signs in ceil(nonzero/8) bytes (the packing of
        encoding 1); "runs" counts the runs of each mode ({"golomb": g, "huffman": h}).
    python3 Fixtures/decode_gap.py --streams MANIFEST.json
        MANIFEST is [{"name", "path", "count", "nonzero"}, ...], each path a bare gap stream. Prints the same
        JSON, with {"error": message} for a stream that must be rejected.
    python3 Fixtures/decode_gap.py --tables
        Prints {"moduli": [m for k = 0..399], "huffman": {j: [code length of s for s = 0..255]},
        "huffmanWords": {j: [code word value of s]}} for cross-checking the code tables.

Only the standard library is needed. The container's index is a zstd frame: it is opened with the `zstandard`
module when installed, else with the `zstd` command (`zstd -dc`).
"""

import hashlib
import json
import shutil
import struct
import subprocess
import sys


class GapStreamError(ValueError):
    """The stream breaks a rule of docs/FORMAT.md, "Encoding 3"."""


# ---------------------------------------------------------------------------------------------------------------
# Bit stream: bit i is bit (i mod 8) of byte i // 8, lowest bit first. Bits are unpacked to one byte each
# (0 or 1) so runs of ones or zeros can be found with bytes.find.

_UNPACKED = [bytes((value >> k) & 1 for k in range(8)) for value in range(256)]


class Bits:
    def __init__(self, data):
        self.bits = b"".join(_UNPACKED[value] for value in data)
        self.pos = 0

    def bit(self):
        if self.pos >= len(self.bits):
            raise GapStreamError(f"stream ends inside a field at bit {self.pos}")
        value = self.bits[self.pos]
        self.pos += 1
        return value

    def field(self, width):
        """A width-bit unsigned field, first bit least significant."""
        if self.pos + width > len(self.bits):
            raise GapStreamError(f"stream ends inside a {width}-bit field at bit {self.pos}")
        value = 0
        for k in range(width):
            value |= self.bits[self.pos + k] << k
        self.pos += width
        return value

    def unary(self):
        """q one bits, then a zero bit: returns q."""
        zero = self.bits.find(b"\x00", self.pos)
        if zero < 0:
            raise GapStreamError(f"stream ends inside a unary quotient at bit {self.pos}")
        q = zero - self.pos
        self.pos = zero + 1
        return q

    def gamma(self, limit, what):
        """Elias gamma: N zeros, then N + 1 digits most significant first. Rejects a value above limit."""
        one = self.bits.find(b"\x01", self.pos)
        if one < 0:
            raise GapStreamError(f"stream ends inside the {what} at bit {self.pos}")
        n = one - self.pos
        if (1 << n) > limit:  # the value is at least 2^n
            raise GapStreamError(f"{what} has {n} leading zeros, above {limit}, at bit {self.pos}")
        self.pos = one
        value = 0
        for _ in range(n + 1):
            value = (value << 1) | self.bit()
        if value > limit:
            raise GapStreamError(f"{what} {value} exceeds {limit} at bit {self.pos}")
        return value


# ---------------------------------------------------------------------------------------------------------------
# Golomb moduli.

GOLOMB_INDICES = range(0, 400)


def golomb_modulus(k):
    if k <= 31:
        return k + 1
    e, f = divmod(k - 32, 16)
    return (32 + 2 * f) << e


# ---------------------------------------------------------------------------------------------------------------
# Byte-Huffman codes.

HUFFMAN_JS = range(4, 61)


def huffman_lengths(j):
    """Code length of every byte for parameter j: two-queue Huffman over integer weights."""
    weight = [j ** bin(s).count("1") * (64 - j) ** (8 - bin(s).count("1")) for s in range(256)]
    # A node is (weight, leaf byte or None, children); queue A holds leaves by ascending (weight, byte).
    queue_a = [(weight[s], s, ()) for s in sorted(range(256), key=lambda s: (weight[s], s))]
    queue_b = []
    ia = ib = 0

    def take():
        nonlocal ia, ib
        if ia < len(queue_a) and (ib >= len(queue_b) or queue_a[ia][0] <= queue_b[ib][0]):
            ia += 1
            return queue_a[ia - 1]
        ib += 1
        return queue_b[ib - 1]

    for _ in range(255):
        first = take()
        second = take()
        queue_b.append((first[0] + second[0], None, (first, second)))
    assert ia == 256 and ib == 254 and len(queue_b) == 255
    root = queue_b[-1]
    lengths = [0] * 256
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if node[1] is not None:
            lengths[node[1]] = depth
        else:
            for child in node[2]:
                stack.append((child, depth + 1))
    return lengths


def canonical_words(lengths):
    """Canonical code values: bytes by ascending (length, byte), the first 0, each next (previous + 1) shifted."""
    order = sorted(range(256), key=lambda s: (lengths[s], s))
    words = [0] * 256
    value = -1
    previous_length = lengths[order[0]]
    for s in order:
        value = (value + 1) << (lengths[s] - previous_length)
        previous_length = lengths[s]
        words[s] = value
    return words


class HuffmanDecoder:
    def __init__(self, j):
        self.lengths = huffman_lengths(j)
        self.words = canonical_words(self.lengths)
        self.table = {(self.lengths[s], self.words[s]): s for s in range(256)}
        self.max_length = max(self.lengths)

    def read(self, bits):
        """Reads one code word, most significant bit first."""
        value = 0
        for length in range(1, self.max_length + 1):
            value = (value << 1) | bits.bit()
            s = self.table.get((length, value))
            if s is not None:
                return s
        raise GapStreamError(f"no code word at bit {bits.pos}")  # cannot happen: the code is complete


_huffman_cache = {}


def huffman_decoder(j):
    if j not in _huffman_cache:
        _huffman_cache[j] = HuffmanDecoder(j)
    return _huffman_cache[j]


# ---------------------------------------------------------------------------------------------------------------
# The decoder.


def decode_packed(stream, count, nonzero):
    """Decodes one gap stream: returns (mask bytes, sign bytes, {"golomb": runs, "huffman": runs}).

    Raises GapStreamError for every stream docs/FORMAT.md says to reject.
    """
    if not (0 <= nonzero <= count <= 1 << 48):
        raise GapStreamError(f"counts {nonzero}/{count} out of range")
    stream = bytes(stream)
    if not stream:
        raise GapStreamError("empty payload")
    header = stream[0]
    if header >> 4 != 1:
        raise GapStreamError(f"layout version {header >> 4}, expected 1")
    block_bits = (header & 0x0F) + 8
    sign_bytes = (nonzero + 7) // 8
    if len(stream) < 1 + sign_bytes:
        raise GapStreamError("shorter than its sign bytes")
    signs = stream[1 : 1 + sign_bytes]
    if nonzero % 8 and signs[-1] >> (nonzero % 8):
        raise GapStreamError("sign bit set past the last kept value")

    bits = Bits(stream[1 + sign_bytes :])
    mask = bytearray((count + 7) // 8)
    blocks = -(-count // (1 << block_bits))
    parameter = [6, 16]
    runs = {"golomb": 0, "huffman": 0}
    kept = 0
    block = 0
    while block < blocks:
        length = bits.gamma(blocks - block, "run length")
        mode = bits.bit()
        z = bits.gamma(1 << 64, "run parameter") - 1
        delta = z // 2 if z % 2 == 0 else -(z + 1) // 2
        parameter[mode] += delta
        start = block << block_bits
        end = min(count, (block + length) << block_bits)
        if mode == 0:
            k = parameter[0]
            if k not in GOLOMB_INDICES:
                raise GapStreamError(f"Golomb index {k} out of range")
            runs["golomb"] += 1
            m = golomb_modulus(k)
            if m > 1:
                b = (m - 1).bit_length()
                t = (1 << b) - m
            c = start
            while True:
                q = bits.unary()
                r = 0
                if m > 1:
                    x = bits.field(b - 1)
                    r = x if x < t else 2 * x + bits.bit() - t
                p = c + q * m + r
                if p == end:
                    break
                if p > end:
                    raise GapStreamError(f"gap runs past the run's end {end} at bit {bits.pos}")
                if kept == nonzero:
                    raise GapStreamError(f"more than {nonzero} kept values")
                mask[p >> 3] |= 1 << (p & 7)
                kept += 1
                c = p + 1
        else:
            j = parameter[1]
            if j not in HUFFMAN_JS:
                raise GapStreamError(f"Huffman j {j} out of range")
            runs["huffman"] += 1
            code = huffman_decoder(j)
            for i in range(start // 8, -(-end // 8)):
                s = code.read(bits)
                if 8 * i + 8 > count and s >> (count - 8 * i):
                    raise GapStreamError(f"mask bit set past position {count}")
                kept += bin(s).count("1")
                if kept > nonzero:
                    raise GapStreamError(f"more than {nonzero} kept values")
                mask[i] = s
        block += length

    if kept != nonzero:
        raise GapStreamError(f"decoded {kept} kept values, expected {nonzero}")
    if (bits.pos + 7) // 8 * 8 != len(bits.bits):
        raise GapStreamError("bytes after the end of the stream")
    if any(bits.bits[bits.pos :]):
        raise GapStreamError("non-zero pad bits")
    return bytes(mask), bytes(signs), runs


def decode(stream, count, nonzero):
    """Decodes one gap stream to (mask, signs): lists of bool, `count` and `nonzero` long.

    signs[k] is True when the k-th kept value (in position order) is negative.
    """
    mask, signs, _ = decode_packed(stream, count, nonzero)
    unpack = lambda packed, n: [bool(packed[i >> 3] >> (i & 7) & 1) for i in range(n)]
    return unpack(mask, count), unpack(signs, nonzero)


def summary(stream, count, nonzero):
    mask, signs, runs = decode_packed(stream, count, nonzero)
    return {
        "nonzero": nonzero,
        "mask_sha256": hashlib.sha256(mask).hexdigest(),
        "signs_sha256": hashlib.sha256(signs).hexdigest(),
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------------------------
# The container (docs/FORMAT.md, "Layout").

_M64 = (1 << 64) - 1
_P1, _P2, _P3, _P4, _P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                           0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, lane):
    return _rotl((acc + lane * _P2) & _M64, 31) * _P1 & _M64


def xxh64(data):
    """XXH64 with seed 0."""
    data = bytes(data)
    n = len(data)
    i = 0
    if n >= 32:
        v = [(_P1 + _P2) & _M64, _P2, 0, (-_P1) & _M64]
        lanes = struct.unpack_from(f"<{n // 32 * 4}Q", data)
        for s in range(0, len(lanes), 4):
            v = [_round(v[x], lanes[s + x]) for x in range(4)]
        i = n // 32 * 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _round(0, x)) * _P1 + _P4) & _M64
    else:
        h = _P5
    h = (h + n) & _M64
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, struct.unpack_from("<Q", data, i)[0]), 27) * _P1 + _P4) & _M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (struct.unpack_from("<I", data, i)[0] * _P1 & _M64), 23) * _P2 + _P3) & _M64
        i += 4
    while i < n:
        h = _rotl(h ^ (data[i] * _P5 & _M64), 11) * _P1 & _M64
        i += 1
    h ^= h >> 33
    h = h * _P2 & _M64
    h ^= h >> 29
    h = h * _P3 & _M64
    return h ^ (h >> 32)


def zstd_decompress(frame):
    try:
        import zstandard

        return zstandard.ZstdDecompressor().decompress(frame)
    except ImportError:
        pass
    if shutil.which("zstd") is None:
        raise RuntimeError("needs the zstandard module or the zstd command")
    done = subprocess.run(["zstd", "-dc"], input=frame, capture_output=True, check=True)
    return done.stdout


def read_container(path):
    """Returns {name: summary} for every tensor with encoding 3."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 64 or data[:8] != b"\x89CPEFT\r\n":
        raise ValueError("not a compeft container")
    major, _minor = struct.unpack_from("<HH", data, 8)
    if major != 1:
        raise ValueError(f"format version {major} is not supported")
    trailer = data[-48:]
    if trailer[40:] != b"CPEFTEND":
        raise ValueError("no trailer")
    index_offset, index_length, index_raw, index_hash, header_hash = struct.unpack_from("<5Q", trailer)
    if xxh64(data[:16] + trailer[:32]) != header_hash:
        raise ValueError("trailer checksum mismatch")
    if index_offset + index_length != len(data) - 48:
        raise ValueError("index does not end at the trailer")
    stored = data[index_offset : index_offset + index_length]
    if xxh64(stored) != index_hash:
        raise ValueError("index checksum mismatch")
    raw = zstd_decompress(stored)
    if len(raw) != index_raw:
        raise ValueError("index decodes to the wrong length")
    index = json.loads(raw)
    out = {}
    for t in index["tensors"]:
        if t["encoding"] != 3:
            continue
        if t["rawLength"] != t["length"]:
            raise ValueError(f"{t['name']}: a ternary-gap payload needs rawLength = length")
        if not 16 <= t["offset"] <= t["offset"] + t["length"] <= index_offset:
            raise ValueError(f"{t['name']}: payload outside the payload area")
        payload = data[t["offset"] : t["offset"] + t["length"]]
        if f"{xxh64(payload):016x}" != t["xxh64"]:
            raise ValueError(f"{t['name']}: payload checksum mismatch")
        out[t["name"]] = summary(payload, t["count"], t["nonzero"])
    return out


def read_streams(manifest_path):
    with open(manifest_path) as f:
        manifest = json.load(f)
    out = {}
    for item in manifest:
        with open(item["path"], "rb") as f:
            stream = f.read()
        try:
            out[item["name"]] = summary(stream, item["count"], item["nonzero"])
        except GapStreamError as error:
            out[item["name"]] = {"error": str(error)}
    return out


def tables():
    huffman = {j: huffman_lengths(j) for j in HUFFMAN_JS}
    return {
        "moduli": [golomb_modulus(k) for k in GOLOMB_INDICES],
        "huffman": {str(j): lengths for j, lengths in huffman.items()},
        "huffmanWords": {str(j): canonical_words(lengths) for j, lengths in huffman.items()},
    }


def main(argv):
    if len(argv) == 2 and argv[1] == "--tables":
        result = tables()
    elif len(argv) == 3 and argv[1] == "--streams":
        result = read_streams(argv[2])
    elif len(argv) == 2 and not argv[1].startswith("-"):
        result = read_container(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
