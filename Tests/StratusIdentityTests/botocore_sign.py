"""Signs requests with botocore's own signers and prints them as JSON, one per line.

The Swift tests feed each to Stratus's RequestVerifier, so the two implementations are
checked against each other. Usage: python3 botocore_sign.py [COUNT_PER_SIGNER] [SEED]
"""
import base64
import json
import random
import sys
from urllib.parse import quote, urlsplit

from botocore.auth import (HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth, S3SigV4QueryAuth, SigV2Auth, SigV4Auth,
                           SigV4QueryAuth)
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 4)
ALPHABET = "abcXYZ019 -_.~+=&/%:;,@!*'()$ü€日"


def text(low=0, high=12):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(low, high)))


def credentials():
    access = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+") for _ in range(40))
    return Credentials(access, secret)


def emit(name, creds, request):
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    headers = [[k, v if isinstance(v, str) else v.decode()] for k, v in prepared.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(["Host", split.netloc])
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    print(json.dumps({
        "signer": name, "accessKey": creds.access_key, "secretKey": creds.secret_key,
        "method": prepared.method, "path": split.path or "/", "query": split.query,
        "headers": headers, "body": base64.b64encode(body).decode(),
        "s3": name.startswith("s3") or name.startswith("hmacv1"),
    }))


def path():
    return "/" + "/".join(quote(text(1, 8), safe="~") for _ in range(rng.randint(0, 3)))


for _ in range(count):
    host = rng.choice(["127.0.0.1:8773", "ec2.nova.example.org", "localhost:38201"])
    # EC2 Query API: POST form body, SigV4 and SigV2.
    params = {"Action": "DescribeInstances", "Version": "2016-11-15", "Filter.1.Name": "tag:" + text(1), "Filter.1.Value.1": text()}
    creds = credentials()
    request = AWSRequest("POST", f"http://{host}/", data=dict(params),
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds, "ec2", rng.choice(["us-east-1", "nova"])).add_auth(request)
    emit("sigv4-form", creds, request)

    creds = credentials()
    request = AWSRequest("GET", f"http://{host}{path()}", params={text(1): text() for _ in range(rng.randint(0, 4))},
                         headers={"X-Custom": "  a   b  " + text()})
    SigV4Auth(creds, "stratus", "nova").add_auth(request)
    emit("sigv4-get", creds, request)

    creds = credentials()
    request = AWSRequest("GET", f"http://{host}/", params=dict(params))
    SigV4QueryAuth(creds, "ec2", "us-east-1", expires=600).add_auth(request)
    emit("sigv4-presigned", creds, request)

    creds = credentials()
    request = AWSRequest("POST", f"http://{host}/services/Cloud/", data=dict(params))
    SigV2Auth(creds).add_auth(request)
    emit("sigv2-form", creds, request)

    creds = credentials()
    request = AWSRequest("GET", f"http://{host}/", params=dict(params))
    SigV2Auth(creds).add_auth(request)
    emit("sigv2-query", creds, request)

    # S3: SigV4 with a signed payload, presigned GET, SigV2 header and presigned.
    creds = credentials()
    key_path = "/bucket" + path()
    request = AWSRequest("PUT", f"http://{host}{key_path}", data=text(0, 40).encode(),
                         headers={"Content-Type": "text/plain", "x-amz-meta-note": text()})
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    emit("s3-sigv4", creds, request)

    creds = credentials()
    request = AWSRequest("GET", f"http://{host}{key_path}")
    S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=900).add_auth(request)
    emit("s3-presigned", creds, request)

    creds = credentials()
    sub = rng.choice(["", "?acl", "?uploadId=abc123&partNumber=2", "?versioning"])
    request = AWSRequest("PUT", f"http://{host}{key_path}{sub}", data=b"hello",
                         headers={"Content-Type": "application/octet-stream", "x-amz-acl": "private", "X-Amz-Meta-A": " x "})
    HmacV1Auth(creds).add_auth(request)
    emit("hmacv1-header", creds, request)

    creds = credentials()
    request = AWSRequest("GET", f"http://{host}{key_path}")
    HmacV1QueryAuth(creds, expires=600).add_auth(request)
    emit("hmacv1-presigned", creds, request)
