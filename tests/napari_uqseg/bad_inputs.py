"""Bad-input corpus for the readers: a seeded NIfTI header mutator, hand-made bad files and the
readers' contract.

Used by ``test_io_fuzz.py`` (a few thousand variants in seconds) and by
``benchmarks/fuzz_inputs.py`` (the measured run). Every call of a reader must end in one of two
ways: a :class:`~napari_uqseg.io.nifti.Volume` that meets the documented contract, or an
:class:`~napari_uqseg.errors.InputError` whose message is one line naming the file. Anything else
is an escape.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.nifti import Volume, read_labels, read_volume, write_volume
from napari_uqseg.labels import NUM_CLASSES

#: Outcomes, in the order of the report's columns.
OK, CLEAN, UNCAUGHT, BROKEN = "ok", "clean error", "uncaught", "contract broken"
#: Values a field-aware mutation writes into a numeric header field.
SPECIAL = (
    0,
    1,
    -1,
    2,
    3,
    4,
    5,
    7,
    8,
    255,
    2**15 - 1,
    -(2**15),
    2**31 - 1,
    -(2**31),
    2**40,
    1e-30,
    1e30,
    1e38,
    -1e38,
    np.inf,
    -np.inf,
    np.nan,
    0.5,
    352,
    540,
    16,
    1536,
    2304,
)

READERS: dict[str, Callable[[Path], Volume]] = {
    "read_volume": read_volume,
    "read_volume(allow_4d=True)": lambda p: read_volume(p, allow_4d=True),
    "read_labels": read_labels,
}


def base_images() -> list[tuple[str, bytes, int]]:
    """(name, file bytes, header size) of small valid NIfTI-1 and NIfTI-2 images.

    The voxels are labels 0..3 stored as int16 with a scale factor of 1, so every reader can read
    the unmutated file (an image, a cine-capable image and a label map).
    """
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, (6, 5, 4)).astype(np.int16)
    affine = np.diag([1.5, 1.25, 8.0, 1.0])
    affine[:3, 3] = (-4.0, 3.0, 10.0)
    images = []
    for klass, hsize in ((nib.Nifti1Image, 348), (nib.Nifti2Image, 540)):
        image = klass(labels, affine)
        image.header.set_xyzt_units("mm", "sec")
        images.append((klass.__name__, image.to_bytes(), hsize))
    return images


def _field_offsets(header: nib.Nifti1Header) -> list[tuple[int, np.dtype, int]]:
    """(byte offset, scalar dtype, count) of every numeric header field."""
    dt = header.structarr.dtype
    fields = []
    for name in dt.names:
        sub, offset = dt.fields[name][:2]
        base = sub.base if sub.subdtype is not None else sub
        if base.kind in "iuf":
            count = int(np.prod(sub.shape)) if sub.shape else 1
            fields.append((offset, base, count))
    return fields


def mutate(raw: bytes, hsize: int, rng: np.random.Generator) -> bytes:
    """A copy of ``raw`` with its first ``hsize`` header bytes mutated.

    Half the variants flip 1-8 random bytes; the other half write a special value (0, -1, NaN,
    Inf, 2**40, ...) into 1-3 numeric fields (dims, datatype, vox_offset, pixdim, scaling, units,
    qform/sform), which reaches the interesting paths far more often than blind flips.
    """
    data = bytearray(raw)
    if rng.random() < 0.5:
        for pos in rng.integers(0, hsize, rng.integers(1, 9)):
            data[int(pos)] = int(rng.integers(0, 256))
        return bytes(data)
    header = nib.Nifti2Header() if hsize == 540 else nib.Nifti1Header()
    fields = _field_offsets(header)
    order = "<" if int.from_bytes(raw[:4], "little") == hsize else ">"
    for index in rng.integers(0, len(fields), rng.integers(1, 4)):
        offset, dtype, count = fields[int(index)]
        element = int(rng.integers(0, count))
        value = SPECIAL[int(rng.integers(0, len(SPECIAL)))]
        dtype = dtype.newbyteorder(order)
        with np.errstate(all="ignore"):
            if dtype.kind in "iu":
                low, high = _int_range(dtype)
                value = max(low, min(high, int(np.nan_to_num(value))))
            encoded = np.array([value], dtype=dtype).tobytes()
        start = offset + element * dtype.itemsize
        data[start : start + dtype.itemsize] = encoded
    return bytes(data)


def _int_range(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


@dataclass(frozen=True)
class Variant:
    """One fuzzed file: its bytes and the name it is written under (``.nii`` or ``.nii.gz``)."""

    name: str
    data: bytes


def header_variants(seed: int, n: int) -> Iterator[Variant]:
    """``n`` mutated variants of the base images, alternating NIfTI-1/2 and .nii/.nii.gz."""
    rng = np.random.default_rng(seed)
    bases = base_images()
    for i in range(n):
        kind, raw, hsize = bases[i % len(bases)]
        mutated = mutate(raw, hsize, rng)
        if (i // len(bases)) % 2:
            yield Variant(f"v{i:05d}_{kind}.nii.gz", gzip.compress(mutated, compresslevel=1))
        else:
            yield Variant(f"v{i:05d}_{kind}.nii", mutated)


def contract_problem(volume: Volume, reader: str, scratch: Path | None = None) -> str | None:
    """Why a returned volume breaks the readers' documented contract; None when it does not.

    With ``scratch`` the volume is also written back (as ``predict`` would write its results), so
    a geometry that reads but cannot be written counts as broken.
    """
    array = volume.array
    ndims = (3, 4) if "allow_4d" in reader else (3,)
    labels = reader == "read_labels"
    if not isinstance(array, np.ndarray) or array.ndim not in ndims or 0 in array.shape:
        return f"shape {getattr(array, 'shape', None)}"
    if array.dtype != (np.uint8 if labels else np.float32):
        return f"dtype {array.dtype}"
    if labels and array.size and int(array.max()) >= NUM_CLASSES:
        return f"label {int(array.max())}"
    if not labels and not np.all(np.isfinite(array)):
        return "non-finite voxels"
    affine = np.asarray(volume.affine)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        return "affine"
    try:
        spacing = volume.spacing
        _ = (volume.spacing_known, volume.spatial_unit, volume.name)
    except Exception as exc:  # a property that raises is exactly what the contract forbids
        return f"property raised {type(exc).__name__}"
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        return f"spacing {spacing}"
    if scratch is not None:
        try:
            write_volume(array, volume, scratch / "back.nii.gz")
        except Exception as exc:
            return f"write back raised {type(exc).__name__}: {exc}"
    return None


def classify(call: Callable[[], Volume], path: Path, reader: str, scratch: Path | None = None):
    """(outcome, detail) of one reader call on ``path``."""
    try:
        volume = call()
    except InputError as exc:
        message = str(exc)
        if "\n" in message or path.name not in message:
            return BROKEN, f"message {message!r}"
        return CLEAN, message
    except Exception as exc:
        return UNCAUGHT, f"{type(exc).__name__}: {exc}"
    problem = contract_problem(volume, reader, scratch)
    return (OK, "") if problem is None else (BROKEN, problem)


def write_variant(folder: Path, variant: Variant) -> Path:
    path = folder / variant.name
    path.write_bytes(variant.data)
    return path


def nifti_file(folder: Path, name: str, edit=None, data=None, klass=nib.Nifti1Image) -> Path:
    """A small NIfTI written as ``folder/name`` with its header changed by ``edit(header)``."""
    image = klass(np.zeros((4, 4, 3), np.float32) if data is None else data, np.eye(4))
    raw = bytearray(image.to_bytes())
    if edit is not None:
        header = klass.header_class(bytes(raw[: image.header.sizeof_hdr]), check=False)
        edit(header)
        raw[: header.sizeof_hdr] = header.binaryblock
    path = folder / name
    path.write_bytes(gzip.compress(bytes(raw)) if name.endswith(".gz") else bytes(raw))
    return path


def set_fields(**fields):
    """An ``edit`` setting header fields (``dim`` as a prefix list, ``pixdimN`` one entry)."""

    def edit(header):
        for key, value in fields.items():
            if key == "dim":
                header["dim"][: len(value)] = value
            elif key.startswith("pixdim"):
                header["pixdim"][int(key[-1])] = value
            else:
                header[key] = value

    return edit


def hand_made_files(folder: Path) -> dict[str, Path]:
    """name -> a hand-made bad (or awkward but valid) file, the kinds the issue lists."""
    folder.mkdir(parents=True, exist_ok=True)
    good = nib.Nifti1Image(np.random.default_rng(1).random((8, 7, 3), np.float32), np.eye(4))
    raw = good.to_bytes()
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        files[name] = folder / name

    def edited(name: str, data=None, klass=nib.Nifti1Image, **fields) -> None:
        files[name] = nifti_file(folder, name, set_fields(**fields), data, klass)

    put("empty.nii", b"")
    put("empty.nii.gz", gzip.compress(b""))
    put("text.nii", b"not an image\n" * 40)
    put("random.nii.gz", np.random.default_rng(2).bytes(2000))
    put("gzip_garbage.nii.gz", b"\x1f\x8b" + np.random.default_rng(3).bytes(500))
    for cut in (100, 348, 352, 600):
        put(f"cut_{cut}.nii", raw[:cut])
        put(f"cut_{cut}.nii.gz", gzip.compress(raw[:cut]))
    put("gzip_cut.nii.gz", gzip.compress(raw)[:-40])
    put("pair_magic.nii", raw[:344] + b"ni1\x00" + raw[348:])
    put("mgh.nii.gz", gzip.compress(b"\x00\x00\x00\x01" + bytes(400)))
    edited("zero_dim.nii", dim=[3, 0, 7, 3])
    edited("zero_dim.nii.gz", dim=[3, 8, 0, 3])
    edited("one_axis.nii", dim=[1, 168])
    edited("two_axes.nii", dim=[2, 56, 3])
    edited("five_axes.nii", dim=[5, 8, 7, 3, 1, 1])
    edited("negative_dim.nii", dim=[3, -8, 7, 3])
    edited("dim0_9.nii", dim=[9, 8, 7, 3])
    edited("huge_16gb.nii.gz", dim=[3, 2000, 2000, 1000])
    edited("huge_2e40_nifti2.nii", klass=nib.Nifti2Image, dim=[3, 2**40, 2**40, 1])
    edited("offset_0.nii", vox_offset=0)
    edited("offset_100.nii", vox_offset=100)
    edited("offset_negative.nii", vox_offset=-1000)
    edited("offset_1e38.nii", vox_offset=1e38)
    edited("offset_inf.nii", vox_offset=np.inf)
    edited("offset_nan.nii.gz", vox_offset=np.nan)
    edited("pixdim_nan.nii", pixdim1=np.nan)
    edited("pixdim_inf.nii.gz", pixdim3=np.inf)
    edited("pixdim_1e30.nii", pixdim2=1e30)
    edited("pixdim_zero.nii", pixdim1=0.0, pixdim2=0.0, pixdim3=0.0)  # no spacing: valid
    edited("inter_nan.nii", scl_slope=1.0, scl_inter=np.nan)
    edited("inter_inf.nii", scl_slope=2.0, scl_inter=np.inf)
    edited("slope_1e38.nii", scl_slope=1e38, scl_inter=0.0)
    edited("datatype_unknown.nii", datatype=999)
    edited("complex64.nii", datatype=32, bitpix=64)
    edited("rgb24.nii", datatype=128, bitpix=24)
    edited("rgba32.nii", datatype=2304, bitpix=32)
    edited("float128.nii", datatype=1536, bitpix=128)
    edited("units_unknown.nii", xyzt_units=5)  # valid, unit unknown
    edited("units_meter.nii", xyzt_units=1)  # valid: 1 m voxels are refused as implausible?
    edited("qform_singular.nii", qform_code=1, sform_code=0, pixdim1=0.0)
    edited("sform_nan.nii", sform_code=1, srow_x=np.array([np.nan, 0, 0, 0]))
    edited("sform_zero.nii", sform_code=2, srow_x=np.zeros(4))
    nan = np.zeros((4, 4, 2), np.float32)
    nan[1, 1, 1] = np.nan
    edited("nan_voxel.nii", data=nan)
    edited("inf_voxel.nii.gz", data=np.full((4, 4, 2), np.inf, np.float32))
    edited("labels_5.nii", data=np.full((4, 4, 2), 5, np.uint8))
    edited("labels_negative.nii", data=np.full((4, 4, 2), -1, np.int16))
    edited("labels_half.nii", data=np.full((4, 4, 2), 0.5, np.float32))
    int64 = nib.Nifti1Image(np.ones((4, 4, 2), np.int64), np.eye(4), dtype=np.int64)
    put("labels_int64.nii", int64.to_bytes())  # valid
    edited("bool_like_uint8.nii", data=np.ones((4, 4, 2), np.uint8))  # valid
    big_endian = nib.Nifti1Image(np.arange(32, dtype=">i2").reshape(4, 4, 2) % 4, np.eye(4))
    put("big_endian.nii", big_endian.to_bytes())  # valid
    cine = nib.Nifti1Image(np.random.default_rng(4).random((4, 4, 2, 3), np.float32), np.eye(4))
    put("cine_4d.nii.gz", gzip.compress(cine.to_bytes()))  # valid with allow_4d only
    with_ext = nib.Nifti1Image(np.zeros((4, 4, 2), np.uint8), np.eye(4))
    with_ext.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"x" * 40))
    put("extension.nii", with_ext.to_bytes())  # valid
    bad_ext = bytearray(with_ext.to_bytes())
    bad_ext[352:356] = (10**9).to_bytes(4, "little")  # esize far beyond the file
    put("extension_huge_esize.nii", bytes(bad_ext))
    return files
