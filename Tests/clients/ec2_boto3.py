"""boto3 against a live `stratus serve`: every EC2 action, filters, pagination and error codes.

Environment: EC2_URL, and the keys of alice (sysadmin+netadmin of acme) as AWS_*, of bob
(developer in acme) as BOB_*, of carol (zeta) as CAROL_*. Prints one line per check and, last,
`AREAS {json}`: each area (catalog, key pairs, …) passed, failed with the first failed check,
or not run (an earlier area failed; later areas use what earlier ones made).
"""
import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import boto3
import botocore
from botocore.auth import SigV2Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

URL = os.environ["EC2_URL"]
checks = 0
AREAS = ["catalog", "key pairs", "security groups", "images", "instances", "volumes and addresses", "isolation and roles", "errors", "terminate"]
results = {name: "not run: an earlier area failed" for name in AREAS}
current = None


def area(name):
    """Starts the next area; the one before passed if it got here."""
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


def client(prefix="AWS"):
    return boto3.client("ec2", endpoint_url=URL, region_name="nova",
                        aws_access_key_id=os.environ[f"{prefix}_ACCESS_KEY_ID"],
                        aws_secret_access_key=os.environ[f"{prefix}_SECRET_ACCESS_KEY"],
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def check(condition, what):
    global checks
    if not condition:
        fail(what)
    checks += 1
    print(f"ok: {what}")


def error_code(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


def raw(params, secret=None, signer="v4", timestamp=None):
    """A request signed by botocore's own signers, for what boto3 would refuse to send."""
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], secret or os.environ["AWS_SECRET_ACCESS_KEY"])
    request = AWSRequest("POST", URL, data=dict(params), headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    if signer == "v4":
        SigV4Auth(creds, "ec2", "nova").add_auth(request)
    else:
        SigV2Auth(creds).add_auth(request)
        if timestamp:
            request.data["Timestamp"] = timestamp
            request.data.pop("Signature")
            _, signature = SigV2Auth(creds).calc_signature(request, request.data)
            request.data["Signature"] = signature
    prepared = request.prepare()
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
                                                           headers=dict(prepared.headers), method="POST")) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


ec2 = client()
bob = client("BOB")
carol = client("CAROL")

# Catalog
area("catalog")
check(ec2.describe_regions()["Regions"][0]["RegionName"] == "nova", "DescribeRegions names the region")
check([z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]] == ["nova"], "DescribeAvailabilityZones lists nova")
types = {t["InstanceType"]: t for t in ec2.describe_instance_types()["InstanceTypes"]}
check(types["m1.tiny"]["MemoryInfo"]["SizeInMiB"] == 512 and types["m1.small"]["VCpuInfo"]["DefaultVCpus"] == 1, "DescribeInstanceTypes shows the catalog")

# Key pairs
area("key pairs")
created = ec2.create_key_pair(KeyName="ci")
check(created["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----"), "CreateKeyPair returns an RSA key in PEM by default, as AWS")
check(len(created["KeyFingerprint"]) == 59, "a created RSA key's fingerprint is the SHA-1 of its private key, colon hex")
made_ed = ec2.create_key_pair(KeyName="ci-ed", KeyType="ed25519")
check(made_ed["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----"), "KeyType ed25519 returns an OpenSSH private key")
check(made_ed["KeyFingerprint"].endswith("="), "an ED25519 key's fingerprint is base64 SHA-256")
ec2.delete_key_pair(KeyName="ci-ed")
with tempfile.NamedTemporaryFile("w", delete=False) as key_file:
    key_file.write(created["KeyMaterial"])
os.chmod(key_file.name, 0o600)
derived = subprocess.run(["ssh-keygen", "-y", "-f", key_file.name], capture_output=True, text=True)
listed = {k["KeyName"]: k for k in ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]}
check("PublicKey" not in ec2.describe_key_pairs()["KeyPairs"][0], "DescribeKeyPairs shows public keys only with IncludePublicKey")
check(derived.returncode == 0 and derived.stdout.split()[1] == listed["ci"]["PublicKey"].split()[1], "ssh-keygen reads the private key, and it matches the stored public key")
check(error_code(ec2.create_key_pair, KeyName="ci")[0] == "InvalidKeyPair.Duplicate", "a second CreateKeyPair of the same name is InvalidKeyPair.Duplicate")
imported = ec2.import_key_pair(KeyName="laptop", PublicKeyMaterial=listed["deploy"]["PublicKey"].encode())
check(imported["KeyFingerprint"] == listed["deploy"]["KeyFingerprint"], "ImportKeyPair keeps the fingerprint")
check(error_code(ec2.import_key_pair, KeyName="junk", PublicKeyMaterial=b"not a key")[0] == "InvalidKey.Format", "a malformed public key is InvalidKey.Format")
ec2.delete_key_pair(KeyName="laptop")
check(error_code(ec2.describe_key_pairs, KeyNames=["laptop"])[0] == "InvalidKeyPair.NotFound", "a deleted key pair is InvalidKeyPair.NotFound")
spaced = ec2.create_key_pair(KeyName="Test key", KeyType="ed25519")
check(spaced["KeyName"] == "Test key", "CreateKeyPair takes an EC2 name with a space and upper case")
check([k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=["Test key"])["KeyPairs"]] == ["Test key"], "DescribeKeyPairs finds it by that name")
check(error_code(ec2.create_key_pair, KeyName="Test key")[0] == "InvalidKeyPair.Duplicate", "and a second one of that name is InvalidKeyPair.Duplicate")
check(error_code(ec2.create_key_pair, KeyName="x" * 256)[0] == "InvalidParameterValue", "a key name over 255 characters is InvalidParameterValue")
check(carol.create_key_pair(KeyName="Test key", KeyType="ed25519")["KeyName"] == "Test key", "another project may use the same EC2 name")
carol.delete_key_pair(KeyName="Test key")
ec2.delete_key_pair(KeyName="Test key")

# Security groups
area("security groups")
default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
check(len(default) == 1 and default[0]["GroupId"].startswith("sg-"), "every project has a default security group")
check(error_code(ec2.delete_security_group, GroupName="default")[0] == "CannotDelete", "the default group cannot be deleted (CannotDelete)")
web = ec2.create_security_group(GroupName="Web Servers", Description="web")["GroupId"]
ec2.authorize_security_group_ingress(GroupName="Web Servers", IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupName": "Web Servers"}]}])
described = ec2.describe_security_groups(GroupNames=["Web Servers"])["SecurityGroups"]
check(described[0]["GroupId"] == web and described[0]["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupName"] == "Web Servers", "a group named \"Web Servers\" is made, found and named in its own rule")
ec2.delete_security_group(GroupName="Web Servers")
check(error_code(ec2.describe_security_groups, GroupNames=["Web Servers"])[0] == "InvalidGroup.NotFound", "and deleted by that name")
group = ec2.create_security_group(GroupName="ssh", Description="SSH from anywhere")
check(group["GroupId"].startswith("sg-"), "CreateSecurityGroup returns an sg- id")
ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
check(error_code(ec2.authorize_security_group_ingress, GroupId=group["GroupId"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])[0] == "InvalidPermission.Duplicate", "the same rule twice is InvalidPermission.Duplicate")
described = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["ssh"]}])["SecurityGroups"]
check(len(described) == 1 and described[0]["IpPermissions"][0]["FromPort"] == 22, "DescribeSecurityGroups with a group-name filter shows the rule")
check(error_code(bob.create_security_group, GroupName="bobs", Description="x")[0] == "UnauthorizedOperation", "a developer may not create security groups (UnauthorizedOperation)")

# Images
area("images")
images = ec2.describe_images()["Images"]
check(len(images) == 1 and images[0]["Name"] == "debian-12", "DescribeImages shows the project's image")
ami = images[0]["ImageId"]
registered = ec2.register_image(Name="scratch", ImageLocation="/var/lib/stratus/images/scratch.qcow2")["ImageId"]
check(ec2.describe_image_attribute(ImageId=registered, Attribute="launchPermission")["LaunchPermissions"] == [], "a new image is private")
check(error_code(carol.describe_images, ImageIds=[registered])[0] == "InvalidAMIID.NotFound", "another project does not see a private image")
ec2.modify_image_attribute(ImageId=registered, LaunchPermission={"Add": [{"Group": "all"}]})
check(ec2.describe_image_attribute(ImageId=registered, Attribute="launchPermission")["LaunchPermissions"] == [{"Group": "all"}], "ModifyImageAttribute makes it public")
check(carol.describe_images(ImageIds=[registered])["Images"][0]["Public"] is True, "and then another project sees it")
ec2.deregister_image(ImageId=registered)
check(error_code(ec2.describe_images, ImageIds=["ami-deadbeef"])[0] == "InvalidAMIID.NotFound", "an unknown AMI is InvalidAMIID.NotFound")
check(error_code(ec2.describe_images, ImageIds=["ami-xyz"])[0] == "InvalidAMIID.Malformed", "a malformed AMI id is InvalidAMIID.Malformed")

# Instances
area("instances")
user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
run = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="m1.tiny", KeyName="ci", SecurityGroups=["ssh"],
                        UserData="#!/bin/sh\necho hello\n", Placement={"AvailabilityZone": "nova"}, ClientToken="token-1",
                        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "ci"}]}])
ids = [i["InstanceId"] for i in run["Instances"]]
check(len(ids) == 2 and all(i["State"]["Name"] == "pending" for i in run["Instances"]), "RunInstances starts 2 pending instances")
again = ec2.run_instances(ImageId=ami, MinCount=2, MaxCount=2, InstanceType="m1.tiny", ClientToken="token-1")
check(again["ReservationId"] == run["ReservationId"] and sorted(i["InstanceId"] for i in again["Instances"]) == sorted(ids), "the same ClientToken returns the same reservation")
more = ec2.run_instances(ImageId=ami, MinCount=6, MaxCount=6, InstanceType="m1.tiny")
ids += [i["InstanceId"] for i in more["Instances"]]
check(all(i["SecurityGroups"] == [{"GroupName": "default", "GroupId": default[0]["GroupId"]}] for i in more["Instances"]) and more["Groups"] == [{"GroupName": "default", "GroupId": default[0]["GroupId"]}],
      "instances launched without groups join the default group (the instance's and the reservation's groupSet)")
reservation = ec2.describe_instances(InstanceIds=[more["Instances"][0]["InstanceId"]])["Reservations"][0]
check(reservation["Groups"][0]["GroupName"] == "default" and reservation["Instances"][0]["SecurityGroups"][0]["GroupName"] == "default", "and DescribeInstances shows it in both")
check(error_code(ec2.delete_security_group, GroupName="default")[0] == "CannotDelete", "still CannotDelete while instances use it")
deadline = time.time() + 60
while time.time() < deadline:
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}, {"Name": "instance-id", "Values": ids}])
    if sum(len(r["Instances"]) for r in running["Reservations"]) == 8:
        break
    time.sleep(0.2)
check(sum(len(r["Instances"]) for r in running["Reservations"]) == 8, "the controller brings all 8 to running")
first = ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]
check(first["KeyName"] == "ci" and first["SecurityGroups"][0]["GroupName"] == "ssh" and first["Placement"]["AvailabilityZone"] == "nova" and first["ImageId"] == ami,
      "DescribeInstances by id shows key, group, zone and image")
check({t["Key"]: t["Value"] for t in first["Tags"]} == {"role": "ci"}, "TagSpecifications became tags")
check(len(ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["c*"]}])["Reservations"][0]["Instances"]) == 2, "a tag:role filter with a wildcard finds the tagged reservation")
check(error_code(ec2.run_instances, ImageId=ami, MinCount=3, MaxCount=3, InstanceType="m1.tiny")[0] == "InstanceLimitExceeded", "beyond the project's quota (10 instances) is InstanceLimitExceeded")

pages, token = [], None
while True:
    kwargs = {"MaxResults": 5} | ({"NextToken": token} if token else {})
    page = ec2.describe_instances(**kwargs)
    pages.append(sum(len(r["Instances"]) for r in page["Reservations"]))
    token = page.get("NextToken")
    if not token:
        break
check(pages == [5, 3], f"MaxResults=5 pages 8 instances as 5 + 3 (got {pages})")
paginated = [i for p in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}) for r in p["Reservations"] for i in r["Instances"]]
check(len(paginated) == 8, "boto3's paginator walks every page")

ec2.create_tags(Resources=[ids[2]], Tags=[{"Key": "Name", "Value": "web"}])
tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[2]]}])["Tags"]
check([(t["Key"], t["Value"], t["ResourceType"]) for t in tags] == [("Name", "web", "instance")], "CreateTags and DescribeTags")
ec2.delete_tags(Resources=[ids[2]], Tags=[{"Key": "Name"}])
check(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ids[2]]}])["Tags"] == [], "DeleteTags removes it")

statuses = ec2.describe_instance_status(InstanceIds=ids[:2])["InstanceStatuses"]
check(len(statuses) == 2 and all(s["InstanceStatus"]["Status"] == "ok" for s in statuses), "DescribeInstanceStatus reports running instances ok")
ec2.stop_instances(InstanceIds=[ids[4]])
deadline = time.time() + 30
while time.time() < deadline and ec2.describe_instances(InstanceIds=[ids[4]])["Reservations"][0]["Instances"][0]["State"]["Name"] != "stopped":
    time.sleep(0.2)
check(ec2.describe_instances(InstanceIds=[ids[4]])["Reservations"][0]["Instances"][0]["State"]["Code"] == 80, "StopInstances → stopped (80)")
check(error_code(ec2.reboot_instances, InstanceIds=[ids[4]])[0] == "IncorrectInstanceState", "rebooting a stopped instance is IncorrectInstanceState")
ec2.start_instances(InstanceIds=[ids[4]])
ec2.reboot_instances(InstanceIds=[ids[0]])
check(ec2.get_console_output(InstanceId=ids[0])["InstanceId"] == ids[0], "GetConsoleOutput answers for the instance")
check(error_code(ec2.describe_instance_status, InstanceIds=["i-00000000"])[0] == "InvalidInstanceID.NotFound", "DescribeInstanceStatus of an unknown id is InvalidInstanceID.NotFound")

# Volumes and addresses
area("volumes and addresses")
volume = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
ec2.attach_volume(VolumeId=volume, InstanceId=ids[0], Device="/dev/sdb")
attached = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [ids[0]]}])["Volumes"]
check(len(attached) == 1 and attached[0]["Attachments"][0]["Device"] == "/dev/vdb", "AttachVolume; DescribeVolumes filtered by attachment.instance-id")
check(error_code(ec2.delete_volume, VolumeId=volume)[0] == "VolumeInUse", "deleting an attached volume is VolumeInUse")
second = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
check(error_code(ec2.attach_volume, VolumeId=second, InstanceId=ids[0], Device="/dev/sdb")[0] == "InvalidParameterValue", "a second volume on a device in use is InvalidParameterValue")
ec2.attach_volume(VolumeId=second, InstanceId=ids[0], Device="/dev/sdc")
check({a["Device"] for v in ec2.describe_volumes(VolumeIds=[volume, second])["Volumes"] for a in v["Attachments"]} == {"/dev/vdb", "/dev/vdc"}, "and on another device it attaches")
modified = ec2.modify_volume(VolumeId=second, Size=3)["VolumeModification"]
check(modified["OriginalSize"] == 1 and modified["TargetSize"] == 3 and ec2.describe_volumes(VolumeIds=[second])["Volumes"][0]["Size"] == 3, "ModifyVolume grows a volume")
check(error_code(ec2.modify_volume, VolumeId=second, Size=2)[0] == "InvalidParameterValue", "and refuses to shrink it: InvalidParameterValue")
ec2.detach_volume(VolumeId=second)
ec2.delete_volume(VolumeId=second)
ec2.detach_volume(VolumeId=volume)
ec2.delete_volume(VolumeId=volume)
check(error_code(ec2.describe_volumes, VolumeIds=["vol-00000000"])[0] == "InvalidVolume.NotFound", "an unknown volume is InvalidVolume.NotFound")
allocation = ec2.allocate_address()["AllocationId"]
ec2.associate_address(AllocationId=allocation, InstanceId=ids[1])
check(ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]["InstanceId"] == ids[1], "AllocateAddress + AssociateAddress")
ec2.disassociate_address(AssociationId="eipassoc-" + allocation[len("eipalloc-"):])
ec2.release_address(AllocationId=allocation)

# Isolation and roles
area("isolation and roles")
check(carol.describe_instances()["Reservations"] == [], "carol (project zeta) sees none of acme's instances")
check(error_code(carol.terminate_instances, InstanceIds=[ids[0]])[0] == "InvalidInstanceID.NotFound", "and cannot terminate one: InvalidInstanceID.NotFound")
check(error_code(bob.run_instances, ImageId=ami, MinCount=1, MaxCount=1)[0] == "UnauthorizedOperation", "a developer may not run instances")

# Errors
area("errors")
check(error_code(ec2.describe_instances, InstanceIds=["i-00000000"]) == ("InvalidInstanceID.NotFound", 400), "an unknown instance is InvalidInstanceID.NotFound (400)")
check(error_code(ec2.terminate_instances, InstanceIds=["i-zzz"])[0] == "InvalidInstanceID.Malformed", "a malformed id is InvalidInstanceID.Malformed")
check(error_code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, KeyName="nope")[0] == "InvalidKeyPair.NotFound", "an unknown key is InvalidKeyPair.NotFound")
check(error_code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, SecurityGroups=["nope"])[0] == "InvalidGroup.NotFound", "an unknown group is InvalidGroup.NotFound")
check(error_code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, KernelId="aki-00000001")[0] == "Unsupported", "a KernelId other than the image's own is Unsupported, not ignored")
check(error_code(ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1, KernelId="vmlinuz")[0] == "InvalidParameterValue", "a malformed KernelId is InvalidParameterValue")
booting = carol.describe_images(Owners=["self"])["Images"]
check(len(booting) == 1 and booting[0]["KernelId"] == "aki-" + booting[0]["ImageId"][4:] and booting[0]["RamdiskId"] == "ari-" + booting[0]["ImageId"][4:],
      "DescribeImages shows an image's kernel and ramdisk ids")
own = carol.run_instances(ImageId=booting[0]["ImageId"], MinCount=1, MaxCount=1, InstanceType="m1.tiny", KernelId=booting[0]["KernelId"], RamdiskId=booting[0]["RamdiskId"])
check(own["Instances"][0]["State"]["Name"] == "pending", "RunInstances accepts the image's own KernelId and RamdiskId")
carol.terminate_instances(InstanceIds=[own["Instances"][0]["InstanceId"]])
check(error_code(carol.run_instances, ImageId=booting[0]["ImageId"], MinCount=1, MaxCount=1, RamdiskId="ari-00000001")[0] == "Unsupported", "another RamdiskId is Unsupported")
copy = carol.register_image(Name="netboot-copy", ImageLocation="/var/lib/stratus/images/other.qcow2", KernelId=booting[0]["KernelId"], RamdiskId=booting[0]["RamdiskId"])["ImageId"]
copied = carol.describe_images(ImageIds=[copy])["Images"][0]
check(copied["KernelId"] == "aki-" + copy[4:] and copied["RamdiskId"] == "ari-" + copy[4:], "RegisterImage with another image's KernelId and RamdiskId boots the same files")
check(error_code(carol.register_image, Name="nokernel", ImageLocation="/x.qcow2", KernelId="aki-" + ami[4:])[0] == "InvalidParameterValue", "RegisterImage with a kernel id no image has is InvalidParameterValue")
carol.deregister_image(ImageId=copy)
status, body = raw({"Action": "RunInstances", "Version": "2016-11-15", "ImageId": ami})
check(status == 400 and "<Code>MissingParameter</Code>" in body, "RunInstances without MinCount is MissingParameter")
status, body = raw({"Action": "DeleteEverything", "Version": "2016-11-15"})
check(status == 400 and "<Code>InvalidAction</Code>" in body and "<RequestID>" in body, "an action outside the allow-list is InvalidAction")
status, body = raw({"Action": "DescribeInstances", "Version": "2016-11-15"}, secret="wrong")
check(status == 401 and "<Code>AuthFailure</Code>" in body, "a bad signature is AuthFailure (401)")
old = (datetime.datetime.utcnow() - datetime.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
status, body = raw({"Action": "DescribeInstances", "Version": "2016-11-15"}, signer="v2", timestamp=old)
check("<Code>RequestExpired</Code>" in body, "a SigV2 timestamp 20 minutes old is RequestExpired")
status, body = raw({"Action": "DescribeInstances", "Version": "2016-11-15"}, signer="v2")
check(status == 200 and "<reservationSet>" in body, "SigV2 (HmacSHA256, form body) is accepted")

# Terminate
area("terminate")
kept = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
ec2.attach_volume(VolumeId=kept, InstanceId=ids[0], Device="/dev/sdf")
doomed = ec2.create_volume(Size=1, AvailabilityZone="nova")["VolumeId"]
ec2.attach_volume(VolumeId=doomed, InstanceId=ids[0], Device="/dev/sdg")
check(not ec2.describe_volumes(VolumeIds=[doomed])["Volumes"][0]["Attachments"][0]["DeleteOnTermination"], "AttachVolume sets DeleteOnTermination false")
ec2.modify_instance_attribute(InstanceId=ids[0], BlockDeviceMappings=[{"DeviceName": "/dev/sdg", "Ebs": {"DeleteOnTermination": True}}])
check(ec2.describe_volumes(VolumeIds=[doomed])["Volumes"][0]["Attachments"][0]["DeleteOnTermination"], "ModifyInstanceAttribute BlockDeviceMapping Ebs.DeleteOnTermination true; DescribeVolumes shows it")
mapping = {m["DeviceName"]: m["Ebs"] for m in ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="blockDeviceMapping")["BlockDeviceMappings"]}
check(mapping.get("/dev/vdg", {}).get("VolumeId") == doomed and mapping["/dev/vdg"]["DeleteOnTermination"] and not mapping["/dev/vdf"]["DeleteOnTermination"],
      "DescribeInstanceAttribute blockDeviceMapping lists the attached volumes with their flag")
check(error_code(ec2.modify_instance_attribute, InstanceId=ids[0], BlockDeviceMappings=[{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": True}}])[0] == "InvalidInstanceAttributeValue",
      "a device with no volume is InvalidInstanceAttributeValue")
check(error_code(ec2.modify_instance_attribute, InstanceId=ids[0], SourceDestCheck={"Value": False})[0] == "UnsupportedOperation", "an attribute Stratus does not keep is UnsupportedOperation, not ignored")
launched_type = ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]["InstanceType"]
check(ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="instanceType")["InstanceType"]["Value"] == launched_type, "DescribeInstanceAttribute instanceType")
result = ec2.terminate_instances(InstanceIds=ids)
check(ec2.describe_volumes(VolumeIds=[kept])["Volumes"][0]["Attachments"] == [], "terminating an instance detaches its volumes (DeleteOnTermination false, as AttachVolume sets it)")
gone = error_code(ec2.describe_volumes, VolumeIds=[doomed])
check(gone[0] == "InvalidVolume.NotFound" or ec2.describe_volumes(VolumeIds=[doomed])["Volumes"][0]["State"] == "deleting", f"and deletes those with DeleteOnTermination true: {gone}")
ec2.delete_volume(VolumeId=kept)
check(all(i["CurrentState"]["Name"] == "shutting-down" for i in result["TerminatingInstances"]), "TerminateInstances → shutting-down")
deadline = time.time() + 30
while time.time() < deadline:
    states = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    if states == ["terminated"] * len(ids):
        break
    time.sleep(0.2)
check(states == ["terminated"] * len(ids), "terminated instances stay visible as terminated (48)")
area(None)
print(f"{checks} checks passed")
finish(0)
