"""Deterministic, seeded generator of synthetic multi-person part-parsing images.

Pure numpy + OpenCV (no torch, no detectron2), so it can run in data-loader workers and in
tools without the heavy stack. Used to build small MHPv2-layout datasets (see
:mod:`dspf_parser.data.mhp_v2_layout`) for smoke tests and overfitting checks.

Each image shows 1..``max_people`` articulated stick-figure people over a textured background.
A person is built from the 16 MPII joints of :data:`MHP_V2_SCHEMA` (same order), posed with
per-joint angle ranges inside human limits (:data:`JOINT_LIMITS`), and rendered part by part
(capsules for limbs, an ellipse for the head, polygons for torso and pelvis) with MHPv2 part ids
(:data:`SYNTHETIC_PART_IDS`). Labels are anatomical: ``Left-arm`` is the arm attached to the
person's own ``Left-shoulder``, whichever side of the screen it appears on. A person facing the
camera has their left side on the screen's right; a person facing away (drawn with a head of
hair and no face) has it on the screen's left.

Conventions:

* coordinates are *pixel-index* coordinates: the centre of pixel ``[row, col]`` is
  ``(x=col, y=row)`` (as everywhere in the project);
* ``keypoints[p, j] = (x, y, v)`` with ``v = 2`` visible (a pixel of that person's own parts
  for joint ``j`` is within 1 pixel, i.e. in the 3x3 window around the rounded position),
  ``v = 1`` inside the image but covered (by a person drawn in front, or by another part of
  the same person, e.g. a far-side elbow behind the torso), ``v = 0`` outside the image, with
  ``x = y = 0``. Inside means ``0 <= x <= W - 1 and 0 <= y <= H - 1``;
* ``boxes[p] = (x0, y0, x1, y1)`` with ``x0 = min col``, ``y0 = min row``, ``x1 = max col + 1``,
  ``y1 = max row + 1`` over the person's visible pixels (the pixel-edge convention of
  detectron2's ``BitMasks.get_bounding_boxes`` and of ``cv2.boundingRect``);
* person ids ``1..P`` follow the drawing order: a higher id is drawn later, i.e. in front.
  Only front-most pixels are labelled; people with no visible pixel (fully occluded or
  outside the image) are dropped and the rest renumbered contiguously.

Determinism: every random draw comes from ``np.random.default_rng`` seeded by the caller (the
scene generator draws per-person texture seeds and a background seed from the scene generator),
so the same seed and arguments give byte-identical arrays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .categories import MHP_V2_SCHEMA

__all__ = [
    "SYNTHETIC_VERSION",
    "SYNTHETIC_PART_IDS",
    "JOINT_LIMITS",
    "JOINT_OWN_PARTS",
    "PersonParams",
    "SyntheticSample",
    "sample_person_params",
    "person_joints",
    "render_people",
    "generate_synthetic_image",
    "colorize_part_map",
    "colorize_instance_map",
    "draw_preview",
]

#: Bumped whenever the rendering or the written layout changes, so cached datasets
#: (``.complete`` markers) go stale. 2: the release's names, R-channel PNGs, shuffled poses.
SYNTHETIC_VERSION = 2
#: Default person height range, as a fraction of the image height.
DEFAULT_HEIGHT_RANGE = (0.45, 1.1)

# ----------------------------------------------------------------------------------------------
# Label ids (MHPv2)
# ----------------------------------------------------------------------------------------------
FACE, HAIR = 3, 4
L_ARM, R_ARM, L_HAND, R_HAND = 5, 6, 7, 8
TEE_SHIRT, TORSO_SKIN, PANTS = 12, 16, 17
L_SHOE, R_SHOE = 24, 25
L_LEG, R_LEG, L_FOOT, R_FOOT = 30, 31, 32, 33

#: Part ids the generator can emit (background 0 excluded).
SYNTHETIC_PART_IDS: Tuple[int, ...] = (
    FACE, HAIR, L_ARM, R_ARM, L_HAND, R_HAND, TEE_SHIRT, TORSO_SKIN, PANTS, L_SHOE, R_SHOE,
    L_LEG, R_LEG, L_FOOT, R_FOOT,
)

_EXPECTED_NAMES = {
    FACE: "Face", HAIR: "Hair", L_ARM: "Left-arm", R_ARM: "Right-arm", L_HAND: "Left-hand",
    R_HAND: "Right-hand", TEE_SHIRT: "Tee-shirt", TORSO_SKIN: "Torso-skin", PANTS: "Pants",
    L_SHOE: "Left-shoe", R_SHOE: "Right-shoe", L_LEG: "Left-leg", R_LEG: "Right-leg",
    L_FOOT: "Left-foot", R_FOOT: "Right-foot",
}
for _pid, _name in _EXPECTED_NAMES.items():  # guard against a drifting label list
    assert MHP_V2_SCHEMA.part_classes[_pid] == _name, (_pid, MHP_V2_SCHEMA.part_classes[_pid])

# Joint indices (MPII order, as MHP_V2_SCHEMA.keypoint_names).
R_ANKLE, R_KNEE, R_HIP, L_HIP, L_KNEE, L_ANKLE, PELVIS, THORAX = range(8)
UPPER_NECK, HEAD_TOP, R_WRIST, R_ELBOW, R_SHOULDER, L_SHOULDER, L_ELBOW, L_WRIST = range(8, 16)
assert MHP_V2_SCHEMA.keypoint_names[L_WRIST] == "Left-wrist"
assert MHP_V2_SCHEMA.keypoint_names[R_ANKLE] == "Right-ankle"
NUM_JOINTS = 16

#: Joint-angle ranges (degrees) the sampler draws from. Angles are measured in the image plane
#: in the person's frontal frame (before the yaw compression of left-right extents):
#: ``torso_lean`` tilts the pelvis->thorax axis from vertical; ``neck_angle`` tilts the head from
#: the torso axis; ``shoulder_abduction``/``hip_abduction`` rotate the upper arm / thigh away from
#: the body (0 = hanging straight down, negative = across the body); ``elbow_flexion`` /
#: ``knee_angle`` rotate the forearm / shin relative to the upper limb, positive = towards the
#: body midline. ``*_foreshortening`` is the projected length factor of a segment pointing
#: towards/away from the camera (flexion in the sagittal plane).
JOINT_LIMITS: Dict[str, Tuple[float, float]] = {
    "torso_lean": (-15.0, 15.0),
    "neck_angle": (-25.0, 25.0),
    "shoulder_abduction": (-15.0, 170.0),
    "elbow_flexion": (-30.0, 150.0),
    "hip_abduction": (-15.0, 45.0),
    "knee_angle": (-25.0, 25.0),
    "upper_arm_foreshortening": (0.55, 1.0),
    "forearm_foreshortening": (0.55, 1.0),
    "thigh_foreshortening": (0.6, 1.0),
    "shin_foreshortening": (0.7, 1.0),
}

BGR = Tuple[int, int, int]


@dataclass(frozen=True)
class PersonParams:
    """Pose and appearance of one synthetic person (all that :func:`render_people` needs).

    Pairs are ``(left, right)`` in the person's own anatomical sides. Angles in degrees (see
    :data:`JOINT_LIMITS`), lengths in pixels.
    """

    pelvis: Tuple[float, float]
    height: float
    facing_camera: bool = True
    width_scale: float = 1.0  # cos(yaw): compresses left-right extents
    near_side: str = "left"  # limbs of this side are drawn in front of the torso
    build: float = 1.0  # limb thickness multiplier
    torso_lean: float = 0.0
    neck_angle: float = 0.0
    shoulder_abduction: Tuple[float, float] = (15.0, 15.0)
    elbow_flexion: Tuple[float, float] = (0.0, 0.0)
    hip_abduction: Tuple[float, float] = (6.0, 6.0)
    knee_angle: Tuple[float, float] = (0.0, 0.0)
    upper_arm_foreshortening: Tuple[float, float] = (1.0, 1.0)
    forearm_foreshortening: Tuple[float, float] = (1.0, 1.0)
    thigh_foreshortening: Tuple[float, float] = (1.0, 1.0)
    shin_foreshortening: Tuple[float, float] = (1.0, 1.0)
    # appearance
    skin: BGR = (140, 170, 220)
    hair: BGR = (30, 35, 45)
    top: BGR = (180, 60, 40)
    top_secondary: Optional[BGR] = None  # stripe colour of the shirt, None = plain
    stripe_period: float = 6.0
    stripe_angle: float = 0.0
    bottom: BGR = (60, 50, 40)
    shoes: BGR = (30, 30, 30)
    torso_part: int = TEE_SHIRT  # TEE_SHIRT, or TORSO_SKIN for a bare torso
    barefoot: bool = False  # feet are Left/Right-foot (skin) instead of Left/Right-shoe
    sleeve_length: float = 0.4  # fraction of the upper arm covered by the shirt
    pants_length: float = 0.6  # fraction of the thigh covered by the pants
    hair_line: float = 0.35  # fraction of the head length (from the top) that is hair
    texture_seed: int = 0

    def __post_init__(self) -> None:
        if self.near_side not in ("left", "right"):
            raise ValueError(f"near_side must be 'left' or 'right', got {self.near_side!r}")
        if self.torso_part not in (TEE_SHIRT, TORSO_SKIN):
            raise ValueError(f"torso_part must be {TEE_SHIRT} or {TORSO_SKIN}")
        if not self.height > 0:
            raise ValueError(f"height must be positive, got {self.height}")

    def part_ids(self) -> Dict[str, int]:
        """Role -> MHPv2 part id for this person."""
        feet = (L_FOOT, R_FOOT) if self.barefoot else (L_SHOE, R_SHOE)
        return {
            "face": FACE, "hair": HAIR, "torso": self.torso_part, "neck": TORSO_SKIN,
            "pants": PANTS, "arm_l": L_ARM, "arm_r": R_ARM, "hand_l": L_HAND, "hand_r": R_HAND,
            "leg_l": L_LEG, "leg_r": R_LEG, "foot_l": feet[0], "foot_r": feet[1],
        }


def _own_parts_table() -> Dict[int, Tuple[str, ...]]:
    return {
        R_ANKLE: ("leg_r", "foot_r"), L_ANKLE: ("leg_l", "foot_l"),
        R_KNEE: ("leg_r", "pants"), L_KNEE: ("leg_l", "pants"),
        R_HIP: ("pants", "leg_r", "torso"), L_HIP: ("pants", "leg_l", "torso"),
        PELVIS: ("pants", "torso"), THORAX: ("torso", "neck"),
        UPPER_NECK: ("neck", "face", "hair"), HEAD_TOP: ("face", "hair"),
        R_WRIST: ("arm_r", "hand_r"), L_WRIST: ("arm_l", "hand_l"),
        R_ELBOW: ("arm_r", "torso"), L_ELBOW: ("arm_l", "torso"),  # torso: a long sleeve
        R_SHOULDER: ("arm_r", "torso", "neck"), L_SHOULDER: ("arm_l", "torso", "neck"),
    }


#: Joint index -> part roles (keys of :meth:`PersonParams.part_ids`) on which the joint counts
#: as visible.
JOINT_OWN_PARTS: Dict[int, Tuple[str, ...]] = _own_parts_table()


@dataclass
class SyntheticSample:
    """One generated image with its annotations (see module docstring for conventions).

    Attributes:
        image: ``[H, W, 3]`` uint8 BGR.
        part_map: ``[H, W]`` uint8 MHPv2 part ids, 0 background.
        instance_map: ``[H, W]`` uint8, 0 background, ``1..P`` person ids (front-most).
        keypoints: ``[P, 16, 3]`` float32 ``(x, y, v)``.
        boxes: ``[P, 4]`` float32 XYXY tight boxes of the visible pixels.
        people: the ``P`` :class:`PersonParams`, ``people[i]`` is person id ``i + 1``.
    """

    image: np.ndarray
    part_map: np.ndarray
    instance_map: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    people: Tuple[PersonParams, ...] = field(default_factory=tuple)

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    def person_part_map(self, person_id: int) -> np.ndarray:
        """Part map restricted to the visible pixels of ``person_id`` (1-based), else 0."""
        return np.where(self.instance_map == person_id, self.part_map, 0).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------
# Segment lengths as fractions of the person height (head top to ankles, straight pose).
_L_HEAD, _L_NECK, _L_TORSO = 0.13, 0.045, 0.29
_L_THIGH, _L_SHIN = 0.245, 0.245
_L_UPPER_ARM, _L_FOREARM, _L_HAND, _L_FOOT = 0.165, 0.145, 0.075, 0.06
_W_SHOULDER, _W_HIP = 0.105, 0.065  # half widths


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _frame(p: PersonParams):
    """Unit vectors: ``up`` (pelvis->thorax), ``lat`` (perpendicular), and per-side outward."""
    t = math.radians(p.torso_lean)
    up = np.array([math.sin(t), -math.cos(t)])
    lat = np.array([math.cos(t), math.sin(t)])  # screen-right for an upright person
    s = 1.0 if p.facing_camera else -1.0  # person's left is on screen right when facing camera
    return up, lat, {"l": s * lat, "r": -s * lat}, {"l": s, "r": -s}


def _limb_dir(down: np.ndarray, outward: np.ndarray, angle: float, ws: float) -> np.ndarray:
    """Unit-length (before yaw compression) limb direction ``angle`` degrees away from ``down``."""
    a = math.radians(angle)
    return down * math.cos(a) + outward * (math.sin(a) * ws)


def _skeleton(p: PersonParams) -> Dict[str, np.ndarray]:
    """Joint positions plus helper points (hand/toe tips, head axis) of a person."""
    h, ws = float(p.height), float(p.width_scale)
    up, lat, out, ksign = _frame(p)
    down = -up
    pts: Dict[str, np.ndarray] = {}
    pelvis = np.asarray(p.pelvis, dtype=np.float64)
    pts["pelvis"] = pelvis
    thorax = pelvis + up * (_L_TORSO * h)
    pts["thorax"] = thorax
    hdir = _rot(up, p.neck_angle)
    pts["hdir"] = hdir
    pts["upper_neck"] = thorax + hdir * (_L_NECK * h)
    pts["head_top"] = pts["upper_neck"] + hdir * (_L_HEAD * h)
    for i, side in enumerate("lr"):
        o, k = out[side], ksign[side]
        sh = thorax + o * (_W_SHOULDER * h * ws) + down * (0.012 * h)
        d_up = _limb_dir(down, o, p.shoulder_abduction[i], ws)
        el = sh + d_up * (_L_UPPER_ARM * h * p.upper_arm_foreshortening[i])
        # positive flexion rotates the forearm towards the midline (-o); k*lat == o
        d_fa = _rot(d_up, k * p.elbow_flexion[i])
        wr = el + d_fa * (_L_FOREARM * h * p.forearm_foreshortening[i])
        n_fa = d_fa / max(np.linalg.norm(d_fa), 1e-6)
        pts[f"shoulder_{side}"], pts[f"elbow_{side}"], pts[f"wrist_{side}"] = sh, el, wr
        pts[f"hand_dir_{side}"] = n_fa
        hip = pelvis + o * (_W_HIP * h * ws) + down * (0.01 * h)
        d_th = _limb_dir(down, o, p.hip_abduction[i], ws)
        kn = hip + d_th * (_L_THIGH * h * p.thigh_foreshortening[i])
        d_sh = _rot(d_th, k * p.knee_angle[i])
        an = kn + d_sh * (_L_SHIN * h * p.shin_foreshortening[i])
        foot_dir = down * 0.75 + o * 0.45
        foot_dir = foot_dir / np.linalg.norm(foot_dir)
        pts[f"hip_{side}"], pts[f"knee_{side}"], pts[f"ankle_{side}"] = hip, kn, an
        pts[f"thigh_dir_{side}"] = d_th
        pts[f"toe_{side}"] = an + foot_dir * (_L_FOOT * h)
    return pts


def person_joints(p: PersonParams) -> np.ndarray:
    """``[16, 2]`` float64 joint positions (MPII order, pixel-index coordinates) of a person."""
    s = _skeleton(p)
    order = [
        s["ankle_r"], s["knee_r"], s["hip_r"], s["hip_l"], s["knee_l"], s["ankle_l"],
        s["pelvis"], s["thorax"], s["upper_neck"], s["head_top"], s["wrist_r"], s["elbow_r"],
        s["shoulder_r"], s["shoulder_l"], s["elbow_l"], s["wrist_l"],
    ]
    return np.stack(order).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Shapes (polygons in float pixel coordinates)
# ----------------------------------------------------------------------------------------------
_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False))], axis=1)
_ELLIPSE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 40, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 40, endpoint=False))], axis=1)


def _capsule(p0: np.ndarray, p1: np.ndarray, r0: float, r1: float) -> np.ndarray:
    """Convex hull of two discs (a tapered capsule)."""
    pts = np.concatenate([p0 + _CIRCLE * max(r0, 0.6), p1 + _CIRCLE * max(r1, 0.6)])
    hull = cv2.convexHull(pts.astype(np.float32))
    return hull.reshape(-1, 2).astype(np.float64)


def _ellipse(c: np.ndarray, axis_dir: np.ndarray, a: float, b: float) -> np.ndarray:
    """Ellipse with semi-axis ``a`` along unit ``axis_dir`` and ``b`` across it."""
    perp = np.array([-axis_dir[1], axis_dir[0]])
    return c + np.outer(_ELLIPSE[:, 0] * a, axis_dir) + np.outer(_ELLIPSE[:, 1] * b, perp)


def _clip_halfplane(poly: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Part of a convex polygon where ``(x - origin) . normal >= 0`` (Sutherland-Hodgman)."""
    d = (poly - origin) @ normal
    out = []
    n = len(poly)
    for i in range(n):
        a, b, da, db = poly[i], poly[(i + 1) % n], d[i], d[(i + 1) % n]
        if da >= 0:
            out.append(a)
        if (da >= 0) != (db >= 0):
            t = da / (da - db)
            out.append(a + t * (b - a))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def _person_shapes(p: PersonParams) -> List[Tuple[str, np.ndarray]]:
    """``(role, polygon)`` list in back-to-front drawing order."""
    s = _skeleton(p)
    h, b = float(p.height), float(p.build)
    up, lat, out, _ = _frame(p)
    down = -up
    near = "l" if p.near_side == "left" else "r"
    far = "r" if near == "l" else "l"
    r_ua0, r_ua1, r_fa1 = 0.040 * h * b, 0.034 * h * b, 0.026 * h * b
    r_th0, r_th1, r_sh1 = 0.060 * h * b, 0.047 * h * b, 0.032 * h * b
    r_foot = 0.028 * h * b

    def arm(side: str) -> List[Tuple[str, np.ndarray]]:
        sh, el, wr = s[f"shoulder_{side}"], s[f"elbow_{side}"], s[f"wrist_{side}"]
        shapes = [
            (f"arm_{side}", _capsule(sh, el, r_ua0, r_ua1)),
            (f"arm_{side}", _capsule(el, wr, r_ua1, r_fa1)),
        ]
        if p.torso_part == TEE_SHIRT and p.sleeve_length > 0:
            end = sh + (el - sh) * p.sleeve_length
            shapes.append(("torso", _capsule(sh, end, r_ua0 * 1.18, r_ua0 * 1.12)))
        hd = s[f"hand_dir_{side}"]
        shapes.append((f"hand_{side}", _ellipse(wr + hd * (_L_HAND * h * 0.45), hd,
                                                 _L_HAND * h * 0.55, 0.032 * h * b)))
        return shapes

    def leg(side: str) -> List[Tuple[str, np.ndarray]]:
        hip, kn, an, toe = s[f"hip_{side}"], s[f"knee_{side}"], s[f"ankle_{side}"], s[f"toe_{side}"]
        return [
            (f"leg_{side}", _capsule(hip, kn, r_th0, r_th1)),
            (f"leg_{side}", _capsule(kn, an, r_th1, r_sh1)),
            (f"foot_{side}", _capsule(an, toe, r_foot, r_foot * 0.9)),
        ]

    shapes: List[Tuple[str, np.ndarray]] = []
    shapes += arm(far)
    shapes += leg(far)
    shapes += leg(near)
    # pants: a pelvis block from the waist to the hips plus sleeves over the thighs
    waist = 0.07 * h
    hl, hr = s["hip_l"], s["hip_r"]
    pel = np.stack([
        hl + out["l"] * r_th0 + up * waist, hr + out["r"] * r_th0 + up * waist,
        hr + out["r"] * r_th0, hr + down * r_th0 * 0.6, hl + down * r_th0 * 0.6,
        hl + out["l"] * r_th0,
    ])
    shapes.append(("pants", cv2.convexHull(pel.astype(np.float32)).reshape(-1, 2).astype(float)))
    for side in (far, near):
        hip, kn = s[f"hip_{side}"], s[f"knee_{side}"]
        end = hip + (kn - hip) * p.pants_length
        r_end = r_th0 + (r_th1 - r_th0) * p.pants_length
        shapes.append(("pants", _capsule(hip, end, r_th0 * 1.12, r_end * 1.12)))
    # torso
    sl, sr = s["shoulder_l"], s["shoulder_r"]
    torso = np.stack([
        sl + out["l"] * r_ua0 * 0.7 + up * 0.02 * h, sr + out["r"] * r_ua0 * 0.7 + up * 0.02 * h,
        hr + out["r"] * r_th0 * 0.95 + up * 0.05 * h, hl + out["l"] * r_th0 * 0.95 + up * 0.05 * h,
    ])
    shapes.append(("torso", torso))
    shapes.append(("torso", sl + _CIRCLE * r_ua0 * 1.05))
    shapes.append(("torso", sr + _CIRCLE * r_ua0 * 1.05))
    # neck and head
    hdir = s["hdir"]
    shapes.append(("neck", _capsule(s["thorax"] + hdir * 0.01 * h,
                                    s["upper_neck"] + hdir * 0.03 * h, 0.032 * h * b, 0.03 * h * b)))
    centre = s["upper_neck"] + hdir * (_L_HEAD * h * 0.5)
    a_len, b_wid = _L_HEAD * h * 0.5 + 0.6, _L_HEAD * h * 0.38
    if p.facing_camera:
        shapes.append(("face", _ellipse(centre, hdir, a_len, b_wid)))
        hair = _ellipse(centre + hdir * 0.4, hdir, a_len * 1.04, b_wid * 1.08)
        line = centre + hdir * (a_len * (1.0 - 2.0 * p.hair_line))
        hair = _clip_halfplane(hair, line, hdir)
        if len(hair) >= 3:
            shapes.append(("hair", hair))
    else:
        shapes.append(("hair", _ellipse(centre + hdir * 0.3, hdir, a_len * 1.03, b_wid * 1.08)))
    shapes += arm(near)
    return shapes


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------
_SHIFT = 4
_SCALE = float(1 << _SHIFT)


def _render_person_labels(p: PersonParams, height: int, width: int):
    """Unoccluded labels of one person: ``(labels crop uint8, (y0, x0))`` or ``None``."""
    ids = p.part_ids()
    shapes = _person_shapes(p)
    allpts = np.concatenate([poly for _, poly in shapes])
    x0 = max(int(math.floor(allpts[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(allpts[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(allpts[:, 0].max())) + 2, width)
    y1 = min(int(math.ceil(allpts[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    labels = np.zeros((y1 - y0, x1 - x0), np.uint8)
    off = np.array([x0, y0], np.float64)
    for role, poly in shapes:
        pts = np.round((poly - off) * _SCALE).astype(np.int32).reshape(1, -1, 2)
        cv2.fillPoly(labels, pts, int(ids[role]), lineType=cv2.LINE_8, shift=_SHIFT)
    if not labels.any():
        return None
    return labels, (y0, x0)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, channels: int, cells: int) -> np.ndarray:
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return out.reshape(h, w, channels)


def _render_background(seed: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = _smooth_noise(rng, h, w, 3, int(rng.integers(2, 6))) * rng.uniform(120, 230)
    img += rng.uniform(0, 60, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # linear gradient
    ang = rng.uniform(0, 2 * np.pi)
    grad = (xx * math.cos(ang) + yy * math.sin(ang)) / max(h, w)
    img += grad[..., None] * rng.uniform(-60, 60, size=3).astype(np.float32)
    if rng.random() < 0.5:  # stripes / tiles
        ang = rng.uniform(0, np.pi)
        period = rng.uniform(6, 40)
        phase = (xx * math.cos(ang) + yy * math.sin(ang)) / period
        stripes = (np.floor(phase) % 2).astype(np.float32)
        img += stripes[..., None] * rng.uniform(-50, 50, size=3).astype(np.float32)
    for _ in range(int(rng.integers(0, 5))):  # clutter: rectangles and ellipses
        col = tuple(float(c) for c in rng.uniform(0, 255, size=3))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.03, 0.25) * w, rng.uniform(0.03, 0.25) * h
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(cx - sx), int(cy - sy)), (int(cx + sx), int(cy + sy)), col, -1)
        else:
            cv2.ellipse(img, (int(cx), int(cy)), (max(int(sx), 1), max(int(sy), 1)),
                        float(rng.uniform(0, 180)), 0, 360, col, -1)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(4.0)
    return img


def _person_colours(p: PersonParams, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Float32 BGR texture for the labelled pixels of one person crop."""
    lut = np.zeros((256, 3), np.float32)
    skin = np.asarray(p.skin, np.float32)
    ids = p.part_ids()
    lut[FACE] = skin
    lut[HAIR] = p.hair
    lut[L_ARM] = lut[R_ARM] = skin * 0.95
    lut[L_HAND] = lut[R_HAND] = np.minimum(skin * 1.08, 255)
    lut[L_LEG] = lut[R_LEG] = skin * 0.9
    lut[L_FOOT] = lut[R_FOOT] = skin * 0.8
    lut[TORSO_SKIN] = skin * 0.92
    lut[TEE_SHIRT] = p.top
    lut[PANTS] = p.bottom
    lut[L_SHOE] = lut[R_SHOE] = p.shoes
    rgb = lut[labels]
    h, w = labels.shape
    if p.top_secondary is not None and ids["torso"] == TEE_SHIRT:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = math.radians(p.stripe_angle)
        band = (np.floor((xx * math.cos(a) + yy * math.sin(a)) / p.stripe_period) % 2) > 0
        m = band & (labels == TEE_SHIRT)
        rgb[m] = np.asarray(p.top_secondary, np.float32)
    # soft shading and fabric noise
    shade = 0.85 + 0.3 * _smooth_noise(rng, h, w, 1, 3)
    rgb *= shade
    rgb += rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(5.0)
    # darken part boundaries a little so adjacent parts read as separate shapes
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[1:, :] != labels[:-1, :]
    rgb[edge] *= 0.75
    return rgb


def _joint_visibility(joints: np.ndarray, pid: int, params: PersonParams, part_map: np.ndarray,
                      instance_map: np.ndarray) -> np.ndarray:
    h, w = part_map.shape
    ids = params.part_ids()
    kp = np.zeros((NUM_JOINTS, 3), np.float32)
    for j in range(NUM_JOINTS):
        x, y = float(joints[j, 0]), float(joints[j, 1])
        if not (0.0 <= x <= w - 1 and 0.0 <= y <= h - 1):
            continue  # v = 0, x = y = 0
        r, c = int(round(y)), int(round(x))
        win_p = part_map[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        win_i = instance_map[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        own = np.isin(win_p, [ids[k] for k in JOINT_OWN_PARTS[j]]) & (win_i == pid)
        kp[j] = (x, y, 2.0 if own.any() else 1.0)
    return kp


def render_people(people: Sequence[PersonParams], image_size: Tuple[int, int] = (128, 128),
                  background_seed: int = 0, min_visible_pixels: int = 1) -> SyntheticSample:
    """Render ``people`` back to front (``people[-1]`` in front) over a seeded background.

    People with fewer than ``min_visible_pixels`` visible pixels are removed (the scene is
    re-rendered without them if they had any pixel) and the rest renumbered ``1..P`` in
    drawing order.
    """
    height, width = int(image_size[0]), int(image_size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if len(people) > 255:
        raise ValueError("at most 255 people per image (uint8 instance map)")
    people = list(people)
    rendered = [_render_person_labels(p, height, width) for p in people]
    while True:
        part_map = np.zeros((height, width), np.uint8)
        instance_map = np.zeros((height, width), np.uint8)
        for k, r in enumerate(rendered):
            if r is None:
                continue
            labels, (y0, x0) = r
            m = labels > 0
            part_map[y0:y0 + labels.shape[0], x0:x0 + labels.shape[1]][m] = labels[m]
            instance_map[y0:y0 + labels.shape[0], x0:x0 + labels.shape[1]][m] = k + 1
        counts = np.bincount(instance_map.ravel(), minlength=len(people) + 1)[1:]
        keep = [k for k in range(len(people)) if counts[k] >= max(min_visible_pixels, 1)]
        if all(counts[k] == 0 for k in range(len(people)) if k not in keep):
            break  # dropped people left no pixel: the maps are final
        people = [people[k] for k in keep]
        rendered = [rendered[k] for k in keep]
    # renumber kept people 1..P
    lut = np.zeros(256, np.uint8)
    for new, k in enumerate(keep):
        lut[k + 1] = new + 1
    instance_map = lut[instance_map]
    people = [people[k] for k in keep]
    rendered = [rendered[k] for k in keep]

    # image: background, then each person's visible texture
    img = _render_background(background_seed, height, width)
    for k, (p, r) in enumerate(zip(people, rendered)):
        labels, (y0, x0) = r
        sl = (slice(y0, y0 + labels.shape[0]), slice(x0, x0 + labels.shape[1]))
        vis = instance_map[sl] == k + 1
        rgb = _person_colours(p, labels, np.random.default_rng(p.texture_seed))
        img[sl][vis] = rgb[vis]
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    noise_rng = np.random.default_rng(background_seed + 1)
    img += noise_rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2.0)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)

    num = len(people)
    keypoints = np.zeros((num, NUM_JOINTS, 3), np.float32)
    boxes = np.zeros((num, 4), np.float32)
    for k, p in enumerate(people):
        keypoints[k] = _joint_visibility(person_joints(p), k + 1, p, part_map, instance_map)
        ys, xs = np.nonzero(instance_map == k + 1)
        boxes[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return SyntheticSample(image=image, part_map=part_map, instance_map=instance_map,
                           keypoints=keypoints, boxes=boxes, people=tuple(people))


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------
def _hsv_colour(rng: np.random.Generator, s_range=(0.3, 1.0), v_range=(0.3, 1.0)) -> BGR:
    hsv = np.array([[[rng.uniform(0, 180), rng.uniform(*s_range) * 255,
                      rng.uniform(*v_range) * 255]]], np.float32).astype(np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _distinct_colour(rng: np.random.Generator, avoid: Sequence[BGR], min_dist: float = 90.0,
                     **kw) -> BGR:
    col = _hsv_colour(rng, **kw)
    for _ in range(20):
        if all(np.linalg.norm(np.subtract(col, a, dtype=np.float64)) >= min_dist for a in avoid):
            break
        col = _hsv_colour(rng, **kw)
    return col


def _pair(rng: np.random.Generator, lo: float, hi: float) -> Tuple[float, float]:
    return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))


def sample_person_params(rng: np.random.Generator, image_size: Tuple[int, int],
                         height_range: Tuple[float, float] = DEFAULT_HEIGHT_RANGE) -> PersonParams:
    """Draw a random person (pose within :data:`JOINT_LIMITS`, appearance, placement).

    ``height_range`` is the person height as a fraction of the image height. The pelvis is
    placed anywhere from 8% left of the image to 8% right of it and between 30% and 80% of the
    image height, so people can be partly outside the image.
    """
    H, W = int(image_size[0]), int(image_size[1])
    lim = JOINT_LIMITS
    height = float(rng.uniform(*height_range)) * H
    pelvis = (float(rng.uniform(-0.08, 1.08) * W), float(rng.uniform(0.3, 0.8) * H))
    yaw = float(rng.uniform(-65, 65))

    def abduction(lo: float, hi: float, a: float, b: float) -> float:
        return float(lo + (hi - lo) * rng.beta(a, b))

    sa = (abduction(*lim["shoulder_abduction"], 1.3, 3.0), abduction(*lim["shoulder_abduction"], 1.3, 3.0))
    ef = (abduction(*lim["elbow_flexion"], 1.2, 2.0), abduction(*lim["elbow_flexion"], 1.2, 2.0))
    ha = (abduction(*lim["hip_abduction"], 1.5, 3.0), abduction(*lim["hip_abduction"], 1.5, 3.0))
    skin_t = float(rng.uniform())
    light, dark = np.array([170, 195, 235]), np.array([45, 70, 110])
    skin = tuple(int(c) for c in np.clip(dark + (light - dark) * skin_t + rng.normal(0, 8, 3), 0, 255))
    if rng.random() < 0.75:
        hair = tuple(int(c) for c in rng.uniform(10, 60, size=3))
    else:
        hair = _hsv_colour(rng, (0.3, 0.8), (0.4, 0.9))
    top = _distinct_colour(rng, [skin, hair], s_range=(0.35, 1.0), v_range=(0.35, 1.0))
    top2 = _distinct_colour(rng, [top], 70.0) if rng.random() < 0.35 else None
    bottom = _distinct_colour(rng, [top, skin], s_range=(0.1, 0.9), v_range=(0.15, 0.8))
    shoes = _distinct_colour(rng, [bottom, skin], 70.0, s_range=(0.0, 0.8), v_range=(0.05, 0.6))
    return PersonParams(
        pelvis=pelvis,
        height=height,
        facing_camera=bool(rng.random() < 0.7),
        width_scale=float(max(math.cos(math.radians(yaw)), 0.35)),
        near_side="left" if (yaw > 0) == (rng.random() < 0.9) else "right",
        build=float(rng.uniform(0.8, 1.25)),
        torso_lean=float(rng.uniform(*lim["torso_lean"])),
        neck_angle=float(rng.uniform(*lim["neck_angle"])),
        shoulder_abduction=sa,
        elbow_flexion=ef,
        hip_abduction=ha,
        knee_angle=_pair(rng, *lim["knee_angle"]),
        upper_arm_foreshortening=_pair(rng, *lim["upper_arm_foreshortening"]),
        forearm_foreshortening=_pair(rng, *lim["forearm_foreshortening"]),
        thigh_foreshortening=_pair(rng, *lim["thigh_foreshortening"]),
        shin_foreshortening=_pair(rng, *lim["shin_foreshortening"]),
        skin=skin,
        hair=hair,
        top=top,
        top_secondary=top2,
        stripe_period=float(rng.uniform(0.02, 0.06) * height),
        stripe_angle=float(rng.uniform(0, 180)),
        bottom=bottom,
        shoes=shoes,
        torso_part=TORSO_SKIN if rng.random() < 0.15 else TEE_SHIRT,
        barefoot=bool(rng.random() < 0.25),
        sleeve_length=float(rng.choice([0.0, rng.uniform(0.25, 0.6), 1.0], p=[0.2, 0.6, 0.2])),
        pants_length=float(rng.uniform(0.3, 1.0)),
        hair_line=float(rng.uniform(0.25, 0.45)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )


def generate_synthetic_image(seed: int, image_size: Tuple[int, int] = (128, 128),
                             max_people: int = 4, min_people: int = 1,
                             height_range: Tuple[float, float] = DEFAULT_HEIGHT_RANGE,
                             min_visible_pixels: int = 16, min_main_fraction: float = 0.03,
                             max_attempts: int = 100) -> SyntheticSample:
    """Generate one synthetic multi-person image.

    Args:
        seed: seeds ``np.random.default_rng``; same seed and arguments -> identical sample.
        image_size: ``(H, W)``.
        max_people: the number of people drawn is uniform in ``[min_people, max_people]``;
            fully hidden ones are dropped afterwards, so ``P <= max_people``.
        min_people: lower bound of the number drawn (>= 1).
        height_range: person height range as a fraction of the image height.
        min_visible_pixels: people with fewer visible pixels are removed from the scene
            (fully hidden people are always removed).
        min_main_fraction: the largest visible person must cover at least this fraction of
            the image, so no image holds only slivers of people.
        max_attempts: scenes are redrawn (from the same generator) until the conditions above
            hold; raises ``RuntimeError`` after this many attempts.
    """
    if not 1 <= min_people <= max_people:
        raise ValueError(f"need 1 <= min_people <= max_people, got {min_people}, {max_people}")
    if max_people > 255:
        raise ValueError("max_people must be <= 255")
    rng = np.random.default_rng(seed)
    for _ in range(max_attempts):
        n = int(rng.integers(min_people, max_people + 1))
        background_seed = int(rng.integers(0, 2**31 - 2))
        people = [sample_person_params(rng, image_size, height_range) for _ in range(n)]
        sample = render_people(people, image_size, background_seed, min_visible_pixels)
        if sample.num_people == 0:
            continue
        largest = np.bincount(sample.instance_map.ravel())[1:].max()
        if largest >= min_main_fraction * sample.instance_map.size:
            return sample
    raise RuntimeError(f"seed {seed}: no acceptable scene after {max_attempts} attempts")


# ----------------------------------------------------------------------------------------------
# Visualisation
# ----------------------------------------------------------------------------------------------
def _palette(n: int, offset: float) -> np.ndarray:
    pal = np.zeros((n, 3), np.uint8)
    for i in range(1, n):
        hue = ((i * 0.618033988749895 + offset) % 1.0) * 180
        sat = 255 if i % 2 else 170
        val = 255 if (i // 2) % 2 else 200
        hsv = np.array([[[hue, sat, val]]], np.float32).astype(np.uint8)
        pal[i] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return pal


_PART_PALETTE = _palette(256, 0.0)
_INSTANCE_PALETTE = _palette(256, 0.37)


def colorize_part_map(part_map: np.ndarray) -> np.ndarray:
    """BGR visualisation of a part map (fixed colour per part id, black background)."""
    return _PART_PALETTE[part_map]


def colorize_instance_map(instance_map: np.ndarray) -> np.ndarray:
    """BGR visualisation of an instance map (fixed colour per id, black background)."""
    return _INSTANCE_PALETTE[np.asarray(instance_map).astype(np.int64) % 256]


def draw_preview(image: np.ndarray, part_map: np.ndarray, instance_map: np.ndarray,
                 keypoints: Optional[np.ndarray] = None, boxes: Optional[np.ndarray] = None,
                 scale: int = 2) -> np.ndarray:
    """Side-by-side ``[image + skeletons | parts | instances]`` BGR panel, upscaled."""
    h, w = part_map.shape
    size = (w * scale, h * scale)
    im = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
    parts = cv2.resize(colorize_part_map(part_map), size, interpolation=cv2.INTER_NEAREST)
    inst = cv2.resize(colorize_instance_map(instance_map), size, interpolation=cv2.INTER_NEAREST)
    limbs = MHP_V2_SCHEMA.limbs
    left = {i for i, n in enumerate(MHP_V2_SCHEMA.keypoint_names) if n.startswith("Left")}
    right = {i for i, n in enumerate(MHP_V2_SCHEMA.keypoint_names) if n.startswith("Right")}

    def pt(j):
        return (int(round(j[0] * scale + (scale - 1) / 2)), int(round(j[1] * scale + (scale - 1) / 2)))

    if keypoints is not None:
        for kp in keypoints:
            for a, b in limbs:
                if kp[a, 2] > 0 and kp[b, 2] > 0:
                    cv2.line(im, pt(kp[a]), pt(kp[b]), (255, 255, 255), 1, cv2.LINE_AA)
            for j, (x, y, v) in enumerate(kp):
                if v <= 0:
                    continue
                col = (0, 255, 0) if j in left else (0, 0, 255) if j in right else (255, 255, 0)
                cv2.circle(im, pt((x, y)), 3 if v == 2 else 2, col, -1 if v == 2 else 1)
    if boxes is not None:
        for b in boxes:
            cv2.rectangle(inst, (int(b[0] * scale), int(b[1] * scale)),
                          (int(b[2] * scale) - 1, int(b[3] * scale) - 1), (255, 255, 255), 1)
    return np.concatenate([im, parts, inst], axis=1)
