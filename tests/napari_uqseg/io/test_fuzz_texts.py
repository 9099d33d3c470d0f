"""ACDC tables (Info.cfg, cases.csv) and ensemble manifests under bad input: a seeded fuzzer and
one test per escape it found. Every call gives a valid result or a one-line InputError."""

from __future__ import annotations

import json

import pytest

from napari_uqseg.errors import InputError
from napari_uqseg.io.acdc import find_cases, read_patient
from napari_uqseg.models.manifest import read_manifest
from tests.napari_uqseg.bad_texts import (
    CLEAN,
    MANIFEST,
    OK,
    fuzz_texts,
    official_patient,
    shared_copy,
)


def test_text_fuzz_every_call_is_valid_or_one_line_input_error(tmp_path):
    counts, escapes = fuzz_texts(tmp_path, seed=5, n=80)
    assert not escapes, escapes[:10]
    for entry, outcome in counts.items():  # every entry point sees both sides
        assert outcome[OK] > 3 and outcome[CLEAN] > 20, (entry, outcome)


@pytest.mark.slow
def test_text_fuzz_many(tmp_path):
    _, escapes = fuzz_texts(tmp_path, seed=3000, n=3000)
    assert not escapes, escapes[:10]


def _one_line(call, *fragments):
    with pytest.raises(InputError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_case_id_too_long_for_the_file_system_is_a_missing_file(tmp_path):
    root = shared_copy(tmp_path)
    long_id = "patient001_" + "x" * 300 + "_frame01"
    (root / "cases.csv").write_text(f"id,patient,phase,split\n{long_id},patient001,ED,train\n")
    _one_line(lambda: find_cases(root), "cases.csv", "is missing")


def test_frame_number_of_300_digits_is_refused_cleanly(tmp_path):
    folder = official_patient(tmp_path)
    (folder / "Info.cfg").write_text("ED: " + "1" * 300 + "\nES: 3\n")
    _one_line(lambda: read_patient(folder), "patient001_4d")  # not in the 4-frame cine


def _manifest(tmp_path, text: str):
    for name in ("m0.pt", "m1.pt"):
        (tmp_path / name).write_bytes(b"x")
    path = tmp_path / "ensemble.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # json's decoder recurses: RecursionError
        '{"format": "napari-uqseg-ensemble", "version": ' + "9" * 5000 + "}",  # int digit limit
    ],
)
def test_manifest_json_the_decoder_chokes_on_is_not_valid_json(tmp_path, text):
    path = _manifest(tmp_path, text)
    _one_line(lambda: read_manifest(path), "ensemble.json", "not valid JSON")


@pytest.mark.parametrize("member", ["x" * 300 + ".pt", "m0\n.pt"])
def test_manifest_member_names_that_cannot_exist_give_one_line(tmp_path, member):
    path = _manifest(tmp_path, json.dumps({**MANIFEST, "members": ["m0.pt", member]}))
    _one_line(lambda: read_manifest(path), "ensemble.json", "not found")


def test_valid_inputs_still_read(tmp_path):
    assert len(find_cases(shared_copy(tmp_path / "s"))) == 2
    phases = read_patient(official_patient(tmp_path / "o"))
    assert phases["ES"][0].array.shape == (2, 4, 4)  # frame 3 out of the cine
    path = _manifest(tmp_path, json.dumps(MANIFEST))
    assert read_manifest(path).emap_from_last_member
