"""Networks and their weights: style networks, pretrained backbones, the style catalogue (the
shipped zoo in ``models/zoo`` and the user's own), and running exported networks (``models.inference``).

Import from the submodules (``models.style_net``, ``models.backbones``,
``models.inference.onnx_style``, ``models.common.images``); this package imports nothing heavy so that
the ONNX path runs without torch.
"""
