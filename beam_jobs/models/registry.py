"""Family name -> constructor, so the extraction job picks models by name from its settings.

    family = create("objects", models_dir=settings.models_dir); family.load()

Constructors are imported on first use: a worker that only runs faces never imports onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

from beam_jobs.models.base import ModelFamily

FAMILIES: dict[str, str] = {
    "faces": "beam_jobs.models.faces:FaceFamily",
    "objects": "beam_jobs.models.objects:ObjectFamily",
    "plates": "beam_jobs.models.plates:PlateFamily",
}


def create(name: str, **options: Any) -> ModelFamily:
    """Build (but do not load) the family `name` with its keyword options."""
    try:
        target = FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None
    module_name, _, class_name = target.partition(":")
    family: ModelFamily = getattr(importlib.import_module(module_name), class_name)(**options)
    return family
