"""`python -m beam_jobs.extract [--runner=...] [--models=...]`: run the extraction job (see beam_jobs.pipeline)."""

from __future__ import annotations

from beam_jobs.pipeline.launcher import run

if __name__ == "__main__":
    run()
