"""One rank of a DDP training run for tests: trains, then saves this rank's weights.

Run under ``python -m torch.distributed.run --nproc_per_node=N tests/helpers/ddp_worker.py
PHOTOS STYLE OUT WEIGHTS_DIR``. The weights go to WEIGHTS_DIR (outside the run folder),
so the test can compare ranks; rank r > 0 is pointed at OUT_rank{r}, which must stay empty.
"""

import os
import sys

import torch

import training.train as train_module
from training.train import TrainSettings, train

captured = {}


class RecordingDDP(torch.nn.parallel.DistributedDataParallel):
    def __init__(self, module, *args, **kwargs):
        super().__init__(module, *args, **kwargs)
        captured["net"] = module


def main() -> None:
    photos, style, out, weights_dir = sys.argv[1:5]
    train_module.DistributedDataParallel = RecordingDDP
    rank = int(os.environ["RANK"])
    # Ranks other than 0 get their own run folder: anything they wrote would show up there.
    out = out if rank == 0 else f"{out}_rank{rank}"
    settings = TrainSettings(style=[style], data=photos, out=out, arch="lite", size=48, style_size=96, batch=2,
                             steps=4, sample_every=2, checkpoint_every=2, precision="fp32", device="cpu", workers=0)
    train(settings, progress=False)
    torch.save(captured["net"].state_dict(), os.path.join(weights_dir, f"rank{rank}.pt"))


if __name__ == "__main__":
    main()
