"""REST routers (FastAPI) and their schemas."""
