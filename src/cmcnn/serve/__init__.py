"""Deployment: ONNX export and metadata, shipped models, cutout readers, bulk prediction, output tables."""
