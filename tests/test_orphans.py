"""People without a skeleton: unexplained regions of person cells (dspf_parser.ops.orphans) and
their glue in the decoding (``DecodingSettings.orphan_min_cells``)."""
import math

import pytest
import torch

from dspf_parser.ops.decoding import DecodingSettings, ParsingMaps, _add_orphans
from dspf_parser.ops.orphans import adopt_skeletons, unexplained_regions


def _flood_fill_reference(person_cells, projections, owners, poses, far, min_cells, min_spread):
    """Loops: each cell's distance to its owner's nearest present joint (0 without an owner), 4-connected regions by
    breadth-first search in row-major order, kept by size and spread, numbered largest first."""
    h, w = person_cells.shape
    lost = [[False] * w for _ in range(h)]
    for i in range(h):
        for j in range(w):
            if not person_cells[i, j]:
                continue
            o = int(owners[i, j])
            gap = 0.0  # a cell nobody took is never unexplained
            if o > 0:
                gap = math.inf
                for x, y, s in poses[o - 1].tolist():
                    if s > 0:
                        gap = min(gap, math.hypot(x - float(projections[0, i, j]), y - float(projections[1, i, j])))
            lost[i][j] = gap > far
    seen = [[False] * w for _ in range(h)]
    regions = []
    for i in range(h):
        for j in range(w):
            if lost[i][j] and not seen[i][j]:
                seen[i][j] = True
                queue, cells = [(i, j)], []
                while queue:
                    a, b = queue.pop()
                    cells.append((a, b))
                    for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                        u, v = a + da, b + db
                        if 0 <= u < h and 0 <= v < w and lost[u][v] and not seen[u][v]:
                            seen[u][v] = True
                            queue.append((u, v))
                pts = [(float(projections[0, a, b]), float(projections[1, a, b])) for a, b in cells]
                mx = sum(p[0] for p in pts) / len(pts)
                my = sum(p[1] for p in pts) / len(pts)
                spread = sum(math.hypot(p[0] - mx, p[1] - my) for p in pts) / len(pts)
                if len(cells) >= min_cells and spread >= min_spread:
                    regions.append(cells)
    regions.sort(key=len, reverse=True)  # stable: ties keep the row-major order of discovery
    expected = torch.zeros(h, w, dtype=torch.long)
    for r, cells in enumerate(regions):
        for a, b in cells:
            expected[a, b] = r + 1
    return expected, len(regions)


@pytest.mark.parametrize("seed", range(6))
def test_unexplained_regions_equal_a_flood_fill_loop(seed):
    g = torch.Generator().manual_seed(seed)
    h, w, num_people, k = 9, 11, 3, 4
    person_cells = torch.rand(h, w, generator=g) < 0.7
    projections = torch.rand(2, h, w, generator=g) * 40
    owners = torch.randint(0, num_people + 1, (h, w), generator=g)
    poses = torch.rand(num_people, k, 3, generator=g) * 40
    poses[..., 2] = (torch.rand(num_people, k, generator=g) < 0.6).float()
    poses[1, :, 2] = 0  # a person without joints: its cells are all unexplained
    args = (person_cells, projections, owners, poses, 9.0, 2, 3.0)
    region, count = unexplained_regions(*args)
    expected, expected_count = _flood_fill_reference(*args)
    assert count == expected_count and count > 0
    assert torch.equal(region, expected)


def test_unexplained_regions_none_when_every_cell_is_explained_or_nobody_took_it():
    cells = torch.ones(3, 3, dtype=torch.bool)
    projections = torch.zeros(2, 3, 3)
    poses = torch.tensor([[[1.0, 1.0, 1.0]]])
    region, count = unexplained_regions(cells, projections, torch.ones(3, 3, dtype=torch.long), poses, 2.0, 1, 0.0)
    assert count == 0 and not region.any()
    nobody = torch.zeros(3, 3, dtype=torch.long)
    region, count = unexplained_regions(cells, projections, nobody, poses[:0], 2.0, 1, 0.0)
    assert count == 0 and not region.any()


def _body_and_hand_scene():
    """Person 1 (two joints) owns every labelled pixel after Eq. 17; a 4 x 4-cell blob far away
    whose DSPF points at four separate places (a body whose joints were not decoded); a 3 x
    3-cell 'hand' next to person 1 whose DSPF all points at one missed wrist (spread 0)."""
    stride, h, w = 4, 16, 24
    size = (h * stride, w * stride)
    labels = torch.zeros(size, dtype=torch.long)
    person_cells = torch.zeros(h, w, dtype=torch.bool)
    dspf = torch.zeros(2, h, w)
    centre = lambda i: i * stride + stride // 2  # noqa: E731
    # Person 1: cells rows 2..9, cols 2..5, DSPF onto its joints at (14, 14) and (14, 30).
    poses = torch.tensor([[[14.0, 14.0, 1.0], [14.0, 30.0, 1.0]]])
    for i in range(2, 10):
        for j in range(2, 6):
            person_cells[i, j] = True
            joint_y = 14.0 if i < 6 else 30.0
            dspf[0, i, j], dspf[1, i, j] = 14.0 - centre(j), joint_y - centre(i)
    # The hand: rows 10..12, cols 2..4, all pointing at a missed wrist (14, 46) (16 px below).
    for i in range(10, 13):
        for j in range(2, 5):
            person_cells[i, j] = True
            dspf[0, i, j], dspf[1, i, j] = 14.0 - centre(j), 46.0 - centre(i)
    # The blob: rows 4..7, cols 16..19; each 2 x 2 quarter points at its own corner joint.
    for i in range(4, 8):
        for j in range(16, 20):
            person_cells[i, j] = True
            jx = 66.0 if j < 18 else 78.0
            jy = 18.0 if i < 6 else 30.0
            dspf[0, i, j], dspf[1, i, j] = jx - centre(j), jy - centre(i)
    for i, j in person_cells.nonzero().tolist():
        labels[i * stride:(i + 1) * stride, j * stride:(j + 1) * stride] = 1
    instance_map = (labels > 0).long()  # Eq. 17 gave everything to person 1
    pixels = (labels.reshape(-1) > 0).nonzero().squeeze(1)
    maps = ParsingMaps(part_probs=torch.stack([1 - person_cells.float(), person_cells.float()]), dspf=dspf,
                       heatmaps=torch.zeros(2, h, w), offsets=torch.zeros(2, 2, h, w),
                       limb_heatmaps=torch.zeros(1, h, w), part_stride=stride)
    grid_top = person_cells.float() * 0.5 + 0.5
    return stride, size, labels, person_cells, poses, instance_map, pixels, maps, grid_top


def test_a_body_without_joints_becomes_a_person_and_a_missed_wrist_does_not():
    """The blob of :func:`_body_and_hand_scene` becomes person 2, with no skeleton and a rank
    score below person 1's; the hand stays person 1's."""
    stride, size, labels, person_cells, poses, instance_map, pixels, maps, grid_top = _body_and_hand_scene()
    settings = DecodingSettings(limbs=[(0, 1)], stride=stride, keypoint_radius=3.0, orphan_min_cells=8,
                                orphan_distance=4.0, orphan_min_spread=1.0)
    out = _add_orphans(maps, grid_top, person_cells, labels, instance_map, pixels, poses, torch.tensor([2.0]),
                       torch.tensor([2.0]), torch.zeros(1, 2, dtype=torch.bool), settings, size)
    new_poses, scores, pose_scores, new_map, shared = out
    blob = torch.zeros(size, dtype=torch.bool)
    blob[16:32, 64:80] = True
    assert torch.equal(new_map == 2, blob)
    assert torch.equal(new_map == 1, (labels > 0) & ~blob)  # the hand stays person 1's
    assert new_poses.shape == (2, 2, 3) and not new_poses[1].any() and torch.equal(new_poses[0], poses[0])
    assert scores[0] == 2.0 and 0 < scores[1] < 2.0 * 1e-3 + 1e-9
    assert pose_scores.tolist() == [2.0, 0.0] and shared.shape == (2, 2) and not shared.any()
    # Without the spread test the hand (9 cells, 16 px from the nearest joint > 12) is a person too.
    loose = DecodingSettings(limbs=[(0, 1)], stride=stride, keypoint_radius=3.0, orphan_min_cells=8,
                             orphan_distance=4.0, orphan_min_spread=0.0)
    _, scores_loose, _, map_loose, _ = _add_orphans(maps, grid_top, person_cells, labels, instance_map, pixels, poses,
                                                    torch.tensor([2.0]), torch.tensor([2.0]),
                                                    torch.zeros(1, 2, dtype=torch.bool), loose, size)
    hand = torch.zeros(size, dtype=torch.bool)
    hand[40:52, 8:20] = True
    assert len(scores_loose) == 3 and bool((map_loose[hand] == 3).all())


def test_orphans_rank_below_everyone_by_part_confidence():
    """Two bodies without joints next to a person who explains none of them: the smaller one,
    whose cells the part map is surer of, ranks first; scores stay decreasing."""
    stride, h, w = 4, 12, 24
    size = (h * stride, w * stride)
    person_cells = torch.zeros(h, w, dtype=torch.bool)
    person_cells[1:3, 1:3] = True  # person 1: 4 cells around its joint
    person_cells[2:10, 6:12] = True  # big body (48 cells)
    person_cells[2:6, 16:20] = True  # small body (16 cells)
    grid_top = torch.full((h, w), 0.9)
    grid_top[2:10, 6:12] = 0.6
    dspf = torch.zeros(2, h, w)  # every cell projects onto itself: spread over its region
    labels = torch.zeros(size, dtype=torch.long)
    for i, j in person_cells.nonzero().tolist():
        labels[i * stride:(i + 1) * stride, j * stride:(j + 1) * stride] = 1
    instance_map = (labels > 0).long()
    pixels = (labels.reshape(-1) > 0).nonzero().squeeze(1)
    poses = torch.tensor([[[8.0, 8.0, 1.0]]])
    maps = ParsingMaps(part_probs=torch.stack([1 - person_cells.float(), person_cells.float()]), dspf=dspf,
                       heatmaps=torch.zeros(1, h, w), offsets=torch.zeros(1, 2, h, w),
                       limb_heatmaps=torch.zeros(0, h, w), part_stride=stride)
    settings = DecodingSettings(limbs=[], stride=stride, keypoint_radius=2.0, orphan_min_cells=8)
    _, scores, _, new_map, _ = _add_orphans(maps, grid_top, person_cells, labels, instance_map, pixels, poses,
                                            torch.tensor([3.0]), torch.tensor([3.0]),
                                            torch.zeros(1, 1, dtype=torch.bool), settings, size)
    assert torch.allclose(scores, torch.tensor([3.0, 3.0 * 1e-3 * 0.9, 3.0 * 1e-3 * 0.6]))
    assert bool((new_map[8:24, 64:80] == 2).all()) and bool((new_map[8:40, 24:48] == 3).all())
    assert bool((new_map[4:12, 4:12] == 1).all())


def test_an_orphan_takes_the_skeleton_of_the_dropped_fragment_it_projects_onto():
    """The blob of :func:`_body_and_hand_scene` projects onto (66, 18), (78, 18), (66, 30) and
    (78, 30): a dropped fragment with joints at two of those corners (8 of its 16 cells vote
    for it, half) becomes its skeleton, with the orphan's rank score as pose score; a fragment
    elsewhere (by the hand) is not adopted, and neither is one only 4 cells vote for."""
    stride, size, labels, person_cells, poses, instance_map, pixels, maps, grid_top = _body_and_hand_scene()
    settings = DecodingSettings(limbs=[(0, 1)], stride=stride, keypoint_radius=3.0, orphan_min_cells=8,
                                orphan_distance=4.0, orphan_min_spread=1.0)
    elsewhere = torch.tensor([[14.0, 46.0, 0.7], [0.0, 0.0, 0.0]])
    body = torch.tensor([[66.0, 18.0, 0.9], [78.0, 30.0, 0.8]])
    corner = torch.tensor([[0.0, 0.0, 0.0], [79.0, 31.0, 0.6]])  # near one corner only: 4 votes of 16
    for fragments, expected in ((torch.stack([elsewhere, body]), body), (torch.stack([body, elsewhere]), body),
                                (torch.stack([elsewhere, corner]), torch.zeros(2, 3))):
        new_poses, scores, pose_scores, new_map, _ = _add_orphans(
            maps, grid_top, person_cells, labels, instance_map, pixels, poses, torch.tensor([2.0]),
            torch.tensor([2.0]), torch.zeros(1, 2, dtype=torch.bool), settings, size, fragments)
        assert new_poses.shape == (2, 2, 3) and torch.equal(new_poses[1], expected)
        assert torch.equal(new_poses[0], poses[0]) and bool((new_map == 2).any())
        assert pose_scores[1] == (scores[1] if expected.any() else 0.0)


def _adopt_reference(region, count, projections, fragments, radius):
    """Loops: votes per (region, fragment), each region's most voted fragment (first on ties) if
    it has at least half the region's cells, each fragment kept by the region voting most for it
    (lower region on ties)."""
    h, w = region.shape
    votes = [[0] * fragments.shape[0] for _ in range(count)]
    size = [0] * count
    for i in range(h):
        for j in range(w):
            r = int(region[i, j]) - 1
            if r < 0:
                continue
            size[r] += 1
            px, py = float(projections[0, i, j]), float(projections[1, i, j])
            for f in range(fragments.shape[0]):
                if any(s > 0 and math.hypot(x - px, y - py) <= radius for x, y, s in fragments[f].tolist()):
                    votes[r][f] += 1
    wanted = []
    for r in range(count):
        best = max(range(fragments.shape[0]), key=lambda f: (votes[r][f], -f))
        wanted.append(best if votes[r][best] > 0 and 2 * votes[r][best] >= size[r] else -1)
    adopted = [-1] * count
    for f in range(fragments.shape[0]):
        rivals = [r for r in range(count) if wanted[r] == f]
        if rivals:
            adopted[max(rivals, key=lambda r: (votes[r][f], -r))] = f
    return adopted


@pytest.mark.parametrize("seed", range(8))
def test_adopt_skeletons_equals_a_voting_loop(seed):
    g = torch.Generator().manual_seed(seed)
    h, w, count, num_fragments, k = 7, 9, 4, 5, 3
    region = torch.randint(0, count + 1, (h, w), generator=g)
    projections = torch.randint(0, 5, (2, h, w), generator=g).float() * 4  # on a coarse lattice: ties happen
    fragments = torch.randint(0, 5, (num_fragments, k, 3), generator=g).float() * 4
    fragments[..., 2] = (torch.rand(num_fragments, k, generator=g) < 0.5).float()
    fragments[0] = fragments[1]  # two identical fragments: the first one wins the votes
    adopted = adopt_skeletons(region, count, projections, fragments, 8.5)
    assert adopted.tolist() == _adopt_reference(region, count, projections, fragments, 8.5)
    assert bool((adopted >= 0).any()) and 1 not in adopted.tolist()


def test_adopt_skeletons_without_regions_or_fragments():
    region = torch.zeros(3, 3, dtype=torch.long)
    assert adopt_skeletons(region, 0, torch.zeros(2, 3, 3), torch.zeros(2, 1, 3), 1.0).shape == (0,)
    region[0, 0] = 1
    assert adopt_skeletons(region, 1, torch.zeros(2, 3, 3), torch.zeros(0, 1, 3), 1.0).tolist() == [-1]
