"""Vector indexes and fenced search over extracted detections.

Data flow: catalog Parquet (detection + photo records) -> `metadata.MetadataTable` (columns aligned
to stable int64 ids) -> `vector_index.VectorIndex` (one per embedding kind) -> `search.fenced_search`
with a `fence.Fence`; `plates` answers plate-text and vehicle-attribute queries; `storage_format`
is the only module that reads or writes files. Nothing here knows HTTP or S3.
"""
