"""Which backbones there are and the names of their layers, without torch (menus, CLI choices).

:func:`backbone_layers` gives the names :class:`models.backbones.Backbone` uses for its taps, in
order, without building a network or loading weights.
"""

from __future__ import annotations

BACKBONES = ("efficientnet_lite0", "vgg16", "vgg19")
# EfficientNet-B0's stages, unscaled: (kernel, stride, expansion, out channels, repeats).
BLOCK_ARGS = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
# Convolutions per block of VGG, in torchvision's ``features`` order.
VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}


def vgg_layer_names(name: str) -> list[str]:
    names = []
    for block, convs in enumerate(VGG_BLOCKS[name], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def backbone_layers(name: str) -> list[str]:
    """The layer names of a backbone, shallow to deep."""
    if name == "efficientnet_lite0":
        blocks = sum(repeats for *_, repeats in BLOCK_ARGS)
        return ["stem", *(f"block{i}" for i in range(blocks)), "head"]
    if name in VGG_BLOCKS:
        return vgg_layer_names(name)
    raise ValueError(f"unknown backbone {name!r}; choose one of {list(BACKBONES)}")
