"""The sample sheets of a training run: a fixed photo from the data, then the network's output for
each style, written every ``--sample-every`` steps (the previews of the page's "Your painting")."""

from __future__ import annotations

from pathlib import Path

import torch

from models.common.errors import InputFileError, UserError
from models.common.images import read_rgb, resize_max_side, rgb_to_tensor, tensor_to_rgb, write_rgb
from models.style_net import StyleNet, one_hot
from training.data import warn_unreadable


def sample_image(files: list[Path], size: int) -> torch.Tensor:
    """A fixed photo from the data folder for the sample sheets: the whole first readable photo,
    its longer side twice the training ``size`` (1, 3, H, W).

    Whole and larger, not a training crop: a 192 px crop blows a few objects up to the size of
    the painting's marks, and a held-out Matisse whose crop of a bear read as patches of colour at
    every step kept chicago.jpg readable at 510 px (structure kept 0.64). The sample shows the
    strokes at the scale a stylised photo has.
    """
    for f in files:
        try:
            rgb = read_rgb(f, max_side=2 * size)
        except InputFileError as e:  # the data loader skips it too, with the same warning
            warn_unreadable(e)
            continue
        return rgb_to_tensor(resize_max_side(rgb, 2 * size, enlarge=True, min_side=16))
    raise UserError("no readable image in the data folder")


def write_samples(net: StyleNet, photo: torch.Tensor, num_styles: int, path: Path) -> None:
    """One row: the photo, then the network's output for each style."""
    was_training = net.training
    net.eval()
    with torch.no_grad():
        outs = [photo.cpu()]
        for s in range(num_styles):
            w = one_hot(s, num_styles, device=photo.device) if num_styles > 1 else None
            outs.append(net(photo, w).float().cpu())
    net.train(was_training)
    write_rgb(path, tensor_to_rgb(torch.cat(outs, dim=3)))
