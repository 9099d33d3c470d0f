"""Synthetic short-axis cardiac cine phantom with exact labels, for demos, sample data and tests.

The anatomy is analytic and in millimetres, laid out like the ACDC volumes shown with
``imshow(volume[z])`` on (Z, Y, X) arrays: slices run base (z = 0) to apex, the LV blood pool sits
near the image centre, the RV crescent hugs it on the image's left (slightly below), lungs lie up
and right, the liver below, subcutaneous fat and a muscle layer line the body outline. ED and ES
share the anatomy; at ES the base descends, the LV cavity narrows (ejection fraction about 0.55-0.65
by voxel counts) and the wall thickens with the myocardial volume conserved. A whole cycle
(:func:`make_phantom_cine`) moves every one of these continuously from ED to ES and back.

Label rule (what "exact" means here): each slice is the cross-section of the analytic shapes at the
slice centre. Every in-plane voxel is point-sampled on a regular 4 x 4 sub-grid; its label is the
class holding most of the 16 sub-samples, ties going to the larger label (LV > Myo > RV >
background). The image voxel is the mean tissue intensity of the same sub-samples, so edges carry
partial volume while labels stay crisp. As in ACDC, papillary muscles are labelled LV and the thin
RV free wall and the pericardial fat are background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_uqseg.errors import InputError

__all__ = ["Phantom", "make_cine_pair", "make_phantom", "make_phantom_cine"]

_PHASES = ("ED", "ES")
_SUPER = 4  # sub-samples per voxel edge used for labels and partial volume
# Tissue intensities relative to LV blood (bright-blood SSFP cine, as in ACDC).
_AIR, _LUNG, _FAT, _MUSCLE, _SOFT, _LIVER = 0.0, 0.05, 1.0, 0.2, 0.24, 0.3
_MYO, _LV_BLOOD, _RV_BLOOD, _AORTA = 0.28, 1.0, 0.9, 0.85
_BLOB_VALUES = (0.08, 0.15, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Phantom:
    """One cardiac phase of the phantom.

    Attributes:
        image: (Z, Y, X) float32 in [0, 1], min-max scaled like the shared ACDC copy.
        labels: (Z, Y, X) uint8, 0 background, 1 RV, 2 Myo, 3 LV (see the module's label rule).
        spacing: (z, y, x) voxel size in mm.
        phase: "ED" or "ES".
    """

    image: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    phase: str

    @property
    def affine(self) -> np.ndarray:
        """4 x 4 voxel-to-mm affine for nibabel's (X, Y, Z) axis order: diag(x, y, z spacing, 1)."""
        dz, dy, dx = self.spacing
        return np.diag([dx, dy, dz, 1.0])


@dataclass(frozen=True)
class _Anatomy:
    """Phase-independent random draws (mm, radians); ED geometry, ES derived from it."""

    lv_yx: tuple[float, float]  # LV centre relative to the image centre
    drift_yx: tuple[float, float]  # LV centre shift per mm along the long axis
    r_endo: float  # ED endocardial radius at the widest level
    wall: float  # ED myocardial thickness
    length: float  # ED base-to-endocardial-apex length
    es_area: float  # ES/ED cavity cross-section ratio
    descent: float  # base descent towards the apex at ES
    ellipticity: float
    rotation: float
    rv_angle: float  # direction from LV centre to RV, image coordinates (y down)
    rv_skew: float  # RV shift along the septum, in LV epicardial radii
    rv_span: float  # angle between the RV direction and each RV insertion point (horn)
    rv_width: float  # ED radial RV cavity depth beyond the LV epicardium at the base
    rv_extent: float  # fraction of the LV length the RV reaches
    pap_angles: tuple[float, float]
    texture: np.ndarray  # (8, 4) random sinusoids: ky, kx, phase, amplitude
    blobs: tuple[tuple[float, float, float, float], ...]  # (y, x) from the LV, radius, intensity
    body_angle: float


def _draw_anatomy(rng: np.random.Generator) -> _Anatomy:
    u = rng.uniform
    rv_angle = np.deg2rad(150.0 + u(-15, 15))
    base_pap = rv_angle + np.pi
    wavelengths = u(15.0, 60.0, 8)
    directions = u(0, np.pi, 8)
    texture = np.stack(
        [
            2 * np.pi / wavelengths * np.sin(directions),
            2 * np.pi / wavelengths * np.cos(directions),
            u(0, 2 * np.pi, 8),
            u(0.01, 0.03, 8),
        ],
        axis=1,
    )
    # Blobs 75-150 mm from the LV centre, clear of the heart.
    angles, dists = u(0, 2 * np.pi, 16), u(75.0, 150.0, 16)
    blobs = tuple(
        (
            float(d * np.sin(t)),
            float(d * np.cos(t)),
            float(u(2.5, 8.0)),
            float(rng.choice(_BLOB_VALUES)),
        )
        for t, d in zip(angles, dists, strict=True)
    )
    return _Anatomy(
        lv_yx=(u(-8, 4), u(0, 12)),
        drift_yx=(u(-0.08, 0.08), u(-0.08, 0.08)),
        r_endo=u(25.5, 29.0),
        wall=u(8.5, 10.0),
        length=u(88.0, 96.0),
        es_area=u(0.37, 0.45),
        descent=u(6.0, 9.0),
        ellipticity=u(0.0, 0.06),
        rotation=u(0, np.pi),
        rv_angle=float(rv_angle),
        rv_skew=u(0.0, 0.15),
        rv_span=np.deg2rad(u(70.0, 85.0)),
        rv_width=u(28.0, 34.0),
        rv_extent=u(0.85, 0.95),
        pap_angles=(float(base_pap - u(0.6, 0.9)), float(base_pap + u(0.6, 0.9))),
        texture=texture,
        blobs=blobs,
        body_angle=np.deg2rad(u(-25, -10)),
    )


def _inside(y, x, cy, cx, ry, rx, angle=0.0):
    """Boolean mask of points (y, x) inside a rotated ellipse; all in mm."""
    c, s = np.cos(angle), np.sin(angle)
    dy, dx = y - cy, x - cx
    return ((c * dy - s * dx) / ry) ** 2 + ((s * dy + c * dx) / rx) ** 2 <= 1.0


def _profile(s: np.ndarray | float, length: float, widest: float = 18.0) -> np.ndarray:
    """Relative radius along the long axis: 1 at ``widest`` mm below the base, 0 at ``length``.

    A half-ellipsoid towards the apex; above the widest level the LV tapers gently (no atria).
    """
    s = np.asarray(s, dtype=float)
    apical = np.sqrt(np.clip(1.0 - ((s - widest) / (length - widest)) ** 2, 0.0, 1.0))
    basal = 1.0 - 0.1 * ((widest - s) / widest) ** 2
    return np.where(s > widest, apical, np.clip(basal, 0.0, 1.0))


def _background(y, x, a: _Anatomy) -> np.ndarray:
    """Intensity of the non-cardiac anatomy at points (y, x) in mm from the image centre."""
    y, x = np.broadcast_arrays(y, x)
    out = np.full(y.shape, _AIR, dtype=np.float32)
    ang = a.body_angle
    for shrink, value in ((0.0, _FAT), (14.0, _MUSCLE), (24.0, _SOFT)):
        out[_inside(y, x, 20.0, 0.0, 165.0 - shrink, 122.0 - shrink, ang)] = value
    ly, lx = a.lv_yx
    out[_inside(y, x, ly - 55.0, lx + 55.0, 85.0, 50.0, 0.5)] = _LUNG
    out[_inside(y, x, ly + 45.0, lx + 95.0, 45.0, 26.0, -0.4)] = _LUNG
    out[_inside(y, x, ly + 115.0, lx - 30.0, 70.0, 125.0, ang)] = _LIVER
    out[_inside(y, x, ly + 38.0, lx + 62.0, 11.0, 11.0)] = _AORTA
    # Vessels, bowel and the like: small blobs that keep the heart from being the only structure.
    inside_body = out > _AIR
    for by, bx, r, value in a.blobs:
        out[inside_body & _inside(y, x, ly + by, lx + bx, r, 0.8 * r)] = value
    ky, kx, phase, amp = a.texture.T
    wobble = 1.0 + np.sum(
        amp[:, None] * np.sin(ky[:, None] * y.ravel() + kx[:, None] * x.ravel() + phase[:, None]),
        axis=0,
    ).reshape(out.shape)
    return (out * wobble).astype(np.float32)


def _heart(y, x, a: _Anatomy, s: float, c: float, lv_yx: tuple[float, float]):
    """Class (uint8) and intensity (float32, NaN outside the heart) at points (y, x) of one slice.

    ``s`` is the slice centre's distance in mm below the ED base plane; ``c`` the contraction,
    0 at ED and 1 at ES (both computed exactly as the two phases always were).
    """
    es = c == 1.0
    scale = np.sqrt(a.es_area) if es else 1.0 + c * (np.sqrt(a.es_area) - 1.0)
    descent = a.descent if es else c * a.descent
    length = a.length - descent
    local_s = s - descent
    r_endo = a.r_endo * scale * _profile(local_s, length)
    apex_wall = 0.8 * a.wall
    # ES wall from myocardial volume conservation between half-ellipsoids (endo, epi).
    myo_volume = (a.r_endo + a.wall) ** 2 * (a.length + apex_wall) - a.r_endo**2 * a.length
    if c > 0:
        apex_wall *= 1.25 if es else 1.0 + 0.25 * c
        r_epi_max = np.sqrt((myo_volume + (a.r_endo * scale) ** 2 * length) / (length + apex_wall))
    else:
        r_epi_max = a.r_endo + a.wall
    r_epi = r_epi_max * _profile(local_s, length + apex_wall)

    dy, dx = y - lv_yx[0], x - lv_yx[1]
    rho = np.hypot(dy, dx)
    phi = np.arctan2(dy, dx)
    shape = 1.0 + a.ellipticity * np.cos(2.0 * (phi - a.rotation))
    lv = rho < r_endo * shape
    myo = (rho < r_epi * shape) & ~lv

    cls = np.zeros(rho.shape, dtype=np.uint8)
    val = np.full(rho.shape, np.nan, dtype=np.float32)
    # RV: an ellipse straddling the septum minus the LV, wrapped by a thin dark free wall.
    rv_depth = (
        a.rv_width
        * (0.6 if es else 1.0 - 0.4 * c)
        * np.sqrt(max(1.0 - (s / (a.rv_extent * a.length)) ** 2, 0.0))
    )
    r_mean = float(r_epi)
    if rv_depth > 1.0 and r_mean > 1.0:
        u = dy * np.sin(a.rv_angle) + dx * np.cos(a.rv_angle)  # towards the RV
        # Shifted along the septum so the RV is deeper inferiorly (image bottom), as in ACDC.
        v = -dy * np.cos(a.rv_angle) + dx * np.sin(a.rv_angle) - a.rv_skew * r_mean
        # Ellipse reaching rv_depth beyond the epicardium and meeting it at +-rv_span (the horns).
        centre = 0.5 * r_mean
        half_radial = r_mean - centre + rv_depth
        horn = (r_mean * np.cos(a.rv_span) - centre) / half_radial
        half_tangential = r_mean * np.sin(a.rv_span) / np.sqrt(1.0 - horn**2)
        outside_lv = rho >= r_epi * shape
        # Fat in the interventricular grooves, just outside both insertion points.
        for side in (-1.0, 1.0):
            groove = a.rv_angle + side * (a.rv_span + 0.3)
            gy, gx = (r_mean + 3.0) * np.sin(groove), (r_mean + 3.0) * np.cos(groove)
            fat = outside_lv & (np.hypot(dy - gy, dx - gx) < 4.0)
            val[fat] = 0.85 * _FAT
        # Pericardial fat over the free wall (background, as in ACDC), the wall, the cavity.
        for grow, label, value in ((5.5, 0, 0.85 * _FAT), (3.0, 0, _MYO), (0.0, 1, _RV_BLOOD)):
            part = outside_lv & (
                ((u - centre) / (half_radial + grow)) ** 2 + (v / (half_tangential + grow)) ** 2
                <= 1
            )
            if value > _RV_BLOOD:
                part &= u > centre + 0.4 * half_radial
            cls[part], val[part] = label, value
    cls[myo], val[myo] = 2, _MYO
    cls[lv], val[lv] = 3, _LV_BLOOD
    if 0.3 * length < local_s < 0.85 * length:  # papillary muscles: dark, but labelled LV
        pap_r = 3.5 if es else 3.0 + 0.5 * c
        for angle in a.pap_angles:
            off = r_endo - pap_r - 0.5
            pap = lv & (np.hypot(dy - off * np.sin(angle), dx - off * np.cos(angle)) < pap_r)
            val[pap] = _MYO
    return cls, val


def _check(seed, phase, shape, spacing, noise, bias, blur) -> tuple[tuple, tuple]:
    """Validated (shape, spacing) as tuples of int and float; InputError naming any bad value."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if phase not in _PHASES:
        raise InputError(f"phase must be 'ED' or 'ES', got {phase!r}")
    try:
        shape = tuple(int(n) for n in shape)
        spacing = tuple(float(d) for d in spacing)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"shape and spacing must be sequences of numbers: {shape!r}, {spacing!r}"
        ) from exc
    if len(shape) != 3 or shape[0] < 1 or min(shape[1:]) < 16:
        raise InputError(f"shape must be (Z, Y, X) with Z >= 1 and Y, X >= 16, got {shape!r}")
    if len(spacing) != 3 or not all(np.isfinite(d) and d > 0 for d in spacing):
        raise InputError(f"spacing must be three positive (z, y, x) sizes in mm, got {spacing!r}")
    for name, value, top in (("noise", noise, 1.0), ("bias", bias, 1.0), ("blur", blur, 5.0)):
        if not (isinstance(value, int | float | np.number) and 0.0 <= value <= top):
            raise InputError(f"{name} must be a number in [0, {top}], got {value!r}")
    return shape, spacing


def make_phantom(
    *,
    seed: int = 0,
    phase: str = "ED",
    shape: tuple[int, int, int] = (10, 192, 192),
    spacing: tuple[float, float, float] = (10.0, 1.5, 1.5),
    noise: float = 0.04,
    bias: float = 0.3,
    blur: float = 0.6,
    contraction: float | None = None,
) -> Phantom:
    """Render one phase of the phantom.

    The stack is centred on the mid-ventricle, so the default 10 slices of 10 mm cover base to apex.
    ``seed`` fixes the anatomy (shared by ED and ES) and the noise; ``noise`` is the Rician noise
    standard deviation relative to LV blood, ``bias`` the peak relative amplitude of the smooth
    multiplicative coil field, ``blur`` the in-plane Gaussian sigma in voxels. ``contraction``
    (0 = ED .. 1 = ES) renders a frame between the two phases instead of ``phase``'s geometry,
    with its own noise.

    Returns:
        A :class:`Phantom` with (Z, Y, X) ``image`` (float32, [0, 1]) and ``labels`` (uint8).
    """
    shape, spacing = _check(seed, phase, shape, spacing, noise, bias, blur)
    anatomy = _draw_anatomy(np.random.default_rng([seed, 0]))
    if contraction is None:
        c, stream = (0.0 if phase == "ED" else 1.0), [1 + _PHASES.index(phase)]
    elif isinstance(contraction, int | float | np.number) and 0.0 <= contraction <= 1.0:
        c, stream = float(contraction), [3, round(float(contraction) * 1e6)]
    else:
        raise InputError(f"contraction must be a number in [0, 1], got {contraction!r}")
    rng = np.random.default_rng([seed, *stream])
    nz, ny, nx = shape
    dz, dy, dx = spacing
    ys = (np.arange(ny) - (ny - 1) / 2) * dy
    xs = (np.arange(nx) - (nx - 1) / 2) * dx
    sub = (np.arange(_SUPER) + 0.5) / _SUPER - 0.5
    image = np.empty(shape, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    mid = 0.5 * anatomy.length
    # Only the heart needs sub-sampling. It reaches at most ~79 mm from the LV axis (epicardium
    # 39 + RV 34 + fat 5.5) plus 4 mm of drift, so a fixed box of half-width 90 mm holds it on every
    # slice, and the surrounding anatomy (the same on every slice) is rendered once.
    cy, cx = anatomy.lv_yx
    y0, y1 = np.searchsorted(ys, [cy - 90.0, cy + 90.0])
    x0, x1 = np.searchsorted(xs, [cx - 90.0, cx + 90.0])
    by, bx = y1 - y0, x1 - x0
    sy = (ys[y0:y1, None] + sub[None, :] * dy).reshape(-1, 1).astype(np.float32)
    sx = (xs[x0:x1, None] + sub[None, :] * dx).reshape(1, -1).astype(np.float32)
    image[:] = _background(ys[:, None], xs[None, :], anatomy)
    background = _background(sy, sx, anatomy)
    classes = np.arange(4)[::-1, None, None, None, None]
    for z in range(nz if by > 0 and bx > 0 else 0):
        s = mid + (z - (nz - 1) / 2) * dz
        lv_yx = (cy + anatomy.drift_yx[0] * (s - mid), cx + anatomy.drift_yx[1] * (s - mid))
        cls, val = _heart(sy, sx, anatomy, s, c, lv_yx)
        val = np.where(np.isnan(val), background, val)
        image[z, y0:y1, x0:x1] = val.reshape(by, _SUPER, bx, _SUPER).mean(axis=(1, 3))
        counts = (cls.reshape(by, _SUPER, bx, _SUPER)[None] == classes).sum(axis=(2, 4))
        labels[z, y0:y1, x0:x1] = 3 - np.argmax(counts, axis=0)  # ties -> larger label

    if blur > 0:
        image = ndimage.gaussian_filter(image, sigma=(0.0, blur, blur), mode="nearest")
    if bias > 0:
        # Surface-coil sensitivity: a smooth random tilt, brightest towards one side of the chest.
        gz, gy, gx = np.meshgrid(
            np.linspace(-1, 1, nz), np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij"
        )
        c = rng.normal(size=5)
        field = c[0] * gy + c[1] * gx + 0.5 * c[2] * gy * gx + 0.5 * c[3] * gy**2 + 0.2 * c[4] * gz
        image = image * np.exp(bias * field / max(np.abs(field).max(), 1e-6)).astype(np.float32)
    if noise > 0:
        real = image + rng.normal(0.0, noise, shape).astype(np.float32)
        imag = rng.normal(0.0, noise, shape).astype(np.float32)
        image = np.hypot(real, imag)
    lo, hi = float(image.min()), float(image.max())
    image = ((image - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    return Phantom(image=image, labels=labels, spacing=spacing, phase=phase)


def make_cine_pair(*, seed: int = 0, **kwargs) -> dict[str, Phantom]:
    """ED and ES phantoms of the same anatomy (same ``seed``); ES has the contracted ventricles.

    Keyword arguments are those of :func:`make_phantom` except ``phase``.
    """
    if "phase" in kwargs:
        raise InputError(f"make_cine_pair makes both phases; do not pass phase={kwargs['phase']!r}")
    return {phase: make_phantom(seed=seed, phase=phase, **kwargs) for phase in _PHASES}


def make_phantom_cine(
    *, seed: int = 0, frames: int = 20, es_fraction: float = 0.35, **kwargs
) -> list[Phantom]:
    """A whole cycle of ``frames`` phases of one anatomy: frame 0 is ED, the contraction rises
    smoothly (half a cosine) to ES at frame ``round(es_fraction * frames)`` and relaxes back.

    The ED and ES frames are exactly :func:`make_cine_pair`'s; keyword arguments are those of
    :func:`make_phantom` except ``phase`` and ``contraction``.
    """
    if "phase" in kwargs or "contraction" in kwargs:
        raise InputError("make_phantom_cine sets each frame's phase and contraction itself")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 3:
        raise InputError(f"a cycle needs 3 or more frames, got {frames!r}")
    es = round(es_fraction * frames)
    if not 0 < es < frames:
        raise InputError(f"es_fraction {es_fraction!r} puts ES outside frames 1..{frames - 1}")
    out = []
    for t in range(frames):
        if t in (0, es):
            out.append(make_phantom(seed=seed, phase="ED" if t == 0 else "ES", **kwargs))
            continue
        if t < es:
            c = 0.5 * (1.0 - np.cos(np.pi * t / es))
        else:
            c = 0.5 * (1.0 + np.cos(np.pi * (t - es) / (frames - es)))
        out.append(make_phantom(seed=seed, contraction=float(c), **kwargs))
    return out
