"""The training loop's warning for a structure the network is not learning, on the validation
Dice of two real runs: BMT-CTL's first 20 %-labels run (all loss weights 1 from the first batch;
its RV stayed absent) and its U-Net baseline (RV found at epoch 7)."""

from __future__ import annotations

from training.loop import STALL_AFTER, structures_not_learned

# Validation RV / Myo / LV Dice per epoch, epochs 0-13, from the runs' metrics.jsonl (rounded).
BMTCTL_FIRST_RUN = [
    (0.0005, 0.0016, 0.047), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.012),
    (0.0, 0.012, 0.326), (0.0, 0.0, 0.096), (0.0, 0.002, 0.307), (0.0, 0.073, 0.415),
    (0.0, 0.103, 0.539), (0.0, 0.211, 0.600), (0.0, 0.444, 0.581), (0.0, 0.498, 0.662),
    (0.004, 0.550, 0.693), (0.008, 0.586, 0.730),
]  # fmt: skip
UNET_BASELINE = [
    (0.0, 0.0005, 0.070), (0.0004, 0.030, 0.286), (0.0, 0.0, 0.013), (0.0, 0.0, 0.124),
    (0.0, 0.013, 0.382), (0.0002, 0.147, 0.337), (0.0, 0.247, 0.449), (0.053, 0.552, 0.677),
    (0.223, 0.612, 0.753), (0.068, 0.391, 0.515), (0.334, 0.617, 0.762), (0.449, 0.665, 0.801),
    (0.427, 0.657, 0.801), (0.541, 0.701, 0.797),
]  # fmt: skip


def _warnings(run: list[tuple[float, float, float]]) -> dict[int, list[str]]:
    history, fired = [], {}
    for epoch, (rv, myo, lv) in enumerate(run):
        history.append(
            {"val_RV": rv, "val_Myo": myo, "val_LV": lv, "val_mean": (rv + myo + lv) / 3}
        )
        absent = structures_not_learned(history, epoch)
        if absent:
            fired[epoch] = absent
    return fired


def test_the_run_that_never_found_the_rv_is_flagged_from_epoch_10() -> None:
    fired = _warnings(BMTCTL_FIRST_RUN)
    assert min(fired) == STALL_AFTER == 10
    assert all(names == ["RV"] for names in fired.values())


def test_a_run_that_finds_every_structure_by_epoch_8_is_not_flagged() -> None:
    assert _warnings(UNET_BASELINE) == {}


def test_epochs_without_validation_and_old_states_do_not_count() -> None:
    # Validated every other epoch: four entries carry the RV, too few for a verdict.
    history = [{"val_RV": 0.0} if e % 2 else {"val_mean": 0.5} for e in range(8)]
    assert structures_not_learned(history, 12) == []
    # A state saved before the structures were kept holds only means: nothing to judge.
    assert structures_not_learned([{"val_mean": 0.3}] * 20, 19) == []
    # Five validations with the RV at 0 and the rest found: the RV alone.
    history = [{"val_RV": 0.0, "val_Myo": 0.6, "val_LV": 0.8}] * 5
    assert structures_not_learned(history, 10) == ["RV"]
    assert structures_not_learned(history, 9) == []
