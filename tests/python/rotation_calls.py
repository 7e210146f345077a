"""The Secrets Manager calls a rotation function makes, through boto3, against rotcheck's
emulator. Run by tests/boto3_calls.rs with the secret's ARN and the rotation token; every
check raises on failure, and the last line printed is "ok".

Client A gets its endpoint from SECRETS_MANAGER_ENDPOINT (as the AWS sample functions do),
client B from AWS_ENDPOINT_URL_SECRETS_MANAGER alone (botocore's own resolution).
"""
import json
import os
import sys

import boto3
from botocore.exceptions import ClientError

arn, token = sys.argv[1], sys.argv[2]
a = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
b = boto3.client("secretsmanager")


def expect_error(code, fn, **kwargs):
    try:
        fn(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == (500 if code == "InternalServiceError" else 400)
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"expected {code}, the call succeeded")


# The handler's checks.
meta = a.describe_secret(SecretId=arn)
assert meta["RotationEnabled"] is True, meta
versions = meta["VersionIdsToStages"]
assert versions[token] == ["AWSPENDING"], versions
old = next(v for v, st in versions.items() if "AWSCURRENT" in st)

# createSecret: read current, find no pending value, generate, store under the token.
current = json.loads(a.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
msg = expect_error("ResourceNotFoundException", a.get_secret_value, SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
assert "AWSPENDING" in msg, msg
pw = a.get_random_password(
    ExcludeCharacters=":/@\"'\\",
    PasswordLength=32,
    ExcludeNumbers=False,
    ExcludePunctuation=False,
    ExcludeUppercase=False,
    ExcludeLowercase=False,
    RequireEachIncludedType=True,
)["RandomPassword"]
assert len(pw) == 32 and not any(c in pw for c in ":/@\"'\\"), "excluded characters"
current["password"] = pw
put = a.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(current), VersionStages=["AWSPENDING"])
assert put["VersionId"] == token and put["VersionStages"] == ["AWSPENDING"], put

# createSecret retried: the value is found under the token; a duplicate with another password loses.
pending = json.loads(b.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
assert pending["password"] == pw
other = dict(current, password=pw + "x")
expect_error("ResourceExistsException", b.put_secret_value, SecretId=arn, ClientRequestToken=token,
             SecretString=json.dumps(other), VersionStages=["AWSPENDING"])
same = b.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(current), VersionStages=["AWSPENDING"])
assert same["VersionId"] == token

# finishSecret: moving AWSCURRENT needs RemoveFromVersionId.
msg = expect_error("InvalidParameterException", a.update_secret_version_stage, SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token)
assert "RemoveFromVersionId" in msg, msg
a.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old)
stages = a.describe_secret(SecretId=arn)["VersionIdsToStages"]
assert sorted(stages[token]) == ["AWSCURRENT", "AWSPENDING"], stages
assert stages[old] == ["AWSPREVIOUS"], stages

# A retried finishSecret sees AWSCURRENT already on the token.
assert "AWSCURRENT" in b.describe_secret(SecretId=arn)["VersionIdsToStages"][token]
assert json.loads(b.get_secret_value(SecretId=arn)["SecretString"])["password"] == pw

# Binary values and version listing through boto3.
b.create_secret(Name="binary-one", SecretBinary=b"\x00\xffbytes")
assert b.get_secret_value(SecretId="binary-one")["SecretBinary"] == b"\x00\xffbytes"
ids = [v["VersionId"] for v in a.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]]
assert token in ids and old in ids, ids
expect_error("ResourceNotFoundException", a.describe_secret, SecretId="does-not-exist")
print("ok")
