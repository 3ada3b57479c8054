#!/usr/bin/env python3
"""Generates tests/vectors/sigv4_botocore.json: requests signed by botocore's SigV4Auth and
SigV4QueryAuth (an independent signer) at fixed times. tests/sigv4_vectors.rs verifies each
one with `now` equal to the signing time.

Run from the repository root:  python3 tests/vectors/gen_sigv4_botocore.py
The output is committed; regenerate only when adding cases.
"""
import base64
import datetime
import hashlib
import json
import sys
from unittest import mock
from urllib.parse import urlsplit

import botocore
from botocore.auth import SigV4Auth, SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="


def case(name, method, url, *, headers=None, params=None, body=b"", when, region="us-east-1",
         service="dynamodb", token=None, presign_expires=None):
    creds = Credentials(AKID, SECRET, token)
    req = AWSRequest(method=method, url=url, headers=headers or {}, params=params or {},
                     data=body)
    fixed = datetime.datetime.strptime(when, "%Y%m%dT%H%M%SZ")
    with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
        if presign_expires is None:
            SigV4Auth(creds, service, region).add_auth(req)
        else:
            SigV4QueryAuth(creds, service, region, expires=presign_expires).add_auth(req)
    prepared = req.prepare()
    parts = urlsplit(prepared.url)
    sent = [[k, v] for k, v in prepared.headers.items()]
    if not any(k.lower() == "host" for k, _ in sent):
        # botocore signs the host of the URL; the HTTP client sends it.
        sent.append(["Host", _host_from_url(prepared.url)])
    body_bytes = prepared.body or b""
    if isinstance(body_bytes, str):
        body_bytes = body_bytes.encode()
    return {
        "name": name,
        "method": method,
        "path": parts.path or "/",
        "query": parts.query or None,
        "headers": sent,
        "body_b64": base64.b64encode(body_bytes).decode(),
        "access_key_id": AKID,
        "secret": SECRET,
        "session_token": token,
        "region": region,
        "service": service,
        "now": when,
        "presigned": presign_expires is not None,
    }


def main():
    put = json.dumps({"TableName": "t", "Item": {"pk": {"S": "a  b"}}}).encode()
    ddb = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.PutItem",
    }
    cases = [
        case("putitem", "POST", "http://127.0.0.1:8000/", headers=dict(ddb), body=put,
             when="20240101T000000Z"),
        case("putitem-session-token", "POST", "http://127.0.0.1:8000/", headers=dict(ddb),
             body=put, token=TOKEN, when="20240229T235959Z"),
        case("content-sha256-header", "POST", "https://dynamodb.eu-west-1.amazonaws.com/",
             headers={**ddb, "X-Amz-Content-SHA256": hashlib.sha256(put).hexdigest()},
             body=put, region="eu-west-1", when="20231231T120000Z"),
        case("default-port-localhost", "POST", "http://localhost/", headers=dict(ddb),
             body=b"{}", when="20250615T081500Z"),
        case("odd-path-and-params", "GET",
             "http://127.0.0.1:8000/a%20b/./c/../d~e/", params={"b": "2 3", "a": "x/y~z",
                                                             "A": "", "é": "ü+"},
             when="20240101T000000Z"),
        case("spaces-in-header-value", "POST", "http://127.0.0.1:8000/",
             headers={**ddb, "X-Custom": "  several   spaces  here "}, body=b"{}",
             when="20240101T000000Z"),
        case("empty-body-get", "GET", "http://127.0.0.1:8000/admin/users", when="20240101T000000Z"),
        case("presigned", "GET", "http://127.0.0.1:8000/admin/ping", params={"x": "1"},
             presign_expires=300, when="20240101T000000Z"),
        case("presigned-session-token", "GET", "http://127.0.0.1:8000/", presign_expires=3600,
             token=TOKEN, when="20240101T000000Z"),
    ]
    out = {
        "generator": f"botocore {botocore.__version__} (tests/vectors/gen_sigv4_botocore.py)",
        "cases": cases,
    }
    json.dump(out, sys.stdout, indent=2, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
