"""A small single-image predictor for DSPFParser (detectron2 ``DefaultPredictor`` style).

Differences from ``detectron2.engine.DefaultPredictor`` (0.6):

* ``cfg.INPUT.MIN_SIZE_TEST <= 0`` means "feed the image at its own size" (the synthetic configs
  use 0); otherwise the shortest edge is resized to ``MIN_SIZE_TEST`` (longest edge at most
  ``MAX_SIZE_TEST``), as in DefaultPredictor. Outputs are always at the original image size (the
  model rescales to the ``height``/``width`` it is given).
* the label space comes from ``cfg.MODEL.DSPF.SCHEMA`` (``self.schema``), not a dataset's
  metadata, so it works without any dataset registered.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from ..data.categories import get_schema

__all__ = ["DSPFPredictor"]


class DSPFPredictor:
    """Builds the model of ``cfg`` in eval mode, loads ``cfg.MODEL.WEIGHTS`` and runs one image.

    ``MODEL.WEIGHTS`` empty keeps the random initialisation (detectron2 logs it).

    Example::

        predictor = DSPFPredictor(cfg)
        outputs = predictor(cv2.imread("people.jpg"))   # BGR uint8 [H, W, 3]
        outputs["instances"].pred_parts                 # [P, H, W] uint8
    """

    def __init__(self, cfg) -> None:
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        DetectionCheckpointer(self.model).load(cfg.MODEL.WEIGHTS)
        self.schema = get_schema(cfg.MODEL.DSPF.SCHEMA)
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT must be RGB or BGR, got {self.input_format!r}")
        min_size = cfg.INPUT.MIN_SIZE_TEST
        self.aug = T.ResizeShortestEdge([min_size, min_size], cfg.INPUT.MAX_SIZE_TEST) if min_size > 0 else None

    def __call__(self, original_image: np.ndarray) -> Dict:
        """Run the model on one ``[H, W, 3]`` ``uint8`` BGR image.

        Returns:
            The model's output dict for that image (``sem_seg``, ``dspf``, ``instances``), at the
            image's original size.
        """
        if original_image.ndim != 3 or original_image.shape[2] != 3:
            raise ValueError(f"expected an [H, W, 3] BGR image, got shape {original_image.shape}")
        with torch.no_grad():
            image = original_image[:, :, ::-1] if self.input_format == "RGB" else original_image
            height, width = image.shape[:2]
            if self.aug is not None:
                image = self.aug.get_transform(image).apply_image(image)
            tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)).astype("float32"))
            return self.model([{"image": tensor, "height": height, "width": width}])[0]
