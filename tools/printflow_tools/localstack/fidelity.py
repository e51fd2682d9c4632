"""Make moto behave like AWS where PrintFlow's correctness depends on it.

- moto's DynamoDB checks a ``ConditionExpression`` and then writes, without a lock: two
  threads can both pass ``attribute_not_exists(pk)``. Real DynamoDB evaluates the condition
  and the write atomically per item, and PrintFlow relies on that (duplicate webhooks, job
  leases). Serialising moto's item writes restores the real semantics.
- moto's reads iterate an item's attributes while another thread may be writing them (its
  Step Functions engine runs ``dynamodb:updateItem`` states on a thread of its own), which
  fails with "dictionary changed size during iteration". DynamoDB never returns a torn item,
  so reads take the same lock.
- moto 5.2's ``SendTaskFailure`` handler drops the ``cause`` parameter, so a flow's Catch
  sees ``Cause: null``. AWS passes it through; so does the patched handler.
- moto's SQS long poll (``WaitTimeSeconds``) looks for messages once a second: a message whose
  ``DelaySeconds`` (or visibility timeout) runs out during the wait is returned up to 1 s
  late (measured: 0.3-0.8 s late for messages due 0.2-0.7 s into the wait). SQS returns a
  long poll as soon as a message is available, and the render jobs' poll timers are delayed
  messages, so the patched wait wakes when the next waiting message becomes available.
  (moto does honour ``DelaySeconds`` in real time and refuses more than 900 s, as SQS does.)
- moto's SQS ``ReceiveMessage`` checks each message it hands out against the queue's retention
  period by building every attribute of the queue, and two of them count the queue's messages:
  a receive of 10 walked the whole queue some 20 times. The poll queue holds every in-flight
  render job's timer, so under load that was 7% of the local stack's CPU (profiled, 200-order
  fault run). SQS reads one setting; the patched check reads the queue's retention period
  directly (a cost, not a semantic, difference).
- moto's Step Functions engine builds a new boto3 client for every Lambda task it invokes (a
  client costs ~20 ms of CPU: 6% of the fault run's). Step Functions keeps its connections;
  the patched engine keeps one client per region, service, endpoint and event handlers.
- moto's S3 reads a request body through werkzeug's form parser, so a ``PUT`` sent with
  ``Content-Type: application/x-www-form-urlencoded`` (or ``multipart/form-data``) is stored
  as 0 bytes and its checksum fails on the next read. S3 stores the bytes of a PUT whatever
  its content type; the patched S3 handler reads a PUT's body raw, unparsed. (A browser
  ``POST`` upload really is a form, and is left to moto.)
- moto's server finds the service of every request under one process-wide lock, and inside
  it lists moto's package directory (``os.listdir`` plus ~150 ``isdir`` calls) to learn the
  service names: every AWS call of every function queued on that lock (profiled in the fault
  run: the largest single wait of the local stack under load). AWS has no such choke point;
  the service names never change while the process runs, so the patched lookup lists them
  once. (Speed, not semantics: the answers are the same.)
- moto answers a ``Query`` on an index (and on the table) by walking and sorting every item
  of the table, so one page costs time proportional to the table, not to the page: on
  100,000 orders, ``printflow orders list`` took 75 s for 10 pages. DynamoDB reads only the
  queried partition. The patched query keeps, per index, which items are in which partition
  (kept current on every put, update and delete, so batch and transactional writes too) and
  hands moto's own query just that partition: its sparse-index, key-condition, order,
  Limit, ExclusiveStartKey, 1 MB, filter and projection rules run unchanged.
- moto projects an item (an index's INCLUDE/KEYS_ONLY projection, a ProjectionExpression)
  by converting the whole item to plain JSON once per projected attribute: a page of 100
  orders through the StatusIndex cost ~0.5 s. The patched projection converts it once and
  picks the same attributes (a cost, not a semantic, difference).
- moto encodes every answer with a generic serializer that, for each member of each structure
  of the output shape, tries up to six alias spellings of the member's name: some forty
  Python calls per attribute of every item. Profiled, that was about half of moto's time for
  a page of 100 orders from the StatusIndex (``printflow orders list`` over 100,000 orders
  took 1.34 s, bench/orders_list.py). DynamoDB sends the page as plain JSON
  (``{"Items": [...], "Count": ...}``), and the result moto hands its serializer is already
  shaped that way. The patched ``Query`` and ``Scan`` answers are encoded by
  :mod:`.dynamodb_wire`, compiled once from the same output shape, with moto's rules (member
  order, omitted ``None`` members, base64 blobs, its ``json.dumps`` settings); a value it
  does not expect goes to moto's serializer instead. The bytes are the same, which a test
  checks page by page for many queries (a cost, not a semantic, difference). The item
  operations (``GetItem``, ``BatchGetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem``,
  ``TransactGetItems``) answer the same way: profiled in the 200-order
  fault run, moto's serializer on their answers (an order item or a render job with its
  history, returned by ``UpdateItem``'s ``ReturnValues`` and every ``GetItem``) was 21% of
  the whole process's CPU, the largest single cost of the local stack; a test compares
  their bytes too.
- For every item a ``Query`` reads, moto measures it twice (rebuilding each nested value to
  measure it), deep-copies it through ``copy.deepcopy``'s dispatch, compares keys through a
  property that tests five types before returning a string, and projects it onto an index
  by converting the whole item to plain Python and back, re-measuring the growing result at
  each attribute (quadratic): most of the rest of that listing's time. DynamoDB reads one
  index entry per item. The patched ``DynamoType.size``, ``Item.size``,
  ``DynamoType.__deepcopy__``, ``DynamoType.cast_value`` and ``SecondaryIndex.project``
  (:mod:`.dynamodb_items`) compute the same sizes, copies, comparisons and projected items
  directly; the projection falls back to moto's wherever its round trip would change a
  value (sets, binaries, numbers such as ``1e3``). With both corrections the listing took
  0.71 s, on a machine busier than for the 1.34 s (a cost, not a semantic, difference: the
  same answers, page by page, as the partition-query test checks).
- moto parses an ``UpdateExpression`` twice per ``UpdateItem`` (once to check its names, once
  to apply it) and then deep-copies the parsed tree through ``copy.deepcopy``'s generic
  dispatch before validating it: 11% of the local stack's CPU in the 200-order fault run,
  where every write of an order or a render job is an update with the same few expressions.
  DynamoDB parses an expression once per request. The patched parser keeps each expression's
  tree (a parse that fails is not kept, so its error is raised every time) and the patched
  copy rebuilds the tree node by node (other values still go through ``copy.deepcopy``); the
  validator mutates only its copy, so the kept tree never changes (a cost, not a semantic,
  difference: tests compare the updated items and the errors with moto's own).
- moto's Step Functions engine parses the state machine's definition again for every
  execution it starts, through ANTLR's Python runtime: ~60 ms of CPU for the order flow's
  9 KB definition (lexing and parsing ~87% of it, building the evaluation components the
  rest), 11.5% of the local stack's CPU in the 200-order fault run. Step Functions parses a
  definition when it is created. The patched parser keeps each definition's syntax tree (a
  definition that fails to parse is not kept, so its error is raised every time) and builds
  every execution's evaluation components afresh from it: those hold the execution's state,
  the tree does not (nothing writes to it). A cost, not a semantic, difference: a test runs
  concurrent executions both ways and compares them.
- moto's ``CompleteMultipartUpload`` with a full-object checksum (``ChecksumType:
  FULL_OBJECT``, as the download function asks for) copies the whole object twice more, into
  a second buffer and then into ``bytes``, just to compute the CRC, and the object itself into
  another buffer before ``bytes`` again: four copies of a 1 GiB file at once, seconds of
  memory traffic that grows faster than the file (measured: the completion took 11.5 of the
  download bench's 19.1 s at 1 GiB, and boto3's ``upload_fileobj``, with per-part checksums,
  did not pay it). S3 combines the parts' checksums and does not re-read the object. The
  patched completion computes the same CRC running over the parts, a MiB at a time, and does
  not copy them at all: the new object keeps the parts' own buffers and reads them in order
  (joining them once still cost 5.7 of the bench's 10.3 s at 1 GiB; now 0.35 s). The stored
  object, its ETag and its checksum are unchanged; it reads, ranges, copies and is replaced
  like any other (a test checks each).
- moto's ``StopExecution`` marks the execution stopped but leaves a state that waits for a
  task token (``.waitForTaskToken``) waiting until the task's own timeout: three threads of
  the stopped execution (its worker, the state, the token wait) live on for up to the render
  step's timeout, and an ending that waits for them (a test's teardown) waited its whole
  limit (10 s, in about a hundred tests). On AWS a stopped execution's task-token waits end at
  once (a late ``SendTaskSuccess`` gets ``TaskTimedOut``/``InvalidToken``). The patched stop
  also wakes the execution's pending callbacks, so its threads end with it. moto would then
  record the woken state's ``States.Timeout`` over the stop (its ``set_error`` and
  ``set_timed_out`` overwrite a stopped program's state, as an in-flight Lambda's error
  after a stop would too), and report the execution ``FAILED``: an execution AWS stopped
  stays ``ABORTED``, and so it does here.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import copy
import functools
import inspect
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import boto3
from botocore import handlers as botocore_handlers
from botocore.utils import merge_dicts
from moto.core.models import botocore_stubber
from moto.core.request import Request
from moto.core.responses import ActionContext
from moto.core.serialize import JSONSerializer
from moto.core.utils import unix_time, unix_time_millis
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import SecondaryIndex, Table
from moto.dynamodb.responses import DynamoResult
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart, MultipartChecksumBuilder
from moto.s3.responses import S3Response
from moto.settings import PRETTIFY_RESPONSES, S3_UPLOAD_PART_MIN_SIZE, moto_server_port
from moto.sqs.models import Queue, SQSBackend
from moto.stepfunctions.parser.asl.eval.environment import Environment as ParserEnvironment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend.execution import Execution as ParserExecution
from moto.stepfunctions.responses import StepFunctionResponse
from moto.utilities.utils import md5_hash

from printflow_tools.localstack.dynamodb_items import (
    cast_value,
    copy_value,
    item_size,
    project_on_index,
    value_size,
)
from printflow_tools.localstack.dynamodb_wire import Encoder, NotWireShaped, output_encoder

_ITEM_LOCK = threading.RLock()
_SERIALISED = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "batch_get_item",
    "query",
    "scan",
    "transact_get_items",
)
_installed = False


def make_moto_behave_like_aws() -> None:
    """Idempotent: applies the corrections above to the moto backends in this process."""
    global _installed
    if _installed:
        return
    for name in _SERIALISED:
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(
            self: DynamoDBBackend, *args: Any, __original: Any = original, **kwargs: Any
        ) -> Any:
            with _ITEM_LOCK:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    StepFunctionResponse.send_task_failure = _send_task_failure_with_cause  # type: ignore[method-assign]
    S3Response.setup_class = _s3_setup_class_keeping_put_bodies(S3Response.setup_class)  # type: ignore[method-assign]
    Queue.wait_for_messages = _wait_for_messages_until_available  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    _keep_the_engine_s_clients()
    _list_moto_services_once()
    _query_only_the_queried_partition()
    Item.project = _project_converting_once(Item.project)  # type: ignore[method-assign]
    _measure_copy_and_project_directly()
    _parse_each_update_expression_once()
    _parse_each_definition_once()
    DynamoResult.execute_result = _encode_reads_in_one_pass(DynamoResult.execute_result)  # type: ignore[method-assign]
    FakeMultipart.complete = _complete_multipart_without_joining  # type: ignore[method-assign,assignment]
    setattr(FakeKey, "value", _keeping_joined_parts(inspect.getattr_static(FakeKey, "value")))  # noqa: B010
    ParserExecution.stop = _stop_waking_callbacks(ParserExecution.stop)  # type: ignore[method-assign]
    for name in ("set_error", "set_timed_out"):
        setattr(ParserEnvironment, name, _unless_stopped(getattr(ParserEnvironment, name)))
    _installed = True


def _unless_stopped(original: Any) -> Any:
    @functools.wraps(original)
    def settle(self: ParserEnvironment, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self._program_state, ProgramStopped):
            return None  # stopped is final
        return original(self, *args, **kwargs)

    return settle


def _stop_waking_callbacks(original: Any) -> Any:
    @functools.wraps(original)
    def stop(self: ParserExecution, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        env = self.exec_worker.env if self.exec_worker is not None else None
        if env is not None:
            # The env is stopped, so a woken wait sees no outcome and its state ends.
            for endpoint in list(env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()
        return result

    return stop


def _send_task_failure_with_cause(self: StepFunctionResponse) -> Any:
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(  # type: ignore[call-arg]
        self._get_param("taskToken"),
        error=self._get_param("error"),
        cause=self._get_param("cause"),
    )
    return EmptyResult()


def _within_retention(self: SQSBackend, queue_name: str, message: Any) -> bool:
    """moto's own check, reading the one setting instead of building every attribute."""
    retention_s = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return bool(retention_s + message.sent_timestamp / 1000 > unix_time())


def _keep_the_engine_s_clients() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    @functools.wraps(original)
    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # Where the engine sends (moto's port, or its in-process stubber) is part of the key,
        # and so is the state's role (moto's client ignores it, but two roles never share).
        # So are the handlers a new client would get (botocore's built-in list and boto3's
        # default session): a test's in-process Lambda dispatcher installs itself there, and
        # a client made before it would not see it.
        role = getattr(state_credentials, "role_arn", None)
        handlers = tuple(spec[1] for spec in botocore_handlers.BUILTIN_HANDLERS)
        if boto3.DEFAULT_SESSION is None:  # as boto3.client would, so the key stays stable
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        key = (
            region,
            service,
            moto_server_port(),
            botocore_stubber.enabled,
            role,
            handlers,
            session,
        )
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region, service, state_credentials)
        return client

    for module in (boto_client, lambda_eval_utils):
        module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def _wait_for_messages_until_available(self: Queue, timeout: int) -> None:
    """Wait up to ``timeout`` s for a message: a new one, or a delayed or invisible one whose
    time has come (moto's own wait notices only new ones, and only once a second)."""
    deadline_ms = unix_time_millis() + timeout * 1000
    with self._messages_lock:
        while not self.messages:
            now_ms = unix_time_millis()
            if now_ms >= deadline_ms:
                return
            upcoming = [
                max(message.delayed_until, message.visible_at)
                for message in self._messages
                if max(message.delayed_until, message.visible_at) > now_ms
            ]
            wake_ms = min([deadline_ms, *upcoming])
            # A few ms past the due time, so the message counts as available on waking.
            self._messages_lock.wait(max(0.001, (wake_ms - now_ms) / 1000 + 0.002))


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _s3_setup_class_keeping_put_bodies(original: Any) -> Any:
    @functools.wraps(original)
    def setup_class(self: S3Response, request: Request, *args: Any, **kwargs: Any) -> Any:
        if request.method == "PUT" and request.mimetype in _FORM_TYPES:
            # Cache the raw bytes before anything parses them, and give the request an
            # empty form: werkzeug's parser would consume the stream, and moto would
            # read form fields of an object's bytes as query parameters.
            request.get_data(cache=True, parse_form_data=False)
            empty = request.parameter_storage_class()
            request.__dict__.update(form=empty, files=request.parameter_storage_class())
        return original(self, request, *args, **kwargs)

    return setup_class


def _list_moto_services_once() -> None:
    """moto's service names (its package's sub-directories), listed once, not per request."""
    from moto import backends

    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services


# --- Queries read one partition ------------------------------------------------------------

_TableKey = tuple[DynamoType, DynamoType | None]
_PARTITIONS_ATTR = "_printflow_partitions"


class _IndexPartitions:
    """For each index of one table: partition key values -> the keys of the items in it.

    Stored on the moto ``Table`` itself, so a transaction's rollback (moto restores a deep
    copy of the table) restores the matching partitions with the items.
    """

    def __init__(self, table: Table) -> None:
        self.signature = _index_signature(table)
        self.hash_attrs = dict(self.signature)
        self.buckets: dict[str, dict[tuple[DynamoType, ...], dict[_TableKey, None]]] = {
            name: {} for name in self.hash_attrs
        }
        self.placed: dict[_TableKey, list[tuple[str, tuple[DynamoType, ...]]]] = {}
        for item in table.all_items():
            self.place((item.hash_key, item.range_key), item)

    def place(self, key: _TableKey, item: Item | None) -> None:
        """Record where ``item`` (now stored under ``key``; None: deleted) belongs."""
        for name, values in self.placed.pop(key, []):
            bucket = self.buckets[name].get(values)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.buckets[name][values]
        if item is None:
            return
        places = []
        for name, attrs in self.hash_attrs.items():
            # Sparse, as in DynamoDB: an item without the partition key is not in the index.
            if all(attr in item.attrs for attr in attrs):
                values = tuple(item.attrs[attr] for attr in attrs)
                self.buckets[name].setdefault(values, {})[key] = None
                places.append((name, values))
        if places:
            self.placed[key] = places


def _index_signature(table: Table) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (
            index.name,
            tuple(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"),
        )
        for index in table.all_indexes()
    )


def _partitions_of(table: Table) -> _IndexPartitions:
    """The table's partitions, (re)built when missing or when its indexes changed."""
    partitions: _IndexPartitions | None = table.__dict__.get(_PARTITIONS_ATTR)
    if partitions is None or partitions.signature != _index_signature(table):
        partitions = _IndexPartitions(table)
        table.__dict__[_PARTITIONS_ATTR] = partitions
    return partitions


def _stored_item(table: Table, key: _TableKey) -> Item | None:
    stored: Any = table.items.get(key[0])
    if stored is not None and table.range_key_attr is not None:
        stored = stored.get(key[1])
    return stored if isinstance(stored, Item) else None


def _reindex(table: Table, key: _TableKey) -> None:
    # Built at a table's first write (it is empty then, so that costs nothing): the first
    # query of a large table does not pay for reading it all.
    _partitions_of(table).place(key, _stored_item(table, key))


def _key_of_attrs(table: Table, attrs: dict[str, Any]) -> _TableKey | None:
    if table.hash_key_attr not in attrs:
        return None
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attrs:
            return None
        range_value = DynamoType(attrs[table.range_key_attr])
    return DynamoType(attrs[table.hash_key_attr]), range_value


def _reindex_updated(backend: DynamoDBBackend, table_name: str, key: Any) -> None:
    try:
        table = backend.get_table(table_name)
    except ResourceNotFoundException:  # moto has raised its own error
        return
    table_key = _key_of_attrs(table, key) if isinstance(key, dict) else None
    if table_key is not None:
        _reindex(table, table_key)


def _partition_candidates(table: Table, arguments: dict[str, Any]) -> list[Item] | None:
    """The items moto's query may return, or None when this query is not one partition."""
    index_name = arguments.get("index_name")
    if arguments.get("filter_kwargs"):
        return None  # legacy KeyConditions: left to moto
    if not index_name:
        hash_key = arguments.get("hash_key")
        if hash_key is None or table.range_key_attr is None:
            return None
        return [i for i in table.items.get(hash_key, {}).values() if isinstance(i, Item)]
    partitions = _partitions_of(table)
    attrs = partitions.hash_attrs.get(index_name)
    conditions = dict(arguments.get("hash_key_conditions") or [])
    if attrs is None or set(conditions) != set(attrs):
        return None  # moto reports the bad index or key condition itself
    keys = partitions.buckets[index_name].get(tuple(conditions[a] for a in attrs), {})
    return [item for key in keys if (item := _stored_item(table, key)) is not None]


def _query_only_the_queried_partition() -> None:
    original_query = Table.query
    signature = inspect.signature(original_query)

    @functools.wraps(original_query)
    def query(self: Table, *args: Any, **kwargs: Any) -> Any:
        with _ITEM_LOCK:
            arguments = signature.bind(self, *args, **kwargs).arguments
            candidates = _partition_candidates(self, arguments)
            if candidates is None:
                return original_query(self, *args, **kwargs)
            # moto's query reads self.all_items(): the table's items sorted by key. For this
            # call it gets the partition's, in that same order, so ties sort as before.
            candidates.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
            self.__dict__["all_items"] = lambda: candidates
            try:
                return original_query(self, *args, **kwargs)
            finally:
                del self.__dict__["all_items"]

    Table.query = query  # type: ignore[method-assign]

    original_put = Table.put_item

    @functools.wraps(original_put)
    def put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with _ITEM_LOCK:
            try:
                return original_put(self, item_attrs, *args, **kwargs)
            finally:
                key = _key_of_attrs(self, item_attrs)
                if key is not None:
                    _reindex(self, key)

    Table.put_item = put_item  # type: ignore[method-assign]

    original_delete = Table.delete_item

    @functools.wraps(original_delete)
    def delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Any:
        with _ITEM_LOCK:
            try:
                return original_delete(self, hash_key, range_key)
            finally:
                _reindex(self, (hash_key, range_key if self.range_key_attr else None))

    Table.delete_item = delete_item  # type: ignore[method-assign]

    # update_item changes an item's attributes in place (or creates it), in the backend.
    original_update = DynamoDBBackend.update_item

    @functools.wraps(original_update)
    def update_item(self: DynamoDBBackend, table_name: str, key: Any, *a: Any, **kw: Any) -> Any:
        with _ITEM_LOCK:
            try:
                return original_update(self, table_name, key, *a, **kw)
            finally:
                _reindex_updated(self, table_name, key)

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]


def _project_converting_once(original: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import serializer
    from moto.dynamodb.models.utilities import find_nested_key

    @functools.wraps(original)
    def project(self: Item, projection_expressions: list[list[str]]) -> Item:
        regular = self.to_regular_json()
        result: dict[str, Any] = {}
        for expression in projection_expressions:
            # A copy, as moto's own fresh conversion per expression: merging must never
            # change ``regular``, which the next expression reads.
            merge_dicts(result, copy.deepcopy(find_nested_key(expression, regular)))
        return Item(
            hash_key=self.hash_key,
            range_key=self.range_key,
            attrs=dict(serializer.serialize(result)["M"]),
        )

    return project


# moto without the optional crc32c / awscrt libraries computes CRC32 for these as well.
_RUNNING_CRC32 = frozenset({"CRC32", "CRC32C", "CRC64NVME"})


def _complete_multipart_without_joining(
    self: FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[_JoinedParts, str, tuple[str, str, int] | None]:
    """moto's ``FakeMultipart.complete`` (same checks, same ETag and checksum), without
    copying the parts: a full-object CRC runs over them a MiB at a time, and the new object
    keeps the parts' own buffers, read in order (:class:`_JoinedParts`)."""
    algorithm: str = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    checksum_type: str | None = self.metadata.get("x-amz-checksum-type")
    running = checksum_type == "FULL_OBJECT" or (
        not checksum_type and algorithm == "CRC64NVME"  # moto's default: full-object
    )
    if running and algorithm not in _RUNNING_CRC32 | _real_crc_algorithms():
        running = False
    composite = None if running else MultipartChecksumBuilder(algorithm, checksum_type)
    decode_hex = codecs.getdecoder("hex_codec")
    parts: list[FakeKey] = []
    md5s = bytearray()
    crc = 0
    last = None
    for number, etag in body:
        part = self.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            raise InvalidPart()
        if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(decode_hex(part.etag.replace('"', ""))[0])  # type: ignore[arg-type]
        if composite is not None:
            composite.addPart(part.value)  # one part at a time, as moto's builder wants
        else:
            for chunk in _chunks(part._value_buffer):
                crc = binascii.crc32(chunk, crc)
        parts.append(part)
        last = part
    if not parts:
        raise MalformedXML
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    if composite is not None:
        checksum = composite.build()
    else:
        checksum = ("FULL_OBJECT", base64.b64encode(crc.to_bytes(4, "big")).decode(), 1)
    # Validated: only now are the buffers taken (an invalid completion leaves the upload as
    # it was). moto closes the parts when it forgets the upload; they hold empty ones then.
    joined = _JoinedParts([(part._value_buffer, part.contentsize) for part in parts])
    for part in parts:
        part._value_buffer = tempfile.SpooledTemporaryFile(1)  # noqa: SIM115 - the part keeps it
    return joined, f"{full_etag.hexdigest()}-{len(parts)}", checksum


_CHUNK = 1024 * 1024


def _chunks(buffer: Any) -> Iterator[bytes]:
    buffer.seek(0)
    while chunk := buffer.read(_CHUNK):
        yield chunk


class _JoinedParts:
    """A completed upload's bytes: its parts' buffers read one after the other, a read-only
    file for the ``FakeKey`` that keeps it (moto's key reads its buffer with ``seek`` and
    ``read``, and closes it when the key goes). Setting another value replaces it."""

    def __init__(self, buffers: list[tuple[Any, int]]) -> None:
        self._buffers = buffers
        self._size = sum(size for _, size in buffers)
        self._position = 0
        self.closed = False

    def __len__(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        wanted = self._size - self._position if size is None or size < 0 else size
        pieces: list[bytes] = []
        start = 0
        for buffer, length in self._buffers:
            end = start + length
            if wanted > 0 and start <= self._position < end:
                buffer.seek(self._position - start)
                piece = buffer.read(min(wanted, end - self._position))
                pieces.append(piece)
                self._position += len(piece)
                wanted -= len(piece)
            start = end
        return b"".join(pieces)

    def close(self) -> None:
        for buffer, _ in self._buffers:
            buffer.close()
        self.closed = True


def _keeping_joined_parts(original: property) -> property:
    """``FakeKey.value`` whose setter keeps :class:`_JoinedParts` as the key's buffer (moto's
    own setter copies ``bytes`` in; every other value still goes to it, into a fresh buffer
    if the key held joined parts)."""

    def setter(self: FakeKey, new_value: Any) -> None:
        if isinstance(new_value, _JoinedParts):
            self._value_buffer.close()
            self._value_buffer = new_value  # type: ignore[assignment] # read like the file it replaces
            self.contentsize = len(new_value)
            return
        if isinstance(self._value_buffer, _JoinedParts):
            self._value_buffer.close()
            self._value_buffer = tempfile.SpooledTemporaryFile(self._max_buffer_size)  # noqa: SIM115
        original.fset(self, new_value)  # type: ignore[misc]

    return property(original.fget, setter, original.fdel, original.__doc__)


def _real_crc_algorithms() -> frozenset[str]:
    """Algorithms moto computes with a library of their own (not as CRC32): not run here."""
    found = set()
    for algorithm, module in (("CRC32C", "crc32c"), ("CRC64NVME", "awscrt")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.add(algorithm)
    return frozenset(found)


def _parse_each_update_expression_once() -> None:
    from moto.dynamodb.parsing import expressions, validators

    # moto's parsing modules are untyped (``# type: ignore`` at their top): Any here.
    UpdateExpressionParser: Any = getattr(expressions, "UpdateExpressionParser")  # noqa: B009
    parse = UpdateExpressionParser.make.__func__
    # Bounded: a process that sees endless distinct expressions keeps only the recent ones.
    kept = functools.lru_cache(maxsize=1024)(lambda text: parse(UpdateExpressionParser, text))

    @functools.wraps(parse)  # __wrapped__: moto's own, for the tests that compare the two
    def make(cls: type[Any], expression_str: str) -> Any:
        if cls is not UpdateExpressionParser:  # a subclass parses as it likes
            return parse(cls, expression_str)
        return kept(expression_str)

    UpdateExpressionParser.make = classmethod(make)
    setattr(validators, "deepcopy", _copy_expression_tree)  # noqa: B010


def _parse_each_definition_once() -> None:
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    Parser: Any = asl_parser.AmazonStateLanguageParser
    parse = Parser.parse
    # The syntax tree only: the evaluation components the preprocessor builds from it hold
    # an execution's state, so every execution gets its own, built from the kept tree.
    # Bounded: a process that sees endless distinct definitions keeps only the recent ones.
    kept_tree = functools.lru_cache(maxsize=64)(lambda definition: parse(definition)[1])

    @functools.wraps(parse)  # __wrapped__: moto's own, for the test that compares the two
    def parse_keeping_the_tree(definition: str) -> tuple[Any, Any]:
        tree = kept_tree(definition)  # a definition that fails to parse raises, not kept
        return Preprocessor().visit(tree), tree

    Parser.parse = staticmethod(parse_keeping_the_tree)


_IMMUTABLE = (str, int, float, bool, type(None))


def _copy_expression_tree(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """``copy.deepcopy`` of a parsed expression, node by node: the same tree of new nodes
    (each child's ``parent`` the new parent), other values deep-copied as before."""
    from moto.dynamodb.parsing import ast_nodes

    Node: Any = getattr(ast_nodes, "Node")  # noqa: B009 (untyped module)
    memo = {} if memo is None else memo
    if not isinstance(value, Node):
        return copy.deepcopy(value, memo)
    known = memo.get(id(value))
    if known is not None:
        return known
    node = object.__new__(type(value))
    memo[id(value)] = node
    for name, attribute in value.__dict__.items():
        if name == "parent":
            continue  # below, once the node is in the memo
        if name == "children" and type(attribute) is list:
            copied: Any = [_copy_expression_tree(child, memo) for child in attribute]
        elif type(attribute) in _IMMUTABLE:
            copied = attribute
        else:
            copied = copy.deepcopy(attribute, memo)
        node.__dict__[name] = copied
    if "parent" in value.__dict__:
        parent = value.__dict__["parent"]
        node.__dict__["parent"] = None if parent is None else _copy_expression_tree(parent, memo)
    return node


def _measure_copy_and_project_directly() -> None:
    """moto's item size, copy and index projection, computed directly (``__wrapped__``: moto's
    own, which the fidelity tests compare with)."""

    @functools.wraps(DynamoType.size)
    def size(self: DynamoType) -> int:
        return value_size(self)

    @functools.wraps(Item.size)
    def size_of_item(self: Item) -> int:
        return item_size(self)

    @functools.wraps(DynamoType.__deepcopy__)
    def deepcopy(self: DynamoType, memo: dict[int, Any]) -> DynamoType:
        return copy_value(self, memo)

    original_cast = vars(DynamoType)["cast_value"].fget
    assert original_cast is not None
    cast = cast_value(original_cast)
    cast.__wrapped__ = original_cast  # type: ignore[attr-defined]
    DynamoType.cast_value = property(cast)  # type: ignore[method-assign, assignment]
    DynamoType.size = size  # type: ignore[method-assign]
    Item.size = size_of_item  # type: ignore[method-assign]
    DynamoType.__deepcopy__ = deepcopy  # type: ignore[method-assign]
    SecondaryIndex.project = project_on_index(SecondaryIndex.project)  # type: ignore[method-assign]


# --- Answers encoded in one pass --------------------------------------------------------------

# The operations whose answers are items (or counts and keys): wire-shaped results, no
# timestamps. DescribeTable and the other control-plane answers stay with moto's serializer,
# and so do BatchWriteItem's and TransactWriteItems' (moto answers them with a plain
# ActionResult, not a DynamoResult: small answers, no items).
_ONE_PASS_READS = frozenset(
    {
        "Query",
        "Scan",
        "GetItem",
        "BatchGetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactGetItems",
    }
)
_read_encoders: dict[tuple[str, str], tuple[Encoder | None, JSONSerializer]] = {}


def _encode_reads_in_one_pass(original: Any) -> Any:
    @functools.wraps(original)
    def execute_result(self: DynamoResult, context: ActionContext) -> Any:
        operation = context.operation_model
        if (
            str(operation.name) not in _ONE_PASS_READS
            or context.serializer_class is not JSONSerializer
            or isinstance(self.result, Exception)
            or getattr(context.response, "RESPONSE_KEY_PATH_TO_TRANSFORMER", None)
        ):
            return original(self, context)
        encoder, serializer = _read_encoder(context)
        if encoder is None:
            return original(self, context)
        try:
            body = encoder(self.result)
        except NotWireShaped:
            return original(self, context)
        # moto's own serializer supplies the status, the content type and json.dumps.
        response = serializer._create_default_response()
        headers = {"Content-Type": serializer._get_protocol_specific_content_type()}
        return response["status_code"], headers, serializer._serialize_body(body)

    return execute_result


def _read_encoder(context: ActionContext) -> tuple[Encoder | None, JSONSerializer]:
    operation = context.operation_model
    key = (str(operation.service_model.api_version), str(operation.name))
    found = _read_encoders.get(key)
    if found is None:  # compiling twice in a race gives the same encoder
        serializer = JSONSerializer(operation_model=operation, pretty_print=PRETTIFY_RESPONSES)
        found = (output_encoder(operation), serializer)
        _read_encoders[key] = found
    return found
