"""A generic API-key rotation function, written as an AWS Lambda rotation function is.

It runs unchanged on Lambda and under Tumbler (python handler runner or a command). The secret value
is JSON {"api_key": "..."}; each rotation makes a new random key.

Test hooks, off unless the environment sets them: PROBE_DIR (write what the function saw and could do
there), OTHER_SECRET_ID (a secret the function's credential must not be able to read).
"""
import json
import logging
import os

import boto3
import botocore.exceptions

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]

    # Debian's boto3 ignores AWS_ENDPOINT_URL: take the endpoint as the AWS templates do.
    service_client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])

    metadata = service_client.describe_secret(SecretId=arn)
    if not metadata["RotationEnabled"]:
        raise ValueError("Secret %s is not enabled for rotation" % arn)
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("Secret version %s has no stage for rotation of secret %s." % (token, arn))
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s." % (token, arn))
        return
    elif "AWSPENDING" not in versions[token]:
        raise ValueError("Secret version %s not set as AWSPENDING for rotation of secret %s." % (token, arn))

    probe(step, arn, service_client)

    if step == "createSecret":
        create_secret(service_client, arn, token)
    elif step == "setSecret":
        set_secret(service_client, arn, token)
    elif step == "testSecret":
        test_secret(service_client, arn, token)
    elif step == "finishSecret":
        finish_secret(service_client, arn, token)
    else:
        raise ValueError("Invalid step parameter")


def create_secret(service_client, arn, token):
    service_client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
    try:
        service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        logger.info("createSecret: Successfully retrieved secret for %s." % arn)
    except service_client.exceptions.ResourceNotFoundException:
        passwd = service_client.get_random_password(PasswordLength=32, ExcludePunctuation=True)
        service_client.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                        SecretString=json.dumps({"api_key": passwd["RandomPassword"]}),
                                        VersionStages=["AWSPENDING"])
        logger.info("createSecret: Successfully put secret for ARN %s and version %s." % (arn, token))


def set_secret(service_client, arn, token):
    # A real function would register the pending key with the third-party service here.
    pending = json.loads(service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
    if not pending.get("api_key"):
        raise ValueError("setSecret: the pending version has no api_key")


def test_secret(service_client, arn, token):
    pending = json.loads(service_client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
    if len(pending["api_key"]) != 32:
        raise ValueError("testSecret: the pending api_key has the wrong length")


def finish_secret(service_client, arn, token):
    metadata = service_client.describe_secret(SecretId=arn)
    current_version = None
    for version in metadata["VersionIdsToStages"]:
        if "AWSCURRENT" in metadata["VersionIdsToStages"][version]:
            if version == token:
                logger.info("finishSecret: Version %s already marked as AWSCURRENT for %s" % (version, arn))
                return
            current_version = version
            break
    service_client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                               RemoveFromVersionId=current_version)
    logger.info("finishSecret: Successfully set AWSCURRENT stage to version %s for secret %s." % (token, arn))


def probe(step, arn, service_client):
    """Test hook: records the step, the credential it ran with, and what that credential may do."""
    probe_dir = os.environ.get("PROBE_DIR")
    if not probe_dir:
        return
    with open(os.path.join(probe_dir, "steps.log"), "a") as steps:
        steps.write(step + "\n")
    if step != "testSecret":
        return
    found = {"credentials": {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")},
             "region": os.environ.get("AWS_REGION")}
    other = os.environ.get("OTHER_SECRET_ID")
    if other:
        try:
            service_client.get_secret_value(SecretId=other)
            found["other_secret"] = "read"
        except botocore.exceptions.ClientError as e:
            found["other_secret"] = e.response["Error"]["Code"]
    forged = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"],
                          aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                          aws_session_token="not-the-token")
    try:
        forged.describe_secret(SecretId=arn)
        found["wrong_token"] = "accepted"
    except botocore.exceptions.ClientError as e:
        found["wrong_token"] = e.response["Error"]["Code"]
    with open(os.path.join(probe_dir, "probe.json"), "w") as out:
        json.dump(found, out)
