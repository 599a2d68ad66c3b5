"""The local Hub stand-in (tests/hub_server.py) against the real huggingface_hub and transformers clients.

huggingface_hub reads HF_ENDPOINT once, at import, and conftest.py forces HF_HUB_OFFLINE=1 in this process, so the
client side runs in a subprocess pointed at the server; the server side is checked in-process.
"""

import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from hub_server import LocalHub

HEADER = """
import hashlib, json, os, sys
from pathlib import Path
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
api = HfApi()
def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
"""


@pytest.fixture
def hub(tmp_path):
    with LocalHub(tmp_path / "hub_storage") as server:
        yield server


@pytest.fixture
def folder(tmp_path):
    """A JSON file, a text file in a subfolder and a few KB of binary data, as a model folder would hold."""
    root = tmp_path / "to_upload"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": "demo", "hidden_size": 8}))
    (root / "sub" / "notes.txt").write_text("first version\n")
    (root / "weights.bin").write_bytes(bytes(range(256)) * 12 + hashlib.sha256(b"seed").digest() * 8)
    return root


def local_files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sha256s(files):
    return {path: hashlib.sha256(content).hexdigest() for path, content in files.items()}


def run_client(hub, tmp_path, body, **env):
    """Run `body` with the real client in a fresh process; its last stdout line is JSON, returned decoded."""
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "local-token",
           "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "NO_PROXY": "127.0.0.1,localhost", **env}
    script = HEADER + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"client failed:\n{result.stderr[-4000:]}\nroutes: {hub.requests}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def call(hub, method, path, body=None, headers=None):
    """(status, headers, body) of one raw request, without any client library."""
    request = urllib.request.Request(hub.endpoint + path, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def ndjson(*items):
    return b"".join(json.dumps({"key": key, "value": value}).encode() + b"\n" for key, value in items)


def test_create_repo_private_then_exist_ok(hub, tmp_path):
    """exist_ok=True works only if a second create answers 409 with the repo url, as the Hub does."""
    out = run_client(hub, tmp_path, """
        from huggingface_hub.errors import HfHubHTTPError
        first = api.create_repo("org/demo", private=True)
        again = api.create_repo("org/demo", private=True, exist_ok=True)
        try:
            api.create_repo("org/demo")
            status = None
        except HfHubHTTPError as error:
            status = error.response.status_code
        info = api.model_info("org/demo")
        print(json.dumps({"first": first.repo_id, "again": str(again) == str(first), "status": status,
                          "private": info.private, "sha": info.sha, "whoami": api.whoami()["name"]}))
    """)
    assert out == {"first": "org/demo", "again": True, "status": 409, "private": True,
                   "sha": hub.commits("org/demo")[0]["oid"], "whoami": "local-user"}
    assert hub.files("org/demo") == {}


def test_upload_folder_then_download_the_same_bytes(hub, tmp_path, folder):
    """What upload_folder sends is stored as is, listed, and served back by hf_hub_download and snapshot_download."""
    out = run_client(hub, tmp_path, f"""
        api.create_repo("org/demo", private=True)
        commit = api.upload_folder(folder_path={str(folder)!r}, repo_id="org/demo", revision="main",
                                   commit_message="Add the first files", commit_description="three of them")
        files = sorted(api.list_repo_files("org/demo"))
        info = api.model_info("org/demo", files_metadata=True)
        downloads = {{name: sha(hf_hub_download("org/demo", name)) for name in files}}
        snapshot = Path(snapshot_download("org/demo"))
        snapshot_files = {{p.relative_to(snapshot).as_posix(): sha(p) for p in snapshot.rglob("*") if p.is_file()}}
        print(json.dumps({{"oid": commit.oid, "files": files, "sha": info.sha,
                          "siblings": {{s.rfilename: s.size for s in info.siblings}},
                          "downloads": downloads, "snapshot": snapshot_files}}))
    """)
    expected = local_files(folder)
    assert hub.files("org/demo") == expected
    assert out["files"] == sorted(expected)
    assert out["siblings"] == {path: len(content) for path, content in expected.items()}
    assert out["downloads"] == out["snapshot"] == sha256s(expected)
    last = hub.commits("org/demo")[-1]
    assert (last["summary"], last["description"], last["revision"]) == ("Add the first files", "three of them", "main")
    assert out["oid"] == out["sha"] == last["oid"]


def test_upload_to_a_new_branch_leaves_main_untouched(hub, tmp_path, folder):
    """push_to_hub(revision=...) creates the branch first, then commits there; unchanged files make no commit."""
    out = run_client(hub, tmp_path, f"""
        api.create_repo("org/demo")
        api.upload_folder(folder_path={str(folder)!r}, repo_id="org/demo", commit_message="main files")
        api.create_branch("org/demo", branch="dev")
        (Path({str(folder)!r}) / "sub" / "notes.txt").write_text("dev version\\n")
        api.upload_folder(folder_path={str(folder)!r}, repo_id="org/demo", revision="dev", commit_message="dev notes")
        again = api.upload_folder(folder_path={str(folder)!r}, repo_id="org/demo", revision="dev",
                                  commit_message="nothing changed")
        notes = {{rev: Path(hf_hub_download("org/demo", "sub/notes.txt", revision=rev)).read_text()
                  for rev in ("main", "dev")}}
        refs = {{ref.name: ref.target_commit for ref in api.list_repo_refs("org/demo").branches}}
        print(json.dumps({{"notes": notes, "refs": refs, "again": again.oid,
                          "dev_files": sorted(api.list_repo_files("org/demo", revision="dev"))}}))
    """)
    assert out["notes"] == {"main": "first version\n", "dev": "dev version\n"}
    assert hub.files("org/demo", "dev")["sub/notes.txt"] == b"dev version\n"
    assert hub.files("org/demo", "main")["sub/notes.txt"] == b"first version\n"
    assert [(c["summary"], c["revision"]) for c in hub.commits("org/demo")] == [
        ("initial commit", "main"), ("main files", "main"), ("dev notes", "dev")]
    assert out["refs"] == hub.refs("org/demo") and out["again"] == out["refs"]["dev"]
    assert out["dev_files"] == sorted(local_files(folder))


def test_missing_file_repo_and_revision_raise_the_hub_errors(hub, tmp_path):
    """Code under test tells these cases apart by exception class, which the client picks from X-Error-Code."""
    out = run_client(hub, tmp_path, """
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
        api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id=api.create_repo("org/demo").repo_id,
                        commit_message="config")
        cases = {
            "file": lambda: hf_hub_download("org/demo", "missing.json"),
            "repo_download": lambda: hf_hub_download("org/absent", "config.json"),
            "repo_info": lambda: api.model_info("org/absent"),
            "revision": lambda: hf_hub_download("org/demo", "config.json", revision="no-such-branch"),
        }
        expected = {"file": EntryNotFoundError, "repo_download": RepositoryNotFoundError,
                    "repo_info": RepositoryNotFoundError, "revision": RevisionNotFoundError}
        raised = {}
        for name, case in cases.items():
            try:
                case()
                raised[name] = None
            except Exception as error:
                raised[name] = isinstance(error, expected[name]) and type(error).__name__
        print(json.dumps({"raised": raised, "exists": [api.file_exists("org/demo", "config.json"),
                          api.file_exists("org/demo", "missing.json"), api.repo_exists("org/absent")]}))
    """)
    assert out["raised"] == {"file": "RemoteEntryNotFoundError", "repo_download": "RepositoryNotFoundError",
                             "repo_info": "RepositoryNotFoundError", "revision": "RevisionNotFoundError"}
    assert out["exists"] == [True, False, False]


def test_transformers_push_to_hub_and_from_pretrained(hub, tmp_path):
    """The point of the server: a model pushed with push_to_hub loads back identical with from_pretrained."""
    out = run_client(hub, tmp_path, """
        import torch
        from transformers import AutoModel, BertConfig, BertModel
        torch.manual_seed(0)
        config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=16)
        model = BertModel(config)
        model.push_to_hub("org/tiny-bert", commit_message="Upload tiny BERT", private=True)
        loaded = AutoModel.from_pretrained("org/tiny-bert")
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
        print(json.dumps({"same": same, "class": type(loaded).__name__}))
    """, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    assert out == {"same": True, "class": "BertModel"}
    assert {"config.json", "model.safetensors", "README.md"} <= set(hub.files("org/tiny-bert"))
    assert hub.commits("org/tiny-bert")[-1]["summary"] == "Upload tiny BERT"


def test_raw_commits_and_unsupported_requests_fail_clearly(hub):
    """LFS, stale parents and unknown routes must fail loudly rather than look like a Hub quirk."""
    hub.create_repo("org/raw")
    head = hub.commits("org/raw")[-1]["oid"]
    content = base64.b64encode(b"hello").decode()
    status, _, body = call(hub, "POST", "/api/models/org/raw/commit/main", ndjson(
        ("header", {"summary": "raw commit", "description": "", "parentCommit": head}),
        ("file", {"content": content, "path": "a/b.txt", "encoding": "base64"})))
    assert status == 200 and json.loads(body)["commitOid"] == hub.commits("org/raw")[-1]["oid"]
    assert hub.files("org/raw") == {"a/b.txt": b"hello"}

    status, _, body = call(hub, "POST", "/api/models/org/raw/commit/main", ndjson(
        ("header", {"summary": "stale", "parentCommit": head}), ("deletedFolder", {"path": "a/"})))
    assert status == 412 and hub.files("org/raw") == {"a/b.txt": b"hello"}

    status, _, body = call(hub, "POST", "/api/models/org/raw/commit/main", ndjson(
        ("header", {"summary": "big"}), ("lfsFile", {"path": "w.bin", "algo": "sha256", "oid": "0" * 64})))
    assert status == 400 and "LFS" in json.loads(body)["error"]

    status, headers, _ = call(hub, "HEAD", "/org/raw/resolve/main/a/missing.txt")
    assert (status, headers["X-Error-Code"]) == (404, "EntryNotFound")
    assert headers["X-Repo-Commit"] == hub.refs("org/raw")["main"]
    status, headers, body = call(hub, "GET", "/org/raw/resolve/main/a/b.txt", headers={"Range": "bytes=1-"})
    assert (status, body, headers["ETag"].strip('"')) == (206, b"ello", hashlib.sha1(b"blob 5\0hello").hexdigest())

    status, _, body = call(hub, "GET", "/api/models/org/raw/discussions")
    assert status == 404 and "/api/models/org/raw/discussions" in json.loads(body)["error"]
    assert [c["summary"] for c in hub.commits("org/raw")] == ["initial commit", "raw commit"]


def test_repositories_survive_a_restart(tmp_path):
    """Everything lives on disk, so the CLI can serve a folder that an earlier test session filled."""
    with LocalHub(tmp_path / "storage") as hub:
        hub.create_repo("org/kept")
        call(hub, "POST", "/api/models/org/kept/commit/release", ndjson(
            ("header", {"summary": "on a new branch"}),
            ("file", {"content": base64.b64encode(b"1").decode(), "path": "x.txt", "encoding": "base64"})))
    with LocalHub(tmp_path / "storage") as hub:
        assert hub.files("org/kept", "release") == {"x.txt": b"1"} and hub.files("org/kept") == {}
        assert hub.commits("org/kept")[-1]["revision"] == "release"
        status, _, body = call(hub, "GET", "/api/models/org/kept/revision/release")
        assert status == 200 and json.loads(body)["siblings"] == [{"rfilename": "x.txt"}]


def test_cli_prints_the_endpoint_and_stops_on_ctrl_c(tmp_path):
    """`python tests/hub_server.py --storage DIR` is how a person serves a folder by hand."""
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("hub_server.py")),
                                "--storage", str(tmp_path / "cli"), "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = re.search(r"http://127\.0\.0\.1:\d+", process.stdout.readline()).group(0)
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(endpoint + "/api/whoami-v2") as response:
            assert json.loads(response.read())["auth"]["accessToken"]["role"] == "write"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0  # a liveness bound, generous for a loaded machine
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
