"""Pure tensor algorithms of dspf-parser (torch only, no detectron2), usable on their own.

Grid convention: maps live on a stride-``s`` grid whose cell ``[i, j]`` stands for the input
position ``(x, y) = (j * s + s // 2, i * s + s // 2)``; vectors and joints are in input pixels
(pixel-index coordinates: the centre of pixel ``[row, col]`` is ``(col, row)``).

* :mod:`.targets` - ``dspf_targets``, ``keypoint_targets``, ``limb_targets`` (training targets).
* :mod:`.warping` - ``flow_warp``: bilinear feature warping by a predicted flow (Eq. 4-6).
* :mod:`.hough_voting` - ``hough_voting``, ``detect_keypoints`` (Eq. 8 and NMS).
* :mod:`.limb_scoring` - ``score_limbs``: elliptical sampling of the limb heatmaps.
* :mod:`.matching` - ``solve_matching`` (differentiable LP matching, PGD + Dykstra),
  ``round_matching``, ``matching_loss``, ``DifferentiableMatching``.
* :mod:`.matching_targets` - ``ground_truth_limb_problems`` for the stage-two matching loss.
* :mod:`.grouping` - ``group_people`` (head to foot), ``greedy_matching`` (Table 5 baselines).
* :mod:`.pixel_assignment` - ``assign_pixels`` (Eq. 17).
* :mod:`.sides` - ``person_facing``, ``orient_chains``, ``resolve_part_sides``: left and right
  of the decoded people from the way each faces (an addition to the paper).
* :mod:`.part_cleanup` - ``absorb_weak_parts``: a person's small, weak part regions take its
  other classes (an addition to the paper).
* :mod:`.orphans` - ``unexplained_regions``: person cells whose DSPF no decoded person explains
  become people without a skeleton (an addition to the paper).
* :mod:`.decoding` - ``decode_maps``: the whole inference chain for one image (the inference seam).
"""
