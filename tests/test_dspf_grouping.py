"""merge_people_by_dspf on hand-computed two-row grids (stride 4: cell [i, j] is (4 j + 2, 4 i + 2));
nearest_within against a brute-force numpy search."""
import numpy as np
import pytest
import torch

from dspf_parser.ops.dspf_grouping import merge_people_by_dspf, nearest_within, pairs_within

K = 16


def two_fragments():
    """Person 0 has joint 0 at (10, 4), person 1 joint 5 at (30, 4), between the two rows."""
    poses = torch.zeros(2, K, 3)
    poses[0, 0] = torch.tensor([10.0, 4.0, 0.9])
    poses[1, 5] = torch.tensor([30.0, 4.0, 0.8])
    return poses


def field_pointing(boundary_x: float):
    """Cells x = 2, 6, ..., 38 on rows y = 2 and 6 (all person cells): those left of
    ``boundary_x`` point to (10, 4), the others to (30, 4)."""
    xs = torch.arange(10) * 4.0 + 2
    target = torch.where(xs < boundary_x, torch.tensor(10.0), torch.tensor(30.0))
    dspf = torch.zeros(2, 2, 10)
    dspf[0] = target - xs
    dspf[1, 0], dspf[1, 1] = 2.0, -2.0
    return torch.ones(2, 10, dtype=torch.bool), dspf


def test_regions_meeting_on_the_bisector_are_one_person():
    poses = two_fragments()
    cells, dspf = field_pointing(20.0)  # the bisector of x = 10 and x = 30
    merged = merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0)
    assert merged.shape == (1, K, 3)
    assert torch.equal(merged[0, 0], poses[0, 0]) and torch.equal(merged[0, 5], poses[1, 5])


def test_a_cell_clearly_closer_to_the_other_persons_joint_vetoes_the_merge():
    """Boundary at x = 28: cells x = 22 and 26 point to (10, 4). Cells x = 26 are 16.1 px from
    it and 4.5 px from (30, 4): more than tolerance 4 closer, conflicts (cells x = 22: 12.2 vs
    8.2, within the tolerance). 2 conflicting cells of 20 labelled > 2 %: two people."""
    poses = two_fragments()
    cells, dspf = field_pointing(28.0)
    assert merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0).shape == (2, K, 3)
    # A 10 % allowance accepts them.
    assert merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0, max_conflict=0.1).shape == (1, K, 3)


def test_shared_joint_type_or_no_contact_keeps_people_apart():
    poses = two_fragments()
    cells, dspf = field_pointing(20.0)
    same_type = poses.clone()
    same_type[1, 0], same_type[1, 5] = same_type[1, 5], 0.0  # both people now have joint 0
    assert merge_people_by_dspf(same_type, cells, dspf, stride=4, radius=6.0).shape == (2, K, 3)
    gap = cells.clone()
    gap[:, 4:6] = False  # x = 18, 22 are not person cells: the regions do not touch
    assert merge_people_by_dspf(poses, gap, dspf, stride=4, radius=6.0).shape == (2, K, 3)


def test_a_small_fragment_joins_its_neighbour_before_larger_contacts_merge():
    """A 3 x 12 grid: fragment Z (cell [0, 0], joint 15 at (2, 2)) touches X (the other cells of
    columns 0-5, joint 8 at (10, 6)) along 2 cell pairs; X touches W (columns 6-11, its own
    joint 15 at (40, 6)) along 3. Most contact first merges X with W, and then Z, sharing type
    15 with W 38 px away, stays apart; with ``small_cells`` 5, Z's 2 pairs for its 1 cell go
    first, and W stays apart."""
    poses = torch.zeros(3, K, 3)
    poses[0, 15] = torch.tensor([2.0, 2.0, 0.9])  # Z
    poses[1, 8] = torch.tensor([10.0, 6.0, 0.9])  # X
    poses[2, 15] = torch.tensor([40.0, 6.0, 0.9])  # W
    ys, xs = torch.meshgrid(torch.arange(3) * 4.0 + 2, torch.arange(12) * 4.0 + 2, indexing="ij")
    target_x = torch.where(xs < 24, torch.tensor(10.0), torch.tensor(40.0))
    target_y = torch.full_like(ys, 6.0)
    target_x[0, 0], target_y[0, 0] = 2.0, 2.0
    dspf = torch.stack([target_x - xs, target_y - ys])
    cells = torch.ones(3, 12, dtype=torch.bool)
    plain = merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0, small_cells=1.0)
    assert plain.shape == (2, K, 3)
    assert torch.equal(plain[0, 15], poses[0, 15]) and plain[0, 8, 2] == 0  # Z alone
    assert torch.equal(plain[1, 8], poses[1, 8]) and torch.equal(plain[1, 15], poses[2, 15])  # X with W
    small_first = merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0, small_cells=5.0)
    assert small_first.shape == (2, K, 3)
    assert torch.equal(small_first[0, 8], poses[1, 8]) and torch.equal(small_first[0, 15], poses[0, 15])  # Z with X
    assert torch.equal(small_first[1, 15], poses[2, 15]) and small_first[1, 8, 2] == 0  # W alone


def test_a_second_peak_of_a_joint_merges_within_the_duplicate_radius():
    """Person 0: joint 0 at (10, 4); person 1: a second joint-0 peak at (22, 4), 12 px off, and
    joint 5 at (34, 4). Cells x < 16 point to (10, 4), x = 18, 22, 26 to (22, 4), the rest to
    (34, 4): the cells of one person meet without conflict (x = 14: 4.5 px to its joint, 8.2 to
    (22, 4); x = 18: 4.5 vs 8.2). Sharing type 0 they stay apart unless the two joint-0 peaks
    are within ``duplicate_radius``; merged, joint 0 is that of person 1 (12 labelled cells
    against 8) and joint 5 is kept."""
    poses = torch.zeros(2, K, 3)
    poses[0, 0] = torch.tensor([10.0, 4.0, 0.9])
    poses[1, 0] = torch.tensor([22.0, 4.0, 0.5])
    poses[1, 5] = torch.tensor([34.0, 4.0, 0.8])
    xs = torch.arange(10) * 4.0 + 2
    target = torch.where(xs < 16, 10.0, torch.where(xs < 28, 22.0, 34.0))
    dspf = torch.zeros(2, 2, 10)
    dspf[0] = target - xs
    dspf[1, 0], dspf[1, 1] = 2.0, -2.0
    cells = torch.ones(2, 10, dtype=torch.bool)
    assert merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0).shape == (2, K, 3)
    assert merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0, duplicate_radius=11.9).shape == (2, K, 3)
    merged, support = merge_people_by_dspf(poses, cells, dspf, stride=4, radius=6.0, duplicate_radius=12.0,
                                           return_support=True)
    assert merged.shape == (1, K, 3) and support.tolist() == [20.0]
    assert torch.equal(merged[0, 0], poses[1, 0]) and torch.equal(merged[0, 5], poses[1, 5])
    assert int((merged[0, :, 2] > 0).sum()) == 2


@pytest.mark.parametrize("radius", [3.0, 6.0])
def test_projections_far_from_every_joint_label_nothing(radius):
    """With the field's x shifted by 5 px the projections miss the joints by 5 px: within radius 6
    they still label (merge), within radius 3 nothing is labelled (no merge)."""
    poses = two_fragments()
    cells, dspf = field_pointing(20.0)
    dspf[0] += 5.0
    expected = 1 if radius > 5 else 2
    assert merge_people_by_dspf(poses, cells, dspf, stride=4, radius=radius).shape[0] == expected


def test_merge_returns_the_support_of_the_merged_people():
    """The labelled cells ``merge_people_by_dspf`` returns are :func:`dspf_support` of its result."""
    from dspf_parser.ops.dspf_grouping import dspf_support

    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        h, w, stride, num_people, k = 24, 32, 4, int(torch.randint(1, 9, (1,), generator=g)), 6
        centres = torch.rand(num_people, 1, 2, generator=g, dtype=torch.float64) * torch.tensor([128.0, 96.0])
        poses = torch.cat([centres + torch.randn(num_people, k, 2, generator=g, dtype=torch.float64) * 12,
                           torch.ones(num_people, k, 1, dtype=torch.float64)], dim=-1)
        poses[..., 2][torch.rand(num_people, k, generator=g) < 0.4] = 0
        poses[poses[..., 2] == 0] = 0
        cells = torch.rand(h, w, generator=g) > 0.3
        dspf = torch.randn(2, h, w, generator=g, dtype=torch.float64) * 6
        merged, support = merge_people_by_dspf(poses, cells, dspf, stride, 8.0, min_boundary=1.0,
                                               max_conflict=0.5, return_support=True)
        assert torch.equal(merged, merge_people_by_dspf(poses, cells, dspf, stride, 8.0, min_boundary=1.0,
                                                        max_conflict=0.5))
        assert support.tolist() == dspf_support(merged, cells, dspf, stride, 8.0).tolist()


def test_no_person_cell_or_no_joint_labels_nothing():
    from dspf_parser.ops.dspf_grouping import dspf_support

    poses = torch.tensor([[[10.0, 10.0, 1.0], [20.0, 10.0, 1.0]], [[50.0, 40.0, 1.0], [0.0, 0.0, 0.0]]])
    dspf = torch.zeros(2, 8, 8)
    none = torch.zeros(8, 8, dtype=torch.bool)
    merged, support = merge_people_by_dspf(poses, none, dspf, 8, 6.0, return_support=True)
    assert torch.equal(merged, poses) and support.tolist() == [0.0, 0.0]
    assert dspf_support(poses[:, :0], torch.ones(8, 8, dtype=torch.bool), dspf, 8, 6.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("seed", range(8))
def test_nearest_within_equals_a_brute_force_search(seed):
    """Random points and sites, integer coordinates on even seeds (exact ties: the lower site
    index wins), points well outside the sites' range, empty inputs."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        num_sites, num_points = int(rng.integers(0, 40)), int(rng.integers(0, 200))
        radius = float(rng.uniform(0.5, 15.0))
        sites = rng.integers(0, 50, (num_sites, 2)).astype(np.float64)
        points = rng.integers(-30, 80, (num_points, 2)).astype(np.float64)
        if seed % 2:
            sites += rng.random(sites.shape)
            points += rng.random(points.shape)
        distance, index = nearest_within(torch.from_numpy(points), torch.from_numpy(sites), radius)
        expected_index = np.full(num_points, -1)
        expected_distance = np.full(num_points, np.inf)
        for q in range(num_points):
            for j in range(num_sites):
                d = float(np.hypot(*(points[q] - sites[j])))
                if d <= radius and d < expected_distance[q]:  # strict: the first of equals stays
                    expected_distance[q], expected_index[q] = d, j
        np.testing.assert_array_equal(index.numpy(), expected_index)
        np.testing.assert_allclose(distance.numpy(), expected_distance, rtol=1e-12)


def test_nearest_within_rejects_a_non_positive_radius():
    with pytest.raises(ValueError, match="radius must be positive"):
        nearest_within(torch.zeros(1, 2), torch.zeros(1, 2), 0.0)
    with pytest.raises(ValueError, match="radius must be positive"):
        pairs_within(torch.zeros(1, 2), torch.zeros(1, 2), -1.0)


@pytest.mark.parametrize("seed", range(6))
def test_pairs_within_lists_every_pair_a_brute_force_search_finds(seed):
    """Every (point, site) pair with squared distance <= radius^2, each once, with that squared
    distance: random and integer coordinates (pairs exactly at the radius), empty inputs."""
    rng = np.random.default_rng(100 + seed)
    for _ in range(20):
        num_sites, num_points = int(rng.integers(0, 40)), int(rng.integers(0, 200))
        radius = float(rng.integers(1, 12)) if seed % 2 == 0 else float(rng.uniform(0.5, 15.0))
        sites = rng.integers(0, 50, (num_sites, 2)).astype(np.float64)
        points = rng.integers(-30, 80, (num_points, 2)).astype(np.float64)
        if seed % 2:
            sites += rng.random(sites.shape)
            points += rng.random(points.shape)
        point, site, dist2 = pairs_within(torch.from_numpy(points), torch.from_numpy(sites), radius)
        got = sorted(zip(point.tolist(), site.tolist()))
        expected = sorted((q, j) for q in range(num_points) for j in range(num_sites)
                          if ((points[q] - sites[j]) ** 2).sum() <= radius * radius)
        assert got == expected
        np.testing.assert_allclose(dist2.numpy(), ((points[point.numpy()] - sites[site.numpy()]) ** 2).sum(axis=1),
                                   rtol=1e-12)
