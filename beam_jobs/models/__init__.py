"""Model families used by the extraction job: faces, objects (vehicles/persons) and plates.

Nothing here loads a model at import. Build a family with `beam_jobs.models.registry.create(name, ...)`
and call its `load()` once per worker process (from `DoFn.setup()` or a RunInference `ModelHandler`).
The YOLOX weights are not a Python dependency: install them with `python -m beam_jobs.models.install`.
"""
