"""A knowledge base where lexical matching must weigh more: one short chunk per spare part, all in the same
words but for two made-up part numbers (which only the sparse score finds; the tiny model's dense vectors
barely separate the chunks)."""

from __future__ import annotations

import random
from pathlib import Path

PARTS = 40


def part_codes(count: int = PARTS, seed: int = 1) -> list[str]:
    """Two made-up part numbers per part, e.g. ``KXA-492 VEV-896``."""
    rng = random.Random(seed)
    letters = "ABCDEFGHKLMNPRSTVXZ"
    return [" ".join("".join(rng.choice(letters) for _ in range(3)) + f"-{rng.randint(100, 999)}" for _ in range(2))
            for _ in range(count)]


def write_parts(folder: Path, count: int = PARTS) -> dict[str, str]:
    """One Markdown file per part in ``folder``; returns part codes -> file name."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for number, code in enumerate(part_codes(count)):
        name = f"part_{number:02d}.md"
        (folder / name).write_text(f"Spare part {code} is kept on a shelf in the north warehouse. Ask the stores "
                                   "team before taking it.\n", encoding="utf-8")
        files[code] = name
    return files
