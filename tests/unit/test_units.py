"""Memory sizes as users write them."""

from __future__ import annotations

import pytest

from submitter.units import parse_memory


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 * 1024**2), ("8G", 8 * 1024**3), ("1.5g", 1536 * 1024**2), ("4096B", 4096)],
)
def test_sizes_with_a_unit(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("value", [4096, 4096.0, "4096", " 8 "])
def test_a_bare_number_needs_a_unit(value: object) -> None:
    with pytest.raises(ValueError, match="has no unit; give a unit, as 4G or 4096M"):
        parse_memory(value)
