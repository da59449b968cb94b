#!/usr/bin/python3
"""boto3 scenarios against a running Tumbler server, driven by Boto3Tests.cs.

Usage: /usr/bin/python3 boto3_scenarios.py SCENARIO ENDPOINT_URL

Credentials and region come from the usual AWS_* environment variables. The endpoint is passed to
boto3 explicitly (Debian's boto3 predates the AWS_ENDPOINT_URL variables). Each scenario prints one
JSON document with what the client saw; the C# side asserts on it. Anything unexpected raises, so the
process exits non-zero with a traceback.
"""

import datetime
import json
import os
import sys
import uuid

import boto3
from botocore.exceptions import ClientError


def make_client(endpoint):
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def dt(value):
    """What the C# side needs to know about a datetime boto3 returned."""
    if not isinstance(value, datetime.datetime):
        return {"type": type(value).__name__, "repr": repr(value)}
    return {
        "type": "datetime",
        "iso": value.isoformat(),
        "tzaware": value.tzinfo is not None and value.utcoffset() is not None,
        "epoch": value.timestamp(),
    }


def walk_datetimes(obj, found):
    if isinstance(obj, datetime.datetime):
        found.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k != "ResponseMetadata":
                walk_datetimes(v, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            walk_datetimes(v, found)
    return found


def error_info(e, caught_by_class):
    return {
        "raised": True,
        "caught_by_class": caught_by_class,
        "class": type(e).__name__,
        "code": e.response.get("Error", {}).get("Code"),
        "message": e.response.get("Error", {}).get("Message"),
        "status": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
    }


def expect(exc_class, fn):
    """Calls fn and reports the error; exc_class is the class a user's except clause would name."""
    try:
        result = fn()
    except exc_class as e:  # the point: caught by the modeled class
        return error_info(e, True)
    except ClientError as e:
        return error_info(e, False)
    result = dict(result or {})
    result.pop("ResponseMetadata", None)
    return {"raised": False, "result": json.loads(json.dumps(result, default=str))}


def strip(resp):
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    return resp


# ---------------------------------------------------------------------------------------------------


def scenario_lifecycle(c):
    out = {}
    seen = []
    name = uniq("boto/lifecycle")
    r = c.create_secret(Name=name, SecretString="first-value", Description="lifecycle secret",
                        Tags=[{"Key": "team", "Value": "core"}])
    walk_datetimes(r, seen)
    arn = r["ARN"]
    out["create"] = {"ARN": arn, "Name": r["Name"], "VersionId": r.get("VersionId")}

    g = c.get_secret_value(SecretId=name)
    walk_datetimes(g, seen)
    out["get_string"] = {
        "SecretString": g.get("SecretString"),
        "has_binary": "SecretBinary" in g,
        "VersionId": g["VersionId"],
        "VersionStages": g["VersionStages"],
        "ARN": g["ARN"],
        "CreatedDate": dt(g["CreatedDate"]),
    }

    blob = b"\x00\xff\x10\x80\x7f\x0a\x0d\x00" + bytes(range(256)) + b"\xfe\x00"
    p = c.put_secret_value(SecretId=arn, SecretBinary=blob)
    walk_datetimes(p, seen)
    g2 = c.get_secret_value(SecretId=arn)
    walk_datetimes(g2, seen)
    out["put_binary"] = {"VersionId": p["VersionId"], "VersionStages": p["VersionStages"]}
    out["get_binary"] = {
        "python_type": type(g2.get("SecretBinary")).__name__,
        "equal": g2.get("SecretBinary") == blob,
        "hex": g2["SecretBinary"].hex() if isinstance(g2.get("SecretBinary"), bytes) else None,
        "expected_hex": blob.hex(),
        "has_string": "SecretString" in g2,
        "VersionId": g2["VersionId"],
    }
    prev = c.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    out["get_previous"] = {"SecretString": prev.get("SecretString"), "VersionId": prev["VersionId"]}

    u = c.update_secret(SecretId=name, Description="changed description")
    out["update_description_keys"] = sorted(strip(u).keys())

    c.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "prod"}])
    c.untag_resource(SecretId=name, TagKeys=["team"])
    d = c.describe_secret(SecretId=name)
    walk_datetimes(d, seen)
    out["describe"] = {
        "Description": d.get("Description"),
        "Tags": d.get("Tags"),
        "VersionIdsToStages": d.get("VersionIdsToStages"),
        "CreatedDate": dt(d["CreatedDate"]),
        "LastChangedDate": dt(d["LastChangedDate"]),
        "LastAccessedDate": dt(d["LastAccessedDate"]) if "LastAccessedDate" in d else None,
        "has_DeletedDate": "DeletedDate" in d,
    }

    listed = [e for e in c.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]]
    walk_datetimes(listed, seen)
    out["list_names"] = [e["Name"] for e in listed]

    dl = c.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    walk_datetimes(dl, seen)
    out["delete"] = {"ARN": dl["ARN"], "Name": dl["Name"], "DeletionDate": dt(dl["DeletionDate"])}
    out["get_while_scheduled"] = expect(c.exceptions.InvalidRequestException,
                                        lambda: c.get_secret_value(SecretId=name))
    ds = c.describe_secret(SecretId=name)
    walk_datetimes(ds, seen)
    out["describe_scheduled_has_DeletedDate"] = "DeletedDate" in ds

    rs = c.restore_secret(SecretId=name)
    out["restore"] = strip(rs)
    g3 = c.get_secret_value(SecretId=name)
    out["get_after_restore_equal"] = g3.get("SecretBinary") == blob

    fd = c.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    walk_datetimes(fd, seen)
    out["force_delete"] = {"ARN": fd["ARN"], "Name": fd["Name"], "DeletionDate": dt(fd["DeletionDate"])}
    out["get_after_force_delete"] = expect(c.exceptions.ResourceNotFoundException,
                                           lambda: c.get_secret_value(SecretId=name))

    out["datetimes_seen"] = len(seen)
    out["naive_datetimes"] = [d.isoformat() for d in seen if d.tzinfo is None or d.utcoffset() is None]
    return out


def scenario_paginate(c):
    prefix = uniq("boto/page")
    names = ["%s/%02d" % (prefix, i) for i in range(25)]
    for n in names:
        c.create_secret(Name=n, SecretString="v-" + n)

    pag = c.get_paginator("list_secrets")
    name_filter = [{"Key": "name", "Values": [prefix + "/"]}]
    pages = [[e["Name"] for e in page["SecretList"]]
             for page in pag.paginate(Filters=name_filter, PaginationConfig={"PageSize": 10})]

    first = c.list_secrets(MaxResults=10, Filters=name_filter)
    all_names = []
    unfiltered_pages = 0
    for page in pag.paginate(PaginationConfig={"PageSize": 10}):
        unfiltered_pages += 1
        all_names.extend(e["Name"] for e in page["SecretList"])

    bad_token = expect(c.exceptions.InvalidNextTokenException,
                       lambda: c.list_secrets(NextToken="this-is-not-a-token-the-server-issued"))
    return {
        "created": names,
        "pages": pages,
        "first_page_len": len(first["SecretList"]),
        "first_page_has_next_token": bool(first.get("NextToken")),
        "unfiltered_pages": unfiltered_pages,
        "unfiltered_names": all_names,
        "bad_next_token": bad_token,
    }


def scenario_exceptions(c):
    out = {}
    ex = c.exceptions
    out["not_found"] = expect(ex.ResourceNotFoundException,
                              lambda: c.get_secret_value(SecretId=uniq("boto/missing")))

    name = uniq("boto/exc")
    created = c.create_secret(Name=name, SecretString="one")
    out["exists_name"] = name
    out["exists"] = expect(ex.ResourceExistsException,
                           lambda: c.create_secret(Name=name, SecretString="two"))
    v2 = c.put_secret_value(SecretId=name, SecretString="two", VersionStages=["AWSPENDING"])["VersionId"]
    out["current_version"] = created["VersionId"]
    out["remove_from_missing"] = expect(
        ex.InvalidParameterException,
        lambda: c.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v2))
    missing_version = str(uuid.uuid4())
    out["missing_version_id"] = missing_version
    out["version_not_found"] = expect(ex.ResourceNotFoundException,
                                      lambda: c.get_secret_value(SecretId=name, VersionId=missing_version))
    out["stage_not_found"] = expect(ex.ResourceNotFoundException,
                                    lambda: c.get_secret_value(SecretId=name, VersionStage="NOSUCHLABEL"))
    out["stage_version_mismatch"] = expect(
        ex.InvalidRequestException,
        lambda: c.get_secret_value(SecretId=name, VersionId=created["VersionId"], VersionStage="AWSPENDING"))

    token = str(uuid.uuid4())
    c.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="three")
    out["token_reuse_token"] = token
    out["token_reuse_arn"] = created["ARN"]
    out["token_reuse"] = expect(
        ex.ResourceExistsException,
        lambda: c.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="different"))

    out["both_values"] = expect(
        ex.InvalidParameterException,
        lambda: c.create_secret(Name=uniq("boto/both"), SecretString="s", SecretBinary=b"b"))
    # ValidationException is not a modeled exception: users catch ClientError and look at the code.
    out["invalid_name"] = expect(ClientError, lambda: c.create_secret(Name="Inv Name", SecretString="x"))

    big = uniq("boto/big")
    out["max_size_ok"] = expect(ClientError, lambda: c.create_secret(Name=big, SecretBinary=b"\x01" * 65536))
    if not out["max_size_ok"]["raised"]:
        out["max_size_roundtrip"] = c.get_secret_value(SecretId=big)["SecretBinary"] == b"\x01" * 65536
    out["too_big_binary"] = expect(ClientError, lambda: c.put_secret_value(SecretId=name, SecretBinary=b"\x02" * 65537))
    out["too_big_string"] = expect(ClientError, lambda: c.put_secret_value(SecretId=name, SecretString="x" * 65537))

    out["bad_window"] = expect(ex.InvalidParameterException,
                               lambda: c.delete_secret(SecretId=name, RecoveryWindowInDays=3))
    out["force_and_window"] = expect(
        ex.InvalidParameterException,
        lambda: c.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True))

    c.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    out["scheduled_get"] = expect(ex.InvalidRequestException, lambda: c.get_secret_value(SecretId=name))
    out["scheduled_put"] = expect(ex.InvalidRequestException,
                                  lambda: c.put_secret_value(SecretId=name, SecretString="four"))
    out["scheduled_tag"] = expect(ex.InvalidRequestException,
                                  lambda: c.tag_resource(SecretId=name, Tags=[{"Key": "a", "Value": "b"}]))
    out["scheduled_create"] = expect(ex.InvalidRequestException,
                                     lambda: c.create_secret(Name=name, SecretString="again"))
    return out


def scenario_rotation_pending(c):
    """The steps an AWS rotation template performs, against Tumbler."""
    out = {}
    name = uniq("boto/rotate")
    arn = c.create_secret(Name=name, SecretString=json.dumps({"username": "app", "password": "old"}))["ARN"]
    token = str(uuid.uuid4())
    out["token"] = token

    # createSecret: the current value must exist; the pending one must not (yet).
    c.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
    out["pending_before_put"] = expect(
        c.exceptions.ResourceNotFoundException,
        lambda: c.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING"))
    exclude = "/@\"'\\"
    password = c.get_random_password(ExcludeCharacters=exclude)["RandomPassword"]
    out["password_len"] = len(password)
    out["password_has_excluded"] = any(ch in exclude for ch in password)
    put = c.put_secret_value(SecretId=arn, ClientRequestToken=token,
                             SecretString=json.dumps({"username": "app", "password": password}),
                             VersionStages=["AWSPENDING"])
    out["put"] = {"VersionId": put["VersionId"], "VersionStages": put["VersionStages"]}
    # a retried createSecret step finds the value and does nothing
    pending = c.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    out["pending_after_put"] = {
        "VersionId": pending["VersionId"],
        "password_matches": json.loads(pending["SecretString"])["password"] == password,
        "VersionStages": pending["VersionStages"],
    }
    replay = c.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                SecretString=json.dumps({"username": "app", "password": password}),
                                VersionStages=["AWSPENDING"])
    out["put_replay"] = {"VersionId": replay["VersionId"], "VersionStages": sorted(replay["VersionStages"])}

    # finishSecret: find the current version in DescribeSecret and move AWSCURRENT onto the token.
    meta = c.describe_secret(SecretId=arn)
    out["token_in_describe"] = meta["VersionIdsToStages"].get(token)
    current = [v for v, stages in meta["VersionIdsToStages"].items() if "AWSCURRENT" in stages]
    out["current_candidates"] = current
    c.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                  RemoveFromVersionId=current[0])
    after = c.describe_secret(SecretId=arn)["VersionIdsToStages"]
    out["stages_after_finish"] = {("new" if k == token else "old"): sorted(v) for k, v in after.items()}
    now = c.get_secret_value(SecretId=arn)
    out["current_is_new"] = json.loads(now["SecretString"])["password"] == password
    out["versions_listed"] = len(c.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"])
    return out


class LabelTracker:
    """Names versions v1, v2, ... in creation order and renders the label state canonically."""

    def __init__(self, c, name):
        self.c = c
        self.name = name
        self.ids = {}

    def created(self, version_id):
        self.ids[version_id] = "v%d" % (len(self.ids) + 1)
        return version_id

    def vid(self, label):
        return [k for k, v in self.ids.items() if v == label][0]

    def create(self, value="v1"):
        return self.created(self.c.create_secret(Name=self.name, SecretString=value)["VersionId"])

    def put(self, value, stages=None):
        kwargs = {"SecretId": self.name, "SecretString": value}
        if stages is not None:
            kwargs["VersionStages"] = stages
        return self.created(self.c.put_secret_value(**kwargs)["VersionId"])

    def move(self, stage, to=None, frm=None):
        kwargs = {"SecretId": self.name, "VersionStage": stage}
        if to:
            kwargs["MoveToVersionId"] = self.vid(to)
        if frm:
            kwargs["RemoveFromVersionId"] = self.vid(frm)
        self.c.update_secret_version_stage(**kwargs)

    def state(self):
        stages = self.c.describe_secret(SecretId=self.name).get("VersionIdsToStages", {})
        versions = self.c.list_secret_version_ids(SecretId=self.name, IncludeDeprecated=True)["Versions"]
        labelled = " ".join(
            "%s=[%s]" % (self.ids.get(k, k), ",".join(sorted(v)))
            for k, v in sorted(stages.items(), key=lambda kv: self.ids.get(kv[0], kv[0])))
        deprecated = ",".join(sorted(self.ids.get(v["VersionId"], v["VersionId"])
                                     for v in versions if not v.get("VersionStages")))
        return "%s | deprecated=%s" % (labelled, deprecated)

    def current_value(self):
        return self.c.get_secret_value(SecretId=self.name)["SecretString"]


def scenario_labels(c):
    """Rows of the recorded label sequences (spec §3.3), rendered as 'v1=[..] v2=[..] | deprecated=..'."""
    out = {}

    t = LabelTracker(c, uniq("boto/labels-sample"))
    t.create("value1")
    rows = [t.state()]
    t.put("value2", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    rows.append(t.state())
    t.put("value3", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    rows.append(t.state())
    t.put("value4", ["AWSPENDING"])
    rows.append(t.state())
    rows.append("current=" + t.current_value())
    t.put("value5")
    rows.append(t.state())
    rows.append("current=" + t.current_value())
    out["sample_stages"] = rows

    t = LabelTracker(c, uniq("boto/labels-partial"))
    t.create()
    t.put("a", ["one", "two", "three"])
    t.put("b", ["one", "two", "four"])
    out["partial_overlap"] = [t.state()]

    t = LabelTracker(c, uniq("boto/labels-superset"))
    t.create()
    t.put("a", ["one", "two", "three"])
    t.put("b", ["one", "two", "three", "four"])
    out["superset"] = [t.state()]

    t = LabelTracker(c, uniq("boto/labels-manual-rotation"))
    t.create()
    t.put("pending", ["AWSPENDING"])
    t.move("AWSCURRENT", to="v2", frm="v1")
    rows = [t.state()]
    t.put("plain")
    rows.append(t.state())
    out["manual_rotation_then_put"] = rows

    t = LabelTracker(c, uniq("boto/labels-two-rotations"))
    t.create()
    t.put("p1", ["AWSPENDING"])
    t.move("AWSCURRENT", to="v2", frm="v1")
    t.put("p2", ["AWSPENDING"])
    t.move("AWSCURRENT", to="v3", frm="v2")
    out["two_rotations"] = [t.state()]

    t = LabelTracker(c, uniq("boto/labels-custom"))
    t.create()
    t.put("p1", ["AWSPENDING", "AWSSOMETHING", "PUT1"])
    t.move("AWSCURRENT", to="v2", frm="v1")
    rows = [t.state()]
    t.put("p2", ["AWSPENDING", "PUT2"])
    rows.append(t.state())
    t.move("AWSCURRENT", to="v3", frm="v2")
    rows.append(t.state())
    out["custom"] = rows

    t = LabelTracker(c, uniq("boto/labels-remove-custom"))
    t.create()
    t.put("p", ["PENDING"])
    t.move("AWSCURRENT", to="v2", frm="v1")
    t.move("PENDING", frm="v2")
    out["remove_custom"] = [t.state()]
    return out


def midnight_utc(moment):
    return datetime.datetime(moment.year, moment.month, moment.day, tzinfo=datetime.timezone.utc).timestamp()


def scenario_last_accessed(c):
    out = {}
    name = uniq("boto/accessed")
    c.create_secret(Name=name, SecretString="x")
    out["present_before_read"] = "LastAccessedDate" in c.describe_secret(SecretId=name)
    before = datetime.datetime.now(datetime.timezone.utc)
    c.get_secret_value(SecretId=name)
    after = datetime.datetime.now(datetime.timezone.utc)
    out["allowed_epochs"] = sorted({midnight_utc(before), midnight_utc(after)})
    d1 = c.describe_secret(SecretId=name)
    out["first"] = dt(d1.get("LastAccessedDate"))
    c.get_secret_value(SecretId=name)
    out["second"] = dt(c.describe_secret(SecretId=name).get("LastAccessedDate"))
    versions = c.list_secret_version_ids(SecretId=name)["Versions"]
    out["version"] = dt(versions[0].get("LastAccessedDate")) if versions else None
    listed = c.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    out["list"] = dt(listed[0].get("LastAccessedDate")) if listed else None
    return out


def scenario_idempotency(c):
    out = {}
    name = uniq("boto/idem")
    token = str(uuid.uuid4())
    out["token"] = token
    r1 = strip(c.create_secret(Name=name, ClientRequestToken=token, SecretString="same"))
    r2 = strip(c.create_secret(Name=name, ClientRequestToken=token, SecretString="same"))
    out["create_first"] = r1
    out["create_replay"] = r2
    u = strip(c.update_secret(SecretId=name, ClientRequestToken=token, SecretString="same"))
    out["update_same_token"] = u
    p = strip(c.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString="same"))
    out["put_same_token"] = {"VersionId": p["VersionId"], "VersionStages": p["VersionStages"]}
    # boto3 fills ClientRequestToken by itself; a description-only update must not create a version.
    out["update_description_only"] = strip(c.update_secret(SecretId=name, Description="just metadata"))
    out["versions"] = len(c.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"])
    out["create_other_value"] = expect(
        c.exceptions.ResourceExistsException,
        lambda: c.create_secret(Name=name, ClientRequestToken=token, SecretString="other"))
    return out


SCENARIOS = {
    "lifecycle": scenario_lifecycle,
    "paginate": scenario_paginate,
    "exceptions": scenario_exceptions,
    "rotation_pending": scenario_rotation_pending,
    "labels": scenario_labels,
    "last_accessed": scenario_last_accessed,
    "idempotency": scenario_idempotency,
}


def main(argv):
    if len(argv) != 3 or argv[1] not in SCENARIOS:
        sys.stderr.write("usage: boto3_scenarios.py {%s} ENDPOINT_URL\n" % "|".join(sorted(SCENARIOS)))
        return 2
    result = SCENARIOS[argv[1]](make_client(argv[2]))
    sys.stdout.write(json.dumps(result, default=str, sort_keys=True, indent=1))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
