"""detectron2's own data conventions: dataset dict fields, metadata, ignored INPUT keys."""
import cv2
import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode
from detectron2.utils.visualizer import Visualizer

from dspf_parser import add_dspf_config
from dspf_parser.config import IGNORED_TRAIN_INPUT_KEYS, check_train_input_keys
from dspf_parser.data.categories import SCHEMAS
from dspf_parser.data.dataset_mapper import DSPFDatasetMapper


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_metadata_has_detectron2_fields(schema):
    meta = SCHEMAS[schema].metadata()
    s = SCHEMAS[schema]
    assert meta["thing_classes"] == ["person"] and len(meta["thing_colors"]) == 1
    assert meta["stuff_classes"] == list(s.part_classes)
    assert len(meta["stuff_colors"]) == s.num_parts and meta["stuff_colors"][0] == (0, 0, 0)
    assert len(set(meta["stuff_colors"])) == s.num_parts
    # keypoint_flip_map lists each swapped pair once, by name; it rebuilds the flip permutation.
    index = {n: i for i, n in enumerate(s.keypoint_names)}
    perm = list(range(s.num_keypoints))
    for a, b in meta["keypoint_flip_map"]:
        perm[index[a]], perm[index[b]] = index[b], index[a]
        assert ("Left" in a or "left" in a) != ("Left" in b or "left" in b)
    assert perm == list(s.keypoint_flip)
    assert [(index[a], index[b]) for a, b, _ in meta["keypoint_connection_rules"]] == [tuple(l) for l in s.limbs]


def test_dataset_dicts_have_detectron2_fields_and_draw():
    records = DatasetCatalog.get("synthetic_humans_val")
    meta = MetadataCatalog.get("synthetic_humans_val")
    for r in records[:5]:
        for a in r["annotations"]:
            assert a["bbox_mode"] == BoxMode.XYXY_ABS and a["category_id"] == 0 and a["iscrowd"] == 0
    r = records[0]
    image = cv2.imread(r["file_name"])[:, :, ::-1]
    out = Visualizer(image, meta).draw_dataset_dict(r).get_image()
    assert out.shape == image.shape and not np.array_equal(out, image)  # boxes and joints drawn


@pytest.mark.parametrize("key,value", [("MIN_SIZE_TRAIN", (512,)), ("RANDOM_FLIP", "none"),
                                       ("CROP.ENABLED", True), ("MAX_SIZE_TRAIN", 1000)])
def test_ignored_input_keys_raise_naming_the_replacement(key, value):
    cfg = get_cfg()
    add_dspf_config(cfg)
    check_train_input_keys(cfg)  # defaults: fine
    node = cfg.INPUT
    *path, last = key.split(".")
    for p in path:
        node = node[p]
    node[last] = value
    with pytest.raises(ValueError, match=rf"INPUT\.{key}=.*{IGNORED_TRAIN_INPUT_KEYS[key].split()[0]}"):
        DSPFDatasetMapper(cfg, is_train=True)
    DSPFDatasetMapper(cfg, is_train=False)  # the test mapper does not use them either way
