"""Columns of a ", "-separated text file read straight from its bytes: no Python object
per field (census-income's 12.6 million fields would cost seconds as bytes objects).

``FieldTable`` finds every field's offset and length with whole-buffer comparisons and
gathers a column as little-endian uint64 words; ``factorize`` groups equal fields by a
64-bit hash of their words, checked exactly; ``numbers`` parses digit strings
arithmetically. Measurements: benchmarks/NOTES.md, item 26.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["FieldTable", "factorize", "numbers"]


class FieldTable:
    """The fields of one file, located in its bytes without a Python object per field.

    ``starts`` and ``lens`` (width, rows) give each field's byte offset and length (the ", "
    separators excluded). ``words(c)`` gathers column c as (rows, k) little-endian uint64
    words, zero past each field's end: equal fields give equal rows.
    """

    def __init__(self, file: Path, width: int, rows: int | None = None):
        self.name = file.name
        size = file.stat().st_size
        # the bytes, zero-padded to whole uint64 words plus two (read once, in place)
        padded = np.zeros(-(-(size + 1) // 8) * 8 + 16, np.uint8)
        with open(file, "rb") as f:
            if f.readinto(memoryview(padded)[:size]) != size:
                raise ValueError(f"{self.name}: short read")
        if size and padded[size - 1] != _NL:
            padded[size] = _NL
            size += 1
        buf = padded[:size]
        newlines = np.flatnonzero(buf == _NL)
        if rows is not None and rows < len(newlines):
            newlines = newlines[:rows]
            buf = buf[: newlines[-1] + 1]
        n = len(newlines)
        if n == 0:
            raise ValueError(f"{self.name}: no rows")
        commas = np.flatnonzero(buf == _COMMA)
        per_line = np.diff(np.searchsorted(commas, newlines), prepend=0)
        bad = np.flatnonzero(per_line != width - 1)
        if bad.size:
            raise ValueError(f"{self.name}: line {bad[0] + 1} has {per_line[bad[0]] + 1} fields, "
                             f"expected {width}")
        if (buf[commas + 1] != _SPACE).any():
            at = commas[np.argmax(buf[commas + 1] != _SPACE)]
            line = int(np.searchsorted(newlines, at)) + 1
            raise ValueError(f"{self.name}: line {line}: fields must be separated by ', '")
        # one row per column, so that each column is contiguous
        ends = np.empty((width, n), np.int64)
        ends[:-1] = commas.reshape(n, width - 1).T
        ends[-1] = newlines
        starts = np.empty_like(ends)
        starts[1:] = ends[:-1] + 2
        starts[0, 0] = 0
        starts[0, 1:] = newlines[:-1] + 1
        self.n, self.starts, self.lens = n, starts, ends - starts
        self._words = padded.view("<u8")

    def words(self, c: int, k: int | None = None) -> np.ndarray:
        starts, lens = self.starts[c], self.lens[c]
        if k is None:
            k = max(1, -(-int(lens.max()) // 8))
        out = np.empty((self.n, k), np.uint64)
        at = starts // 8
        shift = ((starts % 8) * 8).astype(np.uint64)
        back = np.uint64(63) - shift  # shifting by 64 - shift in two steps: 0 when shift = 0
        for j in range(k):
            # the 8 bytes from starts + 8j: an unaligned load as two aligned ones
            word = (self._words[at + j] >> shift) | ((self._words[at + j + 1] << back) << _ONE)
            if int(lens.min()) < 8 * (j + 1):
                word &= _MASKS[np.clip(lens - 8 * j, 0, 8)]
            out[:, j] = word
        return out


_NL, _COMMA, _SPACE = ord("\n"), ord(","), ord(" ")
_ONE = np.uint64(1)
#: _MASKS[b]: the low b bytes of a uint64
_MASKS = np.array([(1 << (8 * b)) - 1 for b in range(9)], dtype=np.uint64)
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53], dtype=np.uint64)


def factorize(words: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """The distinct rows of ``words`` (as bytes, in no set order) and each row's index.

    A 64-bit hash of the row sorts fast; the grouping is then checked row by row against
    each group's first member, and on a collision (never seen) redone exactly on the rows.
    """
    key = np.zeros(len(words), np.uint64)
    for j in range(words.shape[1]):
        key = (key ^ words[:, j]) * _MIX[j % len(_MIX)]
        key ^= key >> np.uint64(29)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if not np.array_equal(words[first][inverse], words):
        _, first, inverse = np.unique(words, axis=0, return_index=True, return_inverse=True)
    values = [words[i].tobytes().rstrip(b"\0") for i in first]
    return values, inverse.reshape(-1)


def numbers(table: FieldTable, c: int, column: str) -> np.ndarray:
    """Column c (named ``column`` in errors) as float64: digit strings of up to 8
    characters parsed in bulk, else by NumPy."""
    lens = table.lens[c]
    if lens.min() >= 1 and lens.max() <= 8:
        w = table.words(c, 1)[:, 0]
        value = np.zeros(table.n)
        digits = True
        for i in range(8):
            inside = i < lens
            digit = ((w >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.int64) - ord("0")
            digits &= bool((((digit >= 0) & (digit <= 9)) | ~inside).all())
            value = np.where(inside, value * 10 + digit, value)
        if digits:
            return value
    words = table.words(c)
    try:
        return words.view(f"S{8 * words.shape[1]}").reshape(-1).astype(np.float64)
    except ValueError as e:
        raise ValueError(f"{table.name}: column {column}: {e}") from None
