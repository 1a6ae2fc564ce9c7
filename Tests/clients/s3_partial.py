"""Starts a PUT of a 64 MiB object to a live `stratus serve` (a presigned URL, so no keys need
to be on the wire), sends 8 MiB of it, prints PARTIAL, and waits to be killed.

Environment: S3_URL, alice's keys as AWS_*. Argument: the key.
"""
import os
import socket
import sys
import time
import urllib.parse

import boto3

s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name="nova")
url = urllib.parse.urlparse(s3.generate_presigned_url("put_object", Params={"Bucket": "partial", "Key": sys.argv[1]}, ExpiresIn=600))
connection = socket.create_connection((url.hostname, url.port))
connection.sendall(f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {64 << 20}\r\n\r\n".encode())
chunk = os.urandom(1 << 20)
for _ in range(8):
    connection.sendall(chunk)
print("PARTIAL", flush=True)
while True:
    time.sleep(1)
