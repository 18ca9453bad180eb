#!/usr/bin/env python3
"""An independent reader of compeft containers (format 1.0 and 1.1) and decoder of payload encoding 3
(`ternary-gap`), written from docs/FORMAT.md alone.

    python3 Fixtures/decode_gap.py CONTAINER.cpeft
        For every tensor with encoding 3, prints {name: {"nonzero", "mask_sha256", "signs_sha256", "runs"}} as
        JSON: mask packed LSB first in ceil(count/8) bytes, signs in ceil(nonzero/8) bytes (the packing of
        encoding 1); "runs" counts the runs of each mode ({"golomb": g, "huffman": h}).
    python3 Fixtures/decode_gap.py --index CONTAINER.cpeft
        Prints the container's index as read: {"version", "compression", "files": [{name, rawLength, xxh64 (of the
        contents), inline}], "tensors": [{name, file, dtype, shape, role, init, encoding, count, kept, nonzero, scaleBits,
        offset, length, checksum}]}, every payload checksum checked.
    python3 Fixtures/decode_gap.py --streams MANIFEST.json
        MANIFEST is [{"name", "path", "count", "nonzero"}, ...], each path a bare gap stream. Prints the same
        JSON, with {"error": message} for a stream that must be rejected.
    python3 Fixtures/decode_gap.py --tables
        Prints {"moduli": [m for k = 0..399], "huffman": {j: [code length of s for s = 0..255]},
        "huffmanWords": {j: [code word value of s]}} for cross-checking the code tables.

Only the standard library is needed. Zstd frames (the index, verbatim files) are opened with the `zstandard`
module when installed, else with the `zstd` command (`zstd -dc`, `-D docs/index-dictionary-1.txt` for index
codec 2).
"""

import hashlib
import json
import os
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


DICTIONARY_1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "index-dictionary-1.txt")
DICTIONARY_1_XXH64 = 0x7E6FE152F8841501


def zstd_decompress(frame, dictionary=None):
    """One zstd frame; `dictionary` is the path of a raw-content dictionary the frame was made with."""
    try:
        import zstandard

        if dictionary is None:
            return zstandard.ZstdDecompressor().decompress(frame)
        with open(dictionary, "rb") as f:
            d = zstandard.ZstdCompressionDict(f.read(), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=d).decompress(frame)
    except ImportError:
        pass
    if shutil.which("zstd") is None:
        raise RuntimeError("needs the zstandard module or the zstd command")
    command = ["zstd", "-dc"] + (["-D", dictionary] if dictionary else [])
    done = subprocess.run(command, input=frame, capture_output=True, check=True)
    return done.stdout


class ContainerError(ValueError):
    """The container breaks a rule of docs/FORMAT.md."""


def read_index(path, spans=None):
    """Opens a container of format 1.0 or 1.1; returns (file bytes, index) where index is
    {"version", "tensors": [{name, file, dtype, shape, role, init, encoding, count, kept, nonzero, scaleBits,
    offset, length, checksum}], "files": [{name, rawLength, xxh64, inline}], "compression": {...}} with
    payload offsets absolute and every checksum and payload range checked. For format 1.1, index also holds
    "indexBytes" (the stored index, codec byte included) and "body" (the decoded body); `spans`, when a list,
    receives (kind, start, end) for the body's fields (Benchmarks/container_overhead.py measures them)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32 or data[:8] != b"\x89CPEFT\r\n":
        raise ContainerError("not a compeft container")
    major, minor = struct.unpack_from("<HH", data, 8)
    if major != 1:
        raise ContainerError(f"format version {major}.{minor} is not supported")
    if minor == 0:
        return data, read_index_10(data)
    return data, read_index_11(data, minor, spans)


def read_index_10(data):
    trailer = data[-48:]
    if len(data) < 64 or trailer[40:] != b"CPEFTEND":
        raise ContainerError("no trailer")
    index_offset, index_length, index_raw, index_hash, header_hash = struct.unpack_from("<5Q", trailer)
    if xxh64(data[:16] + trailer[:32]) != header_hash:
        raise ContainerError("trailer checksum mismatch")
    if index_offset + index_length != len(data) - 48:
        raise ContainerError("index does not end at the trailer")
    stored = data[index_offset : index_offset + index_length]
    if xxh64(stored) != index_hash:
        raise ContainerError("index checksum mismatch")
    raw = zstd_decompress(stored)
    if len(raw) != index_raw:
        raise ContainerError("index decodes to the wrong length")
    index = json.loads(raw)
    for t in index["tensors"]:
        if not 16 <= t["offset"] <= t["offset"] + t["length"] <= index_offset:
            raise ContainerError(f"{t['name']}: payload outside the payload area")
        t["checksum"] = t["xxh64"]
        t["init"] = t["initRule"]
    files = []
    for f in index["files"]:
        contents = zstd_decompress(data[f["offset"] : f["offset"] + f["length"]])
        files.append({"name": f["name"], "rawLength": f["rawLength"], "xxh64": f"{xxh64(contents):016x}",
                      "inline": False})
    index["files"] = files
    index["version"] = "1.0"
    return index


class Reader:
    """A cursor over an index body (docs/FORMAT.md, "Index, format 1.1")."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.data):
            raise ContainerError(f"index ends inside {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what):
        return self.take(1, what)[0]

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def f32(self, what):
        return struct.unpack("<f", self.take(4, what))[0]

    def f64(self, what):
        value = struct.unpack("<d", self.take(8, what))[0]
        if value != value or value in (float("inf"), float("-inf")):
            raise ContainerError(f"{what} is not finite")
        return value

    def uvarint(self, what):
        value = 0
        for i in range(9):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise ContainerError(f"{what} is not in its shortest form")
                return value
        raise ContainerError(f"{what} is longer than 9 bytes")

    def string(self, what):
        return self.take(self.uvarint(what), what).decode("utf-8")

    def fields(self, what):
        """Tagged fields up to tag 0: {tag: value bytes}."""
        out = {}
        while True:
            tag = self.uvarint(f"a field tag of {what}")
            if tag == 0:
                return out
            if tag in out:
                raise ContainerError(f"field {tag} of {what} appears twice")
            out[tag] = self.take(self.uvarint(f"field {tag} of {what}"), f"field {tag} of {what}")

    def at_end(self):
        return self.pos == len(self.data)


DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
DTYPE_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
              "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
INIT_RULES = ["zero", "one", "base"]


def read_index_11(data, minor, spans=None):
    if len(data) < 32:
        raise ContainerError("not a compeft container")
    trailer = data[-20:]
    if trailer[16:] != b"CPFT":
        raise ContainerError("no trailer")
    length, header_check, index_hash = struct.unpack_from("<IIQ", trailer)
    if xxh64(data[:12] + trailer[:4]) & 0xFFFFFFFF != header_check:
        raise ContainerError("trailer checksum mismatch")
    if not 1 <= length <= len(data) - 32:
        raise ContainerError("index does not fit between the preamble and the trailer")
    index_start = len(data) - 20 - length
    stored = data[index_start : len(data) - 20]
    if xxh64(stored) != index_hash:
        raise ContainerError("index checksum mismatch")
    codec = stored[0]
    if codec == 0:
        body = stored[1:]
    elif codec in (1, 2):
        dictionary = None
        if codec == 2:
            with open(DICTIONARY_1, "rb") as f:
                if xxh64(f.read()) != DICTIONARY_1_XXH64:
                    raise RuntimeError(f"{DICTIONARY_1} is not dictionary 1")
            dictionary = DICTIONARY_1
        body = zstd_decompress(stored[1:], dictionary)
    else:
        raise ContainerError(f"index codec {codec} is not known")

    r = Reader(body)
    mark = (lambda kind, start: spans.append((kind, start, r.pos))) if spans is not None else (lambda kind, start: None)
    compression = {"writer": r.string("writer"), "inputKind": r.string("input kind"), "method": r.string("method"),
                   "scope": r.string("scope"), "density": r.f64("density")}
    alpha = r.f64("alpha")
    compression["alphaRequested"] = "auto" if alpha == 0 else alpha
    group = r.u8("group")
    if group not in (0, 1, 2):
        raise ContainerError(f"group byte {group} is not known")
    if group == 1:
        compression["total"] = r.uvarint("d")
        compression["keptCount"] = r.uvarint("kept")
        compression["keptNonzero"] = r.uvarint("nonzero")
    group_scale = None
    if group:
        start = r.pos
        compression["threshold"] = r.f32("threshold")
        compression["sigma"] = r.f64("sigma")
        group_scale = r.u32("scale")
        compression["scaleBits"] = group_scale
        mark("group statistics", start)
    container_fields = r.fields("the container")
    for tag in container_fields:
        if tag & 1:  # format 1.1 defines no critical container field
            raise ContainerError(f"critical container field {tag} is not known")
    if 2 in container_fields:
        compression["peftType"] = container_fields[2].decode("utf-8")
    # The rule, when it is not the scope's own (informational: decoding never reads them).
    for tag, key in ((6, "scaleScope"), (8, "loraGauge"), (10, "loraGaugeRequested")):
        if tag in container_fields:
            compression[key] = container_fields[tag].decode("utf-8")

    output_files = []
    for _ in range(r.uvarint("output files")):
        name = r.string("output file")
        metadata = {}
        for _ in range(r.uvarint("metadata count")):
            key = r.string("key")
            metadata[key] = r.string("value")
        output_files.append(name)

    offset = 12

    def place(n):
        nonlocal offset
        start = offset
        if offset + n > index_start:
            raise ContainerError("payload runs past the payload area")
        offset += n
        return start

    files = []
    for _ in range(r.uvarint("files")):
        name = r.string("file name")
        flags = r.u8("file flags")
        if flags & 0x7E:
            raise ContainerError(f"file {name}: reserved flag bits")
        raw_length = r.uvarint("file length")
        if flags & 1:
            stored_length = r.uvarint("stored length")
            checksum = r.u32("checksum")
            start = place(stored_length)
            frame = data[start : start + stored_length]
            if xxh64(frame) & 0xFFFFFFFF != checksum:
                raise ContainerError(f"file {name}: checksum mismatch")
            contents = zstd_decompress(frame)
        else:
            start = r.pos
            contents = r.take(raw_length, f"file {name}")
            mark("inline file", start)
        if len(contents) != raw_length:
            raise ContainerError(f"file {name}: {len(contents)} bytes, the index says {raw_length}")
        if flags & 0x80:
            r.fields(f"file {name}")
        files.append({"name": name, "rawLength": raw_length, "xxh64": f"{xxh64(contents):016x}",
                      "inline": not flags & 1})

    tensors = []
    previous = b""
    for i in range(r.uvarint("tensors")):
        start = r.pos
        shared = r.uvarint("shared name length")
        if shared > len(previous):
            raise ContainerError("shared name length longer than the previous name")
        name_bytes = previous[:shared] + r.take(r.uvarint("name length"), "name")
        if not name_bytes or (i > 0 and not previous < name_bytes):
            raise ContainerError("tensor names must be non-empty and increasing")
        previous = name_bytes
        name = name_bytes.decode("utf-8")
        mark("name", start)
        flags = r.u8("flags")
        if flags & 0x78 or flags & 3 == 3:
            raise ContainerError(f"{name}: reserved flag bits")
        dtype = DTYPES[r.u8("dtype")]
        start = r.pos
        shape = [r.uvarint("dimension") for _ in range(r.uvarint("rank"))]
        mark("shape", start)
        file = r.uvarint("file") if len(output_files) > 1 else 0
        encoding = r.uvarint("encoding")
        start = r.pos
        nonzero = r.uvarint("nonzero") if encoding != 0 else 0
        mark("nonzero", start)
        start = r.pos
        stored_length = r.uvarint("stored length")
        mark("length", start)
        start = r.pos
        checksum = r.u32("checksum")
        mark("checksum", start)
        fields = r.fields(name) if flags & 0x80 else {}
        for tag in fields:
            if tag & 1 and tag != 1:  # 1 (scale) is the only critical tensor field of format 1.1
                raise ContainerError(f"{name}: critical field {tag} is not known")
        count = 1
        for d in shape:
            count *= d
        scale = group_scale if encoding in (1, 3) else 0
        if 1 in fields:
            (scale,) = struct.unpack("<I", fields[1])
        if scale is None:
            raise ContainerError(f"{name}: a ternary tensor without a scale")
        zeros = 0
        if 6 in fields:
            zeros = Reader(fields[6]).uvarint("kept zeros")
        tensors.append({
            "name": name, "file": output_files[file], "dtype": dtype, "shape": shape,
            "role": "exact" if flags & 4 else "residual", "init": INIT_RULES[flags & 3], "encoding": encoding,
            "count": count, "kept": count if encoding == 0 else nonzero + zeros, "nonzero": nonzero,
            "scaleBits": scale, "offset": place(stored_length), "length": stored_length,
            "checksum": f"{checksum:08x}"})
    if not r.at_end():
        raise ContainerError("bytes after the last tensor")
    if offset != index_start:
        raise ContainerError("the payloads do not end where the index starts")
    for t in tensors:
        if f"{xxh64(data[t['offset'] : t['offset'] + t['length']]) & 0xFFFFFFFF:08x}" != t["checksum"]:
            raise ContainerError(f"{t['name']}: payload checksum mismatch")
    return {"version": f"1.{minor}", "compression": compression, "files": files, "tensors": tensors,
            "indexBytes": len(stored), "body": body}


def read_container(path):
    """Returns {name: summary} for every tensor with encoding 3."""
    data, index = read_index(path)
    out = {}
    for t in index["tensors"]:
        if t["encoding"] != 3:
            continue
        if index["version"] == "1.0":
            if t["rawLength"] != t["length"]:
                raise ContainerError(f"{t['name']}: a ternary-gap payload needs rawLength = length")
            if f"{xxh64(data[t['offset'] : t['offset'] + t['length']]):016x}" != t["xxh64"]:
                raise ContainerError(f"{t['name']}: payload checksum mismatch")
        payload = data[t["offset"] : t["offset"] + t["length"]]
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
    elif len(argv) == 3 and argv[1] == "--index":
        result = read_index(argv[2])[1]
        result.pop("body", None)
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
