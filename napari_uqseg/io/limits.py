"""How much memory one input file may claim, and the one-line form of a library's error.

Readers compare what a file *declares* (voxel counts, tensor sizes, zip members) with this limit
before allocating anything, so a 1 KB file that claims 16 GB is refused instead of obeyed.
"""

from __future__ import annotations

import os

#: Default ceiling for the memory one volume or checkpoint may need (bytes): far above a cardiac
#: or atrial MRI (a 30-frame 256x256x10 cine is 79 MB as float32; reading it needs about 4x
#: that), below the RAM of a laptop.
DEFAULT_MAX_BYTES = 4 * 1024**3
#: Environment variable overriding :data:`DEFAULT_MAX_BYTES` (an integer number of bytes).
MAX_BYTES_ENV = "UQSEG_MAX_INPUT_BYTES"


def max_input_bytes() -> int:
    """The memory ceiling for one input (bytes): ``$UQSEG_MAX_INPUT_BYTES`` or 4 GiB."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(float(text))
    except ValueError:
        return DEFAULT_MAX_BYTES
    return value if value > 0 else DEFAULT_MAX_BYTES


def human_bytes(n: int | float) -> str:
    """``1536`` -> ``"1.5 KiB"``: sizes in error messages."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} EiB"  # unreachable; keeps type checkers content


def one_line(exc: BaseException) -> str:
    """A library exception as one line: its message lines joined, or its type name if empty.

    nibabel, zlib and torch put hints on further lines (" - could the file be damaged?"); the
    product's messages are single lines, so the CLI prints one stderr line per failure.
    """
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    text = text.strip("'\"") if isinstance(exc, KeyError) else text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
