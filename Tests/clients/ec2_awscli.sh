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
