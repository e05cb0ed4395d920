#!/usr/bin/env python3
"""Writes the seed corpora of the journal's fuzz targets (standard library only).

payload: every distinct payload of the golden fixtures (schema 1 and 2) and of
the committed trading journal (tests/fixtures/trading-v1), a few of each kind
at each schema version, one file each, named by content.
segments, random_access: recipes (see src/checks.rs) from a fixed random
seed, so the seeds are the same on every machine.
"""
import hashlib, os, random, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))

def payloads(segment_path):
    data = open(segment_path, "rb").read()
    at = 112
    while at + 16 <= len(data):
        seq, length, check = struct.unpack_from("<QII", data, at)
        yield data[at + 16: at + 16 + length]
        at += 48 + length

def write(target, blob):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(blob)

def main():
    sources = [
        "journal/tests/fixtures/golden-v1/seg-00000000000000000001.anxj",
        "tests/fixtures/trading-v1/seg-00000000000000000001.anxj",
        "journal/tests/fixtures/golden-v2/seg-00000000000000000001.anxj",
        "tests/fixtures/v1-replay/seg-00000000000000000001.anxj",
    ]
    seen_kinds = {}
    for source in sources:
        for payload in payloads(os.path.join(ROOT, source)):
            version, kind = struct.unpack_from("<HH", payload, 0)
            # Every kind at each version, a few of each: enough shapes, a
            # small corpus.
            key = (version, kind)
            if seen_kinds.get(key, 0) < 3:
                seen_kinds[key] = seen_kinds.get(key, 0) + 1
                write("payload", payload)
    rng = random.Random(20261129)
    for target in ("segments", "random_access"):
        for n in range(24):
            write(target, bytes(rng.randrange(256) for _ in range(rng.randrange(8, 300))))
    return 0

if __name__ == "__main__":
    sys.exit(main())
