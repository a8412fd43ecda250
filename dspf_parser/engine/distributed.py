"""Multi-process helpers that also work on CPU (GLOO) where detectron2's do not."""
import torch
from detectron2.engine import create_ddp_model as _d2_create_ddp_model
from detectron2.utils import comm
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["create_ddp_model", "any_rank_true", "close_process_group"]


def create_ddp_model(model: nn.Module, **kwargs) -> nn.Module:
    """``detectron2.engine.create_ddp_model`` that also wraps CPU models.

    With one process ``model`` is returned as it is. detectron2's wrapper always passes
    ``device_ids=[local_rank]``, which ``DistributedDataParallel`` rejects for a module on the
    CPU (the GLOO setup detectron2 main's ``launch`` makes without a GPU); for such a model
    ``DistributedDataParallel(model, device_ids=None, **kwargs)`` is built here. Models on a
    GPU go to detectron2's wrapper unchanged (``kwargs`` as there, e.g. ``fp16_compression``).
    """
    if comm.get_world_size() == 1:
        return model
    devices = {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()}
    if devices <= {"cpu"}:
        kwargs.pop("fp16_compression", None)
        kwargs.setdefault("device_ids", None)
        return DistributedDataParallel(model, **kwargs)
    return _d2_create_ddp_model(model, **kwargs)


def any_rank_true(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` is true on at least one process (an all-reduce; every rank must call it).

    Args:
        flag: this process's value.
        device: where the one-element tensor lives: the model's device (a CUDA device for
            NCCL, the CPU for GLOO).
    """
    if comm.get_world_size() == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def close_process_group() -> None:
    """End this process's part of a multi-process run: a barrier, then the process group is
    destroyed. Call it last in the function given to ``detectron2.engine.launch``.

    detectron2's ``launch`` leaves the group to interpreter exit; with GLOO a rank that exits
    while its peer still holds the connection can then abort in the destructor of a running
    thread ("terminate called without an active exception", the process ends with SIGABRT
    after its work is done). One process, or no group: nothing to do.
    """
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return
    comm.synchronize()
    torch.distributed.destroy_process_group()
