"""A small local stand-in for the Hugging Face Hub HTTP API, for tests that push and download repositories.

Start it with ``with LocalHub(storage_dir) as hub:`` and point a client process at it with
``HF_ENDPOINT=hub.endpoint`` (huggingface_hub reads ``HF_ENDPOINT`` once, at import time), or serve a folder by hand
with ``python tests/hub_server.py --storage DIR [--port N]``. Standard library only.

Supported (model, dataset and space repositories, ids ``namespace/name``; any ``Authorization`` header is accepted,
privacy is recorded but never enforced):

* ``GET /api/whoami-v2`` (user ``local-user`` with a write token), ``POST /api/validate-yaml`` (always valid).
* ``POST /api/repos/create`` (409 when it exists, which ``exist_ok=True`` relies on), ``DELETE /api/repos/delete``,
  ``PUT /api/{type}s/{repo}/settings`` (visibility only).
* ``GET /api/{type}s/{repo}[/revision/{rev}]`` (repo info: sha, siblings, ...; ``?blobs=true`` adds sizes).
* ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``?recursive=true``), ``POST .../paths-info/{rev}``,
  ``GET .../refs``, ``GET .../commits/{rev}``.
* ``POST .../preupload/{rev}`` (every file is "regular", with the "oid" of the file already at that path so unchanged
  files are skipped by the client) and ``POST .../commit/{rev}`` (NDJSON "header", "file" (base64), "deletedFile",
  "deletedFolder"; ``?create_pr=1`` opens ``refs/pr/N``; ``parentCommit`` must be the branch head, else 412).
  Committing to a branch that does not exist yet creates it from ``main`` (the real Hub refuses, which is why
  transformers' ``push_to_hub(revision=...)`` calls ``create_branch`` first).
* ``POST/DELETE .../branch/{name}``, ``POST .../tag/{rev}``, ``DELETE .../tag/{name}``.
* ``HEAD``/``GET /[{type}s/]{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag`` (the git blob sha1,
  quoted), ``Content-Length`` and single ``Range`` requests. ``rev`` is a branch, tag, ``refs/pr/N`` or a commit id
  (full, or a unique prefix of 7+ characters).
* Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and ``X-Error-Message``
  like the Hub, so the client raises its usual exception classes. Any other route answers 404 naming the route.

Not supported: Git LFS and Xet storage (an "lfsFile" commit line is answered 400; file content always travels base64
inside the commit, so keep test files small), ``.gitignore`` handling on preupload, pull-request discussions
(``POST .../discussions``), gated repos, pagination (one page holds everything) and ``expand`` details.

Client side: ``HF_ENDPOINT=<hub.endpoint>``, ``HF_HUB_OFFLINE=0``, any ``HF_TOKEN`` (``whoami`` needs one locally) and
``HF_HUB_DISABLE_XET=1``. With ``hf_xet`` installed and Xet enabled, ``upload_folder`` takes the Xet pipeline,
which still works here (every file is "regular") except with ``create_pr=True``, where it opens the pull request
through the unsupported discussions route. Downloads never use Xet since no Xet headers are sent.

Storage: ``{storage}/{type}s/{namespace}/{name}/`` holds ``repo.json`` (refs, tags, commit records),
``blobs/{git blob sha1}`` (file contents, deduplicated) and ``trees/{commit}.json`` (path -> blob of each commit).
A new repository starts with an empty "initial commit" on ``main``. The state lives on disk only, so a server
restarted on the same folder serves the same repositories.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

USER = "local-user"
DEFAULT_BRANCH = "main"
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
COMMIT_RE = re.compile(r"^[0-9a-f]{7,40}$")
TRUE_VALUES = {"1", "true", "True", "yes"}


class HubError(Exception):
    """An HTTP error answered as JSON, with the Hub's ``X-Error-Code`` header when one applies."""

    def __init__(self, status, message, code=None, headers=None, extra=None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}


def _now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_oid(content):
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _check_name(name, what="repository name"):
    if not isinstance(name, str) or not NAME_RE.match(name) or "--" in name or ".." in name:
        raise HubError(400, f"Invalid {what}: {name!r} (letters, digits, '-', '_', '.'; no '--' or '..')")
    return name


def _check_path(path):
    parts = path.split("/") if isinstance(path, str) else [""]
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubError(400, f"Invalid path in repository: {path!r}")
    return path


def _check_branch(branch):
    if (not branch or branch.startswith(("/", "refs/")) or branch.endswith(("/", ".lock")) or ".." in branch
            or any(c in branch for c in " ~^:?*[\\") or (len(branch) == 40 and COMMIT_RE.fullmatch(branch))):
        raise HubError(400, f"Invalid branch name: {branch!r}")
    return branch


def _write_atomic(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Store:
    """The repositories on disk. Every method runs under one lock; blobs are immutable once written."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()

    def repo_dir(self, repo_type, repo_id):
        namespace, name = repo_id.split("/")
        return self.root / f"{repo_type}s" / namespace / name

    def load(self, repo_type, repo_id):
        parts = repo_id.split("/") if isinstance(repo_id, str) else []
        if len(parts) != 2 or not all(map(NAME_RE.match, parts)):
            raise HubError(404, f"Repository not found: {repo_id!r}", "RepoNotFound")
        meta = self.repo_dir(repo_type, repo_id) / "repo.json"
        if not meta.is_file():
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return json.loads(meta.read_text())

    def save(self, repo):
        path = self.repo_dir(repo["type"], repo["id"]) / "repo.json"
        _write_atomic(path, json.dumps(repo, indent=1).encode())

    def exists(self, repo_type, repo_id):
        return (self.repo_dir(repo_type, repo_id) / "repo.json").is_file()

    def create(self, repo_type, repo_id, private=False):
        with self.lock:
            if self.exists(repo_type, repo_id):
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
            date = _now()
            repo = {"id": repo_id, "type": repo_type, "private": bool(private), "createdAt": date,
                    "_id": uuid.uuid4().hex[:24], "refs": {}, "tags": {}, "pullRequests": [], "commits": {},
                    "log": []}
            self.add_commit(repo, DEFAULT_BRANCH, None, {}, "initial commit", "")
            self.save(repo)
            return repo

    def delete(self, repo_type, repo_id):
        with self.lock:
            self.load(repo_type, repo_id)
            shutil.rmtree(self.repo_dir(repo_type, repo_id))

    def resolve(self, repo, revision):
        """Commit id of a branch, tag, ``refs/heads|tags|pr/...`` name or (prefix of a) commit id."""
        revision = revision or DEFAULT_BRANCH
        for prefix, table in (("refs/heads/", "refs"), ("refs/tags/", "tags")):
            if revision.startswith(prefix) and revision[len(prefix):] in repo[table]:
                return repo[table][revision[len(prefix):]]
        if revision in repo["refs"]:
            return repo["refs"][revision]
        if revision in repo["tags"]:
            return repo["tags"][revision]
        if COMMIT_RE.fullmatch(revision):
            matches = [oid for oid in repo["commits"] if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def tree(self, repo, commit):
        return json.loads((self.repo_dir(repo["type"], repo["id"]) / "trees" / f"{commit}.json").read_text())

    def blob_path(self, repo, oid):
        return self.repo_dir(repo["type"], repo["id"]) / "blobs" / oid

    def blob_size(self, repo, oid):
        return self.blob_path(repo, oid).stat().st_size

    def write_blob(self, repo, content):
        oid = git_blob_oid(content)
        path = self.blob_path(repo, oid)
        if not path.exists():
            _write_atomic(path, content)
        return oid

    def add_commit(self, repo, ref, parent, tree, summary, description):
        seed = json.dumps([parent, tree, summary, description, time.time(), uuid.uuid4().hex]).encode()
        oid = hashlib.sha1(seed).hexdigest()
        _write_atomic(self.repo_dir(repo["type"], repo["id"]) / "trees" / f"{oid}.json",
                      json.dumps(tree, sort_keys=True).encode())
        repo["commits"][oid] = {"oid": oid, "parent": parent, "summary": summary, "description": description,
                                "revision": ref, "date": _now()}
        repo["log"].append(oid)
        repo["refs"][ref] = oid
        return oid


def _folder_oid(tree, folder):
    lines = [f"{path} {oid}" for path, oid in sorted(tree.items()) if path.startswith(folder + "/")]
    return hashlib.sha1("\n".join(lines).encode()).hexdigest()


def _entries(store, repo, tree, base, recursive):
    """Tree listing of folder ``base`` ('' for the root): folders then files, like ``/api/.../tree``."""
    prefix = base + "/" if base else ""
    if base and not any(path.startswith(prefix) for path in tree):
        raise HubError(404, f"Folder not found in repository: {base}", "EntryNotFound")
    files, folders = [], set()
    for path, oid in sorted(tree.items()):
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix):].split("/")
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            folders.add(prefix + "/".join(parts[:depth]))
        if recursive or len(parts) == 1:
            files.append({"type": "file", "oid": oid, "size": store.blob_size(repo, oid), "path": path})
    dirs = [{"type": "directory", "oid": _folder_oid(tree, folder), "path": folder} for folder in sorted(folders)]
    return dirs + files


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 60

    # -- plumbing --------------------------------------------------------------------------------------------

    @property
    def hub(self):
        return self.server.hub

    @property
    def store(self):
        return self.server.hub.store

    def log_message(self, format, *args):
        if self.server.hub.verbose:
            super().log_message(format, *args)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", headers=None, content_type="application/json"):
        head = self.command == "HEAD"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if not any(k.lower() == "content-length" for k in (headers or {})):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)
        self.hub.requests.append((self.command, self.path, status))

    def _json(self, data, status=200, headers=None):
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, error):
        headers = dict(error.headers)
        headers["X-Error-Message"] = error.message.encode("ascii", "replace").decode().replace("\n", " ")
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json({**error.extra, "error": error.message}, error.status, headers)

    def _handle(self):
        try:
            self.body = self._read_body()
            url = urlsplit(self.path)
            self.query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            segments = [unquote(s) for s in url.path.split("/")[1:]]
            while segments and segments[-1] == "":
                segments.pop()
            self._route(segments)
        except HubError as error:
            self._error(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - a server bug must reach the client as a readable 500
            traceback.print_exc()
            self._error(HubError(500, f"LocalHub internal error: {type(error).__name__}: {error}"))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def _json_body(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError as error:
            raise HubError(400, f"Request body is not valid JSON: {error}") from None

    def _base_url(self):
        return f"http://{self.headers.get('Host') or self.hub.endpoint[len('http://'):]}"

    def _repo_url(self, repo):
        return f"{self._base_url()}/{URL_PREFIXES[repo['type']]}{repo['id']}"

    # -- routing ---------------------------------------------------------------------------------------------

    def _route(self, s):
        method = self.command
        if s[:1] == ["api"]:
            api = s[1:]
            if api == ["whoami-v2"] and method in ("GET", "HEAD"):
                return self._whoami()
            if api == ["repos", "create"] and method == "POST":
                return self._create_repo()
            if api == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo()
            if api == ["validate-yaml"] and method == "POST":
                return self._json({"errors": [], "warnings": []})
            if len(api) >= 3 and api[0] in REPO_TYPES:
                return self._repo_api(REPO_TYPES[api[0]], f"{api[1]}/{api[2]}", api[3:])
        else:
            repo_type, rest = "model", s
            if rest[:1] and rest[0] in REPO_TYPES and len(rest) > 3 and rest[3] == "resolve":
                repo_type, rest = REPO_TYPES[rest[0]], rest[1:]
            if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
                revision, path = self._split_revision(rest[3:])
                return self._resolve(repo_type, f"{rest[0]}/{rest[1]}", revision, path)
        raise HubError(404, f"Route not implemented by LocalHub: {method} {self.path}")

    @staticmethod
    def _split_revision(parts):
        """(revision, rest) from path segments; an unquoted ``refs/pr/1`` spans three segments."""
        if len(parts) >= 3 and parts[0] == "refs" and parts[1] in ("pr", "heads", "tags"):
            return "/".join(parts[:3]), "/".join(parts[3:])
        return (parts[0] if parts else DEFAULT_BRANCH), "/".join(parts[1:])

    def _repo_api(self, repo_type, repo_id, rest):
        method, action = self.command, rest[0] if rest else None
        args = rest[1:]
        routes = {
            (None, "GET"): lambda: self._info(repo_type, repo_id, DEFAULT_BRANCH),
            ("revision", "GET"): lambda: self._info(repo_type, repo_id, "/".join(args)),
            ("tree", "GET"): lambda: self._tree(repo_type, repo_id, *self._split_revision(args)),
            ("paths-info", "POST"): lambda: self._paths_info(repo_type, repo_id, "/".join(args) or DEFAULT_BRANCH),
            ("refs", "GET"): lambda: self._refs(repo_type, repo_id),
            ("commits", "GET"): lambda: self._commits(repo_type, repo_id, "/".join(args) or DEFAULT_BRANCH),
            ("preupload", "POST"): lambda: self._preupload(repo_type, repo_id, "/".join(args) or DEFAULT_BRANCH),
            ("commit", "POST"): lambda: self._commit(repo_type, repo_id, "/".join(args) or DEFAULT_BRANCH),
            ("branch", "POST"): lambda: self._create_branch(repo_type, repo_id, "/".join(args)),
            ("branch", "DELETE"): lambda: self._delete_branch(repo_type, repo_id, "/".join(args)),
            ("tag", "POST"): lambda: self._create_tag(repo_type, repo_id, "/".join(args) or DEFAULT_BRANCH),
            ("tag", "DELETE"): lambda: self._delete_tag(repo_type, repo_id, "/".join(args)),
            ("settings", "PUT"): lambda: self._settings(repo_type, repo_id),
        }
        route = routes.get((action, "GET" if method == "HEAD" else method))
        if route is None:
            raise HubError(404, f"Route not implemented by LocalHub: {method} {self.path}")
        with self.store.lock:
            return route()

    # -- account and repositories ----------------------------------------------------------------------------

    def _whoami(self):
        self._json({
            "type": "user", "id": "0" * 24, "name": USER, "fullname": "Local User", "email": None,
            "emailVerified": False, "canPay": False, "isPro": False, "periodEnd": None, "avatarUrl": "", "orgs": [],
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": "local-token", "role": "write",
                                     "createdAt": "2024-01-01T00:00:00.000Z"}},
        })

    def _repo_target(self, body):
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        namespace = body.get("organization") or body.get("namespace") or USER
        name = body.get("name")
        if isinstance(name, str) and "/" in name and not (body.get("organization") or body.get("namespace")):
            namespace, name = name.split("/", 1)
        return repo_type, f"{_check_name(namespace, 'namespace')}/{_check_name(name)}"

    def _create_repo(self):
        body = self._json_body()
        repo_type, repo_id = self._repo_target(body)
        private = bool(body.get("private")) or body.get("visibility") == "private"
        try:
            repo = self.store.create(repo_type, repo_id, private)
        except HubError as error:
            if error.status == 409:  # the client reads "url" from this answer too when exist_ok=True
                error.extra = {"url": self._repo_url({"type": repo_type, "id": repo_id})}
            raise
        self._json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self):
        repo_type, repo_id = self._repo_target(self._json_body())
        self.store.delete(repo_type, repo_id)
        self._json({})

    def _settings(self, repo_type, repo_id):
        body, repo = self._json_body(), self.store.load(repo_type, repo_id)
        if "private" in body:
            repo["private"] = bool(body["private"])
        if "visibility" in body:
            repo["private"] = body["visibility"] == "private"
        self.store.save(repo)
        self._json({})

    def _info(self, repo_type, repo_id, revision):
        repo = self.store.load(repo_type, repo_id)
        commit = self.store.resolve(repo, revision)
        blobs = self.query.get("blobs") in TRUE_VALUES
        siblings = []
        for path, oid in sorted(self.store.tree(repo, commit).items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=self.store.blob_size(repo, oid), blobId=oid)
            siblings.append(sibling)
        info = {"_id": repo["_id"], "id": repo_id, "author": repo_id.split("/")[0], "sha": commit,
                "lastModified": repo["commits"][commit]["date"], "createdAt": repo["createdAt"],
                "private": repo["private"], "disabled": False, "gated": False, "tags": [], "downloads": 0,
                "likes": 0, "siblings": siblings}
        if repo_type == "model":
            info["modelId"] = repo_id
        self._json(info)

    # -- reading trees ---------------------------------------------------------------------------------------

    def _tree(self, repo_type, repo_id, revision, path):
        repo = self.store.load(repo_type, repo_id)
        tree = self.store.tree(repo, self.store.resolve(repo, revision))
        recursive = self.query.get("recursive") in TRUE_VALUES
        self._json(_entries(self.store, repo, tree, path.strip("/"), recursive))

    def _paths_info(self, repo_type, repo_id, revision):
        repo = self.store.load(repo_type, repo_id)
        tree = self.store.tree(repo, self.store.resolve(repo, revision))
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = self._json_body().get("paths", [])
        else:
            paths = parse_qs(self.body.decode(), keep_blank_values=True).get("paths", [])
        out = []
        for path in [paths] if isinstance(paths, str) else paths:
            path = path.strip("/")
            if path in tree:
                out.append({"type": "file", "oid": tree[path], "size": self.store.blob_size(repo, tree[path]),
                            "path": path})
            elif path and any(p.startswith(path + "/") for p in tree):
                out.append({"type": "directory", "oid": _folder_oid(tree, path), "path": path})
        self._json(out)

    def _refs(self, repo_type, repo_id):
        repo = self.store.load(repo_type, repo_id)
        branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                    for n, c in repo["refs"].items() if not n.startswith("refs/")]
        prs = [{"name": n, "ref": n, "targetCommit": c} for n, c in repo["refs"].items() if n.startswith("refs/pr/")]
        tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in repo["tags"].items()]
        self._json({"branches": branches, "converts": [], "tags": tags, "pullRequests": prs})

    def _commits(self, repo_type, repo_id, revision):
        repo = self.store.load(repo_type, repo_id)
        oid, out = self.store.resolve(repo, revision), []
        while oid:
            commit = repo["commits"][oid]
            out.append({"id": oid, "title": commit["summary"], "message": commit["description"],
                        "date": commit["date"], "authors": [{"user": USER, "avatar": ""}]})
            oid = commit["parent"]
        self._json(out)

    # -- writing ---------------------------------------------------------------------------------------------

    def _base_tree(self, repo, revision, create_pr=False):
        """Head commit and tree a commit to ``revision`` starts from (a new branch starts from main)."""
        try:
            head = self.store.resolve(repo, revision)
        except HubError:
            if create_pr:
                raise
            _check_branch(revision)
            head = repo["refs"][DEFAULT_BRANCH]
        return head, self.store.tree(repo, head)

    def _preupload(self, repo_type, repo_id, revision):
        repo = self.store.load(repo_type, repo_id)
        create_pr = self.query.get("create_pr") in TRUE_VALUES
        head, tree = self._base_tree(repo, revision, create_pr)
        files = self._json_body().get("files")
        if not isinstance(files, list):
            raise HubError(400, "Preupload body must hold a 'files' list")
        self._json({"commitOid": head, "files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": tree.get(f["path"])}
            for f in files
        ]})

    def _parse_ndjson(self):
        lines = []
        for number, line in enumerate(self.body.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:
                raise HubError(400, f"Commit payload line {number} is not JSON: {error}") from None
            if not isinstance(item, dict) or "key" not in item or not isinstance(item.get("value"), dict):
                raise HubError(400, f"Commit payload line {number} must be {{'key': ..., 'value': {{...}}}}")
            lines.append(item)
        if not lines or lines[0]["key"] != "header":
            raise HubError(400, "Commit payload must start with a 'header' line")
        return lines[0]["value"], lines[1:]

    def _commit(self, repo_type, repo_id, revision):
        repo = self.store.load(repo_type, repo_id)
        header, operations = self._parse_ndjson()
        summary = header.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            raise HubError(400, "Commit summary is required")
        create_pr = self.query.get("create_pr") in TRUE_VALUES
        if revision in repo["tags"] or revision.startswith("refs/tags/") or (
                revision not in repo["refs"] and COMMIT_RE.fullmatch(revision) and not create_pr):
            raise HubError(400, f"Cannot commit to {revision!r}: commits go to a branch (or use create_pr=1)")
        head, base_tree = self._base_tree(repo, revision, create_pr)
        parent_commit = header.get("parentCommit")
        if parent_commit and not head.startswith(parent_commit):
            raise HubError(412, f"A commit has happened since {parent_commit}: the head of {revision} is {head}")

        tree, contents = dict(base_tree), {}
        for item in operations:
            key, value = item["key"], item["value"]
            if key == "file":
                path = _check_path(value.get("path"))
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding for {path}: {value.get('encoding')!r}")
                try:
                    contents[path] = base64.b64decode(value.get("content", ""), validate=True)
                except ValueError:
                    raise HubError(400, f"Invalid base64 content for {path}") from None
                tree[path] = None
            elif key == "lfsFile":
                raise HubError(400, f"LocalHub does not support LFS/Xet files ({value.get('path')}): the preupload "
                                    "route answers 'regular' for every file; set HF_HUB_DISABLE_XET=1 on the client")
            elif key == "deletedFile":
                path = _check_path(value.get("path"))
                if path not in tree:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del tree[path]
                contents.pop(path, None)
            elif key == "deletedFolder":
                folder = _check_path(str(value.get("path", "")).rstrip("/")) + "/"
                doomed = [p for p in tree if p.startswith(folder)]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {folder}", "EntryNotFound")
                for path in doomed:
                    del tree[path]
                    contents.pop(path, None)
            else:
                raise HubError(400, f"Unsupported commit operation: {key!r}")
        for path, content in contents.items():
            tree[path] = self.store.write_blob(repo, content)

        pr_url = None
        if create_pr:
            number = len(repo["pullRequests"]) + 1
            ref = f"refs/pr/{number}"
            repo["pullRequests"].append({"num": number, "ref": ref, "base": revision, "title": summary})
            pr_url = f"{self._repo_url(repo)}/discussions/{number}"
        else:
            ref = revision[len("refs/heads/"):] if revision.startswith("refs/heads/") else revision
        oid = self.store.add_commit(repo, ref, head, tree, summary, header.get("description") or "")
        self.store.save(repo)
        answer = {"commitUrl": f"{self._repo_url(repo)}/commit/{oid}", "commitOid": oid, "success": True}
        if create_pr:
            answer["pullRequestUrl"] = pr_url
        self._json(answer)

    def _create_branch(self, repo_type, repo_id, branch):
        repo = self.store.load(repo_type, repo_id)
        _check_branch(branch)
        if branch in repo["refs"]:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = self._json_body().get("startingPoint") or DEFAULT_BRANCH
        repo["refs"][branch] = self.store.resolve(repo, start)
        self.store.save(repo)
        self._json({})

    def _delete_branch(self, repo_type, repo_id, branch):
        repo = self.store.load(repo_type, repo_id)
        if branch == DEFAULT_BRANCH:
            raise HubError(403, "Cannot delete the default branch")
        if branch not in repo["refs"]:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        del repo["refs"][branch]
        self.store.save(repo)
        self._json({})

    def _create_tag(self, repo_type, repo_id, revision):
        repo, body = self.store.load(repo_type, repo_id), self._json_body()
        tag = _check_branch(body.get("tag") or "")
        if tag in repo["tags"]:
            raise HubError(409, f"Tag already exists: {tag}")
        repo["tags"][tag] = self.store.resolve(repo, revision)
        self.store.save(repo)
        self._json({})

    def _delete_tag(self, repo_type, repo_id, tag):
        repo = self.store.load(repo_type, repo_id)
        if tag not in repo["tags"]:
            raise HubError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
        del repo["tags"][tag]
        self.store.save(repo)
        self._json({})

    # -- file downloads --------------------------------------------------------------------------------------

    def _resolve(self, repo_type, repo_id, revision, path):
        with self.store.lock:
            repo = self.store.load(repo_type, repo_id)
            commit = self.store.resolve(repo, revision)
            oid = self.store.tree(repo, commit).get(path)
        headers = {"X-Repo-Commit": commit}
        if oid is None:
            raise HubError(404, f"Entry not found: {path} at {revision}", "EntryNotFound", headers)
        content = self.store.blob_path(repo, oid).read_bytes()
        headers.update({"ETag": f'"{oid}"', "Accept-Ranges": "bytes",
                        "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.rsplit('/', 1)[-1])}"})
        status, match = 200, re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and content and (match.group(1) or match.group(2)):
            start, end = match.groups()
            if start:
                first, last = int(start), min(int(end) if end else len(content) - 1, len(content) - 1)
            else:
                first, last = max(len(content) - int(end), 0), len(content) - 1
            if first >= len(content) or first > last:
                raise HubError(416, f"Range not satisfiable for {path}", None,
                               {**headers, "Content-Range": f"bytes */{len(content)}"})
            status, headers["Content-Range"] = 206, f"bytes {first}-{last}/{len(content)}"
            content = content[first:last + 1]
        self._send(status, content, headers, "application/octet-stream")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LocalHub:
    """A Hub-compatible HTTP server on 127.0.0.1, serving the repositories stored under ``storage_dir``."""

    def __init__(self, storage_dir, host="127.0.0.1", port=0, *, verbose=False):
        self.store = Store(storage_dir)
        self.host, self.port, self.verbose = host, port, verbose
        self.requests = []
        self._server = self._thread = None

    @property
    def endpoint(self):
        if self._server is None:
            raise RuntimeError("LocalHub is not running")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self):
        if self._server is None:
            self._server = _Server((self.host, self.port), Handler)
            self._server.hub = self
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="local-hub",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def create_repo(self, repo_id, *, private=False, repo_type="model"):
        """Create a repository directly on disk (no HTTP), e.g. to seed a download test."""
        self.store.create(repo_type, repo_id, private)

    def files(self, repo_id, revision=DEFAULT_BRANCH, *, repo_type="model"):
        """``{path: bytes}`` of every file of ``repo_id`` at ``revision`` (branch, tag or commit id)."""
        with self.store.lock:
            repo = self.store.load(repo_type, repo_id)
            tree = self.store.tree(repo, self.store.resolve(repo, revision))
        return {path: self.store.blob_path(repo, oid).read_bytes() for path, oid in tree.items()}

    def commits(self, repo_id, *, repo_type="model"):
        """Every commit of ``repo_id``, oldest first: dicts with "oid", "revision" (the ref it was made on),
        "summary", "description", "parent" and "date". The first is the empty "initial commit" on main."""
        with self.store.lock:
            repo = self.store.load(repo_type, repo_id)
        return [dict(repo["commits"][oid]) for oid in repo["log"]]

    def refs(self, repo_id, *, repo_type="model"):
        """``{branch or refs/pr/N: commit id}``."""
        with self.store.lock:
            return dict(self.store.load(repo_type, repo_id)["refs"])


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve a local Hugging Face Hub stand-in (see module docstring).")
    parser.add_argument("--storage", required=True, help="folder holding the repositories")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    # Ctrl-C stops the server even when the parent started it with SIGINT ignored (children inherit that, and Python
    # then installs no KeyboardInterrupt handler): the full test suite's process can be such a parent.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    hub = LocalHub(args.storage, args.host, args.port, verbose=not args.quiet)
    try:  # from before the first line is printed: Ctrl-C may come as soon as the endpoint is known
        hub.start()
        print(f"LocalHub serving {Path(args.storage).resolve()} at {hub.endpoint}", flush=True)
        print(f"Use it with: HF_ENDPOINT={hub.endpoint} HF_HUB_DISABLE_XET=1 HF_TOKEN=local-token", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
