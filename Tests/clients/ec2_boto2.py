"""boto 2 (Signature Version 2) against a live `stratus serve`: EC2_URL and alice's AWS_* keys."""
import os
import sys
import time
from urllib.parse import urlparse

from boto.ec2.connection import EC2Connection
from boto.ec2.regioninfo import RegionInfo
from boto.exception import EC2ResponseError

url = urlparse(os.environ["EC2_URL"])
conn = EC2Connection(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], is_secure=False,
                     region=RegionInfo(name="nova", endpoint=url.hostname), port=url.port, path=url.path)
checks = 0


def check(condition, what):
    global checks
    if not condition:
        print(f"FAIL: {what}")
        sys.exit(1)
    checks += 1
    print(f"ok: {what}")


check([z.name for z in conn.get_all_zones()] == ["nova"], "get_all_zones")
key = conn.create_key_pair("boto2")
check(key.material.startswith("-----BEGIN RSA PRIVATE KEY-----"), "create_key_pair returns an RSA private key (the default KeyType), as AWS")
check(conn.create_key_pair("Test key").name == "Test key", "create_key_pair takes an EC2 name with a space")
check([k.name for k in conn.get_all_key_pairs(keynames=["Test key"])] == ["Test key"], "get_all_key_pairs finds it by that name")
conn.delete_key_pair("Test key")
group = conn.create_security_group("boto2", "boto 2 group")
check(group.authorize("tcp", 80, 80, "0.0.0.0/0"), "authorize (legacy flat parameters)")
check([r.from_port for r in conn.get_all_security_groups(groupnames=["boto2"])[0].rules] == ["80"], "get_all_security_groups shows the rule")
image = conn.get_all_images()[0]
reservation = conn.run_instances(image.id, min_count=1, max_count=1, key_name="boto2", security_groups=["boto2"], instance_type="m1.tiny")
instance = reservation.instances[0]
check(instance.id.startswith("i-"), "run_instances")
for _ in range(150):
    instance.update()
    if instance.state == "running":
        break
    time.sleep(0.2)
check(instance.state == "running", "the instance runs")
check([i.id for r in conn.get_all_reservations(filters={"key-name": "boto2"}) for i in r.instances] == [instance.id], "get_all_reservations with a filter")
try:
    conn.get_all_reservations(instance_ids=["i-00000000"])
    check(False, "unknown id accepted")
except EC2ResponseError as error:
    check(error.error_code == "InvalidInstanceID.NotFound", "an unknown id is InvalidInstanceID.NotFound")
check([i.id for i in conn.terminate_instances([instance.id])] == [instance.id], "terminate_instances")


def code_of(call):
    try:
        call()
    except EC2ResponseError as error:
        return error.error_code
    return None


# Spaced EC2 names through run_instances, the default group, the same names in carol's project.
conn.create_key_pair("Build Key")
conn.create_security_group("Build Farm", "spaced")
spaced = conn.run_instances(image.id, key_name="Build Key", security_groups=["Build Farm"], instance_type="m1.tiny").instances[0]
described = conn.get_all_instances(instance_ids=[spaced.id])[0].instances[0]
check(described.key_name == "Build Key" and [g.name for g in described.groups] == ["Build Farm"], "run_instances with spaced key and group names, shown by EC2 name")
plain = conn.run_instances(image.id, instance_type="m1.tiny")
check([g.name for g in plain.groups] == ["default"] and [g.name for g in plain.instances[0].groups] == ["default"], "an instance launched without groups joins default, in the reservation's and the instance's groups")
check(code_of(lambda: conn.delete_security_group("default")) == "CannotDelete", "the default group cannot be deleted")
check(code_of(lambda: conn.create_security_group("default", "again")) == "InvalidGroup.Reserved", "default is a reserved name")
check(code_of(lambda: conn.create_key_pair("Build Key")) == "InvalidKeyPair.Duplicate", "a duplicate key name is InvalidKeyPair.Duplicate")
carol = EC2Connection(os.environ["CAROL_ACCESS_KEY_ID"], os.environ["CAROL_SECRET_ACCESS_KEY"], is_secure=False,
                      region=RegionInfo(name="nova", endpoint=url.hostname), port=url.port, path=url.path)
check(carol.create_key_pair("Build Key").name == "Build Key" and carol.create_security_group("Build Farm", "x").name == "Build Farm", "another project may use the same EC2 names")
check(code_of(lambda: conn.create_volume(None, "nova")) == "MissingParameter", "create_volume without a size or snapshot is MissingParameter")
conn.terminate_instances([spaced.id, plain.instances[0].id])
conn.delete_key_pair("Build Key")
carol.delete_key_pair("Build Key")
conn.delete_key_pair("boto2")
print(f"{checks} checks passed")
