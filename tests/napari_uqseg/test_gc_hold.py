"""The run widget's hold on full garbage collections: deferred while held, due right after."""

from __future__ import annotations

import gc

import pytest

from napari_uqseg._qt.gc_hold import FullCollectionHold


@pytest.fixture
def full_collections():
    """Starts of automatic and explicit generation-2 collections while the test runs."""
    starts: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            starts.append(1)

    saved = gc.get_threshold()
    gc.callbacks.append(record)
    yield starts
    gc.callbacks.remove(record)
    gc.set_threshold(*saved)


def _survivors(n: int) -> list[list[int]]:
    """``n`` tracked containers that live on: what building layers does to the old generation."""
    return [[i] for i in range(n)]


def test_acquire_and_release_restore_the_thresholds():
    before = gc.get_threshold()
    hold = FullCollectionHold()
    hold.acquire()
    hold.acquire()  # idempotent: one holder counts once
    held = gc.get_threshold()
    assert held[:2] == before[:2] and held[2] > 10**6
    hold.release()
    assert gc.get_threshold() == before
    hold.release()  # idempotent
    assert gc.get_threshold() == before


def test_overlapping_holds_restore_after_the_last():
    before = gc.get_threshold()
    first, second = FullCollectionHold(), FullCollectionHold()
    first.acquire()
    second.acquire()
    first.release()
    assert gc.get_threshold()[2] > 10**6
    second.release()
    assert gc.get_threshold() == before


def test_a_threshold_set_by_someone_else_is_kept(full_collections):
    hold = FullCollectionHold()
    hold.acquire()
    gc.set_threshold(1000, 20, 30)
    hold.release()
    assert gc.get_threshold() == (1000, 20, 30)


def test_full_collections_wait_for_the_release_then_happen(full_collections):
    gc.collect()  # the old generation is now the whole heap; nothing is pending
    full_collections.clear()
    heap = len(gc.get_objects())
    hold = FullCollectionHold()
    hold.acquire()
    try:
        kept = _survivors(heap)  # far past the quarter of the old generation that triggers one
        assert full_collections == []
        gc.collect(1)  # young collections go on as usual
        assert full_collections == []
    finally:
        hold.release()
    more = _survivors(20_000)  # enough allocations for the next young collections
    assert full_collections, "the deferred full collection did not happen after the release"
    del kept, more


def test_without_a_hold_the_same_allocations_trigger_one(full_collections):
    gc.collect()
    full_collections.clear()
    kept = _survivors(len(gc.get_objects()))
    assert full_collections, "the baseline never collected: the deferral test proves nothing"
    del kept
