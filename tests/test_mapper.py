"""DSPFDatasetMapper: targets from hand-built annotations, flips, and bad input."""
import cv2
import numpy as np
import pytest
import torch
from detectron2.data import transforms as T

from dspf_parser.data.categories import MHP_V2_SCHEMA as S
from dspf_parser.data.dataset_mapper import DSPFDatasetMapper

LEFT_ARM, RIGHT_ARM = S.part_classes.index("Left-arm"), S.part_classes.index("Right-arm")
FACE = S.part_classes.index("Face")
L_WRIST, R_WRIST = S.keypoint_names.index("Left-wrist"), S.keypoint_names.index("Right-wrist")
HEAD_TOP = S.keypoint_names.index("Head-top")
H, W = 40, 60


def _write_sample(tmp_path, part_maps, joints, image_shape=(H, W)):
    """Write an image and one part PNG per person; return the dataset dict."""
    img = np.random.default_rng(0).integers(0, 255, image_shape + (3,), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "img.png"), img)
    annos = []
    for p, (parts, kps) in enumerate(zip(part_maps, joints)):
        path = tmp_path / f"img_{len(part_maps)}_{p + 1}.png"
        cv2.imwrite(str(path), parts)
        annos.append({"person_id": p + 1, "parsing_file": str(path), "keypoints": kps.reshape(-1).tolist(),
                      "bbox": [0, 0, 1, 1]})
    return {"file_name": str(tmp_path / "img.png"), "image_id": "img", "height": image_shape[0],
            "width": image_shape[1], "annotations": annos}


def _person():
    """One person: a left-arm blob on the image's left, a face blob top right; joints on them."""
    parts = np.zeros((H, W), np.uint8)
    parts[10:20, 5:15] = LEFT_ARM
    parts[2:8, 40:50] = FACE
    kps = np.zeros((S.num_keypoints, 3), np.float32)
    kps[L_WRIST] = (8, 12, 2)
    kps[HEAD_TOP] = (45, 3, 2)
    return parts, kps


def _mapper(augs, stride=1):
    return DSPFDatasetMapper(True, augmentations=augs, image_format="BGR", schema=S, stride=stride,
                             keypoint_radius=2.0, limb_sigma=2.0)


def test_dspf_points_at_nearest_joint_of_own_person(tmp_path):
    parts, kps = _person()
    out = _mapper([])(_write_sample(tmp_path, [parts], [kps]))
    dspf, weight = out["dspf"], out["dspf_weight"]
    assert torch.equal(weight > 0, out["part_seg"] > 0)
    # Hand-computed: pixel (x=5, y=10) on the arm -> left wrist (8, 12); (x=49, y=7) -> head top (45, 3).
    assert dspf[:, 10, 5].tolist() == [3.0, 2.0]
    assert dspf[:, 7, 49].tolist() == [-4.0, -4.0]
    assert out["part_seg"][15, 10] == LEFT_ARM
    assert out["keypoint_heatmaps"][L_WRIST, 12, 8] == 1
    assert out["keypoint_heatmaps"][R_WRIST].sum() == 0


def test_two_people_each_pixel_points_to_own_joint(tmp_path):
    p1 = np.zeros((H, W), np.uint8)
    p1[10:30, 10:29] = FACE
    p2 = np.zeros((H, W), np.uint8)
    p2[10:30, 29:50] = FACE
    k1 = np.zeros((S.num_keypoints, 3), np.float32)
    k1[HEAD_TOP] = (10, 20, 2)
    k2 = np.zeros((S.num_keypoints, 3), np.float32)
    k2[HEAD_TOP] = (30, 20, 2)  # just across the border from person 1's right edge
    out = _mapper([])(_write_sample(tmp_path, [p1, p2], [k1, k2]))
    # Pixel (x=28, y=20) belongs to person 1 although person 2's joint is 2 px away.
    assert out["instance_seg"][20, 28] == 1
    assert out["dspf"][:, 20, 28].tolist() == [-18.0, 0.0]
    assert out["dspf"][:, 20, 29].tolist() == [1.0, 0.0]
    assert len(out["instances"]) == 2
    assert out["instances"].gt_boxes.tensor[1].tolist() == [29.0, 10.0, 50.0, 30.0]


def test_flip_swaps_left_right_parts_and_joints(tmp_path):
    parts, kps = _person()
    d = _write_sample(tmp_path, [parts], [kps])
    plain = _mapper([])(d)
    flipped = _mapper([T.RandomFlip(prob=1.0)])(d)
    # Pixels mirror (x -> W - 1 - x) and the person's left arm becomes a right arm.
    assert torch.all(flipped["part_seg"][10:20, W - 15 : W - 5] == RIGHT_ARM)
    assert (flipped["part_seg"] == LEFT_ARM).sum() == 0
    assert torch.equal(flipped["part_seg"] > 0, plain["part_seg"].flip(-1) > 0)
    kp = flipped["instances"].gt_keypoints.tensor[0]
    # The left wrist (8, 12) is now a right wrist at (W - 1 - 8, 12); the head top stays a head top.
    assert kp[R_WRIST].tolist() == [W - 1 - 8, 12.0, 2.0]
    assert kp[L_WRIST].tolist() == [0.0, 0.0, 0.0]
    assert kp[HEAD_TOP].tolist() == [W - 1 - 45, 3.0, 2.0]
    # DSPF x-components flip sign, y stay.
    assert torch.allclose(flipped["dspf"][0], -plain["dspf"][0].flip(-1))
    assert torch.allclose(flipped["dspf"][1], plain["dspf"][1].flip(-1))
    assert torch.equal(flipped["keypoint_heatmaps"][R_WRIST], plain["keypoint_heatmaps"][L_WRIST].flip(-1))


def test_training_augmentations_produce_consistent_targets(tmp_path):
    parts, kps = _person()
    d = _write_sample(tmp_path, [parts], [kps])
    augs = [T.ResizeScale(0.5, 2.0, 32, 48), T.RandomRotation([-10, 10], expand=False),
            T.FixedSizeCrop((32, 48), pad=True, pad_value=0), T.RandomFlip(prob=0.5),
            T.RandomBrightness(0.6, 1.4)]
    mapper = _mapper(augs, stride=4)
    for _ in range(5):
        out = mapper(d)
        assert out["image"].shape == (3, 32, 48)
        assert out["part_seg"].shape == (32, 48)
        assert out["dspf"].shape == (2, 8, 12)
        assert out["keypoint_heatmaps"].shape == (S.num_keypoints, 8, 12)
        assert out["keypoint_offsets"].shape == (S.num_keypoints, 2, 8, 12)
        assert out["limb_heatmaps"].shape == (S.num_limbs, 8, 12)
        labels = set(out["part_seg"].unique().tolist())
        assert labels <= {0, LEFT_ARM, RIGHT_ARM, FACE, 255}
        kp = out["instances"].gt_keypoints.tensor[0]
        vis = kp[:, 2] > 0
        assert torch.all((kp[vis, 0] >= 0) & (kp[vis, 0] <= 47) & (kp[vis, 1] >= 0) & (kp[vis, 1] <= 31))
        # Field + position of every weighted cell lands on a visible joint of the person.
        ys, xs = torch.nonzero(out["dspf_weight"] > 0, as_tuple=True)
        if len(ys) == 0:
            continue
        targets = torch.stack([xs * 4 + 2, ys * 4 + 2], 1).float() + out["dspf"][:, ys, xs].T
        d2 = torch.cdist(targets, kp[vis, :2])
        assert torch.all(d2.min(1).values < 1e-3)


def test_part_png_of_wrong_size_names_the_file(tmp_path):
    parts, kps = _person()
    d = _write_sample(tmp_path, [parts[:-1]], [kps])
    with pytest.raises(ValueError, match="img_1_1.png"):
        _mapper([])(d)


def test_out_of_range_part_id_names_the_file(tmp_path):
    parts, kps = _person()
    parts[0, 0] = S.num_parts
    d = _write_sample(tmp_path, [parts], [kps])
    with pytest.raises(ValueError, match=r"img_1_1.png.*out of range"):
        _mapper([])(d)


def test_unlabelled_people_are_ignored_not_background(tmp_path):
    from pycocotools import mask as mask_util

    parts, kps = _person()
    d = _write_sample(tmp_path, [parts], [kps])
    unlabelled = np.zeros((H, W), np.uint8)
    unlabelled[25:35, 40:55] = 1  # someone in the picture without part labels
    unlabelled[10:12, 5:15] = 1   # overlapping a labelled person: the label wins
    rle = mask_util.encode(np.asfortranarray(unlabelled))
    rle["counts"] = rle["counts"].decode("ascii")
    d["ignore_rles"] = [rle]
    out = _mapper([])(d)
    assert torch.all(out["part_seg"][25:35, 40:55] == 255)
    assert torch.all(out["part_seg"][10:12, 5:15] == LEFT_ARM)
    assert out["part_seg"][0, 0] == 0
    flipped = _mapper([T.RandomFlip(prob=1.0)])(d)
    assert torch.all(flipped["part_seg"][25:35, W - 55 : W - 40] == 255)


class _Pad(T.Augmentation):
    """Pads 4 px right and 6 px bottom, segmentations with ``seg_pad_value`` (fvcore's
    ``PadTransform``, the same on every detectron2 version)."""

    def __init__(self, seg_pad_value):
        super().__init__()
        self.seg_pad_value = seg_pad_value

    def get_transform(self, image):
        return T.PadTransform(0, 0, 4, 6, image.shape[1], image.shape[0], 0, self.seg_pad_value)


@pytest.mark.parametrize("seg_pad_value", [0, 255, 7])
def test_padding_is_unscored_whatever_the_segmentation_pad_value(tmp_path, seg_pad_value):
    # detectron2 main's FixedSizeCrop pads segmentations with 255, 0.6's with 0; the targets
    # must not depend on it (255 used to become person id 255 and crash the flip table).
    parts, kps = _person()
    d = _write_sample(tmp_path, [parts], [kps])
    plain = _mapper([])(d)
    out = _mapper([_Pad(seg_pad_value), T.RandomFlip(prob=1.0)])(d)
    assert out["part_seg"].shape == (H + 6, W + 4)
    # After the flip the 4 padded columns are on the left, the 6 padded rows at the bottom.
    assert torch.all(out["part_seg"][H:] == 255) and torch.all(out["part_seg"][:, :4] == 255)
    assert torch.all(out["instance_seg"][H:] == 0) and torch.all(out["instance_seg"][:, :4] == 0)
    assert torch.equal(out["instance_seg"][:H, 4:], plain["instance_seg"].flip(-1))
    assert torch.equal(out["part_seg"][:H, 4:] == RIGHT_ARM, plain["part_seg"].flip(-1) == LEFT_ARM)


def test_fixed_size_crop_pads_segmentations_with_zero():
    from dspf_parser.data.transforms import fixed_size_crop

    seg = np.full((5, 7), 3, np.uint8)
    t = fixed_size_crop((8, 9)).get_transform(np.zeros((5, 7, 3), np.uint8))
    padded = t.apply_segmentation(seg)
    assert padded.shape == (8, 9) and np.all(padded[5:] == 0) and np.all(padded[:, 7:] == 0)
    assert np.all(padded[:5, :7] == 3)
