"""Where an S3 blob store keeps evidence files: parsed from `s3://BUCKET[/PREFIX]?endpoint=…&region=…`.

Light on purpose (no S3 client at import): `evledger serve` checks the setting before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ledger.errors import InputError

_BUCKET_NAME_LIMITS = (3, 63)  # S3 bucket naming rules


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where blobs are kept: a bucket, a key prefix, and the endpoint and region of its service."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None  # None: AWS S3 itself, found from the region
    region: str = "us-east-1"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME]`; InputError naming what is wrong.

        Credentials never go in the URL (it is printed and logged); botocore reads them from
        AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile or an instance role.
        """
        parts = urlsplit(url.strip())
        if parts.scheme != "s3" or not parts.hostname:
            raise InputError(f"an S3 blob store is written s3://BUCKET[/PREFIX][?endpoint=URL], got {url!r}")
        if parts.username or parts.password:
            raise InputError(
                "put no credentials in the blob store URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        bucket = parts.netloc
        if not _BUCKET_NAME_LIMITS[0] <= len(bucket) <= _BUCKET_NAME_LIMITS[1]:
            raise InputError(f"an S3 bucket name has 3 to 63 characters, got {bucket!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"endpoint", "region"})
        if unknown:
            raise InputError(f"the blob store URL takes endpoint= and region=, not {', '.join(unknown)}")
        endpoint = query.get("endpoint", [None])[-1]
        if endpoint is not None and urlsplit(endpoint).scheme not in {"http", "https"}:
            raise InputError(f"the S3 endpoint must be an http:// or https:// URL, got {endpoint!r}")
        prefix = parts.path.strip("/")
        return cls(
            bucket,
            f"{prefix}/" if prefix else "",
            endpoint,
            query.get("region", ["us-east-1"])[-1] or "us-east-1",
        )

    def key(self, digest: bytes) -> str:
        """The object key of the blob `digest`."""
        return f"{self.prefix}sha256/{digest.hex()}"

    def describe(self) -> str:
        """The location for people and logs (it holds no secret)."""
        where = f" at {self.endpoint}" if self.endpoint else f" in {self.region}"
        return f"s3://{self.bucket}/{self.prefix}{where}"
