"""Left/right resolution of decoded people (dspf_parser.ops.sides): hand-computed cases, the
schemas' layouts, and the decoding of exact maps unchanged by it."""
import os
import sys

import pytest
import torch

from dspf_parser.data.categories import DENSEPOSE_SCHEMA, MHP_V2_SCHEMA, PASCAL_PERSON_PART_SCHEMA
from dspf_parser.modeling.meta_arch import side_layout
from dspf_parser.ops.sides import (
    SideLayout, chain_support, coinciding_mirrors, face_camera, orient_chains, person_facing, resolve_part_sides,
    side_of_name,
)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))

PARTS = MHP_V2_SCHEMA.part_classes
JOINTS = MHP_V2_SCHEMA.keypoint_names
P, J = PARTS.index, JOINTS.index
LAYOUT = side_layout("mhp_v2")


def test_side_of_name():
    assert [side_of_name(n) for n in ("Left-arm", "UpperRight-Leg", "left_wrist", "Face", "Thorax")] == [1, 2, 1, 0, 0]


def test_mhp_v2_layout_by_name():
    """Chains rooted at the left hip and the left shoulder (MHPv2's 16 joints), each paired
    with its mirror, the root first; their torso-half centre joints as references."""
    lay = LAYOUT
    assert (lay.face_class, lay.hair_class) == (P("Face"), P("Hair"))
    hips = ((J("Left-hip"), J("Right-hip")), (J("Left-knee"), J("Right-knee")), (J("Left-ankle"), J("Right-ankle")))
    shoulders = ((J("Left-shoulder"), J("Right-shoulder")), (J("Left-elbow"), J("Right-elbow")),
                 (J("Left-wrist"), J("Right-wrist")))
    assert sorted(lay.chains) == sorted((hips, shoulders))
    refs = dict(zip(lay.chains, lay.chain_refs))
    assert refs[hips] == (J("Pelvis"),) and refs[shoulders] == (J("Thorax"), J("Upper-neck"))
    assert set(lay.head) == {J("Upper-neck"), J("Head-top")}
    assert lay.part_mate[P("Left-arm")] == P("Right-arm") and lay.part_mate[P("Right-shoe")] == P("Left-shoe")
    assert lay.part_mate[P("Pants")] == P("Pants") and lay.part_side[P("Pants")] == 0
    assert lay.part_side[P("Left-leg")] == 1 and lay.part_side[P("Right-foot")] == 2
    assert lay.keypoint_side[J("Right-ankle")] == 2 and lay.keypoint_side[J("Pelvis")] == 0


def test_schemas_without_face_and_hair_have_no_layout():
    for schema in (DENSEPOSE_SCHEMA, PASCAL_PERSON_PART_SCHEMA):
        assert side_layout(schema.name) is None
    # Face and hair but no hip or shoulder joints: nothing to orient.
    assert SideLayout.from_schema(("Background", "Face", "Hair"), (0, 1, 2), ("Head-top", "Thorax"), (0, 1),
                                  [(0, 1)]) is None


def test_person_facing_counts_head_pixels_only():
    """Person 1: 6 face + 2 hair head pixels (share 0.75: camera); person 2: 2 face + 14 hair
    (0.125, between 0.12 and 0.15: undecided); person 3: 20 hair (away) and 9 face pixels whose
    argmin joint is a shoulder (not head pixels); person 4: 3 head pixels (too few); person 5:
    1 face, 9 hair (0.1: away)."""
    head, shoulder = J("Head-top"), J("Left-shoulder")
    face, hair = P("Face"), P("Hair")
    rows = [(face, 1, head)] * 6 + [(hair, 1, head)] * 2 + [(face, 2, head)] * 2 + [(hair, 2, J("Upper-neck"))] * 14
    rows += [(hair, 3, head)] * 20 + [(face, 3, shoulder)] * 9 + [(face, 4, head)] * 3
    rows += [(face, 5, head)] + [(hair, 5, head)] * 9 + [(P("Pants"), 5, head)] * 50 + [(face, 0, 0)] * 30
    labels, owners, joints = (torch.tensor(c) for c in zip(*rows))
    facing = person_facing(labels, owners, joints, 5, LAYOUT)
    assert facing.tolist() == [1.0, 0.0, -1.0, 0.0, -1.0]


def upright_pose(left_x=60.0, right_x=40.0):
    """One upright person (image y down), torso from y 80 (hips) to 40 (shoulders); the left
    shoulder, elbow and wrist at ``left_x``, the right ones at ``right_x``; hips likewise."""
    pose = torch.zeros(len(JOINTS), 3)
    at = {"Thorax": (50, 40), "Upper-neck": (50, 30), "Head-top": (50, 15), "Pelvis": (50, 80),
          "Left-shoulder": (left_x, 40), "Left-elbow": (left_x + 2, 60), "Left-wrist": (left_x + 4, 78),
          "Right-shoulder": (right_x, 40), "Right-elbow": (right_x - 2, 60), "Right-wrist": (right_x - 4, 78),
          "Left-hip": (left_x - 4, 80), "Left-knee": (left_x - 4, 110), "Left-ankle": (left_x - 4, 140),
          "Right-hip": (right_x + 4, 80), "Right-knee": (right_x + 4, 110), "Right-ankle": (right_x + 4, 140)}
    for name, (x, y) in at.items():
        pose[J(name)] = torch.tensor([x, y, 1.0])
    return pose


def test_orient_chains_by_facing():
    """Left joints on the screen's right: right for a person facing the camera, swapped (both
    chains, every joint, the permutation saying so) for one facing away; undecided: kept."""
    pose = upright_pose()
    poses = pose[None].repeat(3, 1, 1)
    out, perm = orient_chains(poses, torch.tensor([1.0, -1.0, 0.0]), LAYOUT)
    assert torch.equal(out[0], pose) and torch.equal(out[2], pose)
    assert torch.equal(perm[0], torch.arange(16)) and torch.equal(perm[2], torch.arange(16))
    flip = torch.tensor(MHP_V2_SCHEMA.keypoint_flip)
    assert torch.equal(out[1], pose[flip]) and torch.equal(perm[1], flip)


def test_orient_chains_keeps_supported_chains_side_views_and_coincident_roots():
    pose = upright_pose()
    facing = torch.tensor([-1.0])
    shoulders = next(i for i, c in enumerate(LAYOUT.chains) if c[0][0] == J("Left-shoulder"))
    support = torch.zeros(1, 2)
    support[0, shoulders] = 0.6  # the keypoint maps back the arms: only the legs swap
    out, perm = orient_chains(pose[None], facing, LAYOUT, support, keep_support=0.5)
    for name in ("Left-shoulder", "Right-wrist"):
        assert torch.equal(out[0, J(name)], pose[J(name)]) and perm[0, J(name)] == J(name)
    assert torch.equal(out[0, J("Left-knee")], pose[J("Right-knee")]) and perm[0, J("Left-knee")] == J("Right-knee")
    # Seen from the side: the shoulders 12 px apart along the torso axis, 2 px across it.
    side = upright_pose(left_x=49.0, right_x=51.0)
    side[J("Left-shoulder"), 1] = 46.0
    side[J("Right-hip"), 0], side[J("Left-hip"), 0] = 50.0, 50.0
    side[J("Right-hip"), 1] = 70.0  # hips 10 px apart along the axis, 0 across
    out, perm = orient_chains(side[None], facing, LAYOUT)
    assert torch.equal(out[0], side) and torch.equal(perm[0], torch.arange(16))
    # A missing mate: the left shoulder alone on the screen's left of the thorax, facing the
    # camera, moves to the right chain.
    alone = upright_pose(left_x=40.0, right_x=60.0)
    alone[J("Right-shoulder")] = 0
    out, _ = orient_chains(alone[None], torch.tensor([1.0]), LAYOUT)
    assert torch.equal(out[0, J("Right-shoulder")], alone[J("Left-shoulder")]) and out[0, J("Left-shoulder"), 2] == 0
    assert torch.equal(out[0, J("Right-wrist")], alone[J("Left-wrist")])


def test_chain_support_on_hand_made_maps():
    """Exact disks (3x3 cells): each present joint on its own map only (contrast 1); a chain whose left and
    right joints were grouped the wrong way round reads -1; maps that do not tell the sides
    apart read 0; a chain whose mirror is missing is judged on its own joints."""
    stride, h, w = 4, 48, 24
    pose = upright_pose()
    maps = torch.zeros(16, h, w)
    for j in range(16):
        x, y = pose[j, :2]
        r, c = int((y - 2) // stride), int((x - 2) // stride)
        maps[j, r - 1:r + 2, c - 1:c + 2] = 1.0  # a 3x3-cell disk
    got = chain_support(maps, pose[None], LAYOUT, stride)
    assert got.tolist() == [[1.0, 1.0]]
    swapped = pose[torch.tensor(MHP_V2_SCHEMA.keypoint_flip)]
    assert chain_support(maps, swapped[None], LAYOUT, stride).tolist() == [[-1.0, -1.0]]
    blind = maps.clone()
    for chain in LAYOUT.chains:
        for a, b in chain:
            blind[a] = blind[b] = torch.maximum(maps[a], maps[b])
    assert chain_support(blind, pose[None], LAYOUT, stride).tolist() == [[0.0, 0.0]]
    half = pose.clone()
    half[[J("Right-hip"), J("Right-knee"), J("Right-ankle")]] = 0
    hips = next(i for i, c in enumerate(LAYOUT.chains) if c[0][0] == J("Left-hip"))
    assert chain_support(maps, half[None], LAYOUT, stride)[0, hips] == 1.0


def test_resolve_part_sides_hand_case():
    labels = torch.tensor([P("Left-arm"), P("Left-arm"), P("Right-leg"), P("Face"), P("Left-arm"), P("Left-shoe")])
    joints = torch.tensor([J("Right-elbow"), J("Left-elbow"), J("Left-knee"), J("Right-wrist"), J("Thorax"),
                           J("Right-ankle")])
    values = torch.tensor([[0.5, 0.9, 0.6, 1.0, 0.9, 0.99], [0.4, 0.1, 0.3, 0.0, 0.1, 0.01]])
    got = resolve_part_sides(labels, joints, values, LAYOUT, keep_ratio=50.0)
    # 0: right joint, the map barely prefers left -> Right-arm; 1: agrees; 2: left joint ->
    # Left-leg; 3: a centre class; 4: a centre joint; 5: the map prefers Left-shoe 99:1 > 50:1.
    assert got.tolist() == [P("Right-arm"), P("Left-arm"), P("Left-leg"), P("Face"), P("Left-arm"), P("Left-shoe")]


def test_coinciding_mirrors_hand_case():
    """Person 0: both ankles 1.5 px apart (one joint under two names), wrists 10 px apart, a
    left knee without its mate; person 1: both hips exactly on one point. Radius 2."""
    poses = torch.zeros(2, len(JOINTS), 3)
    for t, (x, y) in {J("Left-ankle"): (10.0, 50.0), J("Right-ankle"): (11.5, 50.0), J("Left-wrist"): (20.0, 5.0),
                      J("Right-wrist"): (30.0, 5.0), J("Left-knee"): (10.0, 40.0), J("Pelvis"): (15.0, 30.0)}.items():
        poses[0, t] = torch.tensor([x, y, 0.9])
    for t in (J("Left-hip"), J("Right-hip"), J("Thorax")):
        poses[1, t] = torch.tensor([40.0, 30.0, 0.8])
    got = coinciding_mirrors(poses, LAYOUT, 2.0)
    want = torch.zeros(2, len(JOINTS), dtype=torch.bool)
    want[0, [J("Left-ankle"), J("Right-ankle")]] = True
    want[1, [J("Left-hip"), J("Right-hip")]] = True  # the thorax on the same point is no mirror
    assert torch.equal(got, want)
    assert not coinciding_mirrors(poses, LAYOUT, 1.0)[0].any()


def test_resolve_part_sides_keeps_the_map_side_where_the_joint_cannot_tell():
    """Pixels whose joint coincides with its mirror keep the part map's side, however weakly
    the map prefers it; the others follow their joint as before."""
    labels = torch.tensor([P("Left-shoe"), P("Left-shoe"), P("Right-hand")])
    joints = torch.tensor([J("Right-ankle"), J("Right-ankle"), J("Left-wrist")])
    values = torch.tensor([[0.5, 0.5, 0.6], [0.4, 0.4, 0.3]])
    undecided = torch.tensor([True, False, False])
    got = resolve_part_sides(labels, joints, values, LAYOUT, keep_ratio=50.0, undecided=undecided)
    assert got.tolist() == [P("Left-shoe"), P("Right-shoe"), P("Left-hand")]


def test_exact_maps_decode_the_same_with_sides(tmp_path):
    """The oracle on synthetic val images: exact maps (one-hot part map, exact keypoint disks)
    and one damage level give the same figures whether the sides are resolved or not."""
    import oracle_eval

    def run(resolve):
        args = ["--config-file", "configs/synthetic/dspf_R18_tiny.yaml", "--dataset", "synthetic_humans_val",
                "--association", "exact", "--degrade", "0", "1", "--limit", "8",
                "--opts", "MODEL.DSPF.INFERENCE.RESOLVE_SIDES", str(resolve)]
        return {r["degrade"]: r for r in oracle_eval.main(args)}

    off, on = run(False), run(True)
    keys = ("AP_p_50", "AP_p_vol", "PCP_50", "AP_r_vol", "pose_AP")
    for level in (0, 1):
        assert {k: on[level][k] for k in keys} == pytest.approx({k: off[level][k] for k in keys})
    assert on[0]["AP_p_50"] >= 90


def test_face_camera_exchanges_the_sides_of_the_people_facing_away_only():
    pose = upright_pose()
    poses = torch.stack([pose, pose + torch.tensor([100.0, 0.0, 0.0])])
    labels = torch.tensor([P("Left-arm"), P("Left-arm"), P("Face"), P("Right-shoe"), P("Left-leg")])
    owners = torch.tensor([1, 2, 2, 2, 0])
    away = torch.tensor([False, True])
    got_poses, got_labels = face_camera(poses, labels, owners, away, LAYOUT)
    assert torch.equal(got_poses[0], poses[0])
    assert torch.equal(got_poses[1], poses[1][torch.tensor(MHP_V2_SCHEMA.keypoint_flip)])
    assert got_labels.tolist() == [P("Left-arm"), P("Right-arm"), P("Face"), P("Left-shoe"), P("Left-leg")]
    back = face_camera(got_poses, got_labels, owners, away, LAYOUT)  # its own inverse
    assert torch.equal(back[0], poses) and torch.equal(back[1], labels)


def test_camera_side_labels_in_the_mapper(tmp_path):
    """``SIDE_LABELS camera``: a person whose annotation shows only hair (facing away) has its
    part labels and joint types exchanged in the targets, also after a flip; a person with a
    face keeps them; a schema without face and hair is an error."""
    import cv2
    import numpy as np
    from detectron2.data import transforms as T

    from dspf_parser.data.dataset_mapper import DSPFDatasetMapper

    h, w = 40, 60
    img = np.zeros((h, w, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    annos = []
    for p, head in enumerate((P("Face"), P("Hair"))):
        parts = np.zeros((h, w), np.uint8)
        x0 = 5 + 30 * p
        parts[2:8, x0:x0 + 10] = head
        parts[10:20, x0:x0 + 5] = P("Left-arm")
        kps = np.zeros((len(JOINTS), 3), np.float32)
        kps[J("Left-wrist")] = (x0 + 2, 15, 2)
        kps[J("Head-top")] = (x0 + 5, 3, 2)
        cv2.imwrite(str(tmp_path / f"p{p}.png"), parts)
        annos.append({"person_id": p + 1, "parsing_file": str(tmp_path / f"p{p}.png"),
                      "keypoints": kps.reshape(-1).tolist(), "bbox": [0, 0, 1, 1]})
    record = {"file_name": str(tmp_path / "img.png"), "image_id": "img", "height": h, "width": w,
              "annotations": annos}

    def mapper(augs, side_labels):
        return DSPFDatasetMapper(True, augmentations=augs, image_format="BGR", schema=MHP_V2_SCHEMA, stride=1,
                                 keypoint_radius=2.0, limb_sigma=2.0, side_labels=side_labels)

    plain, camera = mapper([], "anatomical")(record), mapper([], "camera")(record)
    assert camera["part_seg"][15, 7] == P("Left-arm") and camera["part_seg"][15, 37] == P("Right-arm")
    assert camera["part_seg"][4, 40] == P("Hair")
    assert torch.equal(camera["part_seg"][:, :30], plain["part_seg"][:, :30])
    kp = camera["instances"].gt_keypoints.tensor
    assert kp[0, J("Left-wrist")].tolist() == [7.0, 15.0, 2.0]
    assert kp[1, J("Right-wrist")].tolist() == [37.0, 15.0, 2.0] and kp[1, J("Left-wrist"), 2] == 0
    assert torch.equal(camera["keypoint_heatmaps"][J("Right-wrist"), :, 30:], plain["keypoint_heatmaps"][J("Left-wrist"), :, 30:])
    flipped = mapper([T.RandomFlip(prob=1.0)], "camera")(record)
    # Mirrored, the away person's (anatomical) left arm is a right arm, and in the camera frame a left arm again.
    assert flipped["part_seg"][15, w - 1 - 37] == P("Left-arm") and flipped["part_seg"][15, w - 1 - 7] == P("Right-arm")
    with pytest.raises(ValueError, match="SIDE_LABELS camera"):
        DSPFDatasetMapper(True, augmentations=[], image_format="BGR", schema=DENSEPOSE_SCHEMA, stride=1,
                          keypoint_radius=2.0, limb_sigma=2.0, side_labels="camera")
    with pytest.raises(ValueError, match="SIDE_LABELS must be one of"):
        mapper([], "screen")


def test_camera_side_labels_decode_their_exact_maps():
    """``dspf_R18_tiny_camera_sides.yaml``: the exact camera-frame maps of 8 val images (the
    mapper's targets) decode back to the annotated, anatomical people (a floor: on the first
    8 images 94.7 / 95.2 against the anatomical config's 94.7 / 95.2)."""
    import oracle_eval

    rows = oracle_eval.main(["--config-file", "configs/synthetic/dspf_R18_tiny_camera_sides.yaml",
                             "--dataset", "synthetic_humans_val", "--association", "exact", "--limit", "8"])
    assert rows[0]["AP_p_50"] >= 90 and rows[0]["pose_AP"] >= 90


def test_decoding_settings_check_the_side_labels():
    from dspf_parser.ops.decoding import DecodingSettings

    DecodingSettings(MHP_V2_SCHEMA.limbs, 4, 6.0, sides=LAYOUT, side_labels="camera")
    with pytest.raises(ValueError, match="needs the schema's SideLayout"):
        DecodingSettings(MHP_V2_SCHEMA.limbs, 4, 6.0, side_labels="camera")
    with pytest.raises(ValueError, match="side_labels must be"):
        DecodingSettings(MHP_V2_SCHEMA.limbs, 4, 6.0, sides=LAYOUT, side_labels="screen")


@pytest.mark.parametrize("radius,expected", [(0.0, "Right-shoe"), (4.0, "Left-shoe")])
def test_decoding_keeps_the_map_side_at_coinciding_mirror_joints(radius, expected):
    """``_resolve_sides`` glue: one person whose left and right ankle sit on one point, its shoe
    pixels' Eq. 17 joint the right ankle and a part map that prefers Left-shoe 0.6 : 0.4.
    Without ``side_mirror_radius`` the joint's side wins (the map's preference is under
    ``side_keep_ratio``); with it the pixels keep the map's side."""
    from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, _resolve_sides

    size, stride, classes = 16, 4, len(PARTS)
    part = torch.zeros(classes, 4, 4)
    part[P("Left-shoe")], part[P("Right-shoe")] = 0.6, 0.4
    maps = ParsingMaps(part, torch.zeros(2, 4, 4), torch.zeros(len(JOINTS), 4, 4), torch.zeros(len(JOINTS), 2, 4, 4),
                       torch.zeros(len(MHP_V2_SCHEMA.limbs), 4, 4), stride)
    poses = torch.zeros(1, len(JOINTS), 3)
    for t, xy in {J("Left-ankle"): (8.0, 12.0), J("Right-ankle"): (9.0, 12.0), J("Pelvis"): (8.0, 2.0)}.items():
        poses[0, t] = torch.tensor([*xy, 0.9])
    labels = torch.zeros(size, size, dtype=torch.long)
    labels[12:14, 6:10] = P("Left-shoe")
    pixels = (labels.reshape(-1) > 0).nonzero().squeeze(1)
    instance = (labels > 0).long()
    joints = torch.full((pixels.numel(),), J("Right-ankle"))
    settings = DecodingSettings(limbs=MHP_V2_SCHEMA.limbs, stride=stride, keypoint_radius=6.0, sides=LAYOUT,
                                side_mirror_radius=radius)
    _, out, _ = _resolve_sides(maps, labels.clone(), instance, pixels, joints, poses, None, settings, (size, size))
    assert set(out.reshape(-1)[pixels].tolist()) == {P(expected)}
