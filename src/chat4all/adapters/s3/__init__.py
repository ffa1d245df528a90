"""Blobs on S3 (MinIO in the cluster profile), through aiobotocore."""
