"""Infrastructure adapters: the S3 storage layer, the local SeaweedFS server and the `witness` console."""
