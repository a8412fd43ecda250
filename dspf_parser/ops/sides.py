"""Left and right of the decoded people, from the way each person faces (an addition to the paper).

Anatomical left/right labels (``Left-arm`` is the arm on the person's own left) are the
exclusive-or of two facts: on which side of the body a limb is drawn on screen, and whether the
person faces the camera. A convolutional head learns that exclusive-or slowly: the recipe model
of ``configs/synthetic/dspf_R18_tiny.yaml`` labels about a third of the left/right part pixels
with the wrong side and swaps limbs of its skeletons, while it separates face from hair well.
The decoded person resolves it once for all of its pixels and joints:

1. :func:`person_facing`: a person whose head pixels (those whose DSPF vector reaches a head
   joint) are mostly hair faces away, otherwise the camera (part classes ``Face`` and ``Hair``);
2. :func:`orient_chains`: the person's left is the screen's right when it faces the camera (the
   side perpendicular to its torso axis, shoulders/thorax over hips/pelvis); each limb chain
   rooted at a shoulder or hip pair (shoulder-elbow-wrist, hip-knee-ankle) whose root joints lie
   on the wrong sides is swapped with its mirror chain, unless the keypoint maps tell its left
   joints from its right ones (:func:`chain_support`: exact maps always keep their skeletons);
3. :func:`resolve_part_sides`: a part pixel of a sided class (``Left-arm``/``Right-arm``, ...)
   takes the side of the joint that its DSPF vector reaches (the argmin joint of Eq. 17), unless
   the part map prefers the other side by more than ``keep_ratio``.

With camera-frame labels (``MODEL.DSPF.SIDE_LABELS camera``) the network is trained on targets
whose people facing away have left and right exchanged (:func:`person_facing` on the annotation,
:func:`face_camera`); the decoding then orients and relabels as if everyone faced the camera and
exchanges the sides of the people found facing away back (:func:`face_camera` again).

Pure torch, no Python loop over people or pixels. Schemas without ``Face`` and ``Hair`` classes or
without head, shoulder and hip joints have no :class:`SideLayout` (nothing to resolve).
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["SIDE_LABELS", "SideLayout", "chain_support", "coinciding_mirrors", "face_camera", "person_facing", "orient_chains",
           "resolve_part_sides", "side_of_name"]


#: What the sided channels of the maps mean (``MODEL.DSPF.SIDE_LABELS``): the person's own side
#: as annotated, or its own side if it faced the camera.
SIDE_LABELS = ("anatomical", "camera")


def side_of_name(name: str) -> int:
    """1 for a left label, 2 for a right one (the word anywhere in the name), 0 otherwise."""
    low = name.lower()
    return 1 if "left" in low else 2 if "right" in low else 0


@dataclass(frozen=True)
class SideLayout:
    """What the side resolution reads of a schema.

    Attributes:
        face_class, hair_class: part ids of ``Face`` and ``Hair``.
        part_side: per part class, 0 centre, 1 left, 2 right.
        part_mate: per part class, its mirror class (itself for a centre class).
        keypoint_side: per joint type, 0 centre, 1 left, 2 right.
        keypoint_mate: per joint type, its mirror type (itself for a centre joint).
        head: joint types of the head (``*head*``, ``*neck*``): their pixels tell the facing.
        upper, lower: joint types of the upper (shoulders, thorax, neck) and lower (hips,
            pelvis) torso: the torso axis points from the lower mean to the upper mean.
        chains: per root pair, the ``(left, right)`` joint pairs of its chain, the root pair
            first (e.g. shoulders, elbows, wrists).
        chain_refs: per chain, the centre joints of the root's torso half (thorax, neck for the
            shoulders; pelvis for the hips): the reference for a root whose mate is missing.
    """

    face_class: int
    hair_class: int
    part_side: Tuple[int, ...]
    part_mate: Tuple[int, ...]
    keypoint_side: Tuple[int, ...]
    keypoint_mate: Tuple[int, ...]
    head: Tuple[int, ...]
    upper: Tuple[int, ...]
    lower: Tuple[int, ...]
    chains: Tuple[Tuple[Tuple[int, int], ...], ...]
    chain_refs: Tuple[Tuple[int, ...], ...]

    @classmethod
    def of(cls, schema, side_labels: str = "anatomical") -> Optional["SideLayout"]:
        """:meth:`from_schema` of an object with a schema's fields (``name``, ``part_classes``,
        ``part_flip``, ``keypoint_names``, ``keypoint_flip``, ``limbs``: a ``HumanSchema``).

        Raises:
            ValueError: for an unknown ``side_labels`` (``MODEL.DSPF.SIDE_LABELS``, one of
                :data:`SIDE_LABELS`), or ``"camera"`` with a schema that has no layout (nothing
                tells which way its people face).
        """
        if side_labels not in SIDE_LABELS:
            raise ValueError(f"MODEL.DSPF.SIDE_LABELS must be one of {SIDE_LABELS}, got {side_labels!r}")
        layout = cls.from_schema(schema.part_classes, schema.part_flip, schema.keypoint_names,
                                 schema.keypoint_flip, schema.limbs)
        if layout is None and side_labels == "camera":
            raise ValueError(f"MODEL.DSPF.SIDE_LABELS camera needs Face and Hair part classes and shoulder "
                             f"and hip joints; schema {schema.name!r} has not")
        return layout

    @classmethod
    def from_schema(cls, part_classes: Sequence[str], part_flip: Sequence[int], keypoint_names: Sequence[str],
                    keypoint_flip: Sequence[int], limbs: Sequence[Tuple[int, int]]) -> Optional["SideLayout"]:
        """The layout of a schema (its names, flip permutations and limbs), or ``None`` when it
        has no ``Face``/``Hair`` part classes or no shoulder/hip joints.

        Roots are the sided joints named ``*shoulder*`` or ``*hip*``; a chain is its left root
        and the left joints reachable from it through limbs between left joints that avoid
        the other roots, each paired with its mirror joint."""
        low = [n.lower() for n in part_classes]
        if "face" not in low or "hair" not in low:
            return None
        names = [n.lower() for n in keypoint_names]
        kside = tuple(side_of_name(n) for n in keypoint_names)

        def named(*words: str) -> Tuple[int, ...]:
            return tuple(i for i, n in enumerate(names) if any(w in n for w in words))

        head, upper, lower = named("head", "neck"), named("shoulder", "thorax", "neck"), named("hip", "pelvis")
        roots = [i for i in named("shoulder", "hip") if kside[i] == 1]
        if not head or not upper or not lower or not roots:
            return None
        chains, refs = [], []
        for root in roots:
            members, frontier = [root], [root]
            while frontier:
                j = frontier.pop()
                for a, b in limbs:
                    other = b if a == j else a if b == j else None
                    if (other is not None and kside[other] == 1 and other not in members
                            and other not in roots):
                        members.append(other)
                        frontier.append(other)
            chains.append(tuple((m, int(keypoint_flip[m])) for m in members))
            half = upper if root in upper else lower
            refs.append(tuple(j for j in half if kside[j] == 0))
        return cls(low.index("face"), low.index("hair"), tuple(side_of_name(n) for n in part_classes),
                   tuple(int(m) for m in part_flip), kside, tuple(int(m) for m in keypoint_flip), head, upper,
                   lower, tuple(chains), tuple(refs))


def person_facing(labels: Tensor, owners: Tensor, joint_types: Optional[Tensor], num_people: int, layout: SideLayout,
                  min_head_pixels: int = 4, away_below: float = 0.12, camera_above: float = 0.15) -> Tensor:
    """Which way each person faces, from its head pixels: the person pixels whose argmin joint
    of Eq. 17 is a head joint (:attr:`SideLayout.head`), so that the pixels of another person's
    head that Eq. 17 gave to this one (its arm or shoulder joints nearer) do not count.

    Args:
        labels: ``[N]`` long part labels of person pixels.
        owners: ``[N]`` long ``p + 1`` of the pixel's person ``p`` (0: none).
        joint_types: ``[N]`` long type of each pixel's argmin joint; ``None``: every face and
            hair pixel of a person counts (annotated people, whose pixels are their own).
        num_people: ``P``.
        layout: the schema's :class:`SideLayout`.
        min_head_pixels: a person with fewer face + hair head pixels is undecided.
        away_below, camera_above: a person faces away when less than ``away_below`` of its
            face + hair head pixels are face, the camera when at least ``camera_above`` are, and
            is undecided in between. On the exact maps of ``synthetic_humans_val`` and
            ``synthetic_humans_crowd_val`` (538 people whose shoulders or hips tell the facing),
            a face share under 0.05 meant facing away for 165 of 175 people, 0.05-0.15 for 4 of
            9, 0.15-0.25 for 1 of 6 and above 0.25 for 3 of 348. The recipe model also paints
            6-10% face on the back of some heads: 0.12 rather than 0.05 lifts its val pose AP
            44.2 -> 45.6 (the exact maps' figures do not move: their skeletons are kept).

    Returns:
        ``[P]`` float: 1 facing the camera, -1 facing away, 0 undecided.
    """
    ids = owners
    if joint_types is not None:
        is_head = torch.zeros(len(layout.keypoint_side), dtype=torch.bool, device=labels.device)
        is_head[list(layout.head)] = True
        ids = torch.where(is_head[joint_types], owners, torch.zeros_like(owners))
    face = torch.bincount(ids[labels == layout.face_class], minlength=num_people + 1)[1:num_people + 1]
    hair = torch.bincount(ids[labels == layout.hair_class], minlength=num_people + 1)[1:num_people + 1]
    head = face + hair
    facing = torch.where(face >= camera_above * head, 1.0, torch.where(face < away_below * head, -1.0, 0.0))
    return torch.where(head >= min_head_pixels, facing, torch.zeros_like(facing))


def _means_of(poses: Tensor, groups: Sequence[Sequence[int]]) -> Tuple[Tensor, Tensor]:
    """Mean ``[P, G, 2]`` of the present joints of each group of ``groups`` (joint types) and
    whether the group has one ``[P, G]``; the groups are padded with a joint that is never
    present, which adds an exact zero."""
    num_people, num_types = poses.shape[:2]
    width = max((len(g) for g in groups), default=0)
    if width == 0:
        return poses.new_zeros(num_people, len(groups), 2), torch.zeros(num_people, len(groups), dtype=torch.bool,
                                                                        device=poses.device)
    index = torch.as_tensor([list(g) + [num_types] * (width - len(g)) for g in groups], device=poses.device)
    padded = torch.cat([poses, poses.new_zeros(num_people, 1, poses.shape[2])], dim=1)
    sub = padded[:, index]  # [P, G, width, 3]
    present = (sub[..., 2] > 0).to(poses.dtype)
    count = present.sum(dim=2)
    return (sub[..., :2] * present[..., None]).sum(dim=2) / count.clamp_min(1)[..., None], count > 0


def chain_support(heatmaps: Tensor, poses: Tensor, layout: SideLayout, stride: int) -> Tensor:
    """How much the keypoint maps back each limb chain's sides as grouped.

    For each sided joint ``j`` of a chain that a person has, the contrast
    ``H_j(x_j) - H_m(x_j)`` between the keypoint map ``H_j`` of its own type and the map ``H_m`` of
    its mirror type, read at the joint's grid cell: about 1 when the joint sits on its own type's
    disk only (exact maps), about 0 when the maps cannot tell left from right there, negative
    when they say the other way round. A chain's support is the mean over its present joints, so
    a chain whose mirror is missing is judged on its own joints.

    Args:
        heatmaps: ``[K, h, w]`` keypoint probabilities on the stride-``stride`` grid.
        poses: ``[P, K, 3]`` in input pixels.
        layout: the schema's :class:`SideLayout`.
        stride: grid stride (cell ``[i, j]`` stands for input ``(j * s + s // 2, i * s + s // 2)``).

    Returns:
        ``[P, chains]`` mean contrast over the chain's present joints (0 where it has none).
    """
    h, w = heatmaps.shape[-2:]
    col = ((poses[..., 0] - stride // 2) / stride).round().long().clamp(0, w - 1)  # [P, K]
    row = ((poses[..., 1] - stride // 2) / stride).round().long().clamp(0, h - 1)
    out = []
    for chain in layout.chains:
        own = torch.as_tensor([j for pair in chain for j in pair], device=poses.device)  # left, right, ...
        mate = torch.as_tensor([j for a, b in chain for j in (b, a)], device=poses.device)
        r, c = row[:, own], col[:, own]
        contrast = heatmaps[own, r, c] - heatmaps[mate, r, c]  # [P, 2 * pairs]
        present = (poses[:, own, 2] > 0).to(heatmaps.dtype)
        out.append((contrast * present).sum(dim=1) / present.sum(dim=1).clamp_min(1))
    return torch.stack(out, dim=1) if out else poses.new_zeros(poses.shape[0], 0)


def orient_chains(poses: Tensor, facing: Tensor, layout: SideLayout, support: Optional[Tensor] = None,
                  keep_support: float = 0.5, min_cosine: float = 0.5,
                  min_spread: float = 0.1) -> Tuple[Tensor, Tensor]:
    """Swap each limb chain of each person whose root joints lie on the wrong side.

    A person's lateral direction ``lat = (-up_y, up_x)`` is perpendicular to its torso axis
    ``up`` (upper torso mean minus lower torso mean; image ``y`` down): the screen's right for an
    upright person. Its left is ``lat`` when it faces the camera and ``-lat`` when it faces away.
    A chain is on the wrong side when its left root lies less far along the person's left than
    its right root (or than the centre joints of its torso half when the mate is missing). It is
    swapped with its mirror chain unless the keypoint maps back it (``support`` at least
    ``keep_support``, :func:`chain_support`), the person is undecided (``facing == 0``) or lacks
    a torso half, or the root pair runs within ``acos(min_cosine)`` of the torso axis (a person
    seen from the side), or its roots lie less than ``min_spread`` torso lengths apart across
    the torso (two detections of one joint, one under each side's name).

    Args:
        poses: ``[P, K, 3]`` ``(x, y, score)``, score 0 for a missing joint.
        facing: ``[P]`` from :func:`person_facing`.
        layout: the schema's :class:`SideLayout`.
        support: ``[P, chains]`` from :func:`chain_support` (``None``: no chain is kept for it).
        keep_support: the support that keeps a chain's sides.
        min_cosine: least ``|cos|`` of the angle between a chain's root pair and ``lat``.
        min_spread: least lateral distance of a chain's roots (or root and torso centre), in
            torso lengths.

    Returns:
        The oriented poses ``[P, K, 3]`` and ``[P, K]`` long: the joint type that each joint type
        of ``poses`` became (the identity where nothing was swapped).
    """
    num_people, num_types = poses.shape[:2]
    device = poses.device
    perm = torch.arange(num_types, device=device).expand(num_people, num_types).clone()
    if num_people == 0:
        return poses, perm
    if not layout.chains:
        return poses.clone(), perm
    halves, has_half = _means_of(poses, (layout.upper, layout.lower))  # [P, 2, 2], [P, 2]
    up = halves[:, 0] - halves[:, 1]
    left = (torch.stack([-up[:, 1], up[:, 0]], dim=1) * facing[:, None])[:, None]  # [P, 1, 2]
    # All chains at once, [P, C] (C chains): the roots, the centre of each root's torso half.
    roots = torch.as_tensor([chain[0] for chain in layout.chains], device=device)  # [C, 2] (left, right)
    ref, has_ref = _means_of(poses, layout.chain_refs)  # [P, C, 2], [P, C]
    has_l, has_r = poses[:, roots[:, 0], 2] > 0, poses[:, roots[:, 1], 2] > 0
    xl, xr = poses[:, roots[:, 0], :2], poses[:, roots[:, 1], :2]
    span = torch.where((has_l & has_r)[..., None], xl - xr, torch.where(has_l[..., None], xl - ref, ref - xr))
    gap = (span * left).sum(dim=2)
    reach = left.norm(dim=2)  # [P, 1]: the torso length
    clear = (gap.abs() > min_cosine * span.norm(dim=2) * reach) & (gap.abs() >= min_spread * reach ** 2)
    usable = ((has_l & has_r) | ((has_l | has_r) & has_ref)) & has_half.all(dim=1, keepdim=True) & clear
    swap = usable & (facing != 0)[:, None] & (gap < 0)  # [P, C]
    if support is not None:
        swap = swap & (support < keep_support)
    # Every (left, right) pair of every chain takes its chain's decision.
    pairs = [(a, b, c) for c, chain in enumerate(layout.chains) for a, b in chain]
    a, b, c = torch.as_tensor(pairs, device=device).unbind(1)
    swapped = swap[:, c]  # [P, pairs]
    perm[:, a] = torch.where(swapped, b, a)
    perm[:, b] = torch.where(swapped, a, b)
    return poses.gather(1, perm[..., None].expand(-1, -1, poses.shape[2])), perm


def face_camera(poses: Tensor, labels: Tensor, owners: Tensor, away: Tensor, layout: SideLayout) -> Tuple[Tensor, Tensor]:
    """Exchange left and right of the people in ``away``: their joint types and their part
    labels. It turns anatomical labels into camera-frame ones (``MODEL.DSPF.SIDE_LABELS
    camera``: the side a part would have if its person faced the camera) and back: it is its
    own inverse.

    Args:
        poses: ``[P, K, 3]``.
        labels: ``[N]`` long part labels of person pixels.
        owners: ``[N]`` long ``p + 1`` of each pixel's person ``p`` (0: none).
        away: ``[P]`` bool, the people to exchange.
        layout: the schema's :class:`SideLayout`.

    Returns:
        The poses ``[P, K, 3]`` and the labels ``[N]``.
    """
    mate = torch.as_tensor(layout.keypoint_mate, device=poses.device)
    poses = torch.where(away[:, None, None], poses[:, mate], poses)
    flip = torch.cat([away.new_zeros(1), away])[owners]
    part_mate = torch.as_tensor(layout.part_mate, device=labels.device)
    return poses, torch.where(flip, part_mate[labels], labels)


def coinciding_mirrors(poses: Tensor, layout: SideLayout, radius: float) -> Tensor:
    """``[P, K]`` bool: the sided joints of each person whose mirror joint (the other side's
    joint of the same kind, :attr:`SideLayout.keypoint_mate`) the person also has, within
    ``radius`` of it: one physical joint detected under both names (a trained model's keypoint
    maps often put a left and a right ankle on one ankle), which cannot tell its pixels' side.

    Args:
        poses: ``[P, K, 3]`` ``(x, y, score)``, score 0 for a missing joint.
        layout: the schema's :class:`SideLayout`.
        radius: largest distance of the two joints (units of ``poses``).
    """
    mate = torch.as_tensor(layout.keypoint_mate, device=poses.device)
    sided = mate != torch.arange(poses.shape[1], device=poses.device)
    gap = poses[..., :2] - poses[:, mate, :2]
    close = gap[..., 0] * gap[..., 0] + gap[..., 1] * gap[..., 1] <= radius * radius
    return sided & (poses[..., 2] > 0) & (poses[:, mate, 2] > 0) & close


def resolve_part_sides(labels: Tensor, joint_types: Tensor, values: Tensor, layout: SideLayout,
                       keep_ratio: float, undecided: Optional[Tensor] = None) -> Tensor:
    """Side of the sided part pixels from the joint their DSPF vector reaches.

    Args:
        labels: ``[N]`` long part labels of some person pixels.
        joint_types: ``[N]`` long joint type of each pixel's argmin joint of Eq. 17 (after
            :func:`orient_chains`).
        values: ``[2, N]`` the part map's values at the pixels for their label and for the
            label's mirror class (:attr:`SideLayout.part_mate`).
        layout: the schema's :class:`SideLayout`.
        keep_ratio: a pixel keeps its side when that side's value exceeds the other side's
            times this (exact, one-hot part maps always keep theirs).
        undecided: ``[N]`` bool, the pixels whose joint cannot tell a side (its mirror joint
            coincides with it, :func:`coinciding_mirrors`): they keep the part map's side.

    Returns:
        ``[N]`` long labels: a pixel of a sided class whose joint is sided takes the class of its
        joint's side, unless the part map keeps it.
    """
    part_side = torch.as_tensor(layout.part_side, device=labels.device)
    mate = torch.as_tensor(layout.part_mate, device=labels.device)[labels]
    side = part_side[labels]
    joint_side = torch.as_tensor(layout.keypoint_side, device=labels.device)[joint_types]
    agrees = side == joint_side
    own, other = values[0], values[1]
    keep = own > keep_ratio * other
    if undecided is not None:
        keep = keep | undecided
    change = (side > 0) & (joint_side > 0) & ~agrees & ~keep
    return torch.where(change, mate, labels)
