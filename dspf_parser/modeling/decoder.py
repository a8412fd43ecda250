"""A light DeepLabv3+-style decoder over a feature pyramid, shared by the part and pose heads."""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from detectron2.layers import ASPP, Conv2d, DepthwiseSeparableConv2d, ShapeSpec, get_norm
from fvcore.nn import weight_init
from torch import nn

__all__ = ["PyramidDecoder"]


class PyramidDecoder(nn.Module):
    """Decodes pyramid levels coarse to fine into one high-resolution feature map.

    The coarsest level goes through ASPP (optional); then at each finer level the running
    feature is bilinearly upsampled x2, concatenated with a 1x1 projection of that level and
    fused by a single depthwise-separable 3x3 convolution (the paper's light-weight decoder).

    Input: ``features[name]`` of shape ``[N, C_l, H / s_l, W / s_l]`` for each name in
    ``in_features``. Output: ``[N, conv_dims, H / s_min, W / s_min]`` where ``s_min`` is the
    finest stride in ``in_features``.
    """

    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        in_features: Sequence[str],
        conv_dims: int,
        norm: str,
        aspp_dilations: Sequence[int] = (),
    ):
        super().__init__()
        if not in_features:
            raise ValueError("PyramidDecoder needs at least one input feature")
        missing = [f for f in in_features if f not in input_shape]
        if missing:
            raise ValueError(f"features {missing} not produced by the backbone: {sorted(input_shape)}")
        # Coarse to fine.
        self.in_features: List[str] = sorted(in_features, key=lambda f: -input_shape[f].stride)
        coarsest = input_shape[self.in_features[0]]
        if aspp_dilations:
            self.top = ASPP(
                coarsest.channels, conv_dims, list(aspp_dilations), norm=norm,
                activation=F.relu, pool_kernel_size=None, dropout=0.0,
            )
        else:
            self.top = Conv2d(
                coarsest.channels, conv_dims, 1, bias=not norm,
                norm=get_norm(norm, conv_dims), activation=F.relu,
            )
            weight_init.c2_xavier_fill(self.top)
        self.lateral = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for name in self.in_features[1:]:
            lateral = Conv2d(
                input_shape[name].channels, conv_dims, 1, bias=not norm,
                norm=get_norm(norm, conv_dims), activation=F.relu,
            )
            weight_init.c2_xavier_fill(lateral)
            self.lateral.append(lateral)
            self.fuse.append(
                DepthwiseSeparableConv2d(
                    2 * conv_dims, conv_dims, kernel_size=3, padding=1,
                    norm1=norm, activation1=F.relu, norm2=norm, activation2=F.relu,
                )
            )
        self.output_stride = input_shape[self.in_features[-1]].stride
        self.out_channels = conv_dims

    def forward(self, features: Dict[str, torch.Tensor]) -> torch.Tensor:
        y = self.top(features[self.in_features[0]])
        for name, lateral, fuse in zip(self.in_features[1:], self.lateral, self.fuse):
            x = lateral(features[name])
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            y = fuse(torch.cat([y, x], dim=1))
        return y
