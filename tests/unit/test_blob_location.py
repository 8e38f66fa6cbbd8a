"""`EVLEDGER_BLOB_STORE` / `serve --blob-store`: where evidence files' bytes are kept (issue #14)."""

from __future__ import annotations

import pytest

from ledger.errors import InputError
from ledger.service.limits import blob_location
from ledger.storage.s3_location import S3Location


@pytest.mark.parametrize("setting", ["", "postgres", "  postgres "])
def test_postgres_is_the_default(setting: str) -> None:
    assert blob_location(setting) is None


def test_an_s3_url_names_bucket_prefix_endpoint_and_region() -> None:
    location = blob_location("s3://evidence/ledger/prod/?endpoint=https://s3.example.org&region=eu-central-1")
    assert location == S3Location("evidence", "ledger/prod/", "https://s3.example.org", "eu-central-1")
    assert location.key(b"\xab" * 32) == "ledger/prod/sha256/" + "ab" * 32
    assert location.describe() == "s3://evidence/ledger/prod/ at https://s3.example.org"


def test_without_an_endpoint_it_is_aws_in_us_east_1() -> None:
    location = S3Location.parse("s3://evidence")
    assert (location.prefix, location.endpoint, location.region) == ("", None, "us-east-1")
    assert location.key(b"\x00" * 32) == "sha256/" + "00" * 32
    assert location.describe() == "s3://evidence/ in us-east-1"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("file:///var/blobs", "s3://BUCKET"),
        ("s3://", "s3://BUCKET"),
        ("s3://a", "3 to 63"),
        ("s3://" + "b" * 64, "3 to 63"),
        ("s3://user:pw@evidence", "no credentials"),
        ("s3://evidence?acl=public", "not acl"),
        ("s3://evidence?endpoint=s3.example.org", "http:// or https://"),
    ],
)
def test_anything_else_is_refused_with_the_reason(setting: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        blob_location(setting)
