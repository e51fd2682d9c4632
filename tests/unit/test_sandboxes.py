"""The provider sandboxes behave like the real APIs, over real loopback HTTP."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import httpx
import pypdf
import pytest

from printflow_tools.sandboxes import (
    Behaviour,
    ChiliSandbox,
    CustomersCanvasSandbox,
    ManualClock,
    Pipeline,
    pdf_file,
    png_file,
)

CHILI_TOKEN_FIELDS = {
    "grant_type": "client_credentials",
    "audience": "https://chiligrafx.com",
    "client_id": "chili-client",
    "client_secret": "chili-secret",
}
CC_TOKEN_FIELDS = {
    "grant_type": "client_credentials",
    "client_id": "cc-client",
    "client_secret": "cc-secret",
}


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def chili_auth(http: httpx.Client, chili: ChiliSandbox) -> dict[str, str]:
    token = http.post(chili.token_url, json=CHILI_TOKEN_FIELDS).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def cc_auth(http: httpx.Client, cc: CustomersCanvasSandbox) -> dict[str, str]:
    token = http.post(cc.token_url, data=CC_TOKEN_FIELDS).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def start_task(
    http: httpx.Client, chili: ChiliSandbox, auth: dict[str, str], fmt: str = "pdf", **body: object
) -> str:
    payload = {"outputSettingsId": "print-pdf", "templateId": "tpl-1", **body}
    response = http.post(f"{chili.environment_url}/output/{fmt}", json=payload, headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["taskId"])


def png_chunks(data: bytes) -> list[tuple[bytes, int]]:
    """(type, length) of every chunk, asserting each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, length))
        offset += 12 + length
    return chunks


# -- generated files -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1000, 9_999, 10_000, 100_000, 1_000_001])
def test_pdf_file_has_the_requested_size_and_true_xref_offsets(size: int) -> None:
    file = pdf_file(size, "label")
    data = file.read()

    assert len(data) == file.size == max(size, pdf_file(0, "label").size)
    assert data.startswith(b"%PDF-1.7\n") and data.endswith(b"%%EOF\n")
    startxref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    assert data[startxref:].startswith(b"xref\n0 7\n")
    entries = data[startxref:].split(b"\n")[3:9]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)


@pytest.mark.parametrize("size", [0, 600, 5_000, 8 * 1024 * 1024 + 30, 17_000_000])
def test_png_file_has_the_requested_size_and_valid_chunks(size: int) -> None:
    file = png_file(size, "label")
    data = file.read()

    assert len(data) == file.size == max(size, png_file(0, "label").size)
    kinds = [kind for kind, _ in png_chunks(data)]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds


LINES = [
    "template poster-a2, output settings print-pdf (pdf)",
    "  Headline: Happy 40th, Sam!",
    "  Note: (braces) and a back\\slash, Grüße",
]


@pytest.mark.parametrize("size", [0, 70_000, 1_000_001])
def test_a_pdf_shows_what_the_render_was_sent_and_reads_back_with_pypdf(size: int) -> None:
    file = pdf_file(size, "chili task abc", LINES)
    data = file.read()

    assert len(data) == file.size == max(size, pdf_file(0, "chili task abc", LINES).size)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)
    (page,) = reader.pages
    text = page.extract_text()
    assert "PrintFlow sandbox render" in text and "chili task abc" in text
    for line in LINES:
        assert line.strip() in text


def test_a_pdf_page_says_how_many_lines_it_could_not_show() -> None:
    many = [f"variable {i}: value {i}" for i in range(100)]
    text = pypdf.PdfReader(io.BytesIO(pdf_file(0, "x", many).read())).pages[0].extract_text()
    assert "variable 44: value 44" in text and "variable 45" not in text
    assert "... and 55 more lines" in text


def test_a_png_carries_the_lines_as_utf8_text_chunks() -> None:
    data = png_file(20_000, "cc artifact 1", LINES).read()

    kinds = [kind for kind, _ in png_chunks(data)]
    assert kinds.count(b"iTXt") == len(LINES)
    assert b"Happy 40th, Sam!" in data and "Grüße".encode() in data


def test_a_gibibyte_file_is_described_without_being_built() -> None:
    file = pdf_file(1 << 30, "big")

    assert file.size == 1 << 30
    first = next(iter(file.chunks()))
    assert first.startswith(b"%PDF-")
    assert max(len(s) for s in file.segments if isinstance(s, bytes)) < 4096


# -- the server --------------------------------------------------------------------------


def test_server_keeps_connections_alive() -> None:
    with ChiliSandbox() as chili:
        connection = HTTPConnection("127.0.0.1", int(chili.base_url.rsplit(":", 1)[1]))
        sockets = []
        for _ in range(3):
            connection.request("GET", "/grafx/api/v1/environment/printflow-sandbox/output/settings")
            response = connection.getresponse()
            response.read()
            assert response.status == 401
            assert not response.will_close
            sockets.append(connection.sock)
        connection.close()

    # Three answers on one socket: http.client reopens a socket the server closed.
    assert sockets[0] is not None and sockets == [sockets[0]] * 3


def status_of(base_url: str, path: str) -> int:
    """One GET on its own connection (http.client: cheap, so timing measures the server)."""
    connection = HTTPConnection("127.0.0.1", int(base_url.rsplit(":", 1)[1]), timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_latency_is_per_request_not_per_server() -> None:
    with ChiliSandbox(behaviour=Behaviour(latency_s=0.3)) as chili:
        path = "/grafx/api/v1/environment/printflow-sandbox/output/settings"
        started = time.perf_counter()
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(lambda _: status_of(chili.base_url, path), range(50)))
        elapsed = time.perf_counter() - started

    assert statuses == [401] * 50
    assert elapsed < 2.5  # 50 x 0.3 s would be 15 s if requests waited for each other


def test_stop_does_not_wait_for_idle_keep_alive_connections() -> None:
    chili = ChiliSandbox().start()
    connection = HTTPConnection("127.0.0.1", int(chili.base_url.rsplit(":", 1)[1]))
    connection.request("GET", "/nowhere")
    connection.getresponse().read()

    started = time.perf_counter()
    chili.stop()
    connection.close()

    assert time.perf_counter() - started < 2


def test_request_log_records_every_answer(http: httpx.Client) -> None:
    with ChiliSandbox() as chili:
        http.get(f"{chili.environment_url}/output/settings")
        http.post(chili.token_url, json=CHILI_TOKEN_FIELDS)

        log = chili.requests
    assert [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in log] == [
        ("GET", "settings", 401),
        ("POST", "token", 200),
    ]


def test_injected_failures_and_throttling_spare_the_token_endpoint(http: httpx.Client) -> None:
    with ChiliSandbox(behaviour=Behaviour(failure_rate=1.0)) as chili:
        auth = chili_auth(http, chili)
        failed = http.get(f"{chili.environment_url}/output/settings", headers=auth)
        chili.behaviour.failure_rate = 0.0
        chili.behaviour.throttle_rate = 1.0
        chili.behaviour.retry_after_s = 7
        throttled = http.get(f"{chili.environment_url}/output/settings", headers=auth)

    assert failed.status_code == 503
    assert failed.json()["detail"] == "injected failure"
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "7"


def test_seeded_failures_repeat() -> None:
    def pattern() -> list[int]:
        with (
            ChiliSandbox(behaviour=Behaviour(failure_rate=0.5, seed=42)) as chili,
            httpx.Client() as client,
        ):
            url = f"{chili.environment_url}/output/settings"
            return [client.get(url).status_code for _ in range(12)]

    first = pattern()
    assert first == pattern()
    assert set(first) == {401, 503}


# -- CHILI -------------------------------------------------------------------------------


def test_chili_token_accepts_json_form_and_basic_auth(http: httpx.Client) -> None:
    with ChiliSandbox(token_ttl_s=120) as chili:
        as_json = http.post(chili.token_url, json=CHILI_TOKEN_FIELDS)
        as_form = http.post(chili.token_url, data=CHILI_TOKEN_FIELDS)
        basic = http.post(
            chili.token_url,
            data={"grant_type": "client_credentials", "audience": "https://chiligrafx.com"},
            auth=("chili-client", "chili-secret"),
        )

    for response in (as_json, as_form, basic):
        assert response.status_code == 200
        doc = response.json()
        assert doc["token_type"] == "Bearer" and doc["expires_in"] == 120
        assert doc["access_token"] and "output:static" in doc["scope"]


def test_chili_token_refuses_wrong_credentials_and_audience(http: httpx.Client) -> None:
    with ChiliSandbox() as chili:
        wrong_secret = http.post(chili.token_url, json={**CHILI_TOKEN_FIELDS, "client_secret": "x"})
        wrong_audience = http.post(chili.token_url, json={**CHILI_TOKEN_FIELDS, "audience": "x"})
        wrong_grant = http.post(chili.token_url, json={**CHILI_TOKEN_FIELDS, "grant_type": "x"})

    assert wrong_secret.status_code == 401
    assert wrong_audience.status_code == 403
    assert wrong_grant.status_code == 400


def test_chili_checks_the_token_on_every_call(http: httpx.Client) -> None:
    clock = ManualClock()
    with ChiliSandbox(token_ttl_s=60, clock=clock) as chili:
        settings_url = f"{chili.environment_url}/output/settings"
        auth = chili_auth(http, chili)
        fresh = http.get(settings_url, headers=auth)
        clock.advance(61)
        expired = http.get(settings_url, headers=auth)
        auth = chili_auth(http, chili)
        chili.expire_tokens()
        forced = http.get(settings_url, headers=auth)
        missing = http.get(settings_url)
        unknown = http.get(settings_url, headers={"Authorization": "Bearer nope"})

    assert fresh.status_code == 200
    assert [r["id"] for r in fresh.json()["data"]] == ["print-pdf", "preview-png", "web-jpg"]
    assert [expired.status_code, forced.status_code, missing.status_code] == [401, 401, 401]
    assert unknown.status_code == 401
    assert "invalid_token" in unknown.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"templateId": "t"}, "outputSettingsId is required"),
        ({"outputSettingsId": "nope", "templateId": "t"}, "not found"),
        ({"outputSettingsId": "print-pdf"}, "exactly one"),
        ({"outputSettingsId": "print-pdf", "templateId": "t", "projectId": "p"}, "exactly one"),
        (
            {"outputSettingsId": "print-pdf", "templateId": "t", "variables": [{"a": 1}]},
            "variables",
        ),
        ({"outputSettingsId": "print-pdf", "templateId": "t", "layoutsToExport": "x"}, "layouts"),
    ],
)
def test_chili_start_validates_with_problem_details(
    http: httpx.Client, body: dict[str, object], detail: str
) -> None:
    with ChiliSandbox() as chili:
        auth = chili_auth(http, chili)
        response = http.post(f"{chili.environment_url}/output/pdf", json=body, headers=auth)

    assert response.status_code == 400
    problem = response.json()
    assert set(problem) == {"type", "title", "status", "detail"}
    assert problem["status"] == 400 and detail in problem["detail"]


def test_chili_unknown_format_or_environment_is_404(http: httpx.Client) -> None:
    with ChiliSandbox() as chili:
        auth = chili_auth(http, chili)
        body = {"outputSettingsId": "print-pdf", "templateId": "t"}
        bad_format = http.post(f"{chili.environment_url}/output/docx", json=body, headers=auth)
        other_env = chili.environment_url.replace("printflow-sandbox", "other")
        bad_env = http.post(f"{other_env}/output/pdf", json=body, headers=auth)

    assert bad_format.status_code == 404
    assert bad_env.status_code == 404


def test_chili_task_runs_with_202_and_204_then_offers_a_real_pdf(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=3, behaviour=Behaviour(file_size=200_000)) as chili:
        auth = chili_auth(http, chili)
        started = http.post(
            f"{chili.environment_url}/output/pdf",
            json={
                "outputSettingsId": "print-pdf",
                "templateId": "tpl-1",
                "layoutsToExport": ["0"],
                "variables": [{"name": "Ada", "colour": None}],
            },
            headers=auth,
        ).json()
        task_id = started["data"]["taskId"]
        polls = [http.get(started["links"]["taskInfo"], headers=auth) for _ in range(4)]
        download = http.get(polls[-1].json()["links"]["download"], headers=auth)
        anonymous = http.get(polls[-1].json()["links"]["download"])
        task = chili.task(task_id)

    assert [p.status_code for p in polls] == [202, 204, 202, 200]
    assert polls[0].json() == {"data": {"taskId": task_id}}
    assert polls[1].content == b""
    assert polls[3].json()["data"] == {"taskId": task_id}
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert int(download.headers["content-length"]) == len(download.content) == 200_000
    assert download.content.startswith(b"%PDF-") and download.content.endswith(b"%%EOF\n")
    assert anonymous.status_code == 401
    assert task.variables == [{"name": "Ada", "colour": None}]
    assert task.layouts_to_export == ["0"]


def test_chili_running_status_is_configurable(http: httpx.Client) -> None:
    with ChiliSandbox(running_statuses=(204,), polls_until_done=2) as chili:
        auth = chili_auth(http, chili)
        task_id = start_task(http, chili, auth)
        statuses = [
            http.get(f"{chili.environment_url}/output/tasks/{task_id}", headers=auth).status_code
            for _ in range(3)
        ]

    assert statuses == [204, 204, 200]


def test_chili_png_output_is_a_real_png(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0, behaviour=Behaviour(file_size=50_000)) as chili:
        auth = chili_auth(http, chili)
        task_id = start_task(http, chili, auth, fmt="png", outputSettingsId="preview-png")
        done = http.get(f"{chili.environment_url}/output/tasks/{task_id}", headers=auth)
        download = http.get(done.json()["links"]["download"], headers=auth)

    assert download.headers["content-type"] == "image/png"
    assert len(download.content) == 50_000
    assert png_chunks(download.content)[0] == (b"IHDR", 13)


def test_chili_done_after_seconds_with_a_controlled_clock(http: httpx.Client) -> None:
    clock = ManualClock()
    with ChiliSandbox(seconds_until_done=30, clock=clock) as chili:
        auth = chili_auth(http, chili)
        task_url = f"{chili.environment_url}/output/tasks/{start_task(http, chili, auth)}"
        early = http.get(task_url, headers=auth).status_code
        clock.advance(30)
        late = http.get(task_url, headers=auth).status_code

    assert (early, late) == (202, 200)


def test_chili_failing_task_answers_500_with_detail(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=1, failure_detail="font missing") as chili:
        auth = chili_auth(http, chili)
        task_url = f"{chili.environment_url}/output/tasks/"
        task_url += start_task(http, chili, auth, templateId="fail-broken")
        first = http.get(task_url, headers=auth)
        failed = http.get(task_url, headers=auth)
        download = http.get(f"{task_url}/download", headers=auth)

    assert first.status_code == 202
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["detail"] == "font missing"
    assert download.status_code == 404


def test_chili_task_failure_rate_is_seeded(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0, task_failure_rate=1.0) as chili:
        auth = chili_auth(http, chili)
        task_id = start_task(http, chili, auth)
        polled = http.get(f"{chili.environment_url}/output/tasks/{task_id}", headers=auth)

    assert polled.status_code == 500


@pytest.mark.parametrize("expired_status", [404, 410])
def test_chili_tasks_and_downloads_expire(http: httpx.Client, expired_status: int) -> None:
    clock = ManualClock()
    with ChiliSandbox(
        polls_until_done=0,
        clock=clock,
        token_ttl_s=10**9,
        download_ttl_s=4 * 3600,
        expired_download_status=expired_status,
        expired_task_status=expired_status,
    ) as chili:
        auth = chili_auth(http, chili)
        task_url = f"{chili.environment_url}/output/tasks/{start_task(http, chili, auth)}"
        assert http.get(task_url, headers=auth).status_code == 200
        clock.advance(4 * 3600)
        gone_download = http.get(f"{task_url}/download", headers=auth)
        still_there = http.get(task_url, headers=auth).status_code
        clock.advance(7 * 24 * 3600)
        gone_task = http.get(task_url, headers=auth)

    assert gone_download.status_code == expired_status
    assert "no longer available" in gone_download.json()["detail"]
    assert still_there == 200
    assert gone_task.status_code == expired_status


def test_chili_expiry_knobs(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0) as chili:
        auth = chili_auth(http, chili)
        first, second = start_task(http, chili, auth), start_task(http, chili, auth)
        tasks = f"{chili.environment_url}/output/tasks"
        http.get(f"{tasks}/{first}", headers=auth)
        chili.expire_downloads()
        chili.expire_task(second)

        assert http.get(f"{tasks}/{first}/download", headers=auth).status_code == 404
        assert http.get(f"{tasks}/{second}", headers=auth).status_code == 404


def test_chili_streams_a_gibibyte_without_building_it(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0, behaviour=Behaviour(file_size=1 << 30)) as chili:
        auth = chili_auth(http, chili)
        task_url = f"{chili.environment_url}/output/tasks/{start_task(http, chili, auth)}"
        http.get(task_url, headers=auth)
        with http.stream("GET", f"{task_url}/download", headers=auth) as response:
            length = int(response.headers["content-length"])
            head = next(response.iter_raw())

    assert length == 1 << 30
    assert head.startswith(b"%PDF-1.7")


def test_chili_full_download_is_deterministic(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0, behaviour=Behaviour(file_size=20_000_000)) as chili:
        auth = chili_auth(http, chili)
        task_url = f"{chili.environment_url}/output/tasks/{start_task(http, chili, auth)}"
        http.get(task_url, headers=auth)
        digests = []
        for _ in range(2):
            digest = hashlib.sha256()
            with http.stream("GET", f"{task_url}/download", headers=auth) as response:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
            digests.append(digest.hexdigest())

    assert digests[0] == digests[1]


# -- Customer's Canvas -------------------------------------------------------------------


def test_cc_token_is_form_encoded_only(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        form = http.post(cc.token_url, data=CC_TOKEN_FIELDS)
        scoped = http.post(cc.token_url, data={**CC_TOKEN_FIELDS, "scope": "Projects_full"})
        as_json = http.post(cc.token_url, json=CC_TOKEN_FIELDS)
        wrong = http.post(cc.token_url, data={**CC_TOKEN_FIELDS, "client_secret": "x"})
        bad_scope = http.post(cc.token_url, data={**CC_TOKEN_FIELDS, "scope": "Everything"})

    assert form.status_code == 200
    assert set(form.json()) == {"access_token", "expires_in", "token_type", "scope"}
    assert scoped.json()["scope"] == "Projects_full"
    assert as_json.status_code == 400
    assert wrong.status_code == 401
    assert bad_scope.json()["error"] == "invalid_scope"


def test_cc_projects_are_filtered_and_paged(http: httpx.Client) -> None:
    with CustomersCanvasSandbox(max_page_size=2) as cc:
        ids = cc.add_order(storefront_id=42, order_id="1001", line_items=[Pipeline()] * 3)
        cc.add_order(storefront_id=42, order_id="1002")
        cc.add_order(storefront_id=7, order_id="1001")
        auth = cc_auth(http, cc)
        url = f"{cc.base_url}/api/storefront/v1/projects"
        query: dict[str, str | int] = {"orderId": "1001", "storefrontId": 42}
        first = http.get(url, params={**query, "skip": 0, "take": 10}, headers=auth).json()
        second = http.get(url, params={**query, "skip": 2, "take": 10}, headers=auth).json()
        unauthorised = http.get(url, params=query)

    assert first["total"] == second["total"] == 3
    assert [p["id"] for p in first["items"] + second["items"]] == ids
    project = first["items"][0]
    assert project["storefrontId"] == 42 and project["orderId"] == "1001"
    assert project["orderLineItemIndex"] == 0
    assert {"orderNumber", "orderLineItemId", "status", "processingStatus", "created"} <= set(
        project
    )
    assert unauthorised.status_code == 401


def test_cc_project_appears_only_after_a_delay(http: httpx.Client) -> None:
    clock = ManualClock()
    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=42, order_id="1001", line_items=[Pipeline.appears_later(90)]
        )
        auth = cc_auth(http, cc)
        url = f"{cc.base_url}/api/storefront/v1/projects"
        results = f"{url}/{project_id}/processing-results"
        before = http.get(url, params={"orderId": "1001", "storefrontId": 42}, headers=auth)
        before_results = http.get(results, headers=auth)
        clock.advance(90)
        after = http.get(url, params={"orderId": "1001", "storefrontId": 42}, headers=auth)

    assert before.json() == {"total": 0, "items": []}
    assert before_results.status_code == 404
    assert after.json()["total"] == 1


def test_cc_pipeline_completes_with_output_file_details(http: httpx.Client) -> None:
    clock = ManualClock()
    pipeline = Pipeline.completes(after_polls=2, outputs=("pdf", "png"))
    with CustomersCanvasSandbox(clock=clock, behaviour=Behaviour(file_size=30_000)) as cc:
        (project_id,) = cc.add_order(
            storefront_id=42, order_id="1001", line_items=[pipeline], line_item_ids=["li-9"]
        )
        auth = cc_auth(http, cc)
        url = f"{cc.base_url}/api/storefront/v1/projects/{project_id}/processing-results"
        answers = []
        for _ in range(3):
            answers.append(http.get(url, headers=auth).json())
            clock.advance(60)
        poll_times = cc.poll_times(project_id)

    assert [a["status"] for a in answers] == ["Pending", "InProgress", "Completed"]
    files = answers[-1]["outputFileDetails"]
    assert [f["format"] for f in files] == ["pdf", "png"]
    assert set(files[0]) == {
        "url",
        "name",
        "format",
        "artifactId",
        "anonymousAccess",
        "size",
        "projectItemId",
        "orderLineItemId",
        "orderLineItemIndex",
    }
    assert files[0]["orderLineItemId"] == "li-9" and files[0]["size"] == 30_000
    assert poll_times == [clock() - 180, clock() - 120, clock() - 60]


def test_cc_pipeline_can_finish_after_seconds(http: httpx.Client) -> None:
    clock = ManualClock()
    with CustomersCanvasSandbox(clock=clock) as cc:
        (project_id,) = cc.add_order(
            storefront_id=1, order_id="o", line_items=[Pipeline(seconds_to_finish=300)]
        )
        auth = cc_auth(http, cc)
        url = f"{cc.base_url}/api/storefront/v1/projects/{project_id}/processing-results"
        statuses = []
        for _ in range(3):
            statuses.append(http.get(url, headers=auth).json()["status"])
            clock.advance(150)

    assert statuses == ["Pending", "InProgress", "Completed"]


def test_cc_failed_pipeline_recovers_with_resume(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        (project_id,) = cc.add_order(
            storefront_id=1, order_id="o", line_items=[Pipeline.fails_then_succeeds()]
        )
        auth = cc_auth(http, cc)
        project = f"{cc.base_url}/api/storefront/v1/projects/{project_id}"
        not_failed = http.post(f"{project}/resume-processing", headers=auth)
        statuses = [
            http.get(f"{project}/processing-results", headers=auth).json() for _ in range(2)
        ]
        resumed = http.post(f"{project}/resume-processing", headers=auth)
        after = [
            http.get(f"{project}/processing-results", headers=auth).json()["status"]
            for _ in range(2)
        ]
        unknown = http.post(
            f"{cc.base_url}/api/storefront/v1/projects/999/resume-processing", headers=auth
        )
        recoveries = cc.recoveries(project_id)

    assert not_failed.status_code == 409
    assert not_failed.json() == {
        "description": "pipeline is Pending, not Failed",
        "type": "GeneralConflict",
    }
    assert [s["status"] for s in statuses] == ["Pending", "Failed"]
    assert statuses[1]["statusDescription"]
    assert statuses[1]["outputFileDetails"] == []
    assert resumed.status_code == 204 and resumed.content == b""
    assert after == ["Pending", "Completed"]
    assert unknown.status_code == 404
    assert [action for _, action in recoveries] == ["resume"]


def test_cc_restart_only_pipeline_fails_again_after_resume(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        (project_id,) = cc.add_order(
            storefront_id=1, order_id="o", line_items=[Pipeline.restart_only(polls_to_finish=0)]
        )
        auth = cc_auth(http, cc)
        project = f"{cc.base_url}/api/storefront/v1/projects/{project_id}"

        def status() -> str:
            return str(http.get(f"{project}/processing-results", headers=auth).json()["status"])

        first = status()
        http.post(f"{project}/resume-processing", headers=auth)
        after_resume = status()
        http.post(f"{project}/restart-processing", headers=auth)
        after_restart = status()

    assert (first, after_resume, after_restart) == ("Failed", "Failed", "Completed")


def test_cc_pipeline_can_fail_for_good(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        (project_id,) = cc.add_order(
            storefront_id=1, order_id="o", line_items=[Pipeline.fails_forever(polls_to_finish=0)]
        )
        auth = cc_auth(http, cc)
        project = f"{cc.base_url}/api/storefront/v1/projects/{project_id}"
        statuses = []
        for action in ("resume", "restart"):
            statuses.append(
                http.get(f"{project}/processing-results", headers=auth).json()["status"]
            )
            http.post(f"{project}/{action}-processing", headers=auth)
        statuses.append(http.get(f"{project}/processing-results", headers=auth).json()["status"])

    assert statuses == ["Failed", "Failed", "Failed"]


def completed_files(
    http: httpx.Client, cc: CustomersCanvasSandbox, auth: dict[str, str], *, anonymous: bool
) -> list[dict[str, object]]:
    pipeline = Pipeline.completes(after_polls=0, anonymous_access=anonymous)
    (project_id,) = cc.add_order(storefront_id=1, order_id="o", line_items=[pipeline])
    url = f"{cc.base_url}/api/storefront/v1/projects/{project_id}/processing-results"
    files: list[dict[str, object]] = http.get(url, headers=auth).json()["outputFileDetails"]
    return files


def test_cc_artifacts_need_a_token_unless_anonymous(http: httpx.Client) -> None:
    with CustomersCanvasSandbox(behaviour=Behaviour(file_size=12_345)) as cc:
        auth = cc_auth(http, cc)
        (private,) = completed_files(http, cc, auth, anonymous=False)
        (public,) = completed_files(http, cc, auth, anonymous=True)
        storage = f"{cc.base_url}/api/storage/v1/artifacts"
        with_token = http.get(
            f"{storage}/{private['artifactId']}/file", params={"attachment": "true"}, headers=auth
        )
        without_token = http.get(f"{storage}/{private['artifactId']}/file")
        private_url = http.get(str(private["url"]))
        public_url = http.get(str(public["url"]))

    assert with_token.status_code == 200
    assert with_token.headers["content-type"] == "application/pdf"
    assert "attachment" in with_token.headers["content-disposition"]
    assert len(with_token.content) == 12_345 and with_token.content.startswith(b"%PDF")
    assert without_token.status_code == 401
    assert private_url.status_code == 403
    assert public_url.status_code == 200 and public_url.content.startswith(b"%PDF")


def test_cc_artifact_downloads_are_throttled_then_expire(http: httpx.Client) -> None:
    with CustomersCanvasSandbox(
        download_throttles=2, expired_artifact_status=410, behaviour=Behaviour(retry_after_s=3)
    ) as cc:
        auth = cc_auth(http, cc)
        (artifact,) = completed_files(http, cc, auth, anonymous=False)
        url = f"{cc.base_url}/api/storage/v1/artifacts/{artifact['artifactId']}/file"
        answers = [http.get(url, headers=auth) for _ in range(3)]
        cc.expire_artifacts()
        expired = http.get(url, headers=auth)

    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["retry-after"] == "3"
    assert expired.status_code == 410
    assert "no longer available" in expired.json()["detail"]


def test_cc_unknown_project_is_404(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        auth = cc_auth(http, cc)
        base = f"{cc.base_url}/api/storefront/v1/projects"
        assert http.get(f"{base}/999/processing-results", headers=auth).status_code == 404
        assert http.get(f"{base}/abc/processing-results", headers=auth).status_code == 404
        assert http.post(f"{base}/999/restart-processing", headers=auth).status_code == 404


def test_chili_returns_the_same_token_until_shortly_before_it_expires(http: httpx.Client) -> None:
    clock = ManualClock()
    with ChiliSandbox(token_ttl_s=7200, clock=clock) as chili:
        first = http.post(chili.token_url, json=CHILI_TOKEN_FIELDS).json()
        clock.advance(3000)
        again = http.post(chili.token_url, json=CHILI_TOKEN_FIELDS).json()
        clock.advance(700)  # 3500 s left: inside the last hour, a new token
        renewed = http.post(chili.token_url, json=CHILI_TOKEN_FIELDS).json()

    assert again["access_token"] == first["access_token"]
    assert (first["expires_in"], again["expires_in"]) == (7200, 4200)
    assert renewed["access_token"] != first["access_token"]
    assert renewed["expires_in"] == 7200


def test_the_cc_token_endpoint_issues_a_fresh_token_every_time(http: httpx.Client) -> None:
    with CustomersCanvasSandbox() as cc:
        tokens = {cc_auth(http, cc)["Authorization"] for _ in range(2)}
    assert len(tokens) == 2


# -- the renders show what they were sent ----------------------------------------------------


def pdf_text(data: bytes) -> str:
    return str(pypdf.PdfReader(io.BytesIO(data), strict=True).pages[0].extract_text())


def test_a_chili_render_shows_its_template_and_variables(http: httpx.Client) -> None:
    with ChiliSandbox(polls_until_done=0) as chili:
        auth = chili_auth(http, chili)
        variables = [{"Headline": "Happy 40th, Sam!", "Colour": "teal"}]
        task_id = start_task(http, chili, auth, templateId="poster-a2", variables=variables)
        done = http.get(f"{chili.environment_url}/output/tasks/{task_id}", headers=auth)
        download = http.get(done.json()["links"]["download"], headers=auth)

    text = pdf_text(download.content)
    assert f"CHILI GraFx output task {task_id}" in text
    assert "environment printflow-sandbox, template poster-a2" in text
    assert "output settings print-pdf (pdf)" in text
    assert "Headline: Happy 40th, Sam!" in text and "Colour: teal" in text


def test_a_canvas_render_shows_the_order_line_item_and_personalisation(
    http: httpx.Client,
) -> None:
    with CustomersCanvasSandbox() as cc:
        (project_id,) = cc.add_order(
            storefront_id=42,
            order_id="7311",
            line_items=[Pipeline.completes(after_polls=0)],
            line_item_ids=["412"],
            line_item_names=["Birthday mug"],
            personalisations=[{"Name": "Sam", "Message": "Happy 40th, Sam!"}],
        )
        auth = cc_auth(http, cc)
        project = f"{cc.base_url}/api/storefront/v1/projects/{project_id}"
        (detail,) = http.get(f"{project}/processing-results", headers=auth).json()[
            "outputFileDetails"
        ]
        file = http.get(
            f"{cc.base_url}/api/storage/v1/artifacts/{detail['artifactId']}/file",
            headers=auth,
        )

    text = pdf_text(file.content)
    assert f"Customer's Canvas project {project_id}" in text
    assert "order 7311" in text and "line item 412 (#1): Birthday mug" in text
    assert "Message: Happy 40th, Sam!" in text and "Name: Sam" in text


def test_canvas_artifact_ids_are_not_chili_task_ids(http: httpx.Client) -> None:
    with ChiliSandbox() as chili, CustomersCanvasSandbox() as cc:
        task_id = start_task(http, chili, chili_auth(http, chili))
        (project_id,) = cc.add_order(
            storefront_id=42, order_id="1", line_items=[Pipeline.completes(after_polls=0)]
        )
        auth = cc_auth(http, cc)
        project = f"{cc.base_url}/api/storefront/v1/projects/{project_id}"
        (detail,) = http.get(f"{project}/processing-results", headers=auth).json()[
            "outputFileDetails"
        ]

    assert chili.behaviour.seed == cc.behaviour.seed
    assert detail["artifactId"] != task_id
