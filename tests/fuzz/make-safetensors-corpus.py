#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# Writes the seed corpus of fuzz-safetensors: tiny hand-made safetensors
# files (valid ones covering every dtype, metadata, empty and scalar tensors,
# gaps, and a few malformed ones).  Nothing here comes from a real model.
#   python3 tests/fuzz/make-safetensors-corpus.py tests/fuzz/corpus/safetensors
import json
import os
import struct
import sys

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
         "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1}


def pack(header_text, data=b""):
    raw = header_text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw + data


def build(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape); data is a byte ramp."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape in tensors:
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * ((8 - (8 + len(text.encode())) % 8) % 8)
    return pack(text, bytes(i % 251 for i in range(offset)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "corpus/safetensors"
    os.makedirs(out, exist_ok=True)
    seeds = {
        "empty-header": pack("{}      "),
        "one-f32": build([("w", "F32", [2, 3])]),
        "every-dtype": build([("t." + d.lower(), d, [2]) for d in SIZES]),
        "metadata": build([("a", "BF16", [4]), ("b", "I8", [3])], {"format": "pt", "k": "v"}),
        "scalar-and-empty": build([("s", "F32", []), ("e", "F16", [0, 5]), ("z", "U8", [1])]),
        "six-dims": build([("x", "I16", [1, 2, 1, 2, 1, 2])]),
        "unpadded-unaligned": build([("u", "U8", [3]), ("f", "F32", [2])], pad=False),
        "gap": pack('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                    '"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}', b"\x01" * 6),
        "escaped-name": build([('q"\\\u00e9\n', "F32", [1])]),
        # malformed seeds: the fuzzer starts next to the interesting errors
        "overlap": pack('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                        '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12),
        "unknown-dtype": pack('{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4),
        "shape-overflow": pack('{"a":{"dtype":"U8","shape":[4294967296,4294967296,4],'
                               '"data_offsets":[0,4]}}', b"\0" * 4),
        "duplicate-key": pack('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                              '"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
        "length-too-big": struct.pack("<Q", 1 << 40) + b"{}",
        "deep": pack("[" * 6 + "]" * 6),
    }
    for name, blob in seeds.items():
        with open(os.path.join(out, name + ".safetensors"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
