"""Files per group: as many as the first group, more while they fit in ``GROUP_SECONDS`` of encoding.

A group is encoded in one call (texts sorted by length, batched by tokens), then written and reported, so it is
also the unit of crash-safe progress. A fast encoder (a GPU, a small model) wants long groups: fewer, fuller
batches (``python benchmarks/ingest_speed.py --generate 2000 --groups auto 32 1024``, tiny model, 2 cores: groups
of 32 files took 1.28-1.33x the time of groups sized here, 1,024 files 1.075x). bge-m3 on a CPU encodes a few
hundred tokens a second, so there a group of a few dozen small files is already many seconds; smaller groups
would cost it too (fewer texts to sort by length, more padding: ``--generate 64 --full-size --groups 32 8
--rounds 2``, bge-m3's architecture on 2 cores, took 1.40x the time in groups of 8 files). So the first group
takes a fixed number of files, and a later one takes more while they fit: as many bytes of files as the encoder got
through in ``GROUP_SECONDS`` at the rate measured so far (encoder seconds per byte of the files it encoded, the
share answered by the encoding cache left out), at most twice as many files as the group before.
``ingest.documents_per_batch`` fixes the number of files instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.discovery import FoundFile

GROUP_SECONDS = 10.0  # encoding per group the sizes aim at
CPU_FIRST_GROUP = 32  # files in the first group, before any rate is known, with the encoder on a CPU
GPU_FIRST_GROUP = 256  # and on a GPU


class GroupSizer:
    """Takes the next group from the front of a list of files; ``record`` tells it what a group's encoding cost.

    With ``fixed`` every group has ``first`` files (``ingest.documents_per_batch``). Otherwise, until some file
    has been encoded, groups have ``first`` files; after that they hold more files while those fit in ``seconds``
    of encoding at the measured rate: never fewer than ``first`` (a slower encoder keeps the groups it had), at
    most ``max_files``, growing at most twofold from one group to the next, so that worker processes
    (``ingest.workers``) planning the next group while this one is encoded are never left with a group much
    larger than the one that hides their work. Files found unchanged cost no encoding, but they are counted as
    if they would, so a folder that changes halfway through does not get an hour-long group.
    """

    def __init__(
        self, first: int, *, max_files: int, fixed: bool = False, seconds: float | None = None
    ) -> None:
        self.first = first
        self.fixed = fixed
        self.seconds = GROUP_SECONDS if seconds is None else seconds
        self.max_files = max_files
        self.last = first  # files in the group taken last: the next one has at most twice as many
        self.encoded_bytes = 0
        self.encode_seconds = 0.0

    def record(self, encoded_bytes: int, encode_seconds: float) -> None:
        """A group's changed files had ``encoded_bytes`` bytes and took ``encode_seconds`` to encode."""
        if encoded_bytes > 0:
            self.encoded_bytes += encoded_bytes
            self.encode_seconds += encode_seconds

    @property
    def byte_budget(self) -> float | None:
        """Bytes of files per group at the measured rate; None before any rate is known (or with ``fixed``)."""
        if self.fixed or self.encoded_bytes == 0:
            return None
        if self.encode_seconds <= 0:
            return float("inf")
        return self.seconds * self.encoded_bytes / self.encode_seconds

    def take(self, files: Sequence[FoundFile]) -> int:
        """How many files from the front of ``files`` form the next group (at least one, if there are any)."""
        budget = self.byte_budget
        if budget is None:
            return min(self.first, len(files))
        count, total = 0, 0
        for found in files[: min(self.max_files, 2 * self.last)]:
            if count >= self.first and total + found.size > budget:
                break
            count += 1
            total += found.size
        # A group cut short by the end of ``files`` (the end of a look-up window) does not hold the next one back.
        self.last = count if count < len(files) else max(count, self.last)
        return count
