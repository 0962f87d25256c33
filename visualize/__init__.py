"""The methods of "Visualizing and Understanding" CNNs on a frozen backbone.

One function per method, ``method(model, image, ...) -> result`` on float tensors
NCHW RGB in [0, 1]; no I/O, no UI. Losses come from ``models.losses``.
"""
