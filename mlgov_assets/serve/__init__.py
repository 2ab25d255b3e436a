"""The HTTP face of online scoring (FastAPI); the logic is ``core/serving``."""
