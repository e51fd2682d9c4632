"""Create every resource of ``template.yaml`` on an AWS API (moto, in process or as a server).

Functions are not created in the emulator (it cannot run them without Docker): they get
names and ARNs so references resolve, and the local stack runs their handlers in process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from printflow_tools.localstack.template import (
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    REPO_ROOT,
    FunctionSpec,
    Resolver,
    function_specs,
    load_template,
    resources_of_type,
)

PREFIX = "printflow-local"


@dataclass
class LocalResources:
    """Physical names of the created resources, and the functions to run in process."""

    resolver: Resolver
    functions: dict[str, FunctionSpec]
    tables: dict[str, str] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue URL
    state_machines: dict[str, str] = field(default_factory=dict)  # logical id -> ARN

    def table(self, logical_id: str = "OrderTable") -> str:
        return self.tables[logical_id]

    def bucket(self, logical_id: str = "ArtifactBucket") -> str:
        return self.buckets[logical_id]

    def state_machine(self, logical_id: str = "OrderFlowStateMachine") -> str:
        return self.state_machines[logical_id]


def _name_resources(template: dict[str, Any], resolver: Resolver) -> None:
    """Give every resource a local physical name and ARN before anything is resolved."""
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type", "")
        props = resource.get("Properties") or {}
        if kind == "AWS::DynamoDB::Table":
            name = str(props.get("TableName") or f"{PREFIX}-{logical_id}")
            arn = f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{name}"
        elif kind == "AWS::S3::Bucket":
            name = f"{PREFIX}-{logical_id}".lower()
            arn = f"arn:aws:s3:::{name}"
        elif kind == "AWS::SQS::Queue":
            name = f"{PREFIX}-{logical_id}"
            arn = f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{name}"
            resolver.attributes[(logical_id, "QueueName")] = name
        elif kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            sm_name = f"{PREFIX}-{logical_id}"
            name = arn = f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{sm_name}"
            resolver.attributes[(logical_id, "Name")] = sm_name
        elif kind == "AWS::Serverless::Function":
            name = logical_id
            arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{name}"
        elif kind == "AWS::Logs::LogGroup":
            name = f"/{PREFIX}/{logical_id}"
            arn = f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:log-group:{name}"
        elif kind == "AWS::Events::EventBus":
            name = f"{PREFIX}-{logical_id}"
            arn = f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:event-bus/{name}"
        else:
            name = f"{PREFIX}-{logical_id}"
            arn = f"arn:aws:local:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{name}"
        resolver.physical[logical_id] = name
        resolver.arns[logical_id] = arn


def create_resources(
    session: boto3.Session | None = None,
    *,
    parameters: dict[str, str] | None = None,
    endpoint_url: str | None = None,
) -> LocalResources:
    """Create the template's tables, buckets, queues and state machines; return their names."""
    session = session or boto3.Session(region_name=LOCAL_REGION)

    def client(service: str) -> Any:
        return session.client(service, region_name=LOCAL_REGION, endpoint_url=endpoint_url)  # type: ignore[call-overload]

    template = load_template()
    resolver = Resolver(template, parameters)
    _name_resources(template, resolver)
    created = LocalResources(resolver=resolver, functions=function_specs(template, resolver))

    dynamodb = client("dynamodb")
    for logical_id, resource in resources_of_type(template, "AWS::DynamoDB::Table").items():
        created.tables[logical_id] = _create_table(dynamodb, resolver, logical_id, resource)

    s3 = client("s3")
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    for logical_id, resource in buckets.items():
        created.buckets[logical_id] = _create_bucket(s3, resolver, logical_id, resource)
    # Then policies, then logging: S3 (and moto) refuse logging into a bucket whose policy
    # does not yet let the logging service write, as CloudFormation's DependsOn orders it.
    for resource in resources_of_type(template, "AWS::S3::BucketPolicy").values():
        props = resolver.resolve(resource.get("Properties") or {})
        s3.put_bucket_policy(Bucket=props["Bucket"], Policy=_local_policy(props["PolicyDocument"]))
    for logical_id, resource in buckets.items():
        logging = resolver.resolve(resource.get("Properties") or {}).get("LoggingConfiguration")
        if logging:
            s3.put_bucket_logging(
                Bucket=created.buckets[logical_id],
                BucketLoggingStatus={
                    "LoggingEnabled": {
                        "TargetBucket": logging["DestinationBucketName"],
                        "TargetPrefix": logging.get("LogFilePrefix", ""),
                    }
                },
            )

    sqs = client("sqs")
    queues = resources_of_type(template, "AWS::SQS::Queue")
    for logical_id in queues:  # every queue first: redrive policies refer to other queues
        url = sqs.create_queue(QueueName=resolver.physical[logical_id])["QueueUrl"]
        created.queues[logical_id] = url
        resolver.physical[logical_id] = url  # Ref of a queue is its URL
    for logical_id, resource in queues.items():
        attributes = _queue_attributes(resolver, resource.get("Properties") or {})
        if attributes:
            sqs.set_queue_attributes(QueueUrl=created.queues[logical_id], Attributes=attributes)

    sfn = client("stepfunctions")
    for logical_id, resource in resources_of_type(
        template, "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"
    ).items():
        created.state_machines[logical_id] = _create_state_machine(
            sfn, resolver, logical_id, resource
        )
    return created


def create_table_from_template(client: Any, table_name: str, logical_id: str = "OrderTable") -> str:
    """Only one table of the template (keys, indexes, TTL), under ``table_name``: for tests and
    benchmarks that need the table and nothing else."""
    template = load_template()
    resolver = Resolver(template)
    _name_resources(template, resolver)
    resolver.physical[logical_id] = table_name
    resource = resources_of_type(template, "AWS::DynamoDB::Table")[logical_id]
    return _create_table(client, resolver, logical_id, resource)


def _create_table(
    client: Any, resolver: Resolver, logical_id: str, resource: dict[str, Any]
) -> str:
    props = resolver.resolve(resource.get("Properties") or {})
    name = resolver.physical[logical_id]
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    client.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    return name


def _create_bucket(
    client: Any, resolver: Resolver, logical_id: str, resource: dict[str, Any]
) -> str:
    props = resolver.resolve(resource.get("Properties") or {})
    name = resolver.physical[logical_id]
    client.create_bucket(Bucket=name)
    if props.get("PublicAccessBlockConfiguration"):
        client.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if props.get("BucketEncryption"):
        client.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                    for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
                ]
            },
        )
    if props.get("VersioningConfiguration"):
        client.put_bucket_versioning(
            Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
        )
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules")
    if rules:
        client.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
        )
    return name


def _local_policy(document: dict[str, Any]) -> str:
    """The bucket policy as the local stack can apply it.

    moto evaluates bucket policies, and every local request is plain HTTP on loopback: the
    template's deny of insecure transport would refuse them all. On AWS every client uses
    TLS, so that statement is left out here, and only here.
    """
    statements = [
        statement
        for statement in document.get("Statement", [])
        if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
    ]
    return json.dumps({**document, "Statement": statements})


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's."""
    out: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule["Status"], "Filter": {}}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(abort["DaysAfterInitiation"])
        }
    if rule.get("ExpirationInDays") is not None:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    return out


def _queue_attributes(resolver: Resolver, props: dict[str, Any]) -> dict[str, str]:
    resolved = resolver.resolve(props)
    attributes: dict[str, str] = {}
    for name in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "DelaySeconds",
        "MaximumMessageSize",
    ):
        if name in resolved:
            attributes[name] = str(resolved[name])
    if "RedrivePolicy" in resolved:
        attributes["RedrivePolicy"] = json.dumps(resolved["RedrivePolicy"])
    return attributes


def _create_state_machine(
    client: Any, resolver: Resolver, logical_id: str, resource: dict[str, Any]
) -> str:
    props = resource.get("Properties") or {}
    if "DefinitionUri" in props:
        definition = (REPO_ROOT / str(props["DefinitionUri"])).read_text()
    else:
        definition = json.dumps(props["Definition"])
    substitutions = resolver.resolve(props.get("DefinitionSubstitutions") or {})
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    response = client.create_state_machine(
        name=resolver.attributes[(logical_id, "Name")],
        definition=definition,
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{PREFIX}-{logical_id}",
        type=str(props.get("Type", "STANDARD")),
    )
    return str(response["stateMachineArn"])
