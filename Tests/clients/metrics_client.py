#!/usr/bin/env python3
"""The observability tests' client side.

  metrics_client.py scrape URL [TOKEN]  prints /metrics parsed by prometheus_client's text parser,
                                        as JSON: [{"name", "labels", "value"}] (exit 3 on HTTP error,
                                        printing the status)
  metrics_client.py calls               makes a known set of API calls as $AWS_ACCESS_KEY_ID and
                                        prints JSON: the request ids the APIs returned
Environment for calls: API_URL, EC2_URL, S3_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""
import json
import os
import sys
import urllib.error
import urllib.request

if sys.argv[1] == "scrape":
    request = urllib.request.Request(sys.argv[2])
    if len(sys.argv) > 3:
        request.add_header("Authorization", "Bearer " + sys.argv[3])
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read().decode()
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        print(json.dumps({"status": error.code, "body": error.read().decode()}))
        sys.exit(3)
    from prometheus_client.parser import text_string_to_metric_families
    samples = []
    families = list(text_string_to_metric_families(text))
    for family in families:
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value, "type": family.type, "help": family.documentation})
    print(json.dumps({"contentType": content_type, "samples": samples}))
    sys.exit(0)

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials

region = "nova"
ec2 = boto3.client("ec2", endpoint_url=os.environ["EC2_URL"], region_name=region)
s3 = boto3.client("s3", endpoint_url=os.environ["S3_URL"], region_name=region)
ids = {}
for _ in range(3):
    ec2.describe_regions()
ec2.describe_instances()
created = ec2.create_security_group(GroupName="metrics-sg", Description="made by the metrics test")
ids["CreateSecurityGroup"] = created["ResponseMetadata"]["RequestId"]
for _ in range(2):
    s3.list_buckets()
# The resource API: SigV4 for service "stratus", as the CLI signs.
credentials = botocore.credentials.Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
for _ in range(2):
    request = botocore.awsrequest.AWSRequest(method="GET", url=os.environ["API_URL"] + "/v1/whoami")
    botocore.auth.SigV4Auth(credentials, "stratus", region).add_auth(request)
    with urllib.request.urlopen(urllib.request.Request(request.url, headers=dict(request.headers))) as response:
        ids["whoami"] = response.headers.get("x-amz-request-id")
print(json.dumps(ids))
