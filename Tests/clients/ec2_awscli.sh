#!/usr/bin/env bash
# awscli against a live `stratus serve` (EC2_URL and alice's AWS_* keys in the environment).
set -euo pipefail
aws() { command aws --endpoint-url "$EC2_URL" --region nova --output json "$@"; }
ami=$(aws ec2 describe-images --query 'Images[0].ImageId' --output text)
[[ $ami == ami-* ]] || { echo "FAIL: no image ($ami)"; exit 1; }
aws ec2 create-security-group --group-name "Web Servers" --description web >/dev/null
[[ $(aws ec2 describe-security-groups --group-names "Web Servers" --query 'SecurityGroups[0].GroupName' --output text) == "Web Servers" ]] || { echo "FAIL: group by EC2 name"; exit 1; }
aws ec2 delete-security-group --group-name "Web Servers"
echo "ok: a security group named \"Web Servers\""
fail() { echo "FAIL: $*"; exit 1; }
# Spaced, upper-case EC2 names through every action that takes them; the same names in carol's project.
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N "" -C laptop -f "$work/k"
aws ec2 import-key-pair --key-name "My Laptop" --public-key-material "fileb://$work/k.pub" >/dev/null
aws ec2 create-security-group --group-name "App Servers" --description app >/dev/null
aws ec2 authorize-security-group-ingress --group-name "App Servers" --protocol tcp --port 22 --cidr 0.0.0.0/0
spaced=$(aws ec2 run-instances --image-id "$ami" --instance-type m1.tiny --count 1 --key-name "My Laptop" --security-groups "App Servers" --query 'Instances[0].InstanceId' --output text)
shown=$(aws ec2 describe-instances --instance-ids "$spaced" --query 'Reservations[0].Instances[0].[KeyName,SecurityGroups[0].GroupName]' --output text)
[[ $shown == "My Laptop"$'\t'"App Servers" ]] || fail "run-instances with spaced names shows \"$shown\""
[[ $(aws ec2 describe-instances --filters "Name=key-name,Values=My Laptop" --query 'Reservations[0].Instances[0].InstanceId' --output text) == "$spaced" ]] || fail "key-name filter by EC2 name"
echo "ok: \"My Laptop\" and \"App Servers\" through import, authorize, run, describe and filters"
AWS_ACCESS_KEY_ID=$CAROL_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$CAROL_SECRET_ACCESS_KEY aws ec2 import-key-pair --key-name "My Laptop" --public-key-material "fileb://$work/k.pub" >/dev/null
AWS_ACCESS_KEY_ID=$CAROL_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$CAROL_SECRET_ACCESS_KEY aws ec2 create-security-group --group-name "App Servers" --description app >/dev/null
echo "ok: another project may use the same EC2 names"
if out=$(aws ec2 import-key-pair --key-name "My Laptop" --public-key-material "fileb://$work/k.pub" 2>&1); then fail "a duplicate key name was accepted"; fi
[[ $out == *InvalidKeyPair.Duplicate* ]] || fail "$out"
echo "ok: a duplicate name in one project is InvalidKeyPair.Duplicate"
# EC2-classic's default group: there, joined by an instance launched without groups, not deletable, reserved.
plain=$(aws ec2 run-instances --image-id "$ami" --instance-type m1.tiny --count 1 --query 'Instances[0].InstanceId' --output text)
[[ $(aws ec2 describe-instances --instance-ids "$plain" --query 'Reservations[0].Instances[0].SecurityGroups[0].GroupName' --output text) == default ]] || fail "an instance without groups is not in default"
[[ $(aws ec2 describe-instances --instance-ids "$plain" --query 'Reservations[0].Groups[0].GroupName' --output text) == default ]] || fail "the reservation's groupSet lacks default"
if out=$(aws ec2 delete-security-group --group-name default 2>&1); then fail "default was deleted"; fi
[[ $out == *CannotDelete* ]] || fail "$out"
if out=$(aws ec2 create-security-group --group-name default --description x 2>&1); then fail "default was made again"; fi
[[ $out == *InvalidGroup.Reserved* ]] || fail "$out"
echo "ok: the default group holds an instance launched without groups; CannotDelete; InvalidGroup.Reserved"
if out=$(aws ec2 create-volume --availability-zone nova 2>&1); then fail "create-volume without a size was accepted"; fi
[[ $out == *MissingParameter* ]] || fail "$out"
if out=$(aws ec2 delete-security-group --group-id sg-x 2>&1); then fail "a malformed id was accepted"; fi
[[ $out == *InvalidGroupId.Malformed* ]] || fail "$out"
echo "ok: create-volume without Size or SnapshotId is MissingParameter; sg-x is InvalidGroupId.Malformed"
aws ec2 terminate-instances --instance-ids "$spaced" "$plain" >/dev/null
aws ec2 delete-key-pair --key-name "My Laptop"
[[ $(aws ec2 describe-key-pairs --filters "Name=key-name,Values=My Laptop" --query 'length(KeyPairs)') == 0 ]] || fail "the key pair stayed"
echo "ok: delete-key-pair by EC2 name"

id=$(aws ec2 run-instances --image-id "$ami" --instance-type m1.tiny --count 1 --key-name deploy --query 'Instances[0].InstanceId' --output text)
echo "ok: run-instances $id"
for _ in $(seq 100); do
    state=$(aws ec2 describe-instances --instance-ids "$id" --query 'Reservations[0].Instances[0].State.Name' --output text)
    [[ $state == running ]] && break
    sleep 0.2
done
[[ $state == running ]] || { echo "FAIL: $id is $state"; exit 1; }
echo "ok: $id running"
count=$(aws ec2 describe-instances --filters Name=instance-state-name,Values=running Name=key-name,Values=deploy --query 'length(Reservations[].Instances[])')
[[ $count -ge 1 ]] || { echo "FAIL: filter found $count"; exit 1; }
echo "ok: describe-instances --filters finds $count"
aws ec2 create-tags --resources "$id" --tags Key=Name,Value=cli >/dev/null
[[ $(aws ec2 describe-tags --filters Name=resource-id,Values="$id" --query 'Tags[0].Value' --output text) == cli ]] && echo "ok: create-tags/describe-tags"
if out=$(aws ec2 describe-instances --instance-ids i-00000000 2>&1); then echo "FAIL: unknown id accepted"; exit 1; fi
[[ $out == *InvalidInstanceID.NotFound* ]] || { echo "FAIL: $out"; exit 1; }
echo "ok: unknown id → InvalidInstanceID.NotFound"
aws ec2 terminate-instances --instance-ids "$id" --query 'TerminatingInstances[0].CurrentState.Name' --output text | grep -q shutting-down
echo "ok: terminate-instances"
