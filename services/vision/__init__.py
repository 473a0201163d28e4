"""Vision service: OpenCLIP zero-shot frame risk scoring (see services/vision/service.py)."""
