"""Config keys of dspf-parser. Call :func:`add_dspf_config` on a detectron2 ``CfgNode``."""
from detectron2.config import CfgNode as CN

__all__ = ["add_dspf_config", "IGNORED_TRAIN_INPUT_KEYS", "check_train_input_keys"]

#: detectron2's standard training-input keys that dspf-parser's training mapper does not read,
#: with what to set instead (``INPUT.DSPF.*``).
IGNORED_TRAIN_INPUT_KEYS = {
    "MIN_SIZE_TRAIN": "INPUT.DSPF.SCALE_RANGE and INPUT.DSPF.CROP_SIZE",
    "MIN_SIZE_TRAIN_SAMPLING": "INPUT.DSPF.SCALE_RANGE",
    "MAX_SIZE_TRAIN": "INPUT.DSPF.SCALE_RANGE and INPUT.DSPF.CROP_SIZE",
    "RANDOM_FLIP": "INPUT.DSPF.FLIP_PROB (0 disables the flip)",
    "CROP.ENABLED": "INPUT.DSPF.CROP_SIZE",
    "CROP.TYPE": "INPUT.DSPF.CROP_SIZE",
    "CROP.SIZE": "INPUT.DSPF.CROP_SIZE",
}


def add_dspf_config(cfg: CN) -> None:
    """Add every dspf-parser key, with its default, to ``cfg`` (in place).

    Groups: ``MODEL.DSPF`` (network, losses, inference), ``INPUT.DSPF`` (training
    augmentation), ``SOLVER.NONFINITE_LOSS``, ``SOLVER.AMP.DTYPE``, ``TEST.DSPF_COCO_RESULTS``
    and ``DATALOADER.BAD_SAMPLES``. Call it before ``cfg.merge_from_file``.
    """
    cfg.MODEL.DSPF = CN()
    # Label space (see dspf_parser.data.categories.SCHEMAS): part classes, joints, limbs, flips.
    cfg.MODEL.DSPF.SCHEMA = "mhp_v2"
    # What the sided part, joint and limb channels mean (dspf_parser/ops/sides.py; not in the
    # paper): "anatomical" (the person's own left, as annotated) or "camera" (the person's own
    # left if it faced the camera: the training targets of a person facing away, by its annotated
    # face and hair pixels, have left and right exchanged, so every sided channel is a local,
    # screen-side property; the decoding exchanges them back for the people it finds facing
    # away, whatever MODEL.DSPF.INFERENCE.RESOLVE_SIDES says). Only for schemas with Face and
    # Hair part classes.
    cfg.MODEL.DSPF.SIDE_LABELS = "anatomical"
    # Stride of every head's output grid (and of the dense targets).
    cfg.MODEL.DSPF.COMMON_STRIDE = 4
    # Normalisation in the heads: "GN", "BN", "SyncBN" or "" (none).
    cfg.MODEL.DSPF.NORM = "GN"
    # How task losses are combined: "uncertainty" (learned homoscedastic uncertainty, one
    # log-variance per task, Kendall et al. 2018) or "fixed" (the *_LOSS_WEIGHT keys below).
    cfg.MODEL.DSPF.LOSS_BALANCING = "uncertainty"

    # Category-level part segmentation: DeepLabv3+-style decoder over the FPN.
    cfg.MODEL.DSPF.PART_HEAD = CN()
    cfg.MODEL.DSPF.PART_HEAD.NAME = "PartSegmentationHead"
    cfg.MODEL.DSPF.PART_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.DSPF.PART_HEAD.CONVS_DIM = 128
    # ASPP on the coarsest level; an empty list disables ASPP.
    cfg.MODEL.DSPF.PART_HEAD.ASPP_DILATIONS = [6, 12, 18]
    # Channels of a 5x5 depthwise-separable convolution between the decoder and the predictor
    # (Panoptic-DeepLab's semantic head); 0: the predictor reads the decoder directly.
    cfg.MODEL.DSPF.PART_HEAD.HEAD_CHANNELS = 0
    cfg.MODEL.DSPF.PART_HEAD.IGNORE_VALUE = 255
    cfg.MODEL.DSPF.PART_HEAD.LOSS_WEIGHT = 1.0
    # The part loss is the mean cross-entropy of the hardest LOSS_TOP_K share of the labelled
    # pixels of the batch (1.0: all; Panoptic-DeepLab's semantic loss uses 0.2).
    cfg.MODEL.DSPF.PART_HEAD.LOSS_TOP_K = 1.0

    # Dense-to-Sparse Projection Field head.
    cfg.MODEL.DSPF.FIELD_HEAD = CN()
    cfg.MODEL.DSPF.FIELD_HEAD.NAME = "ProjectionFieldHead"
    cfg.MODEL.DSPF.FIELD_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.DSPF.FIELD_HEAD.CONVS_DIM = 128
    # The rows of the paper's Table 4:
    #   "direct":         one regression from all pyramid levels fused at the finest one;
    #   "coarse_to_fine": a complete field per level from the finer feature and the upsampled,
    #                     x2-scaled field of the level above;
    #   "residual":       as above, but each level predicts a residual to that field;
    #   "residual_warp":  residual + learnable feature warping (a feature flow predicted from
    #                     [upsampled coarse feature, fine feature], applied by bilinear sampling
    #                     to the coarse feature and the coarse field).
    cfg.MODEL.DSPF.FIELD_HEAD.MODE = "residual_warp"
    cfg.MODEL.DSPF.FIELD_HEAD.LOSS_WEIGHT = 1.0

    # Bottom-up pose: keypoint heatmaps (disks) + offsets, limb heatmaps.
    cfg.MODEL.DSPF.POSE_HEAD = CN()
    cfg.MODEL.DSPF.POSE_HEAD.NAME = "PoseHead"
    cfg.MODEL.DSPF.POSE_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.DSPF.POSE_HEAD.CONVS_DIM = 128
    # Disk radius of the keypoint heatmap targets, in input pixels.
    cfg.MODEL.DSPF.POSE_HEAD.KEYPOINT_RADIUS = 16.0
    # Minor-axis standard deviation of the elliptical limb Gaussians, in input pixels.
    cfg.MODEL.DSPF.POSE_HEAD.LIMB_SIGMA = 6.0
    cfg.MODEL.DSPF.POSE_HEAD.HEATMAP_LOSS_WEIGHT = 1.0
    cfg.MODEL.DSPF.POSE_HEAD.OFFSET_LOSS_WEIGHT = 1.0
    cfg.MODEL.DSPF.POSE_HEAD.LIMB_LOSS_WEIGHT = 1.0

    # Joint association (paper Sec. 3.3): the differentiable LP matching layer.
    cfg.MODEL.DSPF.MATCHING = CN()
    cfg.MODEL.DSPF.MATCHING.NAME = "LPMatchingLayer"
    cfg.MODEL.DSPF.MATCHING.NUM_ITERS = 500
    # Unrolled iterations while training (short, so the assignment stays differentiable).
    cfg.MODEL.DSPF.MATCHING.TRAIN_NUM_ITERS = 20
    cfg.MODEL.DSPF.MATCHING.STEP = 0.3
    cfg.MODEL.DSPF.MATCHING.DYKSTRA_ITERS = 1
    # Convergence stop of the eval-mode solver (association "matching"): every CHECK_EVERY
    # iterations the relaxed assignment is certified by a dual solution built from Dykstra's
    # multipliers; once every limb's relative primal-dual gap is <= TOL the solver stops (one
    # host sync per check, none per iteration). 0 disables it (always NUM_ITERS). Training
    # unrolls exactly TRAIN_NUM_ITERS iterations regardless.
    cfg.MODEL.DSPF.MATCHING.TOL = 1e-4
    cfg.MODEL.DSPF.MATCHING.CHECK_EVERY = 25
    # Training stage two: cross-entropy of the relaxed assignments against the true pairing of
    # the annotated joints (scored on the predicted limb heatmaps). Off in stage one.
    cfg.MODEL.DSPF.MATCHING.LOSS_ON = False
    # 0.1: the cross-entropy of a relaxed assignment has steep gradients where X is near 0 or 1
    # (about 3x the gradient norm of the other tasks at weight 1); at weight 1 the stage-two
    # fine-tuning of the synthetic model lost 5.6 mIoU points, at 0.1 it keeps them.
    cfg.MODEL.DSPF.MATCHING.LOSS_WEIGHT = 0.1
    # The candidates of the stage-two problems: "ground_truth" (the annotated joints; the loss
    # trains the limb heatmaps only) or "detected" (the keypoint candidates inference detects on
    # the predicted maps, each labelled with the annotated person it lies on; the loss also trains
    # the keypoint heatmaps, offsets and DSPF through the candidate coordinates).
    cfg.MODEL.DSPF.MATCHING.LOSS_PROBLEMS = "ground_truth"
    # "detected": a candidate detects an annotated joint of its type within this distance (input
    # px; one-to-one per type, nearest first). 0 means POSE_HEAD.KEYPOINT_RADIUS.
    cfg.MODEL.DSPF.MATCHING.MATCH_RADIUS = 0.0

    # Bottom-up decoding at inference.
    cfg.MODEL.DSPF.INFERENCE = CN()
    # Minimal keypoint candidate score (Hough vote mass; about 1 for a perfect prediction).
    cfg.MODEL.DSPF.INFERENCE.KEYPOINT_THRESHOLD = 0.3
    # At most this many candidates per joint type (MHPv2 images hold up to ~58 people).
    cfg.MODEL.DSPF.INFERENCE.MAX_CANDIDATES = 100
    # A candidate closer than this (input px) to a better candidate of its type is dropped
    # (the 3x3 Hough NMS already merges peaks within one cell; a crowd has neighbours closer
    # than the keypoint radius). 6 -> 4 (one stride; 3 gives the same) at stop 28, oracle exact
    # crowd split AP^p_50 / AP^p_vol / pose AP 93.6 / 85.8 / 90.4 -> 95.0 / 86.6 / 91.5, val
    # unchanged, --degrade 1 val 79.7 -> 79.9; the recipe model's val figures unchanged (crowd
    # AP^p_50 7.0 -> 7.0, pose AP 22.3 -> 22.3).
    cfg.MODEL.DSPF.INFERENCE.DUPLICATE_RADIUS = 4.0
    # Also take the points where the DSPF projects person pixels as keypoint candidates (paper
    # Sec. 3.3), merged with the Hough peaks.
    cfg.MODEL.DSPF.INFERENCE.DSPF_CANDIDATES = True
    # Cells of keypoint confidence at or below this cast no Hough vote (sparse voting: the cost
    # follows the cells near joints, not K x h x w; 0 keeps every non-zero vote, exactly the dense
    # sum). 512x512 benchmark, perfect maps: the keypoint detection stage 12.9 -> 9.4 ms at one
    # person (the voting itself ~10 -> ~0.9 ms; the rest is the class argmax and peaks). Cached val
    # maps of three trained models: AP^p_50 / AP^p_vol / pose AP within 0.1 of dense voting.
    cfg.MODEL.DSPF.INFERENCE.HOUGH_MIN_VOTE = 0.01
    # Per-limb association at inference: "exact" (maximum-weight matching solved exactly with
    # scipy: the integral optimum of the LP relaxation), "matching" (the paper's differentiable
    # PGD + Dykstra layer, rounded; what stage-two training uses), or the greedy baselines of
    # Table 5: "greedy_openpose", "greedy_personlab".
    cfg.MODEL.DSPF.INFERENCE.ASSOCIATION = "exact"
    # How a candidate pair's limb score reads the limb heatmap: "template" (agreement with the
    # limb target the pair would draw, sigma POSE_HEAD.LIMB_SIGMA) or "mean" (its mean).
    cfg.MODEL.DSPF.INFERENCE.LIMB_SCORE = "template"
    # Only candidate pairs whose limb heatmap reads at least this at their midpoint and at 8 of
    # 10 points along their axis (OpenPose's criterion) get the full (10 x 3 samples) limb
    # score, the others score 0 and cannot be associated: limb scoring then costs about one
    # sample per pair instead of 30 as people grow, and pairs crossing empty ground (spurious
    # peaks, far people, the gap between two people) stop competing. The axis test (added
    # after these figures) raised the oracle's synthetic_humans_val --degrade 1 AP^p_50 69.6 ->
    # 72.6 and the crowd split 67.7 -> 70.3 (--degrade 1: 26.1 -> 32.8). Midpoint alone,
    # measured at 0.1 (0: all N^2 pairs):
    # oracle synthetic_humans_val AP^p_50 86.4 -> 86.4, --degrade 1 65.8 -> 69.6 with 1.31 -> 0.95
    # persons per ground-truth person; crowd split 65.6 -> 67.7; the CPU recipe's model 12.6 ->
    # 14.7 (pose AP 29.9 -> 29.3); 0.2 lowers that model's pose AP to 26.6.
    cfg.MODEL.DSPF.INFERENCE.LIMB_PRUNE_THRESHOLD = 0.1
    # Candidate pairs whose limb score is not above this cannot be associated (0: every pair
    # with a positive score can).
    cfg.MODEL.DSPF.INFERENCE.MIN_LIMB_SCORE = 0.0
    # Person score (ranks the people): "joints" (mean score of its joints), "all_types" (sum
    # over all K joint types / K, a missing joint counting 0: fragments rank below whole people;
    # on the synthetic recipe's model pose AP 27.5 -> 33.3, AP^p_50 14.0 -> 12.1) or
    # "joints_x_limbs" (the joint mean times the mean limb score of its limbs: chains of spurious
    # peaks rank last; oracle at --degrade 1 on synthetic_humans_val AP^p_50 50.0 -> 65.8).
    cfg.MODEL.DSPF.INFERENCE.PERSON_SCORE = "joints_x_limbs"
    # People whose score is not above this are dropped (0: none).
    cfg.MODEL.DSPF.INFERENCE.MIN_PERSON_SCORE = 0.0
    # The rank score is also multiplied by (joints / K) ** this (K joint types): partial people
    # (halves of a split person, a mix of two, chains of spurious peaks) rank below whole ones
    # (0: off; 1 with "joints_x_limbs": PersonLab's all-types score times the mean limb score).
    # Oracle, exact association, 0 -> 1: synthetic_humans_val AP^p_50 90.9 -> 91.5, pose AP 89.8 ->
    # 90.5, --degrade 1 72.6 -> 76.5 and 58.8 -> 65.1; crowd split 72.8 -> 76.2 and 86.2 -> 89.4,
    # --degrade 1 32.9 -> 37.0 and 50.3 -> 59.4 (2: val 91.6, --degrade 1 76.8).
    cfg.MODEL.DSPF.INFERENCE.PERSON_COMPLETENESS_POWER = 1.0
    # And by max(1, cells) ** this, cells = the person cells of the grid whose DSPF projects onto
    # the person's joints (about its area): small people, whose masks are the least reliable, rank
    # lower (0: off). Oracle, exact association, 0 -> 0.25: synthetic_humans_val AP^p_50 91.5 ->
    # 92.0, --degrade 1 76.5 -> 78.5; crowd split 76.2 -> 80.7, --degrade 1 37.0 -> 43.8; pose AP
    # val 90.5 -> 90.8, crowd 89.4 -> 89.0 (0.5: crowd AP^p_50 80.9, --degrade 1 46.2, pose 88.7).
    # The instance scores are rank scores, not probabilities: with this on they exceed 1 (200 cells
    # multiply by 3.8), so score thresholds (demo --confidence-threshold) must be set accordingly.
    cfg.MODEL.DSPF.INFERENCE.PERSON_SUPPORT_POWER = 0.25
    # After Eq. 17 each rank score is multiplied by conf ** this, conf = the mean top part
    # probability over the person's pixels, and the people re-ranked (0: off): people whose part
    # labels the part map is unsure of rank lower. Exact (one-hot) part maps give every person 1.
    # Stop 31, val AP^p_50 / AP^p_vol of three anatomical models (cached weights, --eval-only),
    # 0 -> 2: 36.0 / 39.1 -> 38.6 / 40.0, 39.3 / 40.7 -> 40.5 / 41.0, 32.5 / 38.2 -> 34.7 / 38.7; their
    # pose AP is unchanged (skeletons rank by their own pose_scores).
    cfg.MODEL.DSPF.INFERENCE.PART_CONFIDENCE_POWER = 2.0
    # People without a skeleton (dspf_parser.ops.orphans): after Eq. 17, a 4-connected region of
    # at least ORPHAN_MIN_CELLS person cells (0: off) whose DSPF projections land farther than
    # ORPHAN_DISTANCE keypoint radii from every joint of the person that took them, and spread at
    # least ORPHAN_MIN_SPREAD radii about their mean (several joints: a body, not a hand whose
    # wrist was missed), becomes a person of its own, ranked below every decoded person: a person
    # cut by the border with one or two joints inside, or with no joint annotated, whose pixels
    # Eq. 17 otherwise hands to a neighbour. Stop 32, oracle (exact) val AP^p_50 / AP^p_vol
    # 95.0 / 91.2 -> 95.7 / 92.5, --degrade 1 79.9 / 70.4 -> 85.0 / 73.9; the recipe model's val
    # AP^p_vol 41.1 -> 41.4, AP^p_50 and pose AP unchanged. 4 radii split people at --degrade 2.
    # Such a person takes the skeleton of the fragment (FRAGMENT_MIN_CELLS) dropped for too few
    # cells that most of its projections land on (stop 33: exact val pose AP 94.8 -> 95.8, the
    # rest of the oracle unchanged).
    cfg.MODEL.DSPF.INFERENCE.ORPHAN_MIN_CELLS = 8
    cfg.MODEL.DSPF.INFERENCE.ORPHAN_DISTANCE = 6.0
    cfg.MODEL.DSPF.INFERENCE.ORPHAN_MIN_SPREAD = 1.0
    # Keep unplaced candidates as single-joint people and merge the people the DSPF shows to be
    # one person (fragments whose connecting joints are outside the image or unmatched), before
    # MIN_JOINTS applies (dspf_parser.ops.dspf_grouping).
    cfg.MODEL.DSPF.INFERENCE.DSPF_GROUPING = True
    # With DSPF_GROUPING, touching people that share joint types still merge when each shared
    # type's two joints are within this many POSE_HEAD.KEYPOINT_RADIUS of each other: a second
    # peak of a joint the person already has (trained models leave one a few pixels off, and the
    # pixels projecting onto it become a partial person); the larger member's joint is kept (0:
    # people sharing a type never merge). Val AP^p_50 / pose AP of cached trained-model maps, 0
    # -> 3: camera-frame recipe (two models) 46.6 / 52.6 -> 48.7 / 54.1 and 41.9 / 50.5 -> 43.0 /
    # 52.6, anatomical recipe 31.0 / 46.4 -> 31.6 / 47.5, decoded persons per ground-truth person
    # 1.06 -> 0.95, 1.09 -> 1.01, 1.22 -> 1.14; oracle (exact association) val AP^p_vol 83.8 ->
    # 83.6, pose AP 92.1 -> 91.9, crowd split 71.6 -> 71.4, 89.5 -> 89.4, --degrade 1 val
    # unchanged, crowd AP^p_50 48.8 -> 48.4.
    cfg.MODEL.DSPF.INFERENCE.DSPF_DUPLICATE_RADIUS = 3.0
    # People with fewer joints are dropped.
    cfg.MODEL.DSPF.INFERENCE.MIN_JOINTS = 3
    # Floor of the person scale of Eq. 17 (px of the network input): a fragment of one or two
    # joints has no extent, and with scale 1 it kept only the pixels projecting onto its joints.
    # Oracle (exact association), floor 1 -> 16 -> 32: synthetic_humans_val AP^p_vol 80.5 ->
    # 81.1 -> 81.6 (AP^p_50 92.0 throughout), --degrade 1 AP^p_50 78.5 -> 79.3 -> 79.5; crowd
    # split AP^p_vol 65.2 -> 65.3 -> 65.5, --degrade 1 AP^p_50 43.8 -> 43.9 -> 44.4.
    cfg.MODEL.DSPF.INFERENCE.MIN_PERSON_SCALE = 32.0
    # Where Eq. 17 reads the DSPF for the labelled pixels: "cells" (each grid cell is given a
    # person at its own projection, a pixel takes the person its footprint's person cells weigh
    # most for, counting only the cells of its own part label where one of them is a person's)
    # or "pixels" (the DSPF read bilinearly at each pixel, which blends the vectors of two people
    # on their boundary). Oracle (tools/oracle_eval.py, exact maps) "pixels" -> "cells" (without
    # the part-label rule): val AP^p_50 / AP^p_vol 92.0 / 81.6 -> 93.0 / 83.3, crowd split 80.7 /
    # 65.5 -> 85.1 / 71.2; --degrade 1 val 79.5 / 65.7 -> 79.2 / 67.6. Trained models (val
    # AP^p_50): recipe 32.1 -> 31.1, camera-frame recipe 40.8 -> 42.0; recipe on the crowd split
    # 8.4 -> 9.1. The part-label rule (stop 24): val 93.0 / 83.6 -> 94.1 / 88.2, crowd 85.7 / 71.4
    # -> 91.4 / 81.4; recipe val 31.6 / 37.8 -> 32.9 / 38.0.
    cfg.MODEL.DSPF.INFERENCE.PIXEL_ASSIGNMENT = "cells"
    # With DSPF_GROUPING, a person with fewer than MIN_JOINTS joints is kept anyway when at least
    # this many person cells of the grid project (DSPF) onto its joints: someone of whom one or two
    # joints are visible but whose body is (0: never). Its rank score is multiplied by
    # FRAGMENT_SCORE, so it ranks below the whole people. Oracle, exact association: AP^p_50
    # synthetic_humans_val 86.4 -> 87.3, crowd split 69.8 -> 71.3, --degrade 1 72.6 -> 72.6 and
    # 31.7 -> 31.6 (0.935 -> 0.98 persons per ground-truth person on val; 20 cells: 1.14).
    # 30 -> 20 at stop 28 (with that stop's cell assignment; val / crowd split, AP^p_50 / AP^p_vol
    # / pose AP): exact 94.1 / 89.6 / 91.9 -> 94.0 / 90.0 / 91.9 and 92.7 / 84.4 / 89.4 -> 93.6 /
    # 85.8 / 90.4; --degrade 1 val 79.7 -> 79.7 at 0.972 -> 1.028 persons per ground-truth person
    # (16 cells: 1.093); the recipe model's val 36.5 / 39.1 / 47.8 -> 36.0 / 39.2 / 47.8, crowd
    # 6.8 / 23.5 / 22.1 -> 7.0 / 23.8 / 22.3.
    cfg.MODEL.DSPF.INFERENCE.FRAGMENT_MIN_CELLS = 20
    cfg.MODEL.DSPF.INFERENCE.FRAGMENT_SCORE = 0.2
    # The order in which matched pairs are grouped into people: "limb" (limb by limb, head to
    # foot) or "score" (the pairs of all limbs by decreasing limb score: a doubtful pair meets the
    # people the confident ones built). Oracle, exact association, with the fragments above:
    # synthetic_humans_val AP^p_50 87.3 -> 88.9, pose AP 87.2 -> 89.4, --degrade 1 72.6 -> 76.1;
    # crowd split AP^p_50 71.3 -> 71.1, pose AP 85.7 -> 86.7, but at --degrade 1 its pose AP
    # 50.4 -> 49.2 and AP^r_vol 53.5 -> 52.9: not the default.
    cfg.MODEL.DSPF.INFERENCE.GROUPING_ORDER = "limb"
    # The matched pairs whose limb score reaches this are grouped first (in GROUPING_ORDER), then
    # the others: the confident pairs build the people before a doubtful pair of an earlier limb
    # can hand a person another's joint (0: no split). At 0.95 (an exact limb's template score is
    # about 1; on damaged maps few pairs reach it, so the order stays head to foot there): oracle,
    # exact association, synthetic_humans_val AP^p_50 87.3 -> 90.9, pose AP 87.2 -> 89.8, crowd
    # split 71.2 -> 72.4 and 85.3 -> 86.2, --degrade 1 unchanged on both.
    cfg.MODEL.DSPF.INFERENCE.GROUPING_CONFIDENT_ABOVE = 0.95
    # Resolve left and right once per decoded person (dspf_parser/ops/sides.py; not in the paper):
    # a person whose head pixels are mostly hair faces away, otherwise the camera; its limb
    # chains are oriented so that its left is the screen's right when it faces the camera, and
    # its left/right part pixels take the side of the joint their DSPF vector reaches (Eq. 17)
    # unless the part map prefers the other side by more than SIDE_KEEP_RATIO. The category-level
    # sem_seg output takes the same sides. Only for schemas with Face and Hair parts (MHPv2).
    cfg.MODEL.DSPF.INFERENCE.RESOLVE_SIDES = False
    cfg.MODEL.DSPF.INFERENCE.SIDE_KEEP_RATIO = 50.0
    cfg.MODEL.DSPF.INFERENCE.SIDE_KEEP_SUPPORT = 0.5
    # With RESOLVE_SIDES: a person's left and right joint of one kind within this distance (px
    # of the network input) are one joint detected under both names (the recipe model does this
    # to 22 of 37 ankle pairs and 26 of 37 wrist pairs on val): it cannot tell a side, so the
    # pixels whose Eq. 17 joint it is keep the part map's side (0: off). Val AP^p_50 of two
    # recipe models 39.8 -> 43.1 and 34.6 -> 37.8 (AP^p_vol 41.1 -> 41.5 and 39.0 -> 38.1); exact
    # (one-hot) part maps keep their sides anyway, so the oracle does not move.
    cfg.MODEL.DSPF.INFERENCE.SIDE_MIRROR_RADIUS = 4.0
    # A part region of a decoded person with fewer pixels than SMALL_PART_FRACTION of the
    # person's and a mean top part probability below SMALL_PART_CONFIDENCE takes the person's
    # other classes, pixel by pixel (dspf_parser/ops/part_cleanup.py; not in the paper): AP^p
    # averages the part IoU over the classes of prediction and ground truth, so a speck of a class
    # the person lacks costs it a class at IoU 0. Recipe model (stop-20 recipe, 4,200 it):
    # synthetic_humans_val AP^p_50 24.9 -> 32.1, AP^p_vol 36.1 -> 37.7, PCP_50 25.0 -> 29.0,
    # AP^r_vol 31.5 -> 34.2; crowd split 7.5 -> 8.4, 23.4 -> 24.3, 7.7 -> 9.0, 21.6 -> 23.4.
    # Exact maps (one-hot) are never changed. 0: off.
    cfg.MODEL.DSPF.INFERENCE.SMALL_PART_FRACTION = 0.01
    cfg.MODEL.DSPF.INFERENCE.SMALL_PART_CONFIDENCE = 0.8
    # A person missing a joint type takes a candidate of that type, even one another person
    # holds, whose limb scores with all of the person's adjacent joints reach this (0: off; not
    # in the paper): where two people's joints of one type coincide (an occluded shoulder behind
    # a visible one) detection finds one candidate and the matching gives it to one of them.
    # Such a joint is in the pose but claims no pixel (Eq. 17). Stop 28, pose AP: oracle exact
    # val 91.9 -> 93.5, crowd split 91.5 -> 94.1, --degrade 1 val 67.3 -> 69.4 (0.3: 93.5 / 94.1
    # / 69.8); the recipe model val 47.8 -> 48.0, crowd 22.3 -> 22.4; the parsing figures are
    # unchanged.
    cfg.MODEL.DSPF.INFERENCE.SHARE_MIN_LIMB_SCORE = 0.5
    # With SHARE_MIN_LIMB_SCORE: Hough peaks scoring above this but not KEYPOINT_THRESHOLD are weak
    # candidates that only the completion above may give to a person missing that type (as a
    # joint claiming no pixel; not in the paper; 0: off). A trained model's keypoint maps barely
    # show some joints (a knee on a straight leg): stop 35, pose AP of two recipe models 49.7 ->
    # 50.4 and 43.2 -> 45.2 with the parsing figures unchanged; oracle val pose AP 95.8 -> 96.2.
    cfg.MODEL.DSPF.INFERENCE.COMPLETION_THRESHOLD = 0.15
    # With SHARE_MIN_LIMB_SCORE: a kept fragment (fewer than MIN_JOINTS joints) that then holds a
    # candidate a whole person holds, and no joint type that person has elsewhere, joins it (the
    # arm below a shoulder two people share; not in the paper). Stop 31, oracle exact association:
    # val AP^p_vol / pose AP 91.1 / 94.5 -> 91.2 / 94.8, --degrade 1 val 69.8 / 69.4 -> 70.4 / 69.8.
    cfg.MODEL.DSPF.INFERENCE.JOIN_FRAGMENTS = True
    # Set False to return only the category-level outputs (sem_seg, dspf).
    cfg.MODEL.DSPF.INFERENCE.INSTANCES_ON = True

    # What a non-finite loss term does: "error" (stop, naming the term and the iteration) or
    # "skip" (skip that update and count it).
    cfg.SOLVER.NONFINITE_LOSS = "error"
    # "SGD" (detectron2's, the paper's schedule on the benchmarks) or "AdamW" (the CPU recipe).
    cfg.SOLVER.OPTIMIZER = "SGD"
    # Learning-rate factor (and no weight decay) of the loss balancer's log-variances
    # (``MODEL.DSPF.LOSS_BALANCING "uncertainty"``). At 1 they move at most about BASE_LR per
    # step under AdamW, so a task whose loss is small (keypoint and limb heatmaps, ~0.04) takes
    # thousands of iterations to get the weight ``1 / L`` the balancer converges to.
    cfg.SOLVER.LOSS_BALANCER_LR_FACTOR = 1.0
    # Autocast dtype of SOLVER.AMP.ENABLED (DSPFTrainer.run_step): "auto" (float16 on CUDA, with
    # a gradient scaler; bfloat16 on the CPU, without), "float16" or "bfloat16".
    cfg.SOLVER.AMP.DTYPE = "auto"

    # Also write the predictions as COCO results (``coco_results.json`` next to the other
    # prediction files of the evaluation; dspf_parser.evaluation.coco_results).
    cfg.TEST.DSPF_COCO_RESULTS = False

    # What the training mapper does with a bad sample (missing/corrupt/truncated image, image or
    # part map size different from the dataset dict, part ids out of range, ...): "error"
    # (raise a BadSampleError naming the file and the problem) or "skip" (log a warning naming
    # the file, count it, and let the loader draw another sample). The test mapper always raises.
    cfg.DATALOADER.BAD_SAMPLES = "error"

    cfg.INPUT.DSPF = CN()
    # Random rescaling of the image by a factor in this range, then a fixed-size crop/pad.
    cfg.INPUT.DSPF.SCALE_RANGE = (0.5, 2.0)
    cfg.INPUT.DSPF.CROP_SIZE = (512, 512)
    # Random rotation in [-ROTATION, ROTATION] degrees; 0 disables it.
    cfg.INPUT.DSPF.ROTATION = 10.0
    # Brightness / contrast / saturation jitter: factors drawn from [1 - x, 1 + x]; 0 disables.
    cfg.INPUT.DSPF.COLOR_JITTER = 0.4
    # Horizontal flip probability (it also swaps left/right part labels and joints).
    cfg.INPUT.DSPF.FLIP_PROB = 0.5


def _get(node: CN, dotted: str):
    for part in dotted.split("."):
        node = node[part]
    return node


def check_train_input_keys(cfg: CN) -> None:
    """Raise if a standard ``INPUT.*`` training key that this project ignores was changed.

    The training mapper takes its augmentation from ``INPUT.DSPF.*`` only; a changed
    ``INPUT.MIN_SIZE_TRAIN``, ``INPUT.RANDOM_FLIP``, ``INPUT.CROP.*``, ... (see
    :data:`IGNORED_TRAIN_INPUT_KEYS`) would otherwise be silently lost. "Changed" means different
    from the installed detectron2's ``get_cfg()`` default.

    Raises:
        ValueError: naming every changed key, its value and the ``INPUT.DSPF`` key to use.
    """
    from detectron2.config import get_cfg

    defaults = get_cfg().INPUT
    changed = []
    for key, instead in IGNORED_TRAIN_INPUT_KEYS.items():
        try:
            value, default = _get(cfg.INPUT, key), _get(defaults, key)
        except KeyError:
            continue
        if value != default:
            changed.append(f"INPUT.{key}={value!r} (default {default!r}; set {instead})")
    if changed:
        raise ValueError("dspf-parser's training augmentation ignores these detectron2 INPUT keys, which "
                         "the config changes: " + "; ".join(changed) + ". Leave them at their defaults.")
