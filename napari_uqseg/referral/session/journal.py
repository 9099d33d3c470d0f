"""The append-only, checksummed journal of a recorded session (atomic replacement of whole files
is :mod:`napari_uqseg.io.atomic`).

A session folder holds ``snapshot.npz`` (the whole state, rewritten rarely and atomically) and
``journal.bin`` (one record per event since that snapshot). Per correction we append one record and
flush it, so an autosave costs O(voxels changed) bytes, never O(volume) or O(whole log).

Journal layout (little-endian): a file header ``b"UQSJ" + u64 generation``, then records
``b"UQR1" + u32 payload_length + u32 crc32(payload) + payload``. A payload is ``u32 json_length +
JSON + raw array bytes`` (dtypes and shapes in the JSON), so nothing on disk is ever unpickled. A
record cut short by a crash, or one whose checksum fails, ends the journal: everything before it is
the last complete state. The generation ties a journal to the snapshot it extends: after a
compaction writes snapshot ``g + 1``, a crash before the journal is replaced leaves journal ``g`` on
disk and it is ignored, not replayed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.errors import InputError
from napari_uqseg.io.atomic import atomic_write

FILE_MAGIC = b"UQSJ"
RECORD_MAGIC = b"UQR1"
_FILE_HEADER = struct.Struct("<4sQ")
_RECORD_HEADER = struct.Struct("<4sII")
_JSON_LEN = struct.Struct("<I")


def fingerprint(arr: np.ndarray) -> dict[str, Any]:
    """Shape, dtype and a BLAKE2b digest of an array's bytes: enough to refuse mismatched inputs."""
    arr = np.ascontiguousarray(arr)
    digest = hashlib.blake2b(memoryview(arr).cast("B"), digest_size=16).hexdigest()
    return {"shape": list(arr.shape), "dtype": arr.dtype.str, "blake2b": digest}


def encode_record(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """One self-delimiting, checksummed record: a JSON header and named 1-D arrays."""
    specs = []
    blobs = []
    for name, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        specs.append([name, arr.dtype.str, list(arr.shape)])
        blobs.append(arr.tobytes())
    meta = json.dumps({"h": header, "a": specs}, separators=(",", ":")).encode()
    payload = b"".join([_JSON_LEN.pack(len(meta)), meta, *blobs])
    return _RECORD_HEADER.pack(RECORD_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    (meta_len,) = _JSON_LEN.unpack_from(payload)
    meta = json.loads(payload[_JSON_LEN.size : _JSON_LEN.size + meta_len])
    offset = _JSON_LEN.size + meta_len
    arrays = {}
    for name, dtype_str, shape in meta["a"]:
        dtype = np.dtype(dtype_str)
        if dtype.hasobject:
            raise InputError(f"journal array {name!r} has object dtype {dtype_str}")
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(payload, dtype, count, offset).reshape(shape).copy()
        offset += count * dtype.itemsize
    return meta["h"], arrays


def read_journal(path: Path, generation: int) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Every complete record of the journal at ``path`` that extends snapshot ``generation``, in
    order.

    A missing file, or one for another generation, holds no records. Reading stops at the first torn
    or corrupt record (a crash mid-append), which is how a killed save reloads its last complete
    state.
    """
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    if len(data) < _FILE_HEADER.size:
        return []
    magic, gen = _FILE_HEADER.unpack_from(data)
    if magic != FILE_MAGIC:
        raise InputError(f"{path} is not a napari-uqseg session journal")
    if gen != generation:
        return []
    records = []
    pos = _FILE_HEADER.size
    while pos + _RECORD_HEADER.size <= len(data):
        magic, length, crc = _RECORD_HEADER.unpack_from(data, pos)
        start = pos + _RECORD_HEADER.size
        payload = data[start : start + length]
        if magic != RECORD_MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(_decode_payload(payload))
        except (ValueError, KeyError, TypeError):
            break
        pos = start + length
    return records


class Journal:
    """An append-only journal for snapshot ``generation``; starts empty (atomically replaced).

    Each append opens, writes, flushes and closes the file: no handle stays open between strokes,
    so a session dropped without ``close()`` leaks nothing. ``durable=True`` also fsyncs every
    record (survives power loss); ``False`` only hands it to the OS (survives a killed process).
    """

    def __init__(self, path: Path, generation: int, *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        atomic_write(self.path, lambda fh: fh.write(_FILE_HEADER.pack(FILE_MAGIC, generation)))
        self.nbytes = _FILE_HEADER.size
        self.closed = False

    def append(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
        """Append one record and flush it (fsync when durable); returns the bytes written."""
        if self.closed:
            raise InputError(f"journal {self.path} is closed")
        record = encode_record(header, arrays)
        try:
            with open(self.path, "ab") as fh:
                fh.write(record)
                fh.flush()
                if self.durable:
                    os.fsync(fh.fileno())
        except OSError:
            # A full disk can take part of the record: cut back to the last complete one, so no
            # torn record ever stands in front of records appended once space is back.
            self._cut_back()
            raise
        self.nbytes += len(record)
        return len(record)

    def _cut_back(self) -> None:
        try:
            os.truncate(self.path, self.nbytes)
        except OSError:
            self.closed = True  # cannot even truncate: refuse appends (the store re-snapshots)

    def close(self) -> None:
        """Refuse further appends."""
        self.closed = True
