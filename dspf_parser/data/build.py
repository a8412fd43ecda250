"""The training data loader: detectron2's loader over a dataset that skips bad samples itself."""
import random
from typing import Callable, Dict, Optional, Sequence

from detectron2.data import DatasetFromList, build_detection_train_loader, get_detection_dataset_dicts
from torch.utils.data import Dataset

from .dataset_mapper import DSPFDatasetMapper

__all__ = ["SKIPPED_KEY", "SkippingMapDataset", "build_dspf_train_loader"]

#: Key of each mapped sample holding how many bad samples were skipped to produce it; the
#: trainer pops it and keeps the total (workers cannot share a counter otherwise).
SKIPPED_KEY = "num_bad_samples_skipped"


def _identity(x):
    return x


class SkippingMapDataset(Dataset):
    """``mapper(dataset[i])``; when the mapper returns ``None`` (a skipped bad sample), another
    index drawn at random (seeded by ``i``) is mapped instead.

    Indices found bad are not drawn again by this copy (each ``DataLoader`` worker has its own).
    Every returned sample carries ``sample[SKIPPED_KEY]``, the number of bad samples skipped
    to produce it, so the training loop can count skips across worker processes.
    Raises ``RuntimeError`` when every index has been tried and found bad. detectron2's own
    ``MapDataset`` retry is not used: in 0.6 it calls ``random.sample`` on a set, which Python
    3.11 rejects.
    """

    def __init__(self, dataset: Sequence[Dict], mapper: Callable[[Dict], Optional[Dict]]):
        self._dataset = dataset
        self._mapper = mapper
        self._bad = set()

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, idx: int) -> Dict:
        rng = random.Random(idx)
        cur = int(idx)
        skipped = 0
        while True:
            data = self._mapper(self._dataset[cur])
            if data is not None:
                data[SKIPPED_KEY] = skipped
                return data
            skipped += 1
            self._bad.add(cur)
            left = len(self._dataset) - len(self._bad)
            if left == 0:
                raise RuntimeError(f"all {len(self._dataset)} samples of the dataset were skipped as bad")
            cur = rng.randrange(len(self._dataset))
            while cur in self._bad:
                cur = (cur + 1) % len(self._dataset)


def build_dspf_train_loader(cfg, mapper: Optional[Callable[[Dict], Optional[Dict]]] = None):
    """detectron2's train loader (sampler, batching, workers from ``cfg``) over
    ``cfg.DATASETS.TRAIN`` mapped by ``mapper`` (default :class:`DSPFDatasetMapper`), skipping
    bad samples when the mapper returns ``None`` (``DATALOADER.BAD_SAMPLES skip``)."""
    mapper = mapper if mapper is not None else DSPFDatasetMapper(cfg, is_train=True)
    dicts = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    dataset = SkippingMapDataset(DatasetFromList(dicts, copy=False), mapper)
    return build_detection_train_loader(cfg, dataset=dataset, mapper=_identity)
