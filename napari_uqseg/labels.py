"""ACDC label convention shared by every module: 0 background, 1 RV, 2 Myo, 3 LV."""

from types import MappingProxyType

LABEL_NAMES = MappingProxyType({0: "background", 1: "RV", 2: "Myo", 3: "LV"})
#: Foreground structures in label order; CSV columns such as ``dice_RV`` use these names.
STRUCTURES: tuple[str, ...] = ("RV", "Myo", "LV")
STRUCTURE_LABELS = MappingProxyType({name: label for label, name in LABEL_NAMES.items() if label})
NUM_CLASSES = len(LABEL_NAMES)
#: RGBA colours used by the plugin's Labels layers and every plot (one colour per structure).
LABEL_COLORS = MappingProxyType(
    {
        0: (0.0, 0.0, 0.0, 0.0),
        1: (0.20, 0.55, 0.95, 1.0),
        2: (0.95, 0.75, 0.15, 1.0),
        3: (0.90, 0.25, 0.25, 1.0),
    }
)
#: Colour of anything that is not one of the structures (a mean curve, an unknown name).
OTHER_COLOR = (0.5, 0.5, 0.5, 1.0)


def structure_colour(name: str) -> tuple[float, ...]:
    """The RGBA colour of structure ``name`` (``"RV"``, ``"Myo"``, ``"LV"``), else mid-grey."""
    return LABEL_COLORS.get(STRUCTURE_LABELS.get(name, -1), OTHER_COLOR)
