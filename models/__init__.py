"""Networks and their weights: style networks, pretrained backbones, the shipped style zoo.

Import from the submodules (``models.style_net``, ``models.backbones``,
``models.onnx_style``, ``models.images``); this package imports nothing heavy so that
the ONNX path runs without torch.
"""
