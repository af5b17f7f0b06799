"""What a command keeps to its end is built with the cycle collector paused, then frozen."""

from __future__ import annotations

import gc

import pytest

from submitter.long_lived import long_lived, until_done


def test_the_collector_pauses_in_the_block_and_runs_again_after_it() -> None:
    assert gc.isenabled()
    with long_lived():
        assert not gc.isenabled()
        kept = [[n] for n in range(1000)]
        with long_lived():  # nested: the outer block decides
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)  # left out of the collector's later scans


def test_the_collector_runs_again_after_an_error_in_the_block() -> None:
    with pytest.raises(ValueError), long_lived():
        raise ValueError
    assert gc.isenabled()


def test_what_a_command_froze_is_let_go_when_it_ends() -> None:
    with until_done():
        with long_lived():
            kept = [[n] for n in range(1000)]
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0
