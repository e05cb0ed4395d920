#!/usr/bin/env python3
"""Independent verifier and decoder for the anx journal format, version 1.

This is the reference auditor tool. It was written from ``journal/FORMAT.md``
alone (no Rust source consulted), using only the Python 3.11 standard library,
so that it can serve as evidence that the document is sufficient to check a
journal without trusting the code that wrote it.

What it does:

* verifies a journal directory exactly as FORMAT.md section 7 prescribes
  (segment headers, genesis, record framing, sequence numbers, the BLAKE3 hash
  chain) and classifies a failure as a torn tail or as corruption (section 8);
* optionally checks a previously published head (``--expect-head SEQ:HASH``);
* optionally decodes every event body (sections 5 and 6) and prints it as one
  JSON line per event (``--decode``).

Usage::

    python3 tools/auditor/anx_verify.py <journal-dir> [--expect-head SEQ:HASH]
                                        [--json] [--decode]

Exit status (FORMAT.md section 8): 0 = the journal verified (and decoded,
with ``--decode``); 3 = the first failure is a torn tail (every record before
it intact; a writer repairs it) and no expected head covers it; 1 = any other
verification, decoding or expected-head failure; 2 = bad usage, the journal
directory does not exist, or a segment's name is on something that is not a
regular file (section 1).

BLAKE3 is implemented here in pure Python from the public BLAKE3
specification, because ``hashlib`` does not provide it. It is self-tested
against the official test vectors every time the tool starts. It hashes on
the order of 1 MB/s, which is plenty for audits but slow for very large
journals.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import struct
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, NoReturn

# ---------------------------------------------------------------------------
# BLAKE3 (standard unkeyed hash, 32-byte output)
# ---------------------------------------------------------------------------

_IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)
_MSG_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START = 1 << 0
_CHUNK_END = 1 << 1
_PARENT = 1 << 2
_ROOT = 1 << 3
_BLOCK_LEN = 64
_CHUNK_LEN = 1024
_MASK32 = 0xFFFFFFFF


def _message_schedule() -> tuple[tuple[int, ...], ...]:
    """The message-word order for each of the 7 rounds (round r applies the
    permutation r times), precomputed so compression never shuffles lists."""
    order = tuple(range(16))
    rounds = []
    for _ in range(7):
        rounds.append(order)
        order = tuple(order[i] for i in _MSG_PERMUTATION)
    return tuple(rounds)


_SCHEDULE = _message_schedule()


def _g(v: list[int], a: int, b: int, c: int, d: int, x: int, y: int) -> None:
    """The BLAKE3 quarter-round ("G") on state words a, b, c, d."""
    va = (v[a] + v[b] + x) & _MASK32
    vd = v[d] ^ va
    vd = ((vd >> 16) | (vd << 16)) & _MASK32
    vc = (v[c] + vd) & _MASK32
    vb = v[b] ^ vc
    vb = ((vb >> 12) | (vb << 20)) & _MASK32
    va = (va + vb + y) & _MASK32
    vd ^= va
    vd = ((vd >> 8) | (vd << 24)) & _MASK32
    vc = (vc + vd) & _MASK32
    vb ^= vc
    vb = ((vb >> 7) | (vb << 25)) & _MASK32
    v[a], v[b], v[c], v[d] = va, vb, vc, vd


def _compress(cv: tuple[int, ...], block_words: tuple[int, ...],
              counter: int, block_len: int, flags: int) -> list[int]:
    """The BLAKE3 compression function; returns all 16 output words."""
    v = [
        *cv,
        _IV[0], _IV[1], _IV[2], _IV[3],
        counter & _MASK32, (counter >> 32) & _MASK32, block_len, flags,
    ]
    for s in _SCHEDULE:
        m = [block_words[i] for i in s]
        _g(v, 0, 4, 8, 12, m[0], m[1])      # columns
        _g(v, 1, 5, 9, 13, m[2], m[3])
        _g(v, 2, 6, 10, 14, m[4], m[5])
        _g(v, 3, 7, 11, 15, m[6], m[7])
        _g(v, 0, 5, 10, 15, m[8], m[9])     # diagonals
        _g(v, 1, 6, 11, 12, m[10], m[11])
        _g(v, 2, 7, 8, 13, m[12], m[13])
        _g(v, 3, 4, 9, 14, m[14], m[15])
    for i in range(8):
        v[i] ^= v[i + 8]
        v[i + 8] ^= cv[i]
    return v


def _words(block: bytes | memoryview) -> tuple[int, ...]:
    """A block of up to 64 bytes as 16 little-endian words (zero padded)."""
    return struct.unpack("<16I", bytes(block).ljust(_BLOCK_LEN, b"\0"))


@dataclass(frozen=True)
class _Output:
    """The inputs of a node's final compression, kept un-run so that the
    root node can be finalised with the ROOT flag instead."""
    cv: tuple[int, ...]
    block_words: tuple[int, ...]
    counter: int
    block_len: int
    flags: int

    def chaining_value(self) -> tuple[int, ...]:
        words = _compress(self.cv, self.block_words, self.counter,
                          self.block_len, self.flags)
        return tuple(words[:8])

    def root_hash(self) -> bytes:
        # The root output's counter is the output-block index (0 for the
        # first and only 64 bytes, of which we keep 32).
        words = _compress(self.cv, self.block_words, 0, self.block_len,
                          self.flags | _ROOT)
        return struct.pack("<8I", *words[:8])


def _chunk_output(chunk: memoryview, chunk_index: int) -> _Output:
    """Chain the 64-byte blocks of one chunk (at most 1024 bytes); the last
    block is returned un-compressed. An empty input is one empty block."""
    cv = _IV
    block_count = max(1, -(-len(chunk) // _BLOCK_LEN))
    for i in range(block_count):
        block = chunk[i * _BLOCK_LEN:(i + 1) * _BLOCK_LEN]
        flags = _CHUNK_START if i == 0 else 0
        if i == block_count - 1:
            return _Output(cv, _words(block), chunk_index, len(block),
                           flags | _CHUNK_END)
        cv = tuple(_compress(cv, _words(block), chunk_index, _BLOCK_LEN,
                             flags)[:8])
    raise AssertionError("unreachable")


def _subtree_output(data: memoryview, chunk_index: int) -> _Output:
    """Hash a subtree: one chunk, or a parent whose left child holds the
    largest power-of-two number of chunks that leaves at least one byte for
    the right child."""
    if len(data) <= _CHUNK_LEN:
        return _chunk_output(data, chunk_index)
    chunks = -(-len(data) // _CHUNK_LEN)
    left_chunks = 1 << ((chunks - 1).bit_length() - 1)
    left_len = left_chunks * _CHUNK_LEN
    left = _subtree_output(data[:left_len], chunk_index).chaining_value()
    right = _subtree_output(data[left_len:],
                            chunk_index + left_chunks).chaining_value()
    return _Output(_IV, left + right, 0, _BLOCK_LEN, _PARENT)


def blake3(data: bytes) -> bytes:
    """The standard 32-byte BLAKE3 hash of ``data``."""
    return _subtree_output(memoryview(data), 0).root_hash()


# Official vectors: input_len -> first 32 bytes of "hash", where the input is
# the repeating byte sequence 0, 1, ..., 250 (BLAKE3 test_vectors.json).
_BLAKE3_VECTORS = {
    0: "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    1: "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
    1023: "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
    1024: "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
    1025: "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
    2049: "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b687952256303",
    3073: "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3",
    8193: "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b",
}
_BLAKE3_ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


def blake3_self_test() -> None:
    """Check the BLAKE3 implementation; raises AssertionError on mismatch.

    Covers the empty input, a single block, a partial and a full chunk, and
    multi-chunk inputs whose trees are unbalanced (2049, 3073 and 8193 bytes
    give 3, 4 and 9 chunks)."""
    checks = {b"abc": _BLAKE3_ABC}
    for length, expected in _BLAKE3_VECTORS.items():
        checks[bytes(i % 251 for i in range(length))] = expected
    for data, expected in checks.items():
        got = blake3(data).hex()
        if not got.startswith(expected):
            raise AssertionError(
                f"BLAKE3 self-test failed for a {len(data)}-byte input: "
                f"got {got}, expected {expected}")


# ---------------------------------------------------------------------------
# On-disk layout (FORMAT.md sections 1-4)
# ---------------------------------------------------------------------------

MAGIC = b"ANXJRNL\0"
FORMAT_VERSION = 1
HEADER_LEN = 112
RECORD_HEADER_LEN = 16          # seq u64, len u32, len_check u32
RECORD_OVERHEAD = 48            # record header + trailing 32-byte hash
MIN_PAYLOAD = 12                # the envelope
MAX_PAYLOAD = 1 << 20
GENESIS_DOMAIN = b"anx-genesis-v1\0\0"
SEGMENT_NAME = re.compile(r"seg-([0-9]{20})\.anxj")


def genesis_hash(journal_id: bytes, created_ms: int) -> bytes:
    """FORMAT.md section 4: the chain hash before record 1."""
    return blake3(GENESIS_DOMAIN + struct.pack("<I", FORMAT_VERSION)
                  + journal_id + struct.pack("<q", created_ms))


def record_hash(prev: bytes, seq: int, payload: bytes) -> bytes:
    """FORMAT.md section 4: hash[seq] from hash[seq-1] and the payload."""
    return blake3(prev + struct.pack("<QI", seq, len(payload)) + payload)


def valid_length(length: int, length_check: int) -> bool:
    """FORMAT.md section 3: len is in range and len_check is NOT len."""
    return (length_check == length ^ 0xFFFFFFFF
            and MIN_PAYLOAD <= length <= MAX_PAYLOAD)


@dataclass(frozen=True)
class SegmentHeader:
    magic: bytes
    format_version: int
    header_len: int
    journal_id: bytes
    created_ms: int
    first_seq: int
    prev_hash: bytes
    header_hash: bytes

    @classmethod
    def parse(cls, data: bytes) -> "SegmentHeader":
        fields = struct.unpack("<8sII16sqQ32s32s", data[:HEADER_LEN])
        return cls(*fields)


@dataclass(frozen=True)
class Record:
    seq: int
    segment: str
    offset: int
    payload: bytes
    hash: bytes


class VerificationError(Exception):
    """The first problem found; carries everything the report needs."""

    def __init__(self, seq: int, segment: str | None, offset: int,
                 reason: str, torn_tail: bool = False):
        super().__init__(reason)
        self.seq = seq
        self.segment = segment
        self.offset = offset
        self.reason = reason
        self.torn_tail = torn_tail


@dataclass
class Journal:
    """The result of a successful verification."""
    head_seq: int
    head_hash: bytes
    genesis: bytes
    first_segment: str
    last_segment: str
    end_offset: int                     # size of the last segment
    records: list[Record] = field(default_factory=list)
    watched: Record | None = None


class NotRegularFile(Exception):
    """A segment's name on a FIFO, a device, a directory (section 1)."""

    def __init__(self, path: str):
        super().__init__(f"{path}: not a regular file (a segment must be one)")


def list_segments(directory: str) -> list[tuple[int, str]]:
    """Segment files as (number in the name, file name), in name order.
    Anything not named exactly ``seg-<20 digits>.anxj`` is ignored; a name
    that is on something other than a regular file (or a symbolic link to
    one) is an error (section 1)."""
    segments = []
    for name in os.listdir(directory):
        match = SEGMENT_NAME.fullmatch(name)
        if match:
            if not os.path.isfile(os.path.join(directory, name)):
                raise NotRegularFile(os.path.join(directory, name))
            segments.append((int(match.group(1)), name))
    return sorted(segments)


def read_segment(path: str) -> bytes:
    """A segment's bytes, up to the length it had when opened. Opened without
    blocking (a FIFO put there since it was listed) and checked on the open
    file, so only a regular file is ever read (section 1)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path)
        return f.read(info.st_size)


# ---------------------------------------------------------------------------
# Verification (FORMAT.md sections 7 and 8)
# ---------------------------------------------------------------------------

class Verifier:
    """Walks the segments in order, keeping expected_seq and prev (section 7).

    ``keep_records`` retains every record with its payload (for decoding);
    ``expect_head`` (seq, hash) is checked where the walk reaches it (seq 0:
    the genesis, once the first header fixed it), so the first failure wins
    (section 7). Otherwise only the running state is kept, one segment at a
    time."""

    def __init__(self, directory: str, keep_records: bool = False,
                 expect_head: tuple[int, bytes] | None = None):
        self.directory = directory
        self.keep_records = keep_records
        self.expect_head = expect_head
        self.watch_seq = expect_head[0] if expect_head else None
        self.expected_seq = 1
        self.prev = b""
        self.genesis = b""
        self.identity: tuple[bytes, int] | None = None
        self.records: list[Record] = []
        self.watched: Record | None = None

    def run(self) -> Journal:
        segments = list_segments(self.directory)
        if not segments:
            raise VerificationError(1, None, 0, "no segment files")
        for index, (number, name) in enumerate(segments):
            data = read_segment(os.path.join(self.directory, name))
            self._check_header(name, number, data, first=index == 0)
            self._check_records(name, data, last=index == len(segments) - 1)
        return Journal(self.expected_seq - 1, self.prev, self.genesis,
                       segments[0][1], segments[-1][1], len(data),
                       self.records, self.watched)

    # -- section 7, step 2 ------------------------------------------------

    def _check_header(self, name: str, number: int, data: bytes,
                      first: bool) -> None:
        def fail(reason: str) -> NoReturn:
            raise VerificationError(self.expected_seq, name, 0,
                                    f"segment header: {reason}")

        if len(data) < HEADER_LEN:
            fail(f"file is {len(data)} bytes, shorter than the "
                 f"{HEADER_LEN}-byte header")
        header = SegmentHeader.parse(data)
        if header.magic != MAGIC:
            fail(f"bad magic {header.magic.hex()}")
        if header.format_version != FORMAT_VERSION:
            fail(f"format_version is {header.format_version}, expected 1")
        if header.header_len != HEADER_LEN:
            fail(f"header_len is {header.header_len}, expected {HEADER_LEN}")
        if header.header_hash != blake3(data[:80]):
            fail("header_hash does not match BLAKE3 of header bytes 0..80")
        if header.first_seq != number:
            fail(f"first_seq {header.first_seq} does not match the file name")

        identity = (header.journal_id, header.created_ms)
        if first:
            if header.first_seq != 1:
                fail(f"first segment starts at seq {header.first_seq}, "
                     "expected 1")
            self.identity = identity
            self.prev = self.genesis = genesis_hash(*identity)
            if header.prev_hash != self.prev:
                fail("prev_hash of the first segment is not the genesis hash")
            if self.watch_seq == 0:
                check_watched_hash(0, name, 0, self.genesis, self.expect_head[1])
            return
        if identity != self.identity:
            fail("journal_id/created_ms differ from the first segment")
        if header.first_seq != self.expected_seq:
            fail(f"first_seq {header.first_seq}, expected "
                 f"{self.expected_seq} (a segment is missing or extra)")
        if header.prev_hash != self.prev:
            fail("prev_hash does not match the chain hash of the previous "
                 "record")

    # -- section 7, step 3 ------------------------------------------------

    def _check_records(self, name: str, data: bytes, last: bool) -> None:
        offset = HEADER_LEN
        while offset < len(data):
            reason = self._record_problem(data, offset)
            if reason is not None:
                torn = last and not intact_record_after(
                    data, offset, self.expected_seq)
                raise VerificationError(self.expected_seq, name, offset,
                                        reason, torn)
            seq, length, _ = struct.unpack_from("<QII", data, offset)
            end = offset + RECORD_HEADER_LEN + length
            stored = data[end:end + 32]
            if self.keep_records or seq == self.watch_seq:
                payload = data[offset + RECORD_HEADER_LEN:end]
                record = Record(seq, name, offset, payload, stored)
                if self.keep_records:
                    self.records.append(record)
                if seq == self.watch_seq:
                    self.watched = record
                    check_watched_hash(seq, name, offset, stored,
                                       self.expect_head[1])
            self.prev = stored
            self.expected_seq += 1
            offset = end + 32

    def _record_problem(self, data: bytes, offset: int) -> str | None:
        """Why the record at ``offset`` is invalid, or None if it is good."""
        remaining = len(data) - offset
        if remaining < RECORD_HEADER_LEN:
            return (f"only {remaining} bytes left, less than a "
                    "16-byte record header")
        seq, length, length_check = struct.unpack_from("<QII", data, offset)
        if length_check != length ^ 0xFFFFFFFF:
            return (f"len_check 0x{length_check:08x} is not NOT len "
                    f"(len 0x{length:08x})")
        if not MIN_PAYLOAD <= length <= MAX_PAYLOAD:
            return f"len {length} outside {MIN_PAYLOAD}..{MAX_PAYLOAD}"
        if remaining < RECORD_OVERHEAD + length:
            return (f"record needs {RECORD_OVERHEAD + length} bytes, only "
                    f"{remaining} left")
        if seq != self.expected_seq:
            return f"seq is {seq}, expected {self.expected_seq}"
        start = offset + RECORD_HEADER_LEN
        payload = data[start:start + length]
        if data[start + length:start + length + 32] != record_hash(
                self.prev, seq, payload):
            return "chain hash mismatch"
        return None


# A candidate record header at p must have len <= 2^20, so byte p+11 (the top
# byte of len) is 0 and byte p+14 is <= 0x10; len_check = NOT len then has
# byte p+15 = 0xff and byte p+14 >= 0xef. This lookahead finds exactly those
# offsets at C speed; each candidate is then checked in full.
_CANDIDATE_HEADER = re.compile(rb"(?=.{11}\x00.{2}[\xef-\xff]\xff)", re.DOTALL)


def intact_record_after(data: bytes, fail_offset: int,
                        expected_seq: int) -> bool:
    """Section 8: does any offset p > fail_offset hold 16 bytes that form a
    valid record header with expected_seq <= seq <= expected_seq +
    remaining_bytes / 48, whose 48 + len bytes fit in the file?

    ``remaining_bytes`` is taken as the bytes from the failing record's start
    to the end of the segment (the meaning "remain" has in section 7)."""
    max_seq = expected_seq + (len(data) - fail_offset) // RECORD_OVERHEAD
    for match in _CANDIDATE_HEADER.finditer(data, fail_offset + 1):
        p = match.start()
        if p + RECORD_HEADER_LEN > len(data):
            break
        seq, length, length_check = struct.unpack_from("<QII", data, p)
        if (valid_length(length, length_check)
                and expected_seq <= seq <= max_seq
                and p + RECORD_OVERHEAD + length <= len(data)):
            return True
    return False


def check_watched_hash(seq: int, name: str, offset: int, actual: bytes,
                       expected: bytes) -> None:
    """``--expect-head``, where the walk reaches ``seq``: its hash (seq 0
    denotes the genesis hash) must be ``expected``. A wrong hash is reported
    at the record itself (seq 0: offset 0 of the first segment)."""
    if actual != expected:
        raise VerificationError(
            seq, name, offset,
            f"hash of seq {seq} is {actual.hex()}, expected head says "
            f"{expected.hex()} (the chain up to it was rewritten)")


def check_expected_head(journal: Journal, seq: int, expected: bytes) -> None:
    """``--expect-head``, after a walk without failure: the journal reaches
    ``seq`` (its hash was checked on the way). A journal that is too short is
    reported at offset 0 of its last segment, with first_bad_seq the first
    missing seq (section 7)."""
    if seq > journal.head_seq:
        raise VerificationError(
            journal.head_seq + 1, journal.last_segment, 0,
            f"expected head {seq} but the journal ends at seq "
            f"{journal.head_seq} (records were removed from the end)")
    assert seq == 0 or (journal.watched is not None
                        and journal.watched.seq == seq)


# ---------------------------------------------------------------------------
# Body decoding (FORMAT.md sections 5 and 6)
# ---------------------------------------------------------------------------
#
# The schema below is the text of section 6, pasted verbatim and parsed, so
# the decoder cannot drift from the document by transcription.

_ENUMS_TEXT = """
RunMode: replay_backtest [0], paper_live [1], live [2]
CapitalMode: independent [0], portfolio [1]
MarketTimeBasis: candle_timestamp [0], wall_clock [1]
DataIntegrity: ok [0], degraded_skip_volume [1]
Side: buy [0], sell [1]
OrderType: limit [0], market [1], stop_limit [2]
OrderPurpose: entry [0], exit [1]
FillLeg: entry [0], take_profit [1], stop_loss [2], exit [3]
Liquidity: maker [0], taker [1]
ReconcileOutcome: match [0], exit_detected [1], mismatch [2]
SessionAction: started [0], stopped [1]
OperatorCommand: exit [0], halt [1], resume [2]
EngineState: IDLE [0], ENTRY_PENDING [1], POSITION_OPEN [2], RECONCILE [3], FAIL_CLOSED [4]
ExitReason: signal [0], take_profit [1], stop_loss [2], manual [3], emergency [4]
QualityIssue: gap [0] {after_ms ms, before_ms ms, missing_bars u64}; duplicate [1] {open_ms ms}; out_of_order [2] {open_ms ms, previous_ms ms}; volume_anomaly [3] {open_ms ms, volume dec}; invalid_candle [4] {open_ms ms}; stale [5] {newest_ms ms, age_ms i64}; feed_fault [6] {attempts u32}
DecisionOutcome: hold [0]; enter [1]; exit [2] {reason ExitReason}; rejected [3] {reason_code str}
"""

_STRUCTS_TEXT = """
Indicator { name str, value opt<dec> }
SignalOutput { name str, fired bool, strength dec, confidence dec, entry opt<dec>, stop opt<dec>, take_profit opt<dec>, note str }
RiskCheck { code str, passed bool, detail str }
Sizing { capital dec, risk_fraction dec, risk_budget dec, entry dec, stop_trigger dec, worst_case_fill dec, risk_per_unit dec, quantity_raw dec, quantity dec, notional dec, multiplier dec }
BracketLegs { take_profit_limit dec, stop_trigger dec, stop_limit dec }
"""

_KINDS_TEXT = """
| 1 | RunStarted | run_id str, run_mode RunMode, capital_mode CapitalMode, market_time_basis MarketTimeBasis, data_integrity DataIntegrity, created_by str, git_sha str, config_hash hash, config_text str, symbols vec<str>, granularity_s u32, start_ms ms, end_ms opt<ms>, starting_capital dec |
| 2 | Candle | symbol str, granularity_s u32, open_ms ms, open dec, high dec, low dec, close dec, volume dec |
| 3 | DataQuality | symbol str, granularity_s u32, issue QualityIssue, source str, detail str |
| 4 | Decision | symbol str, as_of_ms ms, candle_seq seq, regime str, indicators vec<Indicator>, signals vec<SignalOutput>, risk_checks vec<RiskCheck>, sizing opt<Sizing>, outcome DecisionOutcome, config_hash hash |
| 5 | OrderPlaced | client_order_id str, decision_seq seq, product_id str, side Side, order_type OrderType, purpose OrderPurpose, limit_price opt<dec>, stop_trigger opt<dec>, base_size dec, post_only bool, bracket opt<BracketLegs>, payload str |
| 6 | OrderAcknowledged | client_order_id str, order_seq seq, exchange_order_id str |
| 7 | OrderRejected | client_order_id str, order_seq seq, reason str |
| 8 | OrderCancelled | client_order_id str, order_seq seq, reason str |
| 9 | BracketVerified | client_order_id str, order_seq seq, take_profit_order_id str, stop_order_id str |
| 10 | Fill | client_order_id str, order_seq seq, fill_id str, leg FillLeg, side Side, price dec, size dec, fee dec, liquidity Liquidity |
| 11 | Reconciliation | symbol str, broker_position dec, our_position dec, broker_open_orders vec<str>, our_open_orders vec<str>, outcome ReconcileOutcome, detail str |
| 12 | EngineTransition | symbol str, from EngineState, to EngineState, reason str, cause_seq seq |
| 13 | TradeClosed | trade_id str, symbol str, entry_client_order_id str, entry_order_seq seq, entry_fill_seq seq, exit_fill_seq seq, entry_ms ms, exit_ms ms, entry_price dec, exit_price dec, size dec, initial_stop dec, exit_reason ExitReason, fees dec, slippage dec, gross_pnl dec, net_pnl dec, theoretical_r dec, realized_r dec |
| 14 | FailClosed | symbol str, cause_seq seq, reason str |
| 15 | OperatorReset | symbol str, operator str, reason str |
| 16 | Checkpoint | through_seq seq, state_hash hash |
| 17 | Recovered | segment str, offset u64, bytes_dropped u64, last_good_seq seq, reason str |
| 18 | RunCompleted | run_id str, end_ms ms, candles u64, reason str |
| 19 | Session | action SessionAction, reason str |
| 20 | OperatorAction | command OperatorCommand, symbol str, operator str, reason str |
| 21 | CancelRequested | client_order_id str, order_seq seq, reason str |
| 22 | BracketUnconfirmed | client_order_id str, order_seq seq, reason str |
| 23 | AnswerReceipt | answer_seq seq, broker_time_ms ms, raw_blake3 hash |
| 24 | Finding | check str, symbol str, raised bool, value opt<dec>, limit dec, detail str |
"""

Fields = list[tuple[str, str]]


def _parse_fields(text: str) -> Fields:
    """``"a str, b opt<dec>"`` -> [("a", "str"), ("b", "opt<dec>")]."""
    text = text.strip()
    if not text:
        return []
    return [tuple(item.split()) for item in text.split(",")]  # type: ignore


def _parse_enums(text: str) -> dict[str, list[tuple[str, Fields]]]:
    enums = {}
    for line in text.strip().splitlines():
        name, body = line.split(":", 1)
        variants = []
        for vname, index, fields in re.findall(
                r"(\w+) \[(\d+)\](?: \{([^}]*)\})?", body):
            assert int(index) == len(variants), f"{name}: variant order"
            variants.append((vname, _parse_fields(fields)))
        enums[name] = variants
    return enums


def _parse_structs(text: str) -> dict[str, Fields]:
    structs = {}
    for line in text.strip().splitlines():
        name, fields = re.fullmatch(r"(\w+) \{(.*)\}", line).groups()
        structs[name] = _parse_fields(fields)
    return structs


def _parse_kinds(text: str) -> dict[int, tuple[str, Fields]]:
    kinds = {}
    for line in text.strip().splitlines():
        _, code, name, fields, _ = (cell.strip() for cell in line.split("|"))
        kinds[int(code)] = (name, _parse_fields(fields))
    return kinds


ENUMS = _parse_enums(_ENUMS_TEXT)
STRUCTS = _parse_structs(_STRUCTS_TEXT)
KINDS = _parse_kinds(_KINDS_TEXT)

# Section 6a: schema version 2 of Candle and Decision, pasted verbatim too.

_ENUMS2_TEXT = """
ExitReason2: signal [0], take_profit [1], stop_loss [2], manual [3], emergency [4]
DecisionOutcome2: hold [0]; enter [1]; exit [2] {reason ExitReason2}; rejected [3] {reason_code str8}
"""

_STRUCTS2_TEXT = """
Indicator2 { name str8, value opt<cdec> }
SignalOutput2 { name str8, fired bool, strength cdec, confidence cdec, entry opt<cdec>, stop opt<cdec>, take_profit opt<cdec>, note str8 }
RiskCheck2 { code str8, passed bool, detail str16 }
Sizing2 { capital cdec, risk_fraction cdec, risk_budget cdec, entry cdec, stop_trigger cdec, worst_case_fill cdec, risk_per_unit cdec, quantity_raw cdec, quantity cdec, notional cdec, multiplier cdec }
GlassBox2 { regime str8, indicators vec8<Indicator2>, signals vec8<SignalOutput2>, risk_checks vec8<RiskCheck2> }
Committed2 { fired vec8<str8>, glass_digest hash }
"""

_KINDS2_TEXT = """
| 2 | Candle | symbol str8, granularity_s u32, open_ms ms, open cdec, high cdec, low cdec, close cdec, volume cdec |
| 4 | Decision | symbol str8, candle_seq seq, outcome DecisionOutcome2, sizing opt<Sizing2>, glass Glass2 |
"""

ENUMS.update(_parse_enums(_ENUMS2_TEXT))
STRUCTS.update(_parse_structs(_STRUCTS2_TEXT))
KINDS2 = _parse_kinds(_KINDS2_TEXT)
# Schema-2 enums have a one-byte tag.
ONE_BYTE_TAGS = set(_parse_enums(_ENUMS2_TEXT))
KNOWN_SCHEMA_VERSIONS = {code: {1, 2} if code in KINDS2 else {1}
                         for code in KINDS}


class DecodeError(Exception):
    pass


class BodyReader:
    """A cursor over a body that decodes the section 5 type table."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise DecodeError(f"body ends at byte {len(self.data)}, needed "
                              f"{n} more bytes at byte {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def tag(self, what: str) -> bool:
        """A one-byte 00/01 value (bool, or Option's None/Some)."""
        byte = self.take(1)[0]
        if byte > 1:
            raise DecodeError(f"{what} byte is 0x{byte:02x}, not 00 or 01 "
                              f"(at byte {self.pos - 1})")
        return byte == 1

    def count(self) -> int:
        """A u64 length prefix, sanity-checked against the bytes left
        (every element of every type used here takes at least one byte)."""
        n = self.unpack("Q")
        if n > len(self.data) - self.pos:
            raise DecodeError(f"length {n} exceeds the {len(self.data) - self.pos} "
                              f"bytes left (at byte {self.pos - 8})")
        return n

    def string(self) -> str:
        raw = self.take(self.count())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"string is not UTF-8: {e}") from None

    def decimal(self) -> str:
        flags, lo, mid, hi = struct.unpack("<4I", self.take(16))
        return render_decimal(flags, lo, mid, hi)

    def short_string(self, length_format: str) -> str:
        """``str8`` / ``str16``: a u8 or u16 length, then UTF-8 bytes."""
        raw = self.take(self.unpack(length_format))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"string is not UTF-8: {e}") from None

    def compact_decimal(self) -> str:
        """``cdec`` (section 6a): sign and scale in a head byte, then the
        mantissa as minimal unsigned LEB128."""
        head = self.take(1)[0]
        if head & 0x60:
            raise DecodeError(f"compact decimal head 0x{head:02x} has reserved "
                              f"bits set (at byte {self.pos - 1})")
        magnitude = 0
        for group_index in range(14):
            byte = self.take(1)[0]
            magnitude |= (byte & 0x7F) << (7 * group_index)
            if not byte & 0x80:
                if byte == 0 and group_index > 0:
                    raise DecodeError("compact decimal mantissa is not minimal")
                break
        else:
            raise DecodeError("compact decimal mantissa longer than 14 bytes")
        if magnitude >> 96:
            raise DecodeError("compact decimal mantissa above 96 bits")
        flags = (head & 0x1F) << 16 | (head & 0x80) << 24
        mask = (1 << 32) - 1
        return render_decimal(flags, magnitude & mask, magnitude >> 32 & mask,
                              magnitude >> 64)

    def value(self, type_name: str) -> Any:
        """Decode one value of a section 6 type name."""
        simple: dict[str, Callable[[], Any]] = {
            "u16": lambda: self.unpack("H"),
            "u32": lambda: self.unpack("I"),
            "u64": lambda: self.unpack("Q"),
            "seq": lambda: self.unpack("Q"),
            "i64": lambda: self.unpack("q"),
            "ms": lambda: self.unpack("q"),
            "bool": lambda: self.tag("bool"),
            "str": self.string,
            "dec": self.decimal,
            "u8": lambda: self.unpack("B"),
            "str8": lambda: self.short_string("B"),
            "str16": lambda: self.short_string("H"),
            "cdec": self.compact_decimal,
            "hash": lambda: self.take(32).hex(),
        }
        if type_name in simple:
            return simple[type_name]()
        generic = re.fullmatch(r"(opt|vec|vec8)<(.+)>", type_name)
        if generic:
            wrapper, inner = generic.groups()
            if wrapper == "opt":
                return self.value(inner) if self.tag("Option") else None
            count = self.unpack("B") if wrapper == "vec8" else self.count()
            return [self.value(inner) for _ in range(count)]
        if type_name in STRUCTS:
            return self.fields(STRUCTS[type_name])
        if type_name in ENUMS:
            return self.enum(type_name)
        raise DecodeError(f"schema uses unknown type {type_name!r}")

    def fields(self, fields: Fields) -> dict[str, Any]:
        return {name: self.value(type_name) for name, type_name in fields}

    def enum(self, enum_name: str) -> Any:
        variants = ENUMS[enum_name]
        tag_format = "B" if enum_name in ONE_BYTE_TAGS else "I"
        index = self.unpack(tag_format)
        if index >= len(variants):
            raise DecodeError(f"{enum_name} variant index {index} is unknown "
                              f"(at byte {self.pos - struct.calcsize(tag_format)})")
        name, fields = variants[index]
        return {name: self.fields(fields)} if fields else name


def render_decimal(flags: int, lo: int, mid: int, hi: int) -> str:
    """A rust_decimal serialize() form as an exact decimal string that keeps
    the scale (``2.0`` stays ``2.0``)."""
    if flags & 0x7F00FFFF:
        raise DecodeError(f"Decimal flags 0x{flags:08x} have reserved bits set")
    scale = (flags >> 16) & 0xFF
    if scale > 28:
        raise DecodeError(f"Decimal scale {scale} exceeds 28")
    magnitude = (hi << 64) | (mid << 32) | lo
    # Section 5: a negative zero decodes as zero.
    sign = "-" if flags >> 31 and magnitude else ""
    digits = str(magnitude).rjust(scale + 1, "0")
    if scale:
        digits = f"{digits[:-scale]}.{digits[-scale:]}"
    return sign + digits


def decode_event(payload: bytes) -> dict[str, Any]:
    """Decode a payload (envelope + body) into its JSON shape."""
    version, kind, market_ms = struct.unpack_from("<HHq", payload)
    if kind not in KINDS:
        raise DecodeError(f"unknown kind {kind}")
    if version not in KNOWN_SCHEMA_VERSIONS[kind]:
        raise DecodeError(f"unknown schema_version {version} for kind {kind}")
    name, fields = KINDS2[kind] if version == 2 else KINDS[kind]
    reader = BodyReader(payload[MIN_PAYLOAD:])
    body = {}
    for field, type_name in fields:
        if type_name == "Glass2":
            # Section 6a: the glass box inline for an entry or an exit, its
            # commitment otherwise; its fields sit beside the others.
            outcome = body["outcome"]
            inline = outcome == "enter" or (isinstance(outcome, dict)
                                            and "exit" in outcome)
            body.update(reader.value("GlassBox2" if inline else "Committed2"))
        else:
            body[field] = reader.value(type_name)
    if version == 2 and name == "Decision":
        # Section 6a: a schema-2 decision's as_of_ms is its market_ms.
        body["as_of_ms"] = market_ms
    if reader.pos != len(reader.data):
        raise DecodeError(f"{len(reader.data) - reader.pos} trailing bytes "
                          f"after the {name} body (at byte {reader.pos})")
    return {"kind": name, "market_ms": market_ms, "body": body}


def decode_all(records: list[Record]) -> list[dict[str, Any]]:
    events = []
    for record in records:
        try:
            event = decode_event(record.payload)
        except DecodeError as e:
            raise VerificationError(record.seq, record.segment, record.offset,
                                    f"decode: {e}") from None
        events.append({"seq": record.seq, **event})
    return events


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"anx_verify: usage error: {message}\n")


def _parse_head(text: str) -> tuple[int, bytes]:
    match = re.fullmatch(r"([0-9]+):([0-9a-fA-F]{64})", text)
    if not match or int(match.group(1)) >= 1 << 64:
        raise argparse.ArgumentTypeError(
            f"expected SEQ:HASH (decimal seq, 64 hex digits), got {text!r}")
    return int(match.group(1)), bytes.fromhex(match.group(2))


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="anx_verify.py",
                     description="Verify (and optionally decode) an anx "
                                 "journal directory per journal/FORMAT.md.")
    parser.add_argument("journal_dir")
    parser.add_argument("--expect-head", type=_parse_head, metavar="SEQ:HASH",
                        help="also require record SEQ to exist with hash HASH")
    parser.add_argument("--json", action="store_true",
                        help="print the result as one JSON object")
    parser.add_argument("--decode", action="store_true",
                        help="decode every event and print one JSON line each")
    return parser.parse_args(argv)


def verdict(err: VerificationError,
            expect_head: tuple[int, bytes] | None) -> str:
    """Section 8: a torn tail is its own verdict, unless an expected head's
    seq is at or after it (records that head covers are then lost)."""
    if err.torn_tail and (expect_head is None or expect_head[0] < err.seq):
        return "torn_tail"
    return "corrupt"


def _print_failure(err: VerificationError, verdict_name: str,
                   as_json: bool) -> None:
    if as_json:
        print(json.dumps({
            "ok": False, "verdict": verdict_name, "first_bad_seq": err.seq,
            "segment": err.segment, "offset": err.offset, "reason": err.reason,
            "torn_tail": err.torn_tail,
        }, separators=(",", ":")))
    else:
        print(f"FAILED first_bad_seq={err.seq} segment={err.segment or '-'} "
              f"offset={err.offset} reason={err.reason} "
              f"torn_tail={'true' if err.torn_tail else 'false'} "
              f"verdict={verdict_name}")


def _print_success(journal: Journal, as_json: bool) -> None:
    if as_json:
        print(json.dumps({
            "ok": True, "verdict": "ok", "events": journal.head_seq,
            "head_seq": journal.head_seq, "head_hash": journal.head_hash.hex(),
        }, separators=(",", ":")))
    else:
        print(f"ok {journal.head_seq} events, head "
              f"{journal.head_seq}:{journal.head_hash.hex()}")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isdir(args.journal_dir):
        print(f"anx_verify: not a directory: {args.journal_dir}",
              file=sys.stderr)
        return 2
    blake3_self_test()

    try:
        journal = Verifier(args.journal_dir, keep_records=args.decode,
                           expect_head=args.expect_head).run()
        if args.expect_head is not None:
            check_expected_head(journal, *args.expect_head)
        events = decode_all(journal.records) if args.decode else []
    except NotRegularFile as err:
        print(f"anx_verify: {err}", file=sys.stderr)
        return 2
    except VerificationError as err:
        verdict_name = verdict(err, args.expect_head)
        _print_failure(err, verdict_name, args.json)
        return 3 if verdict_name == "torn_tail" else 1

    for event in events:
        print(json.dumps(event, separators=(",", ":")))
    _print_success(journal, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
