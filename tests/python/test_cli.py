"""The command line (fastreq.cli), driven as users run it: ``python -m
fastreq ...`` in a subprocess with the test environment (PYTHONPATH,
FASTREQ_LIBRARY), against the local test server."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from conftest import PYTHON_DIR

JSON_BODY = (b'{"id":12345,"name":"fastreq","description":"fixed JSON document for benchmarks","active":true,'
             b'"score":98.6,"tags":["http","client","bench"],"owner":{"login":"fastreq","id":1},"items":[1,2,3,4,5]}')


def cli_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PYTHON_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_cli(*args: str, input: Optional[bytes] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastreq", *args], input=input, capture_output=True,
                          env=cli_env(), timeout=timeout)


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fastreq", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env())


def records(path: Path) -> List[dict]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the output ends in a torn line"
    return [json.loads(line) for line in data.splitlines()]


def by_index(recs: List[dict]) -> Dict[int, dict]:
    out: Dict[int, dict] = {}
    for r in recs:
        assert r["index"] not in out, f"index {r['index']} recorded twice"
        out[r["index"]] = r
    return out


def write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the job ended (exit {proc.returncode}) before writing {n} records: "
                                 f"{proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.02)
    raise AssertionError(f"fewer than {n} records after {timeout} s")


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- fetch ---------------------------------------------------------------------


def _ten_thousand(server, tmp_path: Path) -> Path:
    """10,000 requests: /x/echo?i=N, with /status/404 and /status/201 mixed in."""
    lines = []
    for i in range(10_000):
        if i % 97 == 0:
            lines.append(server.url(f"/status/404?i={i}"))
        elif i % 89 == 0:
            lines.append(server.url(f"/status/201?i={i}"))
        else:
            lines.append(server.url(f"/x/echo?i={i}"))
    return write_lines(tmp_path / "urls.txt", lines)


def _expected_status(i: int) -> int:
    return 404 if i % 97 == 0 else 201 if i % 89 == 0 else 200


def test_fetch_10k_urls_to_jsonl(server, tmp_path):
    urls = _ten_thousand(server, tmp_path)
    out = tmp_path / "out.jsonl"
    p = run_cli("fetch", str(urls), "-o", str(out), "-c", "64", "--body", "json")
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index(records(out))
    assert sorted(recs) == list(range(10_000))
    for i, r in recs.items():
        assert r["error"] is None, r
        assert r["status"] == _expected_status(i), r
        assert r["url"].endswith(f"i={i}")
        assert r["final_url"] == r["url"]
        assert r["attempts"] == 1 and r["elapsed"] > 0 and r["http_version"].startswith("HTTP/")
        if r["status"] == 200:
            assert r["body"]["query"]["i"] == [str(i)]
            assert r["headers"]["content-type"].startswith("application/json")
            assert r["size"] > 0
    summary = p.stderr.decode()
    assert "10,000 requests" in summary and "200: " in summary and "404: " in summary and "201: " in summary


def test_fetch_10k_urls_to_parquet(server, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    urls = _ten_thousand(server, tmp_path)
    out = tmp_path / "out.parquet"
    p = run_cli("fetch", str(urls), "-o", str(out), "-c", "64", "--chunk-size", "3000")
    assert p.returncode == 0, p.stderr.decode()
    table = pq.read_table(out)
    assert table.num_rows == 10_000
    rows = table.to_pydict()
    assert sorted(rows["index"]) == list(range(10_000))
    for i, status, body, err, url in zip(rows["index"], rows["status"], rows["body"], rows["error_kind"],
                                         rows["url"]):
        assert err is None and status == _expected_status(i) and url.endswith(f"i={i}")
        if status == 200:
            assert json.loads(body)["query"]["i"] == [str(i)]
    headers = dict(rows["headers"][0])
    assert "content-type" in headers


def test_parquet_without_pyarrow_is_a_clear_error(server, tmp_path):
    try:
        import pyarrow  # noqa: F401
        pytest.skip("pyarrow is installed")
    except ImportError:
        pass
    urls = write_lines(tmp_path / "urls.txt", [server.url("/x/json")])
    p = run_cli("fetch", str(urls), "-o", str(tmp_path / "out.parquet"))
    assert p.returncode == 2
    assert b"pip install pyarrow" in p.stderr


def test_sigkill_then_resume_runs_every_request_once(server, tmp_path):
    n = 2000
    urls = write_lines(tmp_path / "urls.txt", [server.url(f"/x/stall?seconds=0.05&i={i}") for i in range(n)])
    out = tmp_path / "out.jsonl"
    proc = start_cli("fetch", str(urls), "-o", str(out), "-c", "40", "--chunk-size", "500")
    try:
        wait_for_lines(out, 200, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first = out.read_bytes()
    done_before = first.count(b"\n")
    assert 200 <= done_before < n, "the kill did not land mid-job"

    p = run_cli("fetch", str(urls), "-o", str(out), "-c", "40", "--chunk-size", "500", "--resume")
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index(records(out))  # raises on a duplicate
    assert sorted(recs) == list(range(n))
    assert all(r["status"] == 200 and r["body"] == "done\n" for r in recs.values())
    assert out.read_bytes().startswith(first[: first.rfind(b"\n") + 1])  # earlier records kept as they were
    assert b"resumed: " in p.stderr


def test_resume_drops_a_torn_last_line(server, tmp_path):
    urls = write_lines(tmp_path / "urls.txt", [server.url(f"/x/json?i={i}") for i in range(10)])
    out = tmp_path / "out.jsonl"
    first = write_lines(tmp_path / "first.txt", [server.url(f"/x/json?i={i}") for i in range(4)])
    assert run_cli("fetch", str(first), "-o", str(out)).returncode == 0
    with open(out, "ab") as fh:  # a record cut short by a kill during its write
        fh.write(b'{"index":4,"error":null,"url":"http://127.0.0.1/x/js')
    p = run_cli("fetch", str(urls), "-o", str(out), "--resume")
    assert p.returncode == 0, p.stderr.decode()
    assert b"torn last line" in p.stderr
    recs = by_index(records(out))
    assert sorted(recs) == list(range(10))
    assert all(r["status"] == 200 and json.loads(r["body"]) == json.loads(JSON_BODY) for r in recs.values())

    # Resuming a finished job runs nothing and changes nothing.
    before = out.read_bytes()
    p = run_cli("fetch", str(urls), "-o", str(out), "--resume")
    assert p.returncode == 0 and out.read_bytes() == before
    assert b"0 requests" in p.stderr


def test_stdin_input_to_stdout(server):
    lines = "".join(server.url(f"/x/echo?i={i}") + "\n" for i in range(50))
    p = run_cli("fetch", "--body", "json", input=lines.encode())  # INPUT and -o default to - (stdin, stdout)
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index([json.loads(line) for line in p.stdout.splitlines()])
    assert sorted(recs) == list(range(50))
    assert all(r["body"]["query"]["i"] == [str(i)] for i, r in recs.items())


def test_json_lines_specs_with_methods_and_bodies(server, tmp_path):
    echo = server.url("/x/echo")
    lines = [
        json.dumps({"url": echo, "method": "POST", "json": {"a": 1}}),
        json.dumps({"url": echo, "method": "PUT", "data": "plain text"}),
        json.dumps({"url": echo, "method": "PATCH", "data": {"f": "v"}}),
        json.dumps({"url": echo, "params": {"p": "1"}, "headers": {"X-Trace": "t1"}, "id": "abc"}),
        json.dumps({"url": echo, "method": "DELETE", "id": 7}),
        json.dumps({"url": echo, "method": "POST", "content_base64": base64.b64encode(b"\x00\x01raw").decode()}),
        echo + "?plain=1",
        "",
        "# a comment",
        json.dumps({"url": echo, "method": "POST", "json": [1, 2], "cookies": {"c": "v"}, "timeout": 30}),
    ]
    urls = write_lines(tmp_path / "specs.jsonl", lines)
    out = tmp_path / "out.jsonl"
    p = run_cli("fetch", str(urls), "-o", str(out), "--body", "json", "-H", "X-All: yes")
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index(records(out))
    assert sorted(recs) == [0, 1, 2, 3, 4, 5, 6, 9]  # index = line number - 1; blank and # lines skipped
    b = {i: r["body"] for i, r in recs.items()}
    assert b[0]["method"] == "POST" and b[0]["json"] == {"a": 1}
    assert b[1]["method"] == "PUT" and b[1]["body"] == "plain text"
    assert b[2]["method"] == "PATCH" and b[2]["form"] == {"f": ["v"]}
    assert b[3]["method"] == "GET" and b[3]["query"] == {"p": ["1"]} and b[3]["headers"]["x-trace"] == ["t1"]
    assert recs[3]["id"] == "abc" and recs[4]["id"] == 7 and "id" not in recs[0]
    assert b[4]["method"] == "DELETE"
    assert b[5]["method"] == "POST" and b[5]["body_size"] == 5
    assert b[6]["method"] == "GET" and b[6]["query"] == {"plain": ["1"]}
    assert b[9]["json"] == [1, 2] and b[9]["headers"]["cookie"] == ["c=v"]
    assert all(body["headers"]["x-all"] == ["yes"] for body in b.values())

    # Flags set the request for the lines that do not: -d makes it a POST.
    urls = write_lines(tmp_path / "plain.txt", [echo, json.dumps({"url": echo, "method": "PUT"})])
    p = run_cli("fetch", str(urls), "-o", str(out), "--body", "json", "-d", "from-flag", "--param", "q=1")
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index(records(out))
    assert recs[0]["body"]["method"] == "POST" and recs[0]["body"]["body"] == "from-flag"
    assert recs[1]["body"]["method"] == "PUT" and recs[1]["body"]["body"] == "from-flag"
    assert recs[0]["body"]["query"] == {"q": ["1"]}


def test_bad_lines_are_reported_skipped_and_exit_1(server, tmp_path):
    good = server.url("/x/json")
    lines = [
        good,                                             # 1
        "not a url",                                      # 2
        '{"url": "' + good + '", "method": ',             # 3: JSON cut short
        '{"url": 5}',                                     # 4
        '{"url": "' + good + '", "bogus": 1}',            # 5
        "ftp://127.0.0.1/file",                           # 6
        good,                                             # 7
        "http://127.0.0.1:99999/x/json",                 # 8: refused by the engine, not by the parser
        '["a list"]',                                     # 9
        good,                                             # 10
        '{"url": "' + good + '", "method": "GE T"}',      # 11
        "http:///no-host",                                # 12
    ]
    urls = write_lines(tmp_path / "urls.txt", lines)
    out = tmp_path / "out.jsonl"
    p = run_cli("fetch", str(urls), "-o", str(out))
    assert p.returncode == 1, p.stderr.decode()
    err = p.stderr.decode()
    for n in (2, 3, 4, 5, 6, 8, 9, 11, 12):
        assert f"input line {n}:" in err, (n, err)
    assert "input line 8: url " in err and "invalid port" in err
    for n in (1, 7, 10):
        assert f"input line {n}:" not in err
    recs = by_index(records(out))
    assert sorted(recs) == list(range(12))
    for i, r in recs.items():
        if i + 1 in (1, 7, 10):
            assert r["error"] is None and r["status"] == 200
        else:
            assert r["error"]["kind"] == "input" and f"input line {i + 1}" in r["error"]["message"]
    assert "bad input lines: 9" in err

    # A resume does not run or report them again.
    p = run_cli("fetch", str(urls), "-o", str(out), "--resume")
    assert p.returncode == 1 and b"input line 2:" not in p.stderr
    assert len(records(out)) == 12


def test_failed_requests_are_recorded_and_exit_1(server, tmp_path):
    dead = f"http://127.0.0.1:{closed_port()}/"
    urls = write_lines(tmp_path / "urls.txt", [server.url("/x/json"), dead])
    out = tmp_path / "out.jsonl"
    p = run_cli("fetch", str(urls), "-o", str(out), "--max-retries", "0")
    assert p.returncode == 1
    recs = by_index(records(out))
    assert recs[0]["error"] is None
    assert recs[1]["error"]["kind"] == "connect" and recs[1]["status"] is None and recs[1]["error"]["message"]
    assert "connect: 1" in p.stderr.decode()


def test_sigint_leaves_valid_jsonl_and_exits_130(server, tmp_path):
    n = 3000
    urls = write_lines(tmp_path / "urls.txt", [server.url(f"/x/stall?seconds=0.1&i={i}") for i in range(n)])
    out = tmp_path / "out.jsonl"
    proc = start_cli("fetch", str(urls), "-o", str(out), "-c", "20")
    try:
        wait_for_lines(out, 40, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr.decode()
    recs = by_index(records(out))  # every line whole, none twice
    assert 40 <= len(recs) < n
    assert all(r["status"] == 200 for r in recs.values())
    assert b"interrupted" in stderr

    # ... and --resume finishes the job.
    p = run_cli("fetch", str(urls), "-o", str(out), "-c", "100", "--resume")
    assert p.returncode == 0, p.stderr.decode()
    assert sorted(by_index(records(out))) == list(range(n))


def test_save_dir_writes_bodies_to_files(server, tmp_path):
    sizes = [0, 1, 1000, 70_000, 300_000]
    urls = write_lines(tmp_path / "urls.txt", [server.url(f"/x/bytes/{n}") for n in sizes])
    d = tmp_path / "files"
    p = run_cli("fetch", str(urls), "--save-dir", str(d), "--name", "{host}/{index}.bin")
    assert p.returncode == 0, p.stderr.decode()
    recs = by_index(records(d / "index.jsonl"))  # the JSONL index beside the files
    assert sorted(recs) == list(range(len(sizes)))
    for i, n in enumerate(sizes):
        r = recs[i]
        f = d / "127.0.0.1" / f"{i}.bin"
        assert r["path"] == str(f) and r["size"] == n and "body" not in r
        assert f.stat().st_size == n
    expected = run_cli("get", "--no-include", server.url("/x/bytes/1000")).stdout
    assert (d / "127.0.0.1" / "2.bin").read_bytes() == expected


def test_usage_errors_exit_2(server, tmp_path):
    urls = write_lines(tmp_path / "urls.txt", [server.url("/x/json")])
    assert run_cli("fetch", str(urls), "--no-such-flag").returncode == 2
    assert run_cli("fetch", str(tmp_path / "missing.txt")).returncode == 2
    p = run_cli("fetch", str(urls), "--resume")  # to stdout
    assert p.returncode == 2 and b"--resume" in p.stderr
    p = run_cli("fetch", str(urls), "-X", "GE T", "-o", str(tmp_path / "o.jsonl"))
    assert p.returncode == 2
    assert run_cli("fetch", str(urls), "-H", "no-colon").returncode == 2
    assert run_cli("fetch", str(urls), "--save-dir", str(tmp_path / "d"), "--name", "{nope}").returncode == 2
    assert run_cli().returncode == 2


# ---- get ------------------------------------------------------------------------


def test_get_prints_like_curl_i(server):
    p = run_cli("get", server.url("/x/json"))
    assert p.returncode == 0, p.stderr.decode()
    head, sep, body = p.stdout.partition(b"\r\n\r\n")
    assert sep and body == JSON_BODY
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"content-type: application/json" in lines
    assert any(line.startswith(b"content-length: ") for line in lines)

    p = run_cli("get", server.url("/status/404"))
    assert p.returncode == 0 and p.stdout.startswith(b"HTTP/1.1 404 Not Found\r\n")

    p = run_cli("get", "-X", "POST", "-d", "hello", "-H", "X-T: 1", server.url("/x/echo"))
    echo = json.loads(p.stdout.partition(b"\r\n\r\n")[2])
    assert echo["method"] == "POST" and echo["body"] == "hello" and echo["headers"]["x-t"] == ["1"]

    p = run_cli("get", "--max-retries", "0", f"http://127.0.0.1:{closed_port()}/")
    assert p.returncode == 1 and p.stdout == b"" and b"connect" in p.stderr


# ---- bench ------------------------------------------------------------------------


def test_bench_prints_figures():
    p = run_cli("bench", "-n", "300", "-c", "8", "--clients", "fastreq,aiohttp,httpx")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    table = out.splitlines()[1:]  # after the line that says what ran
    assert table[0].split()[:2] == ["client", "req/s"]
    row = next(line for line in table if line.split()[:1] == ["fastreq"])
    fields = row.split()
    assert float(fields[1].replace(",", "")) > 0  # req/s
    assert fields[3] == "us" and float(fields[2]) > 0  # CPU per request
    assert "aiohttp" in out and "httpx" in out  # a row each, figures or "not installed"
    p = run_cli("bench", "-n", "200", "-c", "4", "--http2", "--body-size", "5k", "--clients", "fastreq")
    assert p.returncode == 0 and "h2c" in p.stdout.decode()


def test_body_modes(server, tmp_path):
    urls = write_lines(tmp_path / "urls.txt", [server.url("/x/bytes/300"), server.url("/x/json")])
    raw = run_cli("get", "--no-include", server.url("/x/bytes/300")).stdout
    assert len(raw) == 300
    out = tmp_path / "out.jsonl"
    assert run_cli("fetch", str(urls), "-o", str(out), "--body", "base64").returncode == 0
    recs = by_index(records(out))
    assert base64.b64decode(recs[0]["body"]) == raw and base64.b64decode(recs[1]["body"]) == JSON_BODY
    assert run_cli("fetch", str(urls), "-o", str(out), "--body", "json").returncode == 0
    recs = by_index(records(out))
    assert recs[0]["body"] is None and recs[0]["body_text"] and recs[1]["body"] == json.loads(JSON_BODY)
    assert run_cli("fetch", str(urls), "-o", str(out), "--body", "none", "--no-headers").returncode == 0
    recs = by_index(records(out))
    assert all("body" not in r and "headers" not in r and r["size"] in (300, len(JSON_BODY)) for r in recs.values())
