"""Learning: perceptual losses, training data, fast style training, ONNX export.

``python -m training {train,export,stylize}``. This package imports nothing heavy
itself, so ``stylize`` runs an ONNX model without loading torch.
"""
