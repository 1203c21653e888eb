"""Group sizes: a first group of fixed size, then more files while they fit in GROUP_SECONDS at the measured rate."""

from __future__ import annotations

from pathlib import Path

from ingest.discovery import FoundFile
from ingest.grouping import GroupSizer


def files(*sizes: int) -> list[FoundFile]:
    return [FoundFile(Path(f"f{i}.txt"), Path("."), f"f{i}.txt", size, 0.0) for i, size in enumerate(sizes)]


def test_the_first_groups_have_the_first_size_until_something_was_encoded() -> None:
    sizer = GroupSizer(3, seconds=10, max_files=100)
    assert sizer.take(files(*[100] * 10)) == 3
    sizer.record(0, 0.0)  # a group of unchanged files: no rate yet
    assert sizer.take(files(*[100] * 10)) == 3
    assert sizer.take(files(100, 100)) == 2
    assert sizer.take([]) == 0


def test_later_groups_hold_the_bytes_the_encoder_gets_through_in_the_target_time() -> None:
    sizer = GroupSizer(2, seconds=10, max_files=100)
    sizer.last = 50  # no limit from the group before
    sizer.record(1_000, 2.0)  # 500 bytes a second: 5,000 bytes per group
    assert sizer.byte_budget == 5_000
    assert sizer.take(files(*[1_000] * 10)) == 5
    assert sizer.take(files(2_000, 2_000, 1_000, 1)) == 3  # up to the budget, not past it
    assert sizer.take(files(60_000, 60_000, 1)) == 2  # never fewer than the first group, whatever the files' size
    sizer.record(3_000, 18.0)  # the rate is the average so far: 4,000 bytes in 20 s
    assert sizer.byte_budget == 2_000


def test_groups_grow_at_most_twofold_up_to_max_files_and_never_shrink_below_the_first() -> None:
    fast = GroupSizer(3, seconds=10, max_files=8)
    fast.record(1_000, 0.0)  # no time at all: the budget is unbounded
    assert [fast.take(files(*[1] * 20)) for _ in range(3)] == [6, 8, 8]
    assert fast.take(files(1)) == 1 and fast.take(files(*[1] * 20)) == 8  # the end of the list: not held back
    slow = GroupSizer(3, seconds=10, max_files=100)
    slow.record(10, 10.0)  # 1 byte a second: 10 bytes per group, less than one file
    assert [slow.take(files(*[100] * 20)) for _ in range(2)] == [3, 3]
    fixed = GroupSizer(3, max_files=3, fixed=True)
    fixed.record(1_000, 0.0)
    assert fixed.byte_budget is None and fixed.take(files(*[1] * 20)) == 3
