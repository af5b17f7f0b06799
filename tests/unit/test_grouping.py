"""Which tasks share a job array: alike ones, in groups no larger than allowed."""

from __future__ import annotations

from submitter.grouping import group_alike


def test_alike_items_are_grouped_up_to_the_largest_size() -> None:
    items = ["a1", "a2", "a3", "a4", "a5", "b1", "c1", "c2", "x"]
    singles, groups = group_alike(items, lambda i: None if i == "x" else i[0], 2)
    assert groups == [["a1", "a2"], ["a3", "a4"], ["c1", "c2"]]
    assert sorted(singles) == ["a5", "b1", "x"]


def test_no_arrays_below_two() -> None:
    singles, groups = group_alike(["a1", "a2"], lambda i: i[0], 1)
    assert groups == [] and singles == ["a1", "a2"]
