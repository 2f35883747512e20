"""What makes damage to a store detectable: a checksum of every array and of every finished chunk of rows.

A chunk of features is recorded as finished with its row range and the CRC-32 of its float32 values
(C order) once it is written whole. Reading it checks both, so a chunk file that is missing (zarr would
return zeros), truncated or altered is an error naming the model, split and rows, never a wrong number.
Ids, labels and heads carry a CRC-32 of their values too.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def crc32(values: np.ndarray) -> int:
    """CRC-32 of an array's values in C order (its dtype's bytes; any memory layout gives the same)."""
    return zlib.crc32(np.ascontiguousarray(values).data)


def crc32_of_ids(ids: Sequence[str] | np.ndarray) -> int:
    """CRC-32 of sample ids, joined by NUL (which no file name holds), UTF-8 encoded."""
    return zlib.crc32("\0".join(str(i) for i in ids).encode())


@dataclass(frozen=True)
class ChunkRecord:
    """A finished chunk: stored rows `start .. stop - 1` and the CRC-32 of their float32 features."""

    start: int
    stop: int
    crc32: int

    def to_json(self) -> list[int]:
        return [self.start, self.stop, self.crc32]

    @classmethod
    def from_json(cls, value: object) -> ChunkRecord | None:
        """The record, or None when `value` is not one (a damaged record counts as unfinished)."""
        if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value):
            return cls(value[0], value[1], value[2])
        return None


@dataclass
class Damage:
    """What `featswap verify` found wrong in one place of a store."""

    where: str  # e.g. "model tiny-resnet, split val, rows 0..4095"
    problem: str
    repair: str


@dataclass
class VerifyReport:
    """The outcome of checking a whole store: every damaged place, and every model/split not finished."""

    location: str
    checked_chunks: int = 0
    damage: list[Damage] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damage

    def lines(self) -> list[str]:
        """The report as lines of text for the terminal."""
        if self.ok:
            head = f"{self.location}: no damage found ({self.checked_chunks} finished chunks checked)."
        else:
            head = f"{self.location}: {len(self.damage)} damaged place(s) found ({self.checked_chunks} chunks checked):"
        lines = [head]
        lines += [f"  damaged: {d.where}: {d.problem} Repair: {d.repair}" for d in self.damage]
        lines += [f"  not finished: {u} (run the same extract again to resume)" for u in self.unfinished]
        return lines
