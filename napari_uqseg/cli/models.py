"""``uqseg models``: the bundled models by name, with what each expects and a line about it.

Each row comes from the checkpoint's own description (architecture, input channels or phases,
spatial dimensions, classes, in-plane spacing, the dropout rate MC samples are drawn at) and the
first paragraph of its model card (``napari_uqseg/models/bundled/<name>.md``); ``--json`` prints
the same as JSON.
"""

from __future__ import annotations

import argparse
import json

from napari_uqseg.models.tta import TTA_SETS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the bundled models", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def rows() -> list[dict]:
    """One dict per bundled model (see the module docstring)."""
    from napari_uqseg.models.bundled import bundled_models, describe, model_card
    from napari_uqseg.models.checkpoint import read_checkpoint_info
    from napari_uqseg.models.manifest import is_manifest, read_manifest

    out = []
    for name, path in bundled_models().items():
        files = read_manifest(path).members if is_manifest(path) else (path,)
        info = read_checkpoint_info(files[-1])
        arguments = dict(info.arguments)
        out.append(
            {
                "name": name,
                "architecture": info.architecture,
                "in_channels": int(arguments.get("in_channels", 1)),
                "phases": list(info.extra.get("phases", [])),
                "spatial_dims": int(
                    getattr(info, "spatial_dims", None) or info.extra.get("spatial_dims", 2)
                ),
                "classes": {int(k): v for k, v in info.label_names.items()},
                "spacing_mm": None if info.spacing is None else list(info.spacing),
                "mc_dropout_rate": info.mc_dropout_rate
                if info.mc_dropout_rate is not None
                else arguments.get("dropout"),
                "tta": info.tta or "none",
                "members": len(files),
                "size_mb": round(sum(f.stat().st_size for f in files) / 2**20, 1),
                "description": describe(name),
                "card": None if model_card(name) is None else str(model_card(name)),
            }
        )
    return out


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    if not table:
        print("no bundled models are installed")
        return 0
    for row in table:
        inputs = "+".join(row["phases"]) if row["phases"] else f"{row['in_channels']} channel(s)"
        spacing = "native grid" if row["spacing_mm"] is None else f"{row['spacing_mm']} mm"
        members = f"{row['members']} snapshots, " if row["members"] > 1 else ""
        rate = row["mc_dropout_rate"]
        dropout = f"MC dropout {rate:g}, " if isinstance(rate, int | float) else ""
        views = len(TTA_SETS[row["tta"]])
        dropout += f"test-time {row['tta']} ({views} views), " if views > 1 else ""
        print(
            f"{row['name']}: {row['architecture']}, {members}{row['spatial_dims']}D, input "
            f"{inputs}, {len(row['classes'])} classes, {spacing}, {dropout}{row['size_mb']} MB"
        )
        if row["description"]:
            print(f"    {row['description']}")
    return 0
