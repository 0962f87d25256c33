"""Running exported style networks: ONNX Runtime and OpenVINO engines, the probe that picks one,
tiling for large photos, the output mix (strength, colour) and photo stylisation. No torch.
"""
