"""The extraction job: evidence manifests in S3 -> photo, dead-letter and detection Parquet in the catalog.

    python -m beam_jobs.extract --runner=DirectRunner            # or: witness extract
    python -m beam_jobs.extract --runner=DaskRunner --dask_client_address=127.0.0.1:8786 --dask_npartitions=4

`launcher.run` lists pending manifests, `extract_pipeline.build_pipeline` builds the graph from `transforms`
(per-photo DoFns), `detect` (model stage) and `sinks` (Parquet parts), and `catalog` commits the run.
See infra/RUNNERS.md for every runner's exact options.
"""
