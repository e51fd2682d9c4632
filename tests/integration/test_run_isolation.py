"""A test, a local stack or a fault run never sees what an earlier one left running.

moto's backends are globals of the process and its executions are daemon threads: without
these endings, an execution of one test went on into the next (its steps dispatched to the
next test's handlers, its emails counted by the next fault run as sent twice).
"""

from __future__ import annotations

import io
import json
import socket
import time

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import Message, ses_backends

from printflow_tools.localstack.executions import end_every_execution
from printflow_tools.localstack.stack import LocalStack, StackOptions

WAITING_MACHINE = {
    "StartAt": "wait",
    "States": {"wait": {"Type": "Wait", "Seconds": 120, "End": True}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_running_execution_is_stopped_and_its_thread_ended() -> None:
    from moto.stepfunctions.parser.utils import TMP_THREADS

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name="waits",
            definition=json.dumps(WAITING_MACHINE),
            roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/x",
        )["stateMachineArn"]
        earlier = set(TMP_THREADS)  # a full run may hold other tests' threads
        arn = sfn.start_execution(stateMachineArn=machine, name="left-running")["executionArn"]
        time.sleep(0.2)
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        threads = [t for t in TMP_THREADS if t.is_alive() and t not in earlier]
        assert threads  # the execution runs in threads of this process

        assert end_every_execution(sfn, limit_s=10.0) == 1

        assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
        assert not any(t.is_alive() for t in threads)
        assert end_every_execution(sfn) == 0  # nothing left to stop


def test_a_local_stack_starts_as_an_empty_account() -> None:
    # Given an email an earlier run left in moto's process-wide SES backend (as a thread of
    # an execution that outlived its test sends it)
    left = Message("left-1", "left@example.com", "left behind", "x", {"ToAddresses": ["c@x.io"]})
    ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages.append(left)

    # When a local stack starts, Then it holds none of it
    options = StackOptions(
        api_port=free_port(), aws_port=free_port(), log_stream=io.StringIO(), quiet_functions=True
    )
    with LocalStack(options):
        assert ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages == []


TOKEN_MACHINE = {
    "StartAt": "render",
    "States": {
        "render": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": "QUEUE", "MessageBody": {"token.$": "$$.Task.Token"}},
            "TimeoutSeconds": 600,
            "End": True,
        }
    },
}


def test_a_stopped_execution_waiting_for_a_task_token_ends_at_once() -> None:
    """fidelity.py: moto's stop left the token wait (and the execution's threads) running until
    the task's timeout; on AWS the wait ends with the execution."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    from printflow_tools.localstack.fidelity import make_moto_behave_like_aws

    make_moto_behave_like_aws()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="tokens")["QueueUrl"]
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        definition = json.dumps(TOKEN_MACHINE).replace("QUEUE", queue)
        machine = sfn.create_state_machine(
            name="waits-for-a-token",
            definition=definition,
            roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/x",
        )["stateMachineArn"]
        earlier = set(TMP_THREADS)
        arn = sfn.start_execution(stateMachineArn=machine, name="token")["executionArn"]
        deadline = time.monotonic() + 10
        while "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1):
            assert time.monotonic() < deadline, "the task never sent its token"
        threads = [t for t in TMP_THREADS if t.is_alive() and t not in earlier]
        assert threads  # the execution waits for its token in threads of this process

        sfn.stop_execution(executionArn=arn)
        for thread in threads:
            thread.join(timeout=5.0)

        assert not [t.name for t in threads if t.is_alive()]
        assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
