"""boto3 against a live `stratus serve`'s S3 API: buckets, objects, listing, multipart, copy,
conditions, checksums, presigned URLs, isolation and error codes.

Environment: S3_URL, alice's keys (acme) as AWS_*, bob's (acme, developer) as BOB_*, carol's
(zeta, whose quotas.objectGigabytes is 0) as CAROL_*, DATA_DIR (the server's data directory),
S3_DOMAIN (the server's --s3-domain). Prints one line per check, then
`AREAS {json}` as ec2_boto3.py does.
"""
import base64
import datetime
import hashlib
import io
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ["S3_URL"]
DATA = os.environ["DATA_DIR"]
AREAS = ["buckets", "objects", "listing", "conditions", "multipart", "copy", "tagging", "checksums", "presigned", "isolation", "virtual", "quota", "keys", "errors"]
results = {name: "not run: an earlier area failed" for name in AREAS}
current = None
checks = 0


def area(name):
    global current
    if current:
        results[current] = "passed"
    current = name


def finish(code):
    print("AREAS " + json.dumps(results))
    sys.exit(code)


def fail(what):
    print(f"FAIL [{current}]: {what}")
    results[current] = f"failed: {what}"
    finish(1)


def crashed(kind, error, trace):
    import traceback
    traceback.print_exception(kind, error, trace)
    fail(f"{kind.__name__}: {error}")


sys.excepthook = crashed


def check(condition, what):
    global checks
    if not condition:
        fail(what)
    checks += 1
    print(f"ok: {what}")


def client(prefix="AWS", **config):
    return boto3.client("s3", endpoint_url=URL, region_name="nova",
                        aws_access_key_id=os.environ[f"{prefix}_ACCESS_KEY_ID"], aws_secret_access_key=os.environ[f"{prefix}_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1}, **config))


def error(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


s3 = client()
bob = client("BOB")
carol = client("CAROL")

area("buckets")
s3.create_bucket(Bucket="images")
check([b["Name"] for b in s3.list_buckets()["Buckets"]] == ["images"], "CreateBucket, then ListBuckets shows it")
check(error(s3.create_bucket, Bucket="images") == ("BucketAlreadyOwnedByYou", 409), "creating it again is BucketAlreadyOwnedByYou (409)")
check(error(carol.create_bucket, Bucket="images") == ("BucketAlreadyExists", 409), "another project's name is BucketAlreadyExists (409)")
check(error(s3.create_bucket, Bucket="Bad_Name") == ("InvalidBucketName", 400), "an invalid name is InvalidBucketName")
check(error(s3.create_bucket, Bucket="192.168.1.1") == ("InvalidBucketName", 400), "an IP address is not a bucket name")
check(s3.head_bucket(Bucket="images")["ResponseMetadata"]["HTTPStatusCode"] == 200, "HeadBucket")
check(error(s3.head_bucket, Bucket="nope")[1] == 404, "HeadBucket of a missing bucket is 404")
check(s3.get_bucket_location(Bucket="images")["LocationConstraint"] in ("nova", None), "GetBucketLocation")
s3.create_bucket(Bucket="scratch")
s3.delete_bucket(Bucket="scratch")
check(error(s3.delete_bucket, Bucket="scratch") == ("NoSuchBucket", 404), "DeleteBucket, then it is NoSuchBucket")

area("objects")
body = b"hello world\n" * 1000
put = s3.put_object(Bucket="images", Key="docs/readme.txt", Body=body, ContentType="text/plain", Metadata={"owner": "alice"},
                    CacheControl="max-age=60", ContentDisposition="attachment; filename=readme.txt")
check(put["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), "PutObject answers the MD5 ETag")
got = s3.get_object(Bucket="images", Key="docs/readme.txt")
check(got["Body"].read() == body, "GetObject returns the bytes")
check(got["ContentType"] == "text/plain" and got["Metadata"] == {"owner": "alice"} and got["CacheControl"] == "max-age=60", "and the content type, metadata and Cache-Control")
check(got["ContentDisposition"] == "attachment; filename=readme.txt", "and Content-Disposition")
head = s3.head_object(Bucket="images", Key="docs/readme.txt")
check(head["ContentLength"] == len(body) and head["ETag"] == put["ETag"], "HeadObject")
ranged = s3.get_object(Bucket="images", Key="docs/readme.txt", Range="bytes=6-10")
check(ranged["Body"].read() == b"world" and ranged["ContentRange"] == f"bytes 6-10/{len(body)}" and ranged["ResponseMetadata"]["HTTPStatusCode"] == 206, "a Range GET is 206 with Content-Range")
check(s3.get_object(Bucket="images", Key="docs/readme.txt", Range="bytes=-5")["Body"].read() == body[-5:], "a suffix range")
check(error(s3.get_object, Bucket="images", Key="docs/readme.txt", Range=f"bytes={len(body)}-")[0] == "InvalidRange", "a range past the end is InvalidRange (416)")
over = s3.get_object(Bucket="images", Key="docs/readme.txt", ResponseContentType="application/x-test", ResponseContentDisposition="inline")
check(over["ContentType"] == "application/x-test" and over["ContentDisposition"] == "inline", "response-* overrides")
s3.put_object(Bucket="images", Key="empty", Body=b"")
check(s3.get_object(Bucket="images", Key="empty")["Body"].read() == b"", "an empty object")
s3.put_object(Bucket="images", Key="docs/readme.txt", Body=b"second")
check(s3.get_object(Bucket="images", Key="docs/readme.txt")["Body"].read() == b"second", "a second PUT replaces the object")
s3.delete_object(Bucket="images", Key="empty")
check(error(s3.get_object, Bucket="images", Key="empty") == ("NoSuchKey", 404), "a deleted object is NoSuchKey")
check(s3.delete_object(Bucket="images", Key="never")["ResponseMetadata"]["HTTPStatusCode"] == 204, "deleting a missing key succeeds (204)")
for i in range(5):
    s3.put_object(Bucket="images", Key=f"tmp/{i}", Body=b"x")
deleted = s3.delete_objects(Bucket="images", Delete={"Objects": [{"Key": f"tmp/{i}"} for i in range(5)]})
check(sorted(d["Key"] for d in deleted["Deleted"]) == [f"tmp/{i}" for i in range(5)], "DeleteObjects")
check("Contents" not in s3.list_objects_v2(Bucket="images", Prefix="tmp/"), "and they are gone")
check(error(s3.delete_bucket, Bucket="images") == ("BucketNotEmpty", 409), "a bucket with objects is BucketNotEmpty (409)")

area("listing")
s3.create_bucket(Bucket="listing")
keys = sorted([f"a/{i:02d}" for i in range(12)] + ["b/x", "b/y/z", "c", "d%2Fe", "ü/é"])
for key in keys:
    s3.put_object(Bucket="listing", Key=key, Body=key.encode())
listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="listing", PaginationConfig={"PageSize": 5}) for o in page.get("Contents", [])]
check(listed == sorted(keys, key=lambda k: k.encode()), "ListObjectsV2 pages of 5 list every key once, in byte order")
listed = [o["Key"] for page in s3.get_paginator("list_objects").paginate(Bucket="listing", PaginationConfig={"PageSize": 5}) for o in page.get("Contents", [])]
check(listed == sorted(keys, key=lambda k: k.encode()), "ListObjects (v1) pages by marker too")
top = s3.list_objects_v2(Bucket="listing", Delimiter="/")
check([p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "ü/"] and [o["Key"] for o in top["Contents"]] == ["c", "d%2Fe"], "Delimiter groups CommonPrefixes")
two = s3.list_objects_v2(Bucket="listing", Delimiter="/", MaxKeys=2)
check(two["KeyCount"] == 2 and two["IsTruncated"] and [p["Prefix"] for p in two["CommonPrefixes"]] == ["a/", "b/"], "CommonPrefixes count towards MaxKeys")
rest = s3.list_objects_v2(Bucket="listing", Delimiter="/", ContinuationToken=two["NextContinuationToken"])
check([p["Prefix"] for p in rest.get("CommonPrefixes", [])] == ["ü/"] and [o["Key"] for o in rest["Contents"]] == ["c", "d%2Fe"], "and the next page continues after them")
check([o["Key"] for o in s3.list_objects_v2(Bucket="listing", Prefix="b/")["Contents"]] == ["b/x", "b/y/z"], "Prefix")
check([o["Key"] for o in s3.list_objects_v2(Bucket="listing", StartAfter="b/y/z")["Contents"]] == ["c", "d%2Fe", "ü/é"], "StartAfter")
encoded = s3.list_objects_v2(Bucket="listing", Prefix="ü", EncodingType="url")
check([o["Key"] for o in encoded["Contents"]] == ["%C3%BC/%C3%A9"] and encoded["Prefix"] == "%C3%BC", "EncodingType=url encodes keys and the prefix")
check(s3.list_objects_v2(Bucket="listing", MaxKeys=0)["KeyCount"] == 0, "MaxKeys=0")

area("conditions")
s3.put_object(Bucket="images", Key="lock", Body=b"v1")
check(error(s3.put_object, Bucket="images", Key="lock", Body=b"v2", IfNoneMatch="*") == ("PreconditionFailed", 412), "If-None-Match: * on an existing key is 412 PreconditionFailed")
check(s3.get_object(Bucket="images", Key="lock")["Body"].read() == b"v1", "and the object is unchanged")
s3.put_object(Bucket="images", Key="new-lock", Body=b"v1", IfNoneMatch="*")
check(s3.get_object(Bucket="images", Key="new-lock")["Body"].read() == b"v1", "If-None-Match: * creates a new key")
etag = s3.head_object(Bucket="images", Key="lock")["ETag"]
check(error(s3.put_object, Bucket="images", Key="lock", Body=b"v2", IfMatch='"0000"') == ("PreconditionFailed", 412), "If-Match with a stale ETag is 412")
s3.put_object(Bucket="images", Key="lock", Body=b"v2", IfMatch=etag)
check(s3.get_object(Bucket="images", Key="lock")["Body"].read() == b"v2", "If-Match with the current ETag writes")
check(error(s3.get_object, Bucket="images", Key="lock", IfMatch='"0000"') == ("PreconditionFailed", 412), "GET If-Match mismatch is 412")
check(error(s3.get_object, Bucket="images", Key="lock", IfNoneMatch=s3.head_object(Bucket="images", Key="lock")["ETag"])[1] == 304, "GET If-None-Match with the ETag is 304")
future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
check(error(s3.get_object, Bucket="images", Key="lock", IfModifiedSince=future)[1] == 304, "If-Modified-Since in the future is 304")
past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
check(error(s3.get_object, Bucket="images", Key="lock", IfUnmodifiedSince=past) == ("PreconditionFailed", 412), "If-Unmodified-Since in the past is 412")

area("multipart")
if os.environ.get("S3_DEBUG"):
    import logging; boto3.set_stream_logger("botocore.parsers", logging.DEBUG)
part = os.urandom(5 << 20)
upload = s3.create_multipart_upload(Bucket="images", Key="disk.img", ContentType="application/octet-stream")["UploadId"]
e1 = s3.upload_part(Bucket="images", Key="disk.img", UploadId=upload, PartNumber=1, Body=part)["ETag"]
e2 = s3.upload_part(Bucket="images", Key="disk.img", UploadId=upload, PartNumber=2, Body=b"tail")["ETag"]
check([p["PartNumber"] for p in s3.list_parts(Bucket="images", Key="disk.img", UploadId=upload)["Parts"]] == [1, 2], "ListParts")
check([u["UploadId"] for u in s3.list_multipart_uploads(Bucket="images").get("Uploads", [])] == [upload], "ListMultipartUploads")
check(error(s3.complete_multipart_upload, Bucket="images", Key="disk.img", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})[0] == "InvalidPartOrder", "parts out of order are InvalidPartOrder")
check(error(s3.complete_multipart_upload, Bucket="images", Key="disk.img", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}, {"PartNumber": 2, "ETag": e2}]})[0] == "InvalidPart", "a wrong ETag is InvalidPart")
done = s3.complete_multipart_upload(Bucket="images", Key="disk.img", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
expected = hashlib.md5(hashlib.md5(part).digest() + hashlib.md5(b"tail").digest()).hexdigest() + "-2"
check(done["ETag"] == f'"{expected}"', "CompleteMultipartUpload answers the md5-of-md5s-N ETag")
check(s3.get_object(Bucket="images", Key="disk.img")["Body"].read() == part + b"tail", "and the object is the parts in order")
small = s3.create_multipart_upload(Bucket="images", Key="small")["UploadId"]
s1 = s3.upload_part(Bucket="images", Key="small", UploadId=small, PartNumber=1, Body=b"a")["ETag"]
s2 = s3.upload_part(Bucket="images", Key="small", UploadId=small, PartNumber=2, Body=b"b")["ETag"]
check(error(s3.complete_multipart_upload, Bucket="images", Key="small", UploadId=small, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}]})[0] == "EntityTooSmall", "a part under 5 MiB but the last is EntityTooSmall")
s3.abort_multipart_upload(Bucket="images", Key="small", UploadId=small)
check(error(s3.list_parts, Bucket="images", Key="small", UploadId=small) == ("NoSuchUpload", 404), "an aborted upload is NoSuchUpload")
check(error(s3.upload_part, Bucket="images", Key="small", UploadId=small, PartNumber=1, Body=b"x") == ("NoSuchUpload", 404), "and takes no more parts")
locked = s3.create_multipart_upload(Bucket="images", Key="lock")["UploadId"]
l1 = s3.upload_part(Bucket="images", Key="lock", UploadId=locked, PartNumber=1, Body=b"v3")["ETag"]
check(error(s3.complete_multipart_upload, Bucket="images", Key="lock", UploadId=locked, IfNoneMatch="*", MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": l1}]}) == ("PreconditionFailed", 412), "CompleteMultipartUpload with If-None-Match: * on an existing key is 412")
big = os.urandom(12 << 20)
s3.upload_fileobj(io.BytesIO(big), "images", "transfer.bin", Config=boto3.s3.transfer.TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
check(s3.get_object(Bucket="images", Key="transfer.bin")["Body"].read() == big, "upload_fileobj (the transfer manager, multipart) round-trips 12 MiB")

area("copy")
s3.copy_object(Bucket="images", Key="copy.txt", CopySource={"Bucket": "images", "Key": "docs/readme.txt"})
check(s3.get_object(Bucket="images", Key="copy.txt")["Body"].read() == b"second", "CopyObject")
s3.put_object(Bucket="images", Key="meta", Body=b"m", Metadata={"a": "1"}, ContentType="text/x-a")
s3.copy_object(Bucket="images", Key="meta-copy", CopySource={"Bucket": "images", "Key": "meta"})
check(s3.head_object(Bucket="images", Key="meta-copy")["Metadata"] == {"a": "1"}, "the COPY directive keeps metadata")
s3.copy_object(Bucket="images", Key="meta-copy", CopySource={"Bucket": "images", "Key": "meta"}, MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="text/x-b")
replaced = s3.head_object(Bucket="images", Key="meta-copy")
check(replaced["Metadata"] == {"b": "2"} and replaced["ContentType"] == "text/x-b", "REPLACE takes the request's metadata")
check(error(s3.copy_object, Bucket="images", Key="meta", CopySource={"Bucket": "images", "Key": "meta"})[0] == "InvalidRequest", "copying onto itself without REPLACE is InvalidRequest")
check(error(s3.copy_object, Bucket="images", Key="c2", CopySource={"Bucket": "images", "Key": "meta"}, CopySourceIfMatch='"00"') == ("PreconditionFailed", 412), "x-amz-copy-source-if-match mismatch is 412")
ranged_upload = s3.create_multipart_upload(Bucket="images", Key="ranged")["UploadId"]
cp = s3.upload_part_copy(Bucket="images", Key="ranged", UploadId=ranged_upload, PartNumber=1, CopySource={"Bucket": "images", "Key": "disk.img"}, CopySourceRange="bytes=0-9")
s3.complete_multipart_upload(Bucket="images", Key="ranged", UploadId=ranged_upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": cp["CopyPartResult"]["ETag"]}]})
check(s3.get_object(Bucket="images", Key="ranged")["Body"].read() == part[:10], "UploadPartCopy with a range")

area("tagging")


def tag_set(bucket, key, who=None):
    return {t["Key"]: t["Value"] for t in (who or s3).get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def tagging(tags):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags]}


s3.put_object(Bucket="images", Key="tagged", Body=b"t", Tagging=urllib.parse.urlencode({"project": "stratus", "team": "cloud ops", "ключ": "値"}))
check(tag_set("images", "tagged") == {"project": "stratus", "team": "cloud ops", "ключ": "値"}, "x-amz-tagging on PutObject (URL-encoded, + as a space, UTF-8) is stored")
check([t["Key"] for t in s3.get_object_tagging(Bucket="images", Key="tagged")["TagSet"]] == ["project", "team", "ключ"], "GetObjectTagging lists the tags sorted by key")
check(s3.get_object(Bucket="images", Key="tagged")["TagCount"] == 3 and s3.head_object(Bucket="images", Key="tagged")["TagCount"] == 3, "GET and HEAD carry x-amz-tagging-count")
check("TagCount" not in s3.head_object(Bucket="images", Key="meta"), "an object without tags has no x-amz-tagging-count")
s3.put_object_tagging(Bucket="images", Key="tagged", Tagging=tagging([("only", "")]))
check(tag_set("images", "tagged") == {"only": ""}, "PutObjectTagging replaces the whole set (an empty value is a value)")
check(s3.delete_object_tagging(Bucket="images", Key="tagged")["ResponseMetadata"]["HTTPStatusCode"] == 204, "DeleteObjectTagging is 204")
check(tag_set("images", "tagged") == {} and "TagCount" not in s3.get_object(Bucket="images", Key="tagged"), "and leaves no tags")
check(s3.get_object(Bucket="images", Key="tagged")["Body"].read() == b"t", "tagging leaves the bytes alone")
ten = [(f"k{i}", f"v{i}") for i in range(10)]
s3.put_object_tagging(Bucket="images", Key="tagged", Tagging=tagging(ten))
check(len(tag_set("images", "tagged")) == 10, "10 tags are allowed")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging(ten + [("k10", "v")])) == ("BadRequest", 400), "11 tags are BadRequest (400), as AWS answers")
check(len(tag_set("images", "tagged")) == 10, "and the tags are unchanged")
s3.put_object_tagging(Bucket="images", Key="tagged", Tagging=tagging([("k" * 128, "v" * 256), ("é" * 128, "ü" * 256)]))
check(tag_set("images", "tagged") == {"k" * 128: "v" * 256, "é" * 128: "ü" * 256}, "keys of 128 and values of 256 characters (not bytes) are allowed")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("k" * 129, "v")])) == ("InvalidTag", 400), "a key of 129 characters is InvalidTag")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("k", "v" * 257)])) == ("InvalidTag", 400), "a value of 257 characters is InvalidTag")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("same", "a"), ("same", "b")])) == ("InvalidTag", 400), "two tags with one key are InvalidTag")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("aws:owner", "x")])) == ("InvalidTag", 400), "a key starting with aws: is InvalidTag")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("a#b", "x")])) == ("InvalidTag", 400), "a key with a character AWS does not allow (#) is InvalidTag")
check(error(s3.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("ok", "x!y")])) == ("InvalidTag", 400), "and so is such a value (!)")
s3.put_object(Bucket="images", Key="tagged-chars", Body=b"c")
s3.put_object_tagging(Bucket="images", Key="tagged-chars", Tagging=tagging([("path/key:a=b+c@d_e.f-g", "日本 語")]))
check(tag_set("images", "tagged-chars") == {"path/key:a=b+c@d_e.f-g": "日本 語"}, "letters of any script, numbers, spaces and + - = . _ : / @ are allowed")
check(error(s3.put_object_tagging, Bucket="images", Key="untagged-missing", Tagging=tagging([("a", "b")])) == ("NoSuchKey", 404), "tagging a missing key is NoSuchKey")
check(error(s3.get_object_tagging, Bucket="images", Key="untagged-missing") == ("NoSuchKey", 404), "and so is reading its tags")
check(error(s3.put_object, Bucket="images", Key="too-many", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11))) == ("BadRequest", 400), "x-amz-tagging with 11 tags is BadRequest")
check(error(s3.put_object, Bucket="images", Key="too-many", Body=b"x", Tagging="=v") == ("InvalidTag", 400), "x-amz-tagging with an empty key is InvalidTag")
check(error(s3.put_object, Bucket="images", Key="too-many", Body=b"x", Tagging="a=1&a=2") == ("InvalidTag", 400), "x-amz-tagging with a repeated key is InvalidTag")
check(error(s3.get_object, Bucket="images", Key="too-many") == ("NoSuchKey", 404), "and none of them stored an object")
check(error(carol.get_object_tagging, Bucket="images", Key="tagged") == ("AccessDenied", 403), "another project cannot read the tags")
check(error(carol.put_object_tagging, Bucket="images", Key="tagged", Tagging=tagging([("a", "b")])) == ("AccessDenied", 403), "nor write them")
check(len(tag_set("images", "tagged", bob)) == 2, "a member of the project reads them")
s3.put_object_tagging(Bucket="images", Key="tagged", Tagging=tagging([("color", "blue")]))
s3.copy_object(Bucket="images", Key="tagged-copy", CopySource={"Bucket": "images", "Key": "tagged"}, Tagging="ignored=yes")
check(tag_set("images", "tagged-copy") == {"color": "blue"}, "CopyObject copies the source's tags (directive COPY ignores x-amz-tagging)")
check(error(s3.get_bucket_tagging, Bucket="images") == ("NoSuchTagSet", 404), "GetBucketTagging of a bucket without tags is NoSuchTagSet (404), as on S3")
check(s3.put_bucket_tagging(Bucket="images", Tagging=tagging([("team", "cloud ops"), ("cost", "")]))["ResponseMetadata"]["HTTPStatusCode"] == 204, "PutBucketTagging is 204")
check({t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket="images")["TagSet"]} == {"team": "cloud ops", "cost": ""}, "GetBucketTagging returns the set")
check(len(bob.get_bucket_tagging(Bucket="images")["TagSet"]) == 2, "a member of the project reads a bucket's tags")
check(error(carol.get_bucket_tagging, Bucket="images") == ("AccessDenied", 403), "another project cannot read a bucket's tags")
check(error(carol.put_bucket_tagging, Bucket="images", Tagging=tagging([("a", "b")])) == ("AccessDenied", 403), "nor write them")
fifty = [(f"k{i}", "v") for i in range(50)]
s3.put_bucket_tagging(Bucket="images", Tagging=tagging(fifty))
check(len(s3.get_bucket_tagging(Bucket="images")["TagSet"]) == 50, "a bucket holds 50 tags")
check(error(s3.put_bucket_tagging, Bucket="images", Tagging=tagging(fifty + [("k50", "v")])) == ("InvalidTag", 400), "51 bucket tags are InvalidTag (400)")
check(error(s3.put_bucket_tagging, Bucket="images", Tagging=tagging([("aws:x", "v")])) == ("InvalidTag", 400), "a bucket tag key starting with aws: is InvalidTag")
check(len(s3.get_bucket_tagging(Bucket="images")["TagSet"]) == 50, "a refused PutBucketTagging leaves the set as it was")
check(error(s3.put_bucket_tagging, Bucket="no-such-bucket-x", Tagging=tagging([("a", "b")])) == ("NoSuchBucket", 404), "tagging a missing bucket is NoSuchBucket")
check(s3.delete_bucket_tagging(Bucket="images")["ResponseMetadata"]["HTTPStatusCode"] == 204, "DeleteBucketTagging is 204")
check(error(s3.get_bucket_tagging, Bucket="images") == ("NoSuchTagSet", 404), "and the set is gone")
s3.copy_object(Bucket="images", Key="tagged-copy", CopySource={"Bucket": "images", "Key": "tagged"}, TaggingDirective="REPLACE", Tagging="color=red&size=xl")
check(tag_set("images", "tagged-copy") == {"color": "red", "size": "xl"}, "TaggingDirective REPLACE takes x-amz-tagging")
s3.copy_object(Bucket="images", Key="tagged-copy", CopySource={"Bucket": "images", "Key": "tagged"}, TaggingDirective="REPLACE")
check(tag_set("images", "tagged-copy") == {}, "REPLACE without x-amz-tagging leaves none")
check(error(s3.copy_object, Bucket="images", Key="tagged-copy", CopySource={"Bucket": "images", "Key": "tagged"}, TaggingDirective="MERGE")[0] == "InvalidArgument", "an unknown tagging directive is InvalidArgument")
check(error(s3.create_multipart_upload, Bucket="images", Key="tagged-mp", Tagging="k=" + "v" * 257) == ("InvalidTag", 400), "CreateMultipartUpload checks x-amz-tagging")
mp = s3.create_multipart_upload(Bucket="images", Key="tagged-mp", Tagging="stage=done")["UploadId"]
m1 = s3.upload_part(Bucket="images", Key="tagged-mp", UploadId=mp, PartNumber=1, Body=b"mp")["ETag"]
check(error(s3.get_object_tagging, Bucket="images", Key="tagged-mp")[0] == "NoSuchKey", "an upload's tags wait for it to complete")
s3.complete_multipart_upload(Bucket="images", Key="tagged-mp", UploadId=mp, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": m1}]})
check(tag_set("images", "tagged-mp") == {"stage": "done"}, "CompleteMultipartUpload gives the object the tags of CreateMultipartUpload")
s3.put_object(Bucket="images", Key="tagged-mp", Body=b"again")
check(tag_set("images", "tagged-mp") == {}, "a PUT without x-amz-tagging replaces the object and its tags")

area("checksums")
data = b"checksummed body"
crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
for algorithm in ["CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"]:
    # botocore computes CRC32C and CRC64NVME with awscrt, which make install-deps installs.
    put = s3.put_object(Bucket="images", Key=f"sum-{algorithm}", Body=data, ChecksumAlgorithm=algorithm)
    got = s3.get_object(Bucket="images", Key=f"sum-{algorithm}", ChecksumMode="ENABLED")
    check(got.get(f"Checksum{algorithm}") == put.get(f"Checksum{algorithm}") and got[f"Checksum{algorithm}"], f"{algorithm}: verified on upload, stored, returned with ChecksumMode=ENABLED")
check(s3.get_object(Bucket="images", Key="sum-CRC32", ChecksumMode="ENABLED")["ChecksumCRC32"] == crc32, "the CRC32 is zlib's")
check("ChecksumCRC32" not in s3.get_object(Bucket="images", Key="sum-CRC32", ChecksumMode="ENABLED", Range="bytes=0-3"), "a ranged GET carries no full-object checksum")
wrong = base64.b64encode(b"\0\0\0\0").decode()
check(error(s3.put_object, Bucket="images", Key="bad-sum", Body=data, ChecksumCRC32=wrong)[0] == "BadDigest", "a wrong x-amz-checksum-crc32 is BadDigest")
check(error(s3.get_object, Bucket="images", Key="bad-sum")[0] == "NoSuchKey", "and stores nothing")
md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
check(error(s3.put_object, Bucket="images", Key="bad-md5", Body=data, ContentMD5=md5)[0] == "BadDigest", "a wrong Content-MD5 is BadDigest")

area("presigned")
url = s3.generate_presigned_url("get_object", Params={"Bucket": "images", "Key": "docs/readme.txt"}, ExpiresIn=60)
check(urllib.request.urlopen(url).read() == b"second", "a presigned GET URL works without keys")
expired = s3.generate_presigned_url("get_object", Params={"Bucket": "images", "Key": "docs/readme.txt"}, ExpiresIn=1)
import time
time.sleep(2)
try:
    urllib.request.urlopen(expired)
    check(False, "an expired presigned URL is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403 and b"<Code>AccessDenied</Code>" in e.read(), "an expired presigned URL is 403 AccessDenied")
put_url = s3.generate_presigned_url("put_object", Params={"Bucket": "images", "Key": "presigned-put"}, ExpiresIn=60)
request = urllib.request.Request(put_url, data=b"uploaded", method="PUT")
urllib.request.urlopen(request)
check(s3.get_object(Bucket="images", Key="presigned-put")["Body"].read() == b"uploaded", "a presigned PUT URL uploads")
tampered = url.replace("readme.txt", "readme.txT")
try:
    urllib.request.urlopen(tampered)
    check(False, "a tampered presigned URL is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403 and b"SignatureDoesNotMatch" in e.read(), "a tampered presigned URL is SignatureDoesNotMatch")

area("isolation")
check(error(carol.get_object, Bucket="images", Key="docs/readme.txt") == ("AccessDenied", 403), "another project's bucket is AccessDenied")
check(error(carol.put_object, Bucket="images", Key="x", Body=b"x") == ("AccessDenied", 403), "and cannot be written")
check("images" not in [b["Name"] for b in carol.list_buckets()["Buckets"]], "nor listed")
check(bob.get_object(Bucket="images", Key="docs/readme.txt")["Body"].read() == b"second", "a member of the project reads it")
try:
    urllib.request.urlopen(f"{URL}/images/docs/readme.txt")
    check(False, "an anonymous GET of a private bucket is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403, "an anonymous GET of a private bucket is 403")
s3.put_bucket_acl(Bucket="images", ACL="public-read")
check(urllib.request.urlopen(f"{URL}/images/docs/readme.txt").read() == b"second", "after ACL public-read, anonymous GETs work")
try:
    urllib.request.urlopen(urllib.request.Request(f"{URL}/images/anon", data=b"x", method="PUT"))
    check(False, "an anonymous PUT is refused")
except urllib.error.HTTPError as e:
    check(e.code == 403, "but anonymous PUTs are still 403")
s3.put_bucket_acl(Bucket="images", ACL="private")
wrong_secret = boto3.client("s3", endpoint_url=URL, region_name="nova", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key="wrong" * 8)
check(error(wrong_secret.list_buckets) == ("SignatureDoesNotMatch", 403), "a wrong secret is SignatureDoesNotMatch (403)")
unknown = boto3.client("s3", endpoint_url=URL, region_name="nova", aws_access_key_id="AKIANOTAKEY", aws_secret_access_key="x" * 40)
check(error(unknown.list_buckets) == ("InvalidAccessKeyId", 403), "an unknown key is InvalidAccessKeyId (403)")

area("virtual")
# bucket.DOMAIN must reach the server: nothing here resolves *.DOMAIN (glibc leaves even
# *.localhost to DNS), so this process's resolver maps DOMAIN and its subdomains to 127.0.0.1.
# Everything else is boto3's own: the URL it builds, the Host header it sends and signs.
DOMAIN = os.environ["S3_DOMAIN"]
PORT = urllib.parse.urlsplit(URL).port
system_getaddrinfo = socket.getaddrinfo


def loopback_for_domain(host, *args, **kwargs):
    if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
        host = "127.0.0.1"
    return system_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = loopback_for_domain


def virtual_client(prefix="AWS"):
    return boto3.client("s3", endpoint_url=f"http://{DOMAIN}:{PORT}", region_name="nova",
                        aws_access_key_id=os.environ[f"{prefix}_ACCESS_KEY_ID"], aws_secret_access_key=os.environ[f"{prefix}_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "virtual"}))


vhost = virtual_client()
sent = []
vhost.meta.events.register("before-send.s3", lambda request, **kwargs: sent.append(request.url))
got = vhost.get_object(Bucket="images", Key="docs/readme.txt")["Body"].read()
check(sent[-1] == f"http://images.{DOMAIN}:{PORT}/docs/readme.txt", f"boto3 (addressing_style virtual) names the bucket in the host: {sent[-1]}")
check(got == b"second", "and the server reads the bucket from the Host header (path-style, /docs/… would be bucket docs)")
vhost.put_object(Bucket="images", Key="vhost/put", Body=b"virtual", Tagging="via=vhost")
check(s3.get_object(Bucket="images", Key="vhost/put")["Body"].read() == b"virtual", "a virtual-host PUT, signed for images.DOMAIN, is the path-style object")
check(tag_set("images", "vhost/put") == {"via": "vhost"}, "sub-resources and headers work the same way")
check([o["Key"] for o in vhost.list_objects_v2(Bucket="images", Prefix="vhost/")["Contents"]] == ["vhost/put"], "ListObjectsV2 on the bucket's host")
check("images" in [b["Name"] for b in vhost.list_buckets()["Buckets"]], "the bare domain is the service: ListBuckets")
check(error(vhost.get_object, Bucket="no-such-bucket", Key="x") == ("NoSuchBucket", 404), "an unknown bucket's host is NoSuchBucket")
check(error(virtual_client("CAROL").get_object, Bucket="images", Key="docs/readme.txt") == ("AccessDenied", 403), "another project's bucket is AccessDenied by host too")
presigned = vhost.generate_presigned_url("get_object", Params={"Bucket": "images", "Key": "docs/readme.txt"}, ExpiresIn=60)
check(presigned.startswith(f"http://images.{DOMAIN}:{PORT}/") and urllib.request.urlopen(presigned).read() == b"second", "a virtual-host presigned URL")


def anonymous_status(host, path):
    try:
        return urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{PORT}{path}", headers={"Host": host})).status
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode().split("<Code>")[1].split("</Code>")[0]


check(anonymous_status(f"images.{DOMAIN}:{PORT}", "/docs/readme.txt") == (403, "AccessDenied"), "an unsigned GET on images.DOMAIN reaches the private bucket images (403)")
check(anonymous_status(f"images.elsewhere.test:{PORT}", "/docs/readme.txt") == (404, "NoSuchBucket"), "a host outside DOMAIN is path-style: bucket docs (404)")

area("quota")
carol.create_bucket(Bucket="zeta-data")
stored_files = lambda: sorted(name for root, dirs, names in os.walk(os.path.join(DATA, "objects", "data")) for name in names)
files_before = stored_files()
check(error(carol.put_object, Bucket="zeta-data", Key="one-byte", Body=b"x") == ("QuotaExceeded", 403), "past quotas.objectGigabytes a PutObject is QuotaExceeded (403), as Ceph RGW answers")
check(error(carol.get_object, Bucket="zeta-data", Key="one-byte")[0] == "NoSuchKey" and stored_files() == files_before, "and stores no object and leaves no file")
carol.put_object(Bucket="zeta-data", Key="empty", Body=b"")
check(carol.head_object(Bucket="zeta-data", Key="empty")["ContentLength"] == 0, "an empty object adds nothing and is stored")
files_before = stored_files()
zeta_upload = carol.create_multipart_upload(Bucket="zeta-data", Key="parts")["UploadId"]
check(error(carol.upload_part, Bucket="zeta-data", Key="parts", UploadId=zeta_upload, PartNumber=1, Body=b"part") == ("QuotaExceeded", 403), "an UploadPart past the quota is QuotaExceeded (parts count)")
check(carol.list_parts(Bucket="zeta-data", Key="parts", UploadId=zeta_upload).get("Parts", []) == [], "and records no part")
check(stored_files() == files_before, f"and leaves no file ({len(stored_files())} files, {len(files_before)} before)")


def declared_put(path, length, signer):
    """A signed PUT that declares `length` bytes and sends none: what the server answers before the body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    url = URL.rstrip("/") + path
    request = AWSRequest(method="PUT", url=url, headers={"Content-Length": str(length), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(signer._request_signer._credentials.get_frozen_credentials(), "s3", "nova").add_auth(request)
    parsed = urllib.parse.urlsplit(url)
    connection = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
    head = f"PUT {parsed.path}{'?' + parsed.query if parsed.query else ''} HTTP/1.1\r\nHost: {parsed.netloc}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()) + "\r\n"
    connection.sendall(head.encode())
    answer = b""
    try:
        while b"</Error>" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    except socket.timeout:
        pass
    connection.close()
    return answer.decode(errors="replace")


answer = declared_put("/zeta-data/declared-large", 100 << 20, carol)
check(answer.startswith("HTTP/1.1 403") and "<Code>QuotaExceeded</Code>" in answer, f"a PutObject declaring 100 MiB past the quota is refused before its body is sent: {answer[:300]!r}")
answer = declared_put(f"/zeta-data/parts?partNumber=2&uploadId={zeta_upload}", 100 << 20, carol)
check(answer.startswith("HTTP/1.1 403") and "<Code>QuotaExceeded</Code>" in answer, f"and so is an UploadPart: {answer[:300]!r}")
check(stored_files() == files_before, "neither left a file")
empty_part = carol.upload_part(Bucket="zeta-data", Key="parts", UploadId=zeta_upload, PartNumber=1, Body=b"")["ETag"]
carol.complete_multipart_upload(Bucket="zeta-data", Key="parts", UploadId=zeta_upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": empty_part}]})
check(carol.head_object(Bucket="zeta-data", Key="parts")["ContentLength"] == 0, "completing an upload adds nothing its parts did not")
check(error(carol.copy_object, Bucket="zeta-data", Key="copy", CopySource={"Bucket": "zeta-data", "Key": "empty"}) == (None, 200), "copying an empty object adds nothing")
check(s3.put_object(Bucket="images", Key="acme-has-room", Body=b"x")["ResponseMetadata"]["HTTPStatusCode"] == 200, "another project's quota is its own")

area("keys")
hostile = ["../escape", "../../etc/passwd", "/absolute", "%2e%2e/x", "a/../../b", "..", ".", "a//b", "nul\u0000byte", "sp ace", "x" * 1024, "日本語/キー", "\\windows\\path"]
parent = os.path.dirname(os.path.abspath(DATA))


def files_outside():
    """Every file under the data directory's parent and in /etc, but not in the data directory."""
    found = set()
    for top in (parent, "/etc"):
        for root, dirs, names in os.walk(top):
            dirs[:] = [d for d in dirs if os.path.join(root, d) != os.path.abspath(DATA)]
            found.update(os.path.join(root, name) for name in names)
    return found


before = files_outside()
s3.create_bucket(Bucket="hostile")
for key in hostile:
    s3.put_object(Bucket="hostile", Key=key, Body=key.encode())
import urllib.parse
stored = {urllib.parse.unquote(o["Key"]) for page in s3.get_paginator("list_objects_v2").paginate(Bucket="hostile", EncodingType="url") for o in page.get("Contents", [])}
check(stored == set(hostile), "hostile keys round-trip verbatim in listings")
check(all(s3.get_object(Bucket="hostile", Key=key)["Body"].read() == key.encode() for key in hostile), "and in GETs")
check(files_outside() == before, "no file appeared outside the data directory")
inside = [name for root, dirs, names in os.walk(os.path.join(DATA, "objects")) for name in names]
check(all(len(name) == 36 and name.count("-") == 4 for name in inside), "every stored file is named by a UUID, never by a key")
check(error(s3.put_object, Bucket="hostile", Key="x" * 1025, Body=b"x")[0] == "KeyTooLongError", "a key over 1024 bytes is KeyTooLongError")

area("errors")
check(error(s3.get_object, Bucket="nope", Key="x") == ("NoSuchBucket", 404), "NoSuchBucket")
check(error(s3.get_object, Bucket="images", Key="nope") == ("NoSuchKey", 404), "NoSuchKey")
check(error(s3.list_parts, Bucket="images", Key="x", UploadId="nope") == ("NoSuchUpload", 404), "NoSuchUpload")
check(error(s3.upload_part, Bucket="images", Key="x", UploadId="nope", PartNumber=0, Body=b"x")[0] == "InvalidArgument", "a part number of 0 is InvalidArgument")
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
now = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: now() - datetime.timedelta(minutes=20)
try:
    # botocore's pure-Python signer (with awscrt installed, clients sign with the CRT's own clock).
    stale = AWSRequest("GET", URL + "/", headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    botocore.auth.S3SigV4Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "s3", "nova").add_auth(stale)
finally:
    botocore.auth.get_current_datetime = now
prepared = stale.prepare()
try:
    urllib.request.urlopen(urllib.request.Request(prepared.url, headers=dict(prepared.headers)))
    code = (None, 200)
except urllib.error.HTTPError as e:
    body = e.read().decode()
    code = (body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else None, e.code)
check(code == ("RequestTimeTooSkewed", 403), f"a request signed 20 minutes ago is RequestTimeTooSkewed (403), got {code}")
tampered = boto3.client("s3", endpoint_url=URL, region_name="nova", aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"], aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
def tamper(request, **kwargs):
    request.body = b"tampered!"  # after signing; the same length as what was signed
tampered.meta.events.register("before-send.s3.PutObject", tamper)
check(error(tampered.put_object, Bucket="images", Key="tampered", Body=b"original!")[0] in ("XAmzContentSHA256Mismatch", "SignatureDoesNotMatch"), "a body changed after signing is refused")
check(error(s3.get_object, Bucket="images", Key="tampered")[0] == "NoSuchKey", "and stores nothing")

hostile_date = s3.generate_presigned_url("get_object", Params={"Bucket": "images", "Key": "docs/readme.txt"}, ExpiresIn=60)
answer = urllib.request.urlopen(urllib.request.Request(hostile_date, headers={"If-Modified-Since": "Tue, 01 Dec 99999999999 14:00:00 GMT"}))
check(answer.status == 200, "an If-Modified-Since no calendar has is ignored, not a crash")
upload = s3.create_multipart_upload(Bucket="images", Key="parts")["UploadId"]
check(error(s3.list_parts, Bucket="images", Key="parts", UploadId=upload, MaxParts=-1)[0] == "InvalidArgument", "a negative max-parts is InvalidArgument, not a crash")
s3.abort_multipart_upload(Bucket="images", Key="parts", UploadId=upload)
started = time.time()
flood = "<Delete><Object><Key>" + "&" * 200_000 + "</Key></Object></Delete>"
request = botocore.awsrequest.AWSRequest("POST", URL + "/images?delete", data=flood.encode(), headers={"x-amz-content-sha256": hashlib.sha256(flood.encode()).hexdigest()})
botocore.auth.S3SigV4Auth(Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]), "s3", "nova").add_auth(request)
prepared = request.prepare()
try:
    urllib.request.urlopen(urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST"))
except urllib.error.HTTPError:
    pass
check(time.time() - started < 5, f"a DeleteObjects body of 200,000 '&' is answered at once ({time.time() - started:.1f} s)")

area(None)
print(f"{checks} checks passed")
finish(0)
