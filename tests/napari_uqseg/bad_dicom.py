"""Bad-input corpus for the DICOM series reader: seeded mutations of realistic series.

Each case starts from a small short-axis cine written by ``tests/dicom_series.py`` (classic
single-frame files, or the same series as one enhanced multi-frame instance) and applies one to
three mutations: tags dropped, garbled (raw bytes the VR cannot hold: text in numbers, NaN/inf,
wrong value multiplicity, empty) or retyped (another VR), pixel data truncated, files truncated or
emptied, non-DICOM files named ``.dcm``, duplicated files and positions, another transfer syntax in
the file meta, huge declared matrices. Used by ``io/test_fuzz_dicom.py`` and by
``benchmarks/fuzz_inputs.py --dicom N``.

Every read must end in a :class:`~napari_uqseg.io.dicom.DicomSeries` whose volume meets the
reader's contract (float32 (Z, Y, X) or (T, Z, Y, X), finite voxels, a finite invertible affine,
positive spacing, writable as NIfTI) or in an InputError of one line naming the case's folder.
"""

from __future__ import annotations

import copy
import io
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag

from napari_uqseg.errors import InputError
from napari_uqseg.io.dicom import DicomSeries, read_dicom_series
from napari_uqseg.io.nifti import write_volume
from tests.dicom_series import SeriesSpec, enhanced_dataset, single_frame_datasets
from tests.napari_uqseg.bad_inputs import BROKEN, CLEAN, OK, UNCAUGHT

#: Tags the mutations touch, with their VR (classic instances, top level).
TAGS = {
    "ImagePositionPatient": "DS",
    "ImageOrientationPatient": "DS",
    "PixelSpacing": "DS",
    "Rows": "US",
    "Columns": "US",
    "BitsAllocated": "US",
    "BitsStored": "US",
    "SamplesPerPixel": "US",
    "PixelRepresentation": "US",
    "RescaleSlope": "DS",
    "RescaleIntercept": "DS",
    "TriggerTime": "DS",
    "SeriesInstanceUID": "UI",
    "FrameOfReferenceUID": "UI",
    "NumberOfFrames": "IS",
    "InstanceNumber": "IS",
    "SliceThickness": "DS",
    "PhotometricInterpretation": "CS",
}
#: Raw values for text VRs (DS, IS, UI, CS): garbage, special numbers, wrong multiplicity.
TEXT_VALUES = (
    b"abc ",
    b"",
    b" ",
    b"nan\\nan\\nan ",
    b"inf ",
    b"-inf",
    b"1e400 ",
    b"nan ",
    b"-0",
    b"0 ",
    b"1\\2",
    b"1\\2\\3\\4\\5\\6\\7 ",
    b"0\\0\\0\\0\\0\\0 ",
    b"1\\0\\0\\1\\0\\0 ",
    b"1\\0\\0\\0\\1\\0 ",
    b"-1\\-1",
    b"1e-30\\1e-30",
    b"1e30\\1e30\\1e30 ",
    b"99999999999999999999",
    b"-2147483649 ",
    b"1000000000",
    b"\xff\xfe\x00\x01",
    b"1.2.3\x00",
    b"3 ",
    b"65535 ",
    b"2\\2",
)
#: Raw values for US (2-byte little-endian; odd lengths and multiplicity on purpose).
US_VALUES = (
    b"\x00\x00",
    b"\x01\x00",
    b"\x03\x00",
    b"\x08\x00",
    b"\x0c\x00",
    b"\x20\x00",
    b"\x40\x00",
    b"\x02\x00",
    b"\xff\xff",
    b"\x00\x80",
    b"\x01",
    b"\x01\x00\x02\x00",
    b"",
)
RETYPES = (
    ("LO", b"abc "),
    ("FD", np.float64(3.7).tobytes()),
    ("SQ", b""),
    ("UN", b"\x01\x02"),
    ("US", b"\x07\x00"),
    ("DS", b"12.5"),
    ("UL", b"\xff\xff\xff\xff"),
    ("OB", b"\x00\x00"),
)
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",  # implicit VR little endian (the body is explicit)
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.4.50",  # JPEG baseline (the pixels are not)
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.90",  # JPEG 2000
    "1.2.3.4.5",  # unknown
    "",
)
_SHAPE = (2, 3, 6, 5)  # (T, Z, Y, X): a 2-frame cine of three 6x5 slices


def base_series(enhanced: bool, seed: int = 0) -> list[Dataset]:
    """The unmutated series: 6 classic instances, or 1 enhanced multi-frame instance."""
    cine = np.random.default_rng(seed).random(_SHAPE).astype(np.float32)
    datasets = single_frame_datasets(cine, SeriesSpec())
    if not enhanced:
        return datasets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [enhanced_dataset(datasets)]


def set_raw(ds: Dataset, keyword: str, vr: str, value: bytes) -> None:
    tag = Tag(keyword)
    ds[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _garble(ds: Dataset, keyword: str, rng: np.random.Generator) -> str:
    kind = rng.integers(3)
    vr = TAGS.get(keyword, "DS")
    if kind == 0:
        if keyword in ds:
            del ds[keyword]
        return f"drop {keyword}"
    if kind == 1:
        pool = US_VALUES if vr == "US" else TEXT_VALUES
        value = pool[rng.integers(len(pool))]
        set_raw(ds, keyword, vr, value)
        return f"garble {keyword}={value!r}"
    vr, value = RETYPES[rng.integers(len(RETYPES))]
    set_raw(ds, keyword, vr, value)
    return f"retype {keyword} as {vr}"


def _frame_groups(ds: Dataset, rng: np.random.Generator) -> list[Dataset]:
    groups = list(ds.PerFrameFunctionalGroupsSequence)
    if "SharedFunctionalGroupsSequence" in ds and rng.random() < 0.3:
        groups = list(ds.SharedFunctionalGroupsSequence)
    return groups


def _mutate_enhanced(ds: Dataset, rng: np.random.Generator) -> str:
    """A mutation inside an enhanced instance's functional groups or its frame count."""
    choice = rng.integers(6)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        return _garble(ds, "NumberOfFrames", rng)
    if choice == 0:
        values = (b"0", b"-1", b"1000000000", b"abc", b"", b"5", b"7", b"6\\6", b"1e3")
        value = values[rng.integers(len(values))]
        set_raw(ds, "NumberOfFrames", "IS", value)
        return f"NumberOfFrames={value!r}"
    if choice == 1:
        sequence = ds.PerFrameFunctionalGroupsSequence
        keep = int(rng.integers(len(sequence)))
        ds.PerFrameFunctionalGroupsSequence = list(sequence)[:keep]
        return f"PerFrameFunctionalGroupsSequence cut to {keep} items"
    groups = _frame_groups(ds, rng)
    if not groups:
        return "no groups"
    item = groups[int(rng.integers(len(groups)))]
    inner = {
        2: ("PlanePositionSequence", "ImagePositionPatient"),
        3: ("PlaneOrientationSequence", "ImageOrientationPatient"),
        4: ("PixelMeasuresSequence", "PixelSpacing"),
        5: ("CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime"),
    }[int(choice)]
    if inner[0] not in item:
        return f"no {inner[0]}"
    if rng.random() < 0.25:
        if rng.random() < 0.5:
            del item[inner[0]]
        else:
            item[inner[0]].value = []
        return f"drop {inner[0]}"
    target = item[inner[0]].value[0]
    return f"{inner[0]}: " + _garble(target, inner[1], rng)


def _benign(ds: Dataset, rng: np.random.Generator) -> str:
    """A change a valid series may have: the reader must still give a volume."""
    kind = int(rng.integers(5))
    if kind == 0:
        ds.RescaleSlope = f"{rng.uniform(0.001, 10):.4f}"
        ds.RescaleIntercept = f"{rng.uniform(-1000, 1000):.2f}"
        return "valid rescale"
    if kind == 1:
        for keyword in ("TriggerTime", "InstanceNumber", "SliceThickness", "SliceLocation"):
            if keyword in ds:
                del ds[keyword]
        return "optional tags dropped"
    if kind == 2:
        ds.InstanceNumber = int(rng.integers(1, 1000))
        return "renumbered"
    if kind == 3:
        ds.add_new(0x00291010, "OB", rng.bytes(64))  # a private tag
        ds.PatientName = "Ünïcödé^Test"
        return "private tag and unicode name"
    ds.SeriesDescription = "x" * 64
    return "long description"


def _mutate_dataset(ds: Dataset, rng: np.random.Generator) -> str:
    roll = rng.random()
    if roll < 0.25:
        return _benign(ds, rng)
    roll = rng.random()
    if roll < 0.15 and "PixelData" in ds:
        data = ds.PixelData
        cut = int(rng.integers(0, len(data)))
        ds.PixelData = data[:cut] + (b"\x00" if cut % 2 else b"")
        return f"PixelData cut to {cut} bytes"
    if roll < 0.35 and "PerFrameFunctionalGroupsSequence" in ds:
        return _mutate_enhanced(ds, rng)
    if roll < 0.42:
        ds.Rows, ds.Columns = 65535, 65535
        if "PerFrameFunctionalGroupsSequence" in ds:
            ds.NumberOfFrames = 1_000_000 if rng.random() < 0.5 else ds.NumberOfFrames
        return "huge Rows x Columns"
    keyword = list(TAGS)[int(rng.integers(len(TAGS)))]
    return _garble(ds, keyword, rng)


def _try_mutate(ds: Dataset, rng: np.random.Generator) -> str:
    try:
        return _mutate_dataset(ds, rng)
    except Exception as exc:  # e.g. setting a tag an earlier mutation garbled: no new case
        return f"skipped ({type(exc).__name__})"


class EncodedSeries:
    """A series as encoded files, each parsed only when a mutation touches it (parsing and
    re-encoding every file of every case would cost most of the campaign's time)."""

    def __init__(self, encoded: list[bytes]):
        self.encoded = encoded
        self.parsed: dict[int, Dataset] = {}

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> Dataset:
        if i not in self.parsed:
            self.parsed[i] = pydicom.dcmread(io.BytesIO(self.encoded[i]))
        return self.parsed[i]

    def __iter__(self) -> Iterator[Dataset]:
        return (self[i] for i in range(len(self)))

    def write(self, folder: Path) -> None:
        for i, raw in enumerate(self.encoded):
            path = folder / f"IM{i:04d}.dcm"
            if i in self.parsed:
                _write(self.parsed[i], path)
            else:
                path.write_bytes(raw)


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _dataset_mutations(datasets: EncodedSeries, rng: np.random.Generator) -> list[str]:
    done = []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.2:  # the same mutation in every file keeps the series consistent
            state = rng.bit_generator.state
            names = set()
            for ds in datasets:
                rng.bit_generator.state = state
                names.add(_try_mutate(ds, rng))
            done.append("all: " + "/".join(sorted(names)))
        else:
            i = int(rng.integers(len(datasets)))
            done.append(f"#{i}: " + _try_mutate(datasets[i], rng))
    if rng.random() < 0.1 and len(datasets) > 1:  # a duplicated position
        a, b = rng.choice(len(datasets), 2, replace=False)
        if "ImagePositionPatient" in datasets[b]:
            datasets[a][Tag("ImagePositionPatient")] = copy.deepcopy(
                datasets[b][Tag("ImagePositionPatient")]
            )
            done.append(f"#{a} at #{b}'s position")
    return done


def _write(ds: Dataset, path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
        return True
    except Exception:  # a mutation pydicom refuses to write is no test case
        path.unlink(missing_ok=True)
        return False


def patch_transfer_syntax(path: Path, uid: str) -> None:
    """Rewrite the file meta with another transfer syntax; the body stays as written."""
    raw = path.read_bytes()
    group_length = int.from_bytes(raw[140:144], "little")
    body = raw[144 + group_length :]
    meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = uid
    buffer = pydicom.filebase.DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    path.write_bytes(raw[:132] + buffer.getvalue() + body)


def _file_mutations(folder: Path, rng: np.random.Generator) -> list[str]:
    files = sorted(folder.iterdir())
    done = []
    for _ in range(int(rng.integers(0, 2))):
        victim = files[int(rng.integers(len(files)))] if files else folder / "IM9999.dcm"
        kind = int(rng.integers(6))
        if kind == 0 and victim.exists():
            raw = victim.read_bytes()
            cut = int(rng.integers(0, len(raw)))
            victim.write_bytes(raw[:cut])
            done.append(f"{victim.name} truncated to {cut} bytes")
        elif kind == 1:
            (folder / "ZERO.dcm").write_bytes(b"")
            done.append("zero-length ZERO.dcm")
        elif kind == 2:
            junk = [
                rng.bytes(int(rng.integers(1, 4000))),
                b"not dicom at all\n" * 20,
                bytes(128) + b"DICM" + rng.bytes(int(rng.integers(0, 600))),
                bytes(128) + b"DICM",
            ][int(rng.integers(4))]
            (folder / "JUNK.dcm").write_bytes(junk)
            done.append(f"JUNK.dcm ({len(junk)} bytes)")
        elif kind == 3 and victim.exists():
            uid = TRANSFER_SYNTAXES[int(rng.integers(len(TRANSFER_SYNTAXES)))]
            try:
                patch_transfer_syntax(victim, uid)
            except Exception:  # the victim no longer parses: it is a bad file all the same
                pass
            done.append(f"{victim.name} transfer syntax {uid!r}")
        elif kind == 4 and victim.exists():
            shutil.copy(victim, folder / "COPY.dcm")
            done.append(f"copy of {victim.name}")
        elif kind == 5 and victim.exists():
            raw = bytearray(victim.read_bytes())
            for _ in range(int(rng.integers(1, 20))):
                raw[int(rng.integers(132, len(raw)))] = int(rng.integers(256))
            victim.write_bytes(bytes(raw))
            done.append(f"{victim.name} bytes flipped")
    return done


def dicom_cases(
    root: Path, seed: int, n: int, *, keep: bool = False
) -> Iterator[tuple[Path, list[str]]]:
    """``n`` mutated series, each written to its own folder under ``root`` and removed after use
    (unless ``keep``).

    Yields (folder, the mutations applied); one case in twenty is left unmutated.
    """
    rng = np.random.default_rng(seed)
    bases = {e: [encode(ds) for ds in base_series(e, seed)] for e in (False, True)}
    for k in range(n):
        enhanced = bool(rng.random() < 0.3)
        datasets = EncodedSeries(bases[enhanced])
        done = [] if rng.random() < 0.05 else _dataset_mutations(datasets, rng)
        folder = root / f"case{k:05d}{'e' if enhanced else 'c'}"
        folder.mkdir(parents=True)
        datasets.write(folder)
        if done or rng.random() < 0.5:
            done += _file_mutations(folder, rng)
        yield folder, done
        if not keep:
            shutil.rmtree(folder)


def dicom_contract_problem(series: DicomSeries, scratch: Path | None = None) -> str | None:
    """Why a read series breaks the reader's contract; None when it does not."""
    volume = series.volume
    array = volume.array
    if not isinstance(array, np.ndarray) or array.ndim not in (3, 4) or 0 in array.shape:
        return f"shape {getattr(array, 'shape', None)}"
    if array.dtype != np.float32:
        return f"dtype {array.dtype}"
    if not np.all(np.isfinite(array)):
        return "non-finite voxels"
    affine = np.asarray(volume.affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        return f"affine not finite: {affine.tolist()}"
    if not np.allclose(affine[3], [0, 0, 0, 1]) or np.linalg.cond(affine[:3, :3]) > 1e8:
        return f"affine not invertible: {affine.round(4).tolist()}"
    try:
        spacing = volume.spacing
    except Exception as exc:
        return f"spacing raised {type(exc).__name__}"
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        return f"spacing {spacing}"
    frames = 1 if array.ndim == 3 else array.shape[0]
    if series.index.shape != (frames, array.shape[-3], 2):
        return f"index {series.index.shape} for array {array.shape}"
    if scratch is not None:
        try:
            write_volume(
                array if array.ndim == 3 else array[0],
                volume.frame(0) if array.ndim == 4 else volume,
                scratch / "back.nii.gz",
            )
        except Exception as exc:
            return f"write back raised {type(exc).__name__}: {exc}"
    return None


def classify_dicom(
    read: Callable[[], DicomSeries], folder: Path, scratch: Path | None = None
) -> tuple[str, str]:
    """(outcome, detail) of one read of the series in ``folder``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on bad values; the product does not
            series = read()
    except InputError as exc:
        message = str(exc)
        if "\n" in message or folder.name not in message:
            return BROKEN, f"message {message!r}"
        return CLEAN, message
    except Exception as exc:
        return UNCAUGHT, f"{type(exc).__name__}: {exc}"
    problem = dicom_contract_problem(series, scratch)
    return (OK, "") if problem is None else (BROKEN, problem)


def fuzz_dicom(root: Path, seed: int, n: int, *, write_back_every: int = 0):
    """Counts of outcomes and the escapes ``(case, mutations, outcome, detail)`` of ``n`` cases.

    Every third case is read through one of its files instead of its folder.
    """
    counts: dict[str, int] = {OK: 0, CLEAN: 0, UNCAUGHT: 0, BROKEN: 0}
    escapes = []
    for k, (folder, done) in enumerate(dicom_cases(root, seed, n)):
        files = sorted(folder.iterdir())
        target = files[0] if k % 3 == 2 and files else folder
        scratch = root if write_back_every and k % write_back_every == 0 else None
        outcome, detail = classify_dicom(lambda: read_dicom_series(target), folder, scratch)  # noqa: B023
        counts[outcome] += 1
        if outcome in (UNCAUGHT, BROKEN):
            escapes.append((folder.name, done, outcome, detail))
    return counts, escapes
