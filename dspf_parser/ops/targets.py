"""Training targets for the DSPF and pose heads (paper sections 3.2 and 3.3).

Pure torch, fully vectorised over the output grid.

Conventions:
    * A joint ``(x, y)`` is in pixel-index coordinates of the input image: the centre of pixel
      ``[row, col]`` is ``(x=col, y=row)``.
    * Targets live on the output grid of stride ``s``: its size is
      ``(h, w) = (ceil(H / s), ceil(W / s))`` and cell ``[i, j]`` stands for the input position
      ``(x, y) = (j * s + s // 2, i * s + s // 2)`` (for ``s = 1`` this is the pixel itself).
    * Every vector (DSPF, keypoint offsets) is in input pixel units, ordered ``(dx, dy)``.
    * A joint is usable when its visibility flag ``v > 0``.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["grid_coordinates", "grid_footprint", "resample_grid", "sample_grid_at_pixels", "dspf_targets", "keypoint_targets", "limb_targets"]


def grid_coordinates(
    height: int, width: int, stride: int, device: Optional[torch.device] = None
) -> Tuple[Tensor, Tensor]:
    """Input-image coordinates of the cell centres of the stride-``stride`` output grid.

    Args:
        height, width: input image size ``H, W``.
        stride: output stride ``s >= 1``.
        device: device of the returned tensors.

    Returns:
        ``(ys, xs)``: float32 tensors of shape ``[h]`` and ``[w]`` with
        ``h = ceil(H / s)``, ``w = ceil(W / s)``, ``ys[i] = i * s + s // 2`` and
        ``xs[j] = j * s + s // 2``. When ``H`` (``W``) is not a multiple of ``s`` the last
        centre may lie beyond the image; it is returned unclamped.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    h, w = math.ceil(height / stride), math.ceil(width / stride)
    offset = stride // 2
    ys = torch.arange(h, device=device, dtype=torch.float32) * stride + offset
    xs = torch.arange(w, device=device, dtype=torch.float32) * stride + offset
    return ys, xs


def grid_footprint(
    n_out: int, n_in: int, n_grid: int, stride: int, device: Optional[torch.device] = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Where the output pixels of one axis read the stride-grid: the decoder of
    :func:`grid_coordinates` along one axis, as :func:`sample_grid_at_pixels` reads it.

    Output pixel ``x'`` of an ``n_out``-pixel axis covering an ``n_in``-pixel input lies at input
    position ``x = (x' + 0.5) * n_in / n_out - 0.5``, i.e. at grid position
    ``u = clamp((x - s // 2) / s, 0, n_grid - 1)``; its bilinear value is
    ``(1 - frac) * m[i0] + frac * m[i1]``.

    Returns:
        ``i0 = floor(u)`` and ``i1 = min(i0 + 1, n_grid - 1)`` (long ``[n_out]``) and
        ``frac = u - i0`` (``[n_out]`` in ``dtype``).
    """
    pos = (torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    cell = ((pos - stride // 2) / stride).clamp(0, max(n_grid - 1, 0))
    low = cell.floor()
    return low.long(), (low.long() + 1).clamp(max=max(n_grid - 1, 0)), (cell - low).to(dtype)


def sample_grid_at_pixels(
    maps: Tensor, stride: int, input_size: Tuple[int, int], output_size: Optional[Tuple[int, int]] = None
) -> Tensor:
    """Bilinear values of stride-grid maps at every pixel of an output image: the decoder of
    :func:`grid_coordinates`.

    Cell ``[i, j]`` of ``maps`` holds the value at input position ``(j * s + s // 2,
    i * s + s // 2)`` (pixel-index coordinates of the ``H x W`` input). Output pixel
    ``(x', y')`` of an ``H' x W'`` image covering the same field of view lies at input position
    ``x = (x' + 0.5) * W / W' - 0.5`` (the same for ``y``), i.e. at grid position
    ``u = (x - s // 2) / s``, where ``maps`` is sampled bilinearly (clamped at the border).
    With ``s = 1`` and ``H' x W' = H x W`` this is the identity.

    Args:
        maps: ``[..., h, w]`` on the stride-``s`` grid of the input (``h >= ceil(H / s)`` rows
            may be given; extra rows and columns are never read beyond the clamp).
        stride: grid stride ``s``.
        input_size: ``(H, W)`` of the network input.
        output_size: ``(H', W')``; default ``input_size``.

    Returns:
        ``[..., H', W']`` in the dtype of ``maps``.
    """
    height, width = input_size
    out_h, out_w = output_size if output_size is not None else input_size
    lead = maps.shape[:-2]
    h, w = maps.shape[-2:]
    flat = maps.reshape(1, -1, h, w)
    if flat.shape[1] == 0 or out_h == 0 or out_w == 0:
        return maps.new_zeros(*lead, out_h, out_w)
    dtype = maps.dtype if maps.is_floating_point() else torch.float32

    def axis(n_out: int, n_in: int, n_grid: int) -> Tensor:
        pos = (torch.arange(n_out, device=maps.device, dtype=dtype) + 0.5) * (n_in / n_out) - 0.5
        cell = (pos - stride // 2) / stride
        return (2 * cell + 1) / n_grid - 1  # grid_sample's normalised coordinates (align_corners=False)

    gx, gy = axis(out_w, width, w), axis(out_h, height, h)
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)[None]
    out = F.grid_sample(flat.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(*lead, out_h, out_w)


def resample_grid(
    maps: Tensor, stride: int, from_input_size: Tuple[int, int], to_input_size: Tuple[int, int]
) -> Tensor:
    """Stride-grid maps of an ``H x W`` input resampled onto the stride-grid of an ``H2 x W2``
    input with the same field of view (bilinear, clamped at the border).

    Cell ``[i, j]`` of the result stands for position ``(j * s + s // 2, i * s + s // 2)`` of the
    ``H2 x W2`` input (:func:`grid_coordinates`), i.e. ``x = (x2 + 0.5) * W / W2 - 0.5`` of the
    ``H x W`` input, where ``maps`` is read as in :func:`sample_grid_at_pixels`. Values are
    resampled, not rescaled: vectors in input pixels must be scaled by the caller.

    Args:
        maps: ``[..., h, w]`` on the stride-``s`` grid of the ``from_input_size`` input.
        stride: grid stride ``s`` of both grids.
        from_input_size, to_input_size: ``(H, W)`` and ``(H2, W2)``.

    Returns:
        ``[..., ceil(H2 / s), ceil(W2 / s)]``.
    """
    (height, width), (to_h, to_w) = from_input_size, to_input_size
    ys, xs = grid_coordinates(to_h, to_w, stride, device=maps.device)
    lead, (h, w) = maps.shape[:-2], maps.shape[-2:]
    flat = maps.reshape(1, -1, h, w)
    if flat.shape[1] == 0 or ys.numel() == 0 or xs.numel() == 0:
        return maps.new_zeros(*lead, ys.numel(), xs.numel())

    def axis(pos: Tensor, n_in: int, n_to: int, n_grid: int) -> Tensor:
        cell = ((pos + 0.5) * (n_in / n_to) - 0.5 - stride // 2) / stride
        return (2 * cell + 1) / n_grid - 1  # grid_sample's normalised coordinates (align_corners=False)

    gx, gy = axis(xs, width, to_w, w), axis(ys, height, to_h, h)
    grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)[None].to(maps.dtype)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(*lead, ys.numel(), xs.numel())


def dspf_targets(instance_map: Tensor, keypoints: Tensor, stride: int) -> Tuple[Tensor, Tensor]:
    """Dense-to-Sparse Projection Field target (section 3.2).

    For each grid cell whose centre pixel belongs to person ``p`` (``instance_map == p > 0``)
    the target is the offset ``(x_k - x, y_k - y)`` from the cell position ``(x, y)`` to the
    nearest usable joint ``k = argmin_k ||(x_k, y_k) - (x, y)||`` of the *same* person,
    ``keypoints[p - 1, k]``. Ties go to the lowest joint index.

    The instance id of cell ``[i, j]`` is read at pixel
    ``[min(i * s + s // 2, H - 1), min(j * s + s // 2, W - 1)]`` (clamped only when the image
    size is not a multiple of the stride); the offset is always taken from the unclamped cell
    position of :func:`grid_coordinates`.

    Args:
        instance_map: ``[H, W]`` integer tensor, 0 for background and person ids ``1..P``.
        keypoints: ``[P, K, 3]`` float tensor of ``(x, y, v)`` per person and joint.
        stride: output stride ``s``.

    Returns:
        ``(field, weight)``:
            * ``field``: ``[2, h, w]`` float32 ``(dx, dy)``, zero where ``weight == 0``.
            * ``weight``: ``[h, w]`` float32, 1 on cells of persons with at least one usable
              joint, 0 on background and on persons without any usable joint.
    """
    if instance_map.dim() != 2:
        raise ValueError(f"instance_map must be [H, W], got {tuple(instance_map.shape)}")
    if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be [P, K, 3], got {tuple(keypoints.shape)}")
    height, width = instance_map.shape
    device = instance_map.device
    ys, xs = grid_coordinates(height, width, stride, device=device)
    h, w = ys.numel(), xs.numel()
    field = torch.zeros(2, h, w, dtype=torch.float32, device=device)
    weight = torch.zeros(h, w, dtype=torch.float32, device=device)

    rows = ys.long().clamp(max=height - 1)
    cols = xs.long().clamp(max=width - 1)
    ids = instance_map[rows[:, None], cols[None, :]].long()  # [h, w]
    num_persons = keypoints.shape[0]
    if ids.max() > num_persons:
        raise ValueError(f"instance id {int(ids.max())} exceeds the {num_persons} persons")

    cell_i, cell_j = torch.nonzero(ids > 0, as_tuple=True)  # [M] each
    if cell_i.numel() == 0:
        return field, weight
    kps = keypoints.to(device=device, dtype=torch.float32)[ids[cell_i, cell_j] - 1]  # [M, K, 3]
    pos = torch.stack([xs[cell_j], ys[cell_i]], dim=-1)  # [M, 2]
    delta = kps[..., :2] - pos[:, None, :]  # [M, K, 2]
    dist2 = (delta * delta).sum(-1).masked_fill(kps[..., 2] <= 0, float("inf"))  # [M, K]
    best_dist2, best = dist2.min(dim=-1)  # [M]
    valid = torch.isfinite(best_dist2)  # [M]
    chosen = delta[torch.arange(best.numel(), device=device), best]  # [M, 2]
    chosen = chosen * valid[:, None].to(chosen.dtype)
    field[:, cell_i, cell_j] = chosen.t()
    weight[cell_i, cell_j] = valid.to(torch.float32)
    return field, weight


def keypoint_targets(
    keypoints: Tensor, image_size: Tuple[int, int], stride: int, radius: float
) -> Tuple[Tensor, Tensor, Tensor]:
    """PersonLab-style keypoint heatmap and short-range offset targets (section 3.3).

    For joint type ``k`` let ``J_k`` be the usable joints of type ``k`` over all persons and
    ``d(q) = min_{u in J_k} ||u - q||`` for a cell position ``q``:

    * ``heatmap[k, q] = 1`` if ``d(q) <= radius`` (closed disk), else 0;
    * ``offsets[k, :, q] = argmin_{u in J_k} ||u - q|| - q`` (``(dx, dy)``, ties to the lowest
      person index) inside the disks, 0 elsewhere;
    * ``offset_weight[k, q] = heatmap[k, q]``.

    Args:
        keypoints: ``[P, K, 3]`` float tensor of ``(x, y, v)``.
        image_size: input image size ``(H, W)``.
        stride: output stride ``s``.
        radius: disk radius in input pixels.

    Returns:
        ``(heatmap, offsets, offset_weight)`` with shapes ``[K, h, w]``, ``[K, 2, h, w]`` and
        ``[K, h, w]``, all float32.
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be [P, K, 3], got {tuple(keypoints.shape)}")
    device = keypoints.device
    ys, xs = grid_coordinates(image_size[0], image_size[1], stride, device=device)
    h, w = ys.numel(), xs.numel()
    num_persons, num_types = keypoints.shape[:2]
    if num_persons == 0:
        zeros = torch.zeros(num_types, h, w, dtype=torch.float32, device=device)
        return zeros, zeros.new_zeros(num_types, 2, h, w), zeros.clone()

    kps = keypoints.to(torch.float32).transpose(0, 1)  # [K, P, 3]
    dx = kps[..., 0, None, None] - xs[None, None, None, :]  # [K, P, 1, w]
    dy = kps[..., 1, None, None] - ys[None, None, :, None]  # [K, P, h, 1]
    dist2 = (dx * dx + dy * dy).masked_fill((kps[..., 2] <= 0)[..., None, None], float("inf"))
    best_dist2, best = dist2.min(dim=1)  # [K, h, w]
    inside = best_dist2 <= radius * radius  # [K, h, w]; False where no usable joint (inf)
    heatmap = inside.to(torch.float32)

    nearest = torch.gather(kps[..., :2], 1, best.reshape(num_types, -1, 1).expand(-1, -1, 2))
    nearest = nearest.reshape(num_types, h, w, 2).permute(0, 3, 1, 2)  # [K, 2, h, w]
    cell = torch.stack(torch.broadcast_tensors(xs[None, :], ys[:, None]), dim=0)  # [2, h, w]
    offsets = (nearest - cell[None]) * heatmap[:, None]
    return heatmap, offsets, heatmap.clone()


def limb_targets(
    keypoints: Tensor,
    limbs: Sequence[Tuple[int, int]],
    image_size: Tuple[int, int],
    stride: int,
    sigma: float,
) -> Tensor:
    """Limb heatmaps: unnormalised elliptical Gaussians along each limb (section 3.3).

    For limb ``l = (a, b)`` and a person whose joints ``A = kp[a]`` and ``B = kp[b]`` are both
    usable, let ``c = (A + B) / 2``, ``len = ||B - A||``, ``u = (B - A) / len`` (``u = (1, 0)``
    when ``len == 0``; the Gaussian is then isotropic so ``u`` is irrelevant) and
    ``n = (-u_y, u_x)``. For a cell position ``q`` with ``d = q - c``:

        g(q) = exp(-0.5 * ((d . u)^2 / sigma_major^2 + (d . n)^2 / sigma^2)),
        sigma_major = max(len / 2, sigma).

    ``target[l, q]`` is the max of ``g(q)`` over the persons with both endpoints usable, and 0
    if there is none. The value is 1 at the limb midpoint.

    Args:
        keypoints: ``[P, K, 3]`` float tensor of ``(x, y, v)``.
        limbs: ``L`` pairs ``(a, b)`` of 0-based joint indices.
        image_size: input image size ``(H, W)``.
        stride: output stride ``s``.
        sigma: minor-axis standard deviation (and lower bound of the major one), input pixels.

    Returns:
        ``[L, h, w]`` float32 tensor in ``[0, 1]``.
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] != 3:
        raise ValueError(f"keypoints must be [P, K, 3], got {tuple(keypoints.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    device = keypoints.device
    ys, xs = grid_coordinates(image_size[0], image_size[1], stride, device=device)
    h, w = ys.numel(), xs.numel()
    num_limbs, num_persons = len(limbs), keypoints.shape[0]
    if num_limbs == 0 or num_persons == 0:
        return torch.zeros(num_limbs, h, w, dtype=torch.float32, device=device)

    pairs = torch.as_tensor(limbs, dtype=torch.long, device=device)  # [L, 2]
    kps = keypoints.to(torch.float32)
    ends_a = kps[:, pairs[:, 0]].transpose(0, 1)  # [L, P, 3]
    ends_b = kps[:, pairs[:, 1]].transpose(0, 1)  # [L, P, 3]
    valid = (ends_a[..., 2] > 0) & (ends_b[..., 2] > 0)  # [L, P]
    vec = ends_b[..., :2] - ends_a[..., :2]  # [L, P, 2]
    length = vec.norm(dim=-1)  # [L, P]
    safe_length = length.clamp_min(1e-12)[..., None]  # [L, P, 1]
    unit = torch.where(length[..., None] > 0, vec / safe_length, vec.new_tensor([1.0, 0.0]))
    unit_x, unit_y = unit.unbind(-1)  # [L, P] each
    centre = (ends_a[..., :2] + ends_b[..., :2]) / 2  # [L, P, 2]
    inv_var_major = (length / 2).clamp_min(sigma).pow(-2)  # [L, P]
    inv_var_minor = 1.0 / (sigma * sigma)

    def col(t: Tensor) -> Tensor:
        """``[L, P]`` -> ``[L, P, 1, 1]`` for broadcasting against the grid."""
        return t[..., None, None]

    dx = xs[None, None, None, :] - col(centre[..., 0])  # [L, P, 1, w]
    dy = ys[None, None, :, None] - col(centre[..., 1])  # [L, P, h, 1]
    along = dx * col(unit_x) + dy * col(unit_y)  # [L, P, h, w]
    across = dy * col(unit_x) - dx * col(unit_y)  # [L, P, h, w]
    expo = along.square() * col(inv_var_major) + across.square() * inv_var_minor
    gauss = torch.exp(-0.5 * expo).masked_fill(~col(valid), 0.0)
    return gauss.amax(dim=1)
