"""Referral-widget core: threshold ↔ % flagged, marker vs the exact curve, navigation, autosave
folders, export, readout and QC flags. No Qt."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import read_labels
from napari_uqseg.referral.curves.simulated import corrected_labels, referral_curve
from napari_uqseg.referral.session import autosave
from napari_uqseg.referral.session.recorded import ReferralSession
from napari_uqseg.viewer.napari_io import GEOMETRY_KEY
from napari_uqseg.viewer.navigation import ReviewNavigator
from napari_uqseg.viewer.qc import QC_METRICS, QCView, uncertain_slices
from napari_uqseg.viewer.readout import readout_html
from napari_uqseg.viewer.referral_export import export_session
from napari_uqseg.viewer.threshold import SLIDER_STEPS, ReferralView


def _dice(a: np.ndarray, b: np.ndarray, c: int) -> float:
    denom = np.sum(a == c) + np.sum(b == c)
    return 2 * np.sum((a == c) & (b == c)) / denom if denom else 1.0


@pytest.fixture
def volumes():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 4, (4, 12, 10)).astype(np.uint8)
    pred = np.where(rng.random(ref.shape) < 0.2, rng.integers(0, 4, ref.shape), ref)
    unc = np.round(rng.random(ref.shape), 2).astype(np.float32)  # ties on purpose
    unc[pred != ref] += 0.3
    return pred.astype(np.uint8), ref, unc


def test_percent_and_threshold_agree_with_brute_force(volumes):
    pred, ref, unc = volumes
    view = ReferralView(unc, pred, ref)
    for percent in (0.0, 0.5, 5.0, 33.3, 99.0, 100.0):
        t = view.threshold_for_percent(percent)
        n = int(np.sum(unc > t))
        assert n <= np.floor(percent / 100 * unc.size + 1e-9)
        assert view.n_flagged(t) == n
        np.testing.assert_array_equal(view.flagged(t), unc > t)
    assert view.n_flagged(view.threshold_for_percent(100.0)) == unc.size
    with pytest.raises(InputError, match="percent"):
        view.threshold_for_percent(101.0)


def test_marker_matches_the_exact_curve_and_the_definition(volumes):
    pred, ref, unc = volumes
    view = ReferralView(unc, pred, ref)
    full = referral_curve(unc, pred, ref)
    np.testing.assert_allclose(view.curve.dice, full.dice)
    for t in (0.1, 0.55, 0.9, 1.2):
        marker = view.marker(t)
        fixed = corrected_labels(unc, pred, ref, marker.threshold)
        for name, c in (("RV", 1), ("Myo", 2), ("LV", 3)):
            assert marker.dice[name] == pytest.approx(_dice(fixed, ref, c))
        assert marker.percent_flagged == pytest.approx(100 * np.mean(unc > marker.threshold))


def test_slider_round_trip_and_flat_curve_without_errors(volumes):
    _pred, ref, unc = volumes
    view = ReferralView(unc, ref, ref)  # a perfect prediction: no error at all
    assert view.curve.dice.min() == 1.0
    for by_percent in (False, True):
        for pos in (0, 10, 500, SLIDER_STEPS):
            t = view.threshold_from_slider(pos, by_percent)
            assert abs(view.slider_from_threshold(t, by_percent) - pos) <= 20
    out = np.zeros(unc.shape, np.uint8)
    view.flagged(0.5, out=out)
    np.testing.assert_array_equal(out, (unc > 0.5).astype(np.uint8))
    assert ReferralView(unc).curve is None


def test_navigator_ranks_slices_and_regions_accepts_and_reloads(tmp_path):
    u = np.zeros((4, 8, 8))
    u[1, 2:4, 2:4] = 0.9  # slice 1: 4 voxels
    u[3, 0:3, 0:3] = 0.8  # slice 3: 9 voxels, larger total
    nav = ReviewNavigator(u, 0.5)
    assert nav.n_units == 2
    first = nav.next()
    assert (first.z, first.rank) == (3, 0) and first.center_yx == (1.0, 1.0)
    assert nav.next().z == 1 and nav.next().z == 3  # wraps round
    assert nav.accept(3) == 3 and nav.next().z == 1 and nav.n_accepted == 1
    assert nav.previous().z == 3
    nav.save(tmp_path / "log.json")
    again = ReviewNavigator(u, 0.5)
    again.load(tmp_path / "log.json")
    assert again.accepted["slice"] == {3} and again.log[0]["id"] == 3
    nav.set_kind("region")
    target = nav.next()
    assert target.kind == "region" and target.z == 3 and nav.accept(target.z) == target.unit_id
    nav.set_threshold(0.85)  # new regions: accepted regions are forgotten
    assert nav.n_units == 1 and nav.n_accepted == 0


def test_session_folder_beside_source_or_per_user(tmp_path, monkeypatch):
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    pred = np.zeros((2, 3, 3), np.uint8)
    source = tmp_path / "patient001_frame01.nii.gz"
    beside = autosave.session_folder(pred, source)
    assert beside.parent == tmp_path and beside.name.startswith("patient001_frame01.uqseg-session")
    user = autosave.session_folder(pred, None)
    assert user.parent == tmp_path / "home" / "sessions"
    assert autosave.session_folder(pred + 1, None) != user
    user.mkdir(parents=True)
    moved = autosave.set_aside(user)
    assert moved.exists() and not user.exists() and autosave.set_aside(user) is None


def test_export_writes_labels_in_original_geometry_log_and_curve(tmp_path, volumes):
    pred, ref, unc = volumes
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    wrong = np.nonzero(pred != ref)
    session.paint(wrong, ref[wrong])
    affine = np.diag([2.0, 3.0, 5.0, 1.0])
    affine[:3, 3] = (10, 20, 30)
    header = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), affine).header
    meta = {"metadata": {GEOMETRY_KEY: {"affine": affine, "header": header}}, "scale": (5, 3, 2)}
    view, nav = ReferralView(unc, pred, ref), ReviewNavigator(unc, 0.5)
    paths = export_session(
        session, tmp_path, stem="case", layer_meta=meta, view=view, navigator=nav
    )
    assert {p.name for p in paths} == {
        "case_corrected.nii.gz",
        "case_corrections.csv",
        "case_corrections.json",
        "case_curve.csv",
        "case_curve.png",
        "case_review_log.json",
    }
    back = read_labels(tmp_path / "case_corrected.nii.gz")
    np.testing.assert_array_equal(back.array, ref)
    np.testing.assert_allclose(back.affine, affine)
    rows = (tmp_path / "case_curve.csv").read_text().splitlines()
    assert rows[0].split(",") == list(session.curve_columns) and len(rows) == 3
    assert json.loads((tmp_path / "case_corrections.json").read_text())["dice"]["LV"] == 1.0
    assert (tmp_path / "case_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_readout_shows_the_session_dice(volumes):
    pred, ref, unc = volumes
    session = ReferralSession(pred, uncertainty=unc, reference=ref, threshold=0.5)
    start = session.log_records()[0]
    html = readout_html(session, start, None, None)
    assert f"{session.dice['RV']:.3f}" in html and "(+0.000)" in html
    no_ref = ReferralSession(pred, uncertainty=unc, threshold=0.5)
    assert "no reference" in readout_html(no_ref, {}, None, None)
    marker = ReferralView(unc, pred, ref).marker(0.5)
    assert f"{marker.dice['Myo']:.3f}" in readout_html(None, {}, None, marker)


def test_qc_flags_each_score_in_its_bad_direction():
    qc = QCView({"RV": {"cv": 30.0, "d_pw": 0.95, "u_labelled": None}, "LV": {"cv": 1.0}})
    flags = qc.flags()
    assert flags["RV"] == {"cv": True, "d_pw": False, "u_labelled": None}
    assert qc.flagged_structures() == ["RV"]
    qc.set_limit("d_pw", 0.99)
    assert qc.flags()["RV"]["d_pw"] is True
    with pytest.raises(InputError, match="unknown QC score"):
        qc.set_limit("dice", 0.5)
    assert [m.key for m in QC_METRICS] == ["cv", "d_pw", "u_labelled"]
    u = np.zeros((3, 2, 2))
    u[2] = 1.0
    u[0] = 0.5
    assert [z for z, _ in uncertain_slices(u, k=2)] == [2, 0]


def test_threshold_state_tells_each_listener_once_per_change():
    from napari_uqseg.viewer.threshold import ThresholdState

    state, seen, other = ThresholdState(), [], []
    state.subscribe(seen.append)
    unsubscribe = state.subscribe(other.append)
    assert state.set(0.5) and not state.set(0.5)  # no change, no event
    unsubscribe()
    assert state.set(None)
    assert seen == [0.5, None] and other == [0.5] and state.value is None


def test_a_read_only_data_folder_is_left_alone_even_for_root(tmp_path, monkeypatch):
    """A shared, read-only data set (mode r-x for everyone) gets no session folder, whoever runs
    the plugin: os.access alone says 'writable' to root."""
    monkeypatch.setenv(autosave.HOME_ENV, str(tmp_path / "home"))
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o555)
    try:
        folder = autosave.session_folder(np.zeros((2, 3, 3), np.uint8), data / "p_frame01.nii.gz")
    finally:
        data.chmod(0o755)
    assert folder.parent == tmp_path / "home" / "sessions"
