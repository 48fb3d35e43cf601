"""Console shell (placeholder until the pages land)."""

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    return None
