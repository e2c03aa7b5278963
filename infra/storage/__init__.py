"""The storage layer over the `minio` SDK: buckets, content-addressed evidence, manifests.

Everything that touches S3 goes through here so the rest of the code base never builds a client itself.
"""
