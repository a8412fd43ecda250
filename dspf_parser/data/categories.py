"""Label spaces of the benchmarks: part classes, joints, limbs and their flip pairs.

Pure Python (no torch, no detectron2). Every dataset registered by this project uses one of
the :class:`HumanSchema` objects defined here, so the mapper, the heads and the evaluators agree
on class counts, joint order, limb list and what a horizontal flip swaps.

Coordinate convention used everywhere in the project: a joint ``(x, y)`` is in *pixel index*
coordinates of its image, i.e. the centre of pixel ``[row, col]`` is ``(x=col, y=row)``.
"""
import colorsys
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

__all__ = [
    "HumanSchema",
    "MHP_V2_SCHEMA",
    "DENSEPOSE_SCHEMA",
    "PASCAL_PERSON_PART_SCHEMA",
    "SCHEMAS",
    "get_schema",
    "flip_permutation",
    "part_colors",
]


def flip_permutation(names: Sequence[str]) -> List[int]:
    """Index permutation that a horizontal flip applies to a list of left/right-named labels.

    ``names[i]`` containing ``Left``/``Right`` or ``left``/``right`` anywhere in the name (a
    prefix as in ``Left-arm`` or ``left_wrist``, or inside it as in DensePose's
    ``UpperLeft-Leg``) is mapped to the index of the name with that side word swapped (first
    match of ``Left``, ``Right``, ``left``, ``right`` in that order, every occurrence of it
    replaced); every other name maps to itself.

    Raises:
        ValueError: if a left/right name has no counterpart in ``names``.
    """
    index = {n: i for i, n in enumerate(names)}
    perm = []
    for i, name in enumerate(names):
        swapped = None
        for a, b in (("Left", "Right"), ("Right", "Left"), ("left", "right"), ("right", "left")):
            if a in name:
                swapped = name.replace(a, b)
                break
        if swapped is None:
            perm.append(i)
        elif swapped in index:
            perm.append(index[swapped])
        else:
            raise ValueError(f"label {name!r} has no mirrored counterpart {swapped!r}")
    return perm


@dataclass(frozen=True)
class HumanSchema:
    """Label space of one benchmark.

    Attributes:
        name: short identifier, e.g. ``"mhp_v2"``.
        part_classes: part names, index 0 is background; ``len(part_classes)`` classes in all.
        keypoint_names: joint names in annotation order (``K`` joints).
        limbs: ``L`` pairs ``(a, b)`` of 0-based joint indices, ordered head to foot so grouping
            can assemble people by walking the list.
        oks_sigmas: per-joint OKS sigma (``K`` floats).
        part_flip: permutation of part ids applied by a horizontal flip.
        keypoint_flip: permutation of joint indices applied by a horizontal flip.
    """

    name: str
    part_classes: Tuple[str, ...]
    keypoint_names: Tuple[str, ...]
    limbs: Tuple[Tuple[int, int], ...]
    oks_sigmas: Tuple[float, ...]
    part_flip: Tuple[int, ...] = field(init=False)
    keypoint_flip: Tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "part_flip", tuple(flip_permutation(self.part_classes)))
        object.__setattr__(self, "keypoint_flip", tuple(flip_permutation(self.keypoint_names)))
        k = len(self.keypoint_names)
        if len(self.oks_sigmas) != k:
            raise ValueError(f"{self.name}: {len(self.oks_sigmas)} OKS sigmas for {k} joints")
        for a, b in self.limbs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise ValueError(f"{self.name}: bad limb ({a}, {b}) for {k} joints")

    @property
    def num_parts(self) -> int:
        """Number of part classes including background."""
        return len(self.part_classes)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    @property
    def num_limbs(self) -> int:
        return len(self.limbs)

    def metadata(self) -> Dict[str, object]:
        """Fields for ``MetadataCatalog.get(name).set(**schema.metadata())``.

        detectron2's own fields, so ``Visualizer.draw_dataset_dict`` and
        ``tools/visualize_data.py``-style browsing work: ``thing_classes`` (one class,
        ``"person"``, ``category_id`` 0) and ``thing_colors``; ``keypoint_names``,
        ``keypoint_flip_map`` (pairs of joint names a flip swaps) and
        ``keypoint_connection_rules`` (``(name_a, name_b, (r, g, b))`` per limb, left limbs
        blue, right limbs red, others green); ``stuff_classes`` (the part classes) and
        ``stuff_colors`` (:func:`part_colors`). The project's own: ``schema``,
        ``keypoint_limbs``, ``keypoint_oks_sigmas``, ``part_flip_map``,
        ``keypoint_flip_indices``, ``ignore_label``.
        """
        names = self.keypoint_names
        flip_pairs = [(names[i], names[j]) for i, j in enumerate(self.keypoint_flip) if i < j]

        def side(name: str) -> str:
            return "left" if "left" in name.lower() else "right" if "right" in name.lower() else ""

        colours = {"left": (0, 0, 255), "right": (255, 0, 0), "": (0, 255, 0)}
        rules = []
        for a, b in self.limbs:
            sides = {side(names[a]), side(names[b])} - {""}
            rules.append((names[a], names[b], colours[sides.pop() if len(sides) == 1 else ""]))
        return {
            "schema": self.name,
            "thing_classes": ["person"],
            "thing_colors": [(220, 20, 60)],
            "stuff_classes": list(self.part_classes),
            "stuff_colors": part_colors(self.num_parts),
            "keypoint_names": list(names),
            "keypoint_flip_map": flip_pairs,
            "keypoint_connection_rules": rules,
            "keypoint_limbs": [list(l) for l in self.limbs],
            "keypoint_oks_sigmas": list(self.oks_sigmas),
            "part_flip_map": list(self.part_flip),
            "keypoint_flip_indices": list(self.keypoint_flip),
            "ignore_label": 255,
        }


def part_colors(num_classes: int) -> List[Tuple[int, int, int]]:
    """``num_classes`` distinct RGB colours, background (index 0) black: hues spaced by the
    golden ratio, alternating saturation and value, so neighbouring ids differ strongly."""
    out = [(0, 0, 0)]
    for i in range(1, num_classes):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 1.0 if i % 2 else 0.65, 1.0 if (i // 2) % 2 else 0.8)
        out.append((int(round(r * 255)), int(round(g * 255)), int(round(b * 255))))
    return out


MHP_V2_PARTS = (
    "Background", "Cap/Hat", "Helmet", "Face", "Hair", "Left-arm", "Right-arm", "Left-hand",
    "Right-hand", "Protector", "Bikini/bra", "Jacket/windbreaker/hoodie", "Tee-shirt",
    "Polo-shirt", "Sweater", "Singlet", "Torso-skin", "Pants", "Shorts/swim-shorts", "Skirt",
    "Stockings", "Socks", "Left-boot", "Right-boot", "Left-shoe", "Right-shoe", "Left-highheel",
    "Right-highheel", "Left-sandal", "Right-sandal", "Left-leg", "Right-leg", "Left-foot",
    "Right-foot", "Coat", "Dress", "Robe", "Jumpsuit", "Other-full-body-clothes", "Headwear",
    "Backpack", "Ball", "Bats", "Belt", "Bottle", "Carrybag", "Cases", "Sunglasses", "Eyewear",
    "Glove", "Scarf", "Umbrella", "Wallet/purse", "Watch", "Wristband", "Tie",
    "other-accessaries", "other-upper-body-clothes", "other-lower-body-clothes",
)

MHP_V2_KEYPOINTS = (
    "Right-ankle", "Right-knee", "Right-hip", "Left-hip", "Left-knee", "Left-ankle", "Pelvis",
    "Thorax", "Upper-neck", "Head-top", "Right-wrist", "Right-elbow", "Right-shoulder",
    "Left-shoulder", "Left-elbow", "Left-wrist",
)

# The MHPv2 limb set (1-based in the benchmark notes), converted to 0-based and ordered from
# the head down so that grouping walks it head to foot.
_MHP_V2_LIMBS_1BASED = (
    (9, 10), (8, 9), (9, 13), (9, 14), (13, 14), (12, 13), (11, 12), (14, 15), (15, 16),
    (7, 8), (13, 3), (14, 4), (3, 7), (4, 7), (2, 3), (1, 2), (4, 5), (5, 6),
)

MHP_V2_SCHEMA = HumanSchema(
    name="mhp_v2",
    part_classes=MHP_V2_PARTS,
    keypoint_names=MHP_V2_KEYPOINTS,
    limbs=tuple((a - 1, b - 1) for a, b in _MHP_V2_LIMBS_1BASED),
    oks_sigmas=(.089, .087, .107, .107, .087, .089, .087, .107, .079, .026, .062, .072, .079,
                .079, .072, .062),
)

# ----------------------------------------------------------------------------------------------
# DensePose-COCO used for part parsing
# ----------------------------------------------------------------------------------------------
#: The 14 coarse DensePose parts, ids 1..14 in the order of ``dp_masks`` (the index ``i`` of
#: ``GetDensePoseMask`` in the DensePose-COCO notebook), 0 = background.
DENSEPOSE_PARTS = (
    "Background", "Torso", "Right-Hand", "Left-Hand", "Left-Foot", "Right-Foot", "UpperRight-Leg",
    "UpperLeft-Leg", "LowerRight-Leg", "LowerLeft-Leg", "UpperLeft-Arm", "UpperRight-Arm",
    "LowerLeft-Arm", "LowerRight-Arm", "Head",
)

#: The 17 COCO person keypoints, COCO names and order.
COCO_KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
    "right_knee", "left_ankle", "right_ankle",
)

# The 19 limbs of the COCO ``skeleton`` (1-based, as in the ``person_keypoints`` category),
# ordered head to foot: face, shoulders and arms, torso, legs.
_COCO_LIMBS_1BASED = (
    (1, 2), (1, 3), (2, 3), (2, 4), (3, 5), (4, 6), (5, 7), (6, 7), (6, 8), (7, 9), (8, 10),
    (9, 11), (6, 12), (7, 13), (12, 13), (12, 14), (13, 15), (14, 16), (15, 17),
)

#: COCO keypoint OKS sigmas (``COCOeval.Params.kpt_oks_sigmas``), same order.
COCO_OKS_SIGMAS = (.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107,
                   .087, .087, .089, .089)

DENSEPOSE_SCHEMA = HumanSchema(
    name="densepose_coco",
    part_classes=DENSEPOSE_PARTS,
    keypoint_names=COCO_KEYPOINTS,
    limbs=tuple((a - 1, b - 1) for a, b in _COCO_LIMBS_1BASED),
    oks_sigmas=COCO_OKS_SIGMAS,
)

# ----------------------------------------------------------------------------------------------
# PASCAL-Person-Part
# ----------------------------------------------------------------------------------------------
#: The 6 parts of PASCAL-Person-Part (Chen et al. 2014), ids 1..6; no left/right.
PASCAL_PERSON_PART_PARTS = (
    "Background", "Head", "Torso", "Upper-arms", "Lower-arms", "Upper-legs", "Lower-legs",
)

#: The 14 joints. Their order in the instance-level release could not be verified, so this is a
#: documented choice: the LSP order (Johnson & Everingham 2010), which lists the same 14 joints
#: (ankles, knees, hips, wrists, elbows, shoulders, neck, head top). A joints file in another
#: order must be permuted when it is read (``dspf_parser.data.datasets.pascal_person_part``).
PASCAL_PERSON_PART_KEYPOINTS = (
    "Right-ankle", "Right-knee", "Right-hip", "Left-hip", "Left-knee", "Left-ankle",
    "Right-wrist", "Right-elbow", "Right-shoulder", "Left-shoulder", "Left-elbow", "Left-wrist",
    "Neck", "Head-top",
)

# 1-based, head to foot: head, shoulders, arms, torso sides, hips, legs.
_PASCAL_LIMBS_1BASED = (
    (14, 13), (13, 9), (13, 10), (9, 10), (9, 8), (8, 7), (10, 11), (11, 12), (9, 3), (10, 4),
    (3, 4), (3, 2), (2, 1), (4, 5), (5, 6),
)

PASCAL_PERSON_PART_SCHEMA = HumanSchema(
    name="pascal_person_part",
    part_classes=PASCAL_PERSON_PART_PARTS,
    keypoint_names=PASCAL_PERSON_PART_KEYPOINTS,
    limbs=tuple((a - 1, b - 1) for a, b in _PASCAL_LIMBS_1BASED),
    # COCO sigmas of the same joints (neck as MHPv2's upper neck, head top as MHPv2's).
    oks_sigmas=(.089, .087, .107, .107, .087, .089, .062, .072, .079, .079, .072, .062, .079, .026),
)

SCHEMAS: Dict[str, HumanSchema] = {
    s.name: s for s in (MHP_V2_SCHEMA, DENSEPOSE_SCHEMA, PASCAL_PERSON_PART_SCHEMA)
}


def get_schema(name: str) -> HumanSchema:
    """The registered schema called ``name`` (``cfg.MODEL.DSPF.SCHEMA``)."""
    if name not in SCHEMAS:
        raise KeyError(f"unknown human schema {name!r}; known: {sorted(SCHEMAS)}")
    return SCHEMAS[name]
