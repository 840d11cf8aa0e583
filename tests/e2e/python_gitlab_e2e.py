#!/usr/bin/env python3
"""End-to-end test: drive our Jobs API server with the real python-gitlab client.

Usage
-----
    python tests/e2e/python_gitlab_e2e.py --artifact-bin PATH --data DIR \\
        --url http://127.0.0.1:PORT --fixtures tests/data

* The server (``artifact serve --data DIR --listen ...``) must already be running on
  ``--url`` and serve the data directory ``--data``; a Rust test harness starts it.
* The Python running this script needs python-gitlab (and the stdlib only):
  ``bash scripts/setup-python-gitlab.sh`` makes a venv with the pinned version and prints
  its interpreter as the last stdout line.
* Setup goes only through the ``artifact`` command line (``artifact admin ... user add``,
  ``token add``, ``project add``, ``member add`` and ``artifact import``), which writes to
  the same data directory while the server runs. Names carry a random suffix, so the script
  can run twice against one data directory.
* ``--fixtures`` is the committed zip corpus (tests/data); expected bytes are the sha256
  values of tests/data/manifest.json, and whole archives are compared with the sha256 of
  the fixture file itself.

What it checks: all 15 Jobs API operations through python-gitlab's own methods
(``project.jobs.list/get``, ``pipeline.jobs.list``, ``pipeline.bridges.list``,
``job.artifacts/artifact/trace/cancel/retry/erase/keep_artifacts/delete_artifacts/play``,
``project.artifacts.download/raw``), plus ``gl.auth()``, ``gl.version()``, bad tokens,
non-members, anonymous reads, job tokens and the artifact path rule. Each check prints
``ok <name>``; the first failure prints ``FAIL <name>: <why>`` and exits 1; success ends
with ``all 15 operations ok`` and exit 0.

Notes for whoever debugs a failure:

* Success status codes (201 for cancel/retry/erase, 200 for keep/play, 204 for delete) are
  read from a requests response hook, since python-gitlab hides them.
* requests/urllib3 remove dot segments from URLs before sending (``job.artifact("a/../b")``
  is sent as ``.../artifacts/b``), so traversal attempts are sent percent-encoded
  (``a/%2E%2E/b`` arrives on the wire as ``a/../b``; ``..%2Fx`` stays encoded).
* python-gitlab does not encode ``ref_name``: ``download(ref_name="feature/x", ...)`` sends
  ``.../jobs/artifacts/feature/x/download`` with a bare slash.
* ``include_retried=True`` is sent as ``include_retried=True`` (capital T), and ``scope``
  as ``scope[]=...`` for both a string and a list; a plain ``scope=`` is sent with
  ``gl.http_list``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
import traceback
import warnings

import gitlab
import gitlab.exceptions

OPERATIONS_TOTAL = 15

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SHA_OLD = "1111111111111111111111111111111111111111"
SHA_NEW = "2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e1f3a5b7c"

JOB_KEYS = {
    "id", "status", "stage", "name", "ref", "tag", "coverage", "allow_failure",
    "created_at", "started_at", "finished_at", "erased_at", "duration",
    "queued_duration", "user", "commit", "pipeline", "web_url", "project", "artifacts",
    "runner", "artifacts_expire_at", "archived", "tag_list",
}
BRIDGE_KEYS = {
    "id", "status", "stage", "name", "ref", "tag", "coverage", "allow_failure",
    "created_at", "started_at", "finished_at", "erased_at", "duration",
    "queued_duration", "user", "commit", "pipeline", "web_url", "project",
    "downstream_pipeline",
}
PIPELINE_KEYS = {
    "id", "project_id", "sha", "ref", "status", "source", "created_at", "updated_at",
    "web_url",
}
COMMIT_KEYS = {
    "id", "short_id", "created_at", "parent_ids", "title", "message", "author_name",
    "author_email", "authored_date", "committer_name", "committer_email",
    "committed_date",
}
USER_KEYS = {"id", "username", "name", "state", "avatar_url", "web_url"}
ARCHIVE_DISPOSITION = "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"


# ---------------------------------------------------------------------------------------
# Assertions


class Failure(Exception):
    """A check that did not hold; the message says what was expected and found."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what: str) -> None:
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def expect_error(what: str, code: int, fn, *, message=None, contains=None):
    """Call fn and require a python-gitlab error with HTTP status `code`."""
    try:
        fn()
    except gitlab.exceptions.GitlabError as e:
        if e.response_code != code:
            raise Failure(
                f"{what}: expected HTTP {code}, got {e.response_code} "
                f"({e.error_message!r}, body {e.response_body!r})"
            ) from e
        if message is not None and e.error_message != message:
            raise Failure(
                f"{what}: expected error message {message!r}, got {e.error_message!r}"
            ) from e
        if contains is not None and contains not in str(e.error_message):
            raise Failure(
                f"{what}: expected error message containing {contains!r}, "
                f"got {e.error_message!r}"
            ) from e
        return e
    raise Failure(f"{what}: expected HTTP {code}, but the call succeeded")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return sha256(f.read())


def check_time(value, what: str) -> dt.datetime:
    check(isinstance(value, str) and TIME_RE.match(value) is not None,
          f"{what}: expected an ISO-8601 UTC time with milliseconds, got {value!r}")
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)


def check_keys(obj, keys: set, what: str) -> None:
    check(isinstance(obj, dict), f"{what}: expected an object, got {obj!r}")
    missing = keys - obj.keys()
    check(not missing, f"{what}: missing keys {sorted(missing)} (has {sorted(obj)})")


def check_pipeline_basic(p, what: str) -> None:
    check_keys(p, PIPELINE_KEYS, what)
    check_time(p["created_at"], f"{what}.created_at")


def check_common_job_fields(j: dict, what: str) -> None:
    check_time(j["created_at"], f"{what}.created_at")
    for k in ("started_at", "finished_at", "erased_at"):
        if j[k] is not None:
            check_time(j[k], f"{what}.{k}")
    for k in ("duration", "queued_duration"):
        v = j[k]
        check(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
              f"{what}.{k}: expected float seconds or null, got {v!r}")
    check(isinstance(j["tag"], bool), f"{what}.tag: expected a bool, got {j['tag']!r}")
    check(("failure_reason" in j) == (j["status"] == "failed"),
          f"{what}: failure_reason must be present exactly when status is failed "
          f"(status {j['status']!r}, keys {sorted(j)})")
    check_pipeline_basic(j["pipeline"], f"{what}.pipeline")
    check_keys(j["commit"], COMMIT_KEYS, f"{what}.commit")
    if j["user"] is not None:
        check_keys(j["user"], USER_KEYS, f"{what}.user")
    check(isinstance(j["web_url"], str) and j["web_url"].endswith(f"/-/jobs/{j['id']}"),
          f"{what}.web_url: expected .../-/jobs/{j['id']}, got {j['web_url']!r}")
    check("token" not in j, f"{what}: the API must never show a job token")


def check_job_shape(j: dict, what: str) -> None:
    check_keys(j, JOB_KEYS, what)
    check_common_job_fields(j, what)
    check(isinstance(j["artifacts"], list), f"{what}.artifacts: expected a list")
    if j["artifacts_expire_at"] is not None:
        check_time(j["artifacts_expire_at"], f"{what}.artifacts_expire_at")
    if "artifacts_file" in j:
        check_keys(j["artifacts_file"], {"filename", "size"}, f"{what}.artifacts_file")


def check_bridge_shape(b: dict, what: str) -> None:
    check_keys(b, BRIDGE_KEYS, what)
    check_common_job_fields(b, what)
    for k in ("artifacts", "artifacts_file", "artifacts_expire_at"):
        check(k not in b, f"{what}: a Bridge has no {k!r} key")
    if b["downstream_pipeline"] is not None:
        check_pipeline_basic(b["downstream_pipeline"], f"{what}.downstream_pipeline")


def ids(objs) -> list:
    return [o["id"] if isinstance(o, dict) else o.id for o in objs]


def no_base_url_warnings(caught, what: str) -> None:
    bad = [str(w.message) for w in caught if "base URL" in str(w.message)]
    check(not bad, f"{what}: python-gitlab saw Link/next URLs on another base URL "
                   f"(Link must be built from the request URL): {bad[0] if bad else ''}")


# ---------------------------------------------------------------------------------------
# Clients


class Client:
    """A python-gitlab Gitlab object plus the last raw HTTP response it received."""

    def __init__(self, url: str, **auth):
        self.gl = gitlab.Gitlab(url, timeout=60, **auth)
        self.last = None
        self.gl.session.hooks["response"].append(self._hook)

    def _hook(self, response, *args, **kwargs):
        self.last = response

    def status(self) -> int:
        return self.last.status_code

    def header(self, name: str):
        return self.last.headers.get(name)

    def project(self, ident):
        """A lazy project (no request): ident is a numeric id or a full path."""
        return self.gl.projects.get(ident, lazy=True)

    def job(self, project_ident, job_id):
        return self.project(project_ident).jobs.get(job_id, lazy=True)

    def pipeline(self, project_ident, pipeline_id):
        return self.project(project_ident).pipelines.get(pipeline_id, lazy=True)


def expect_status(client: Client, code: int, what: str) -> None:
    eq(client.status(), code, f"{what}: HTTP status")


# ---------------------------------------------------------------------------------------
# Setup through the command line


class World:
    """Everything the setup made: users, tokens, projects, jobs and fixtures."""


def run_cli(w: World, *args: str) -> str:
    cmd = [w.artifact_bin, *args]
    try:
        r = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
    except subprocess.CalledProcessError as e:
        raise Failure(f"setup command failed with exit {e.returncode}: {shlex.join(cmd)}\n"
                      f"stdout: {e.stdout}\nstderr: {e.stderr}") from e
    return r.stdout


def run_cli_json(w: World, *args: str) -> dict:
    out = run_cli(w, *args)
    try:
        return json.loads(out)
    except ValueError as e:
        raise Failure(f"setup command printed no JSON: artifact {shlex.join(args)}\n"
                      f"stdout: {out!r}") from e


def add_user(w: World, name: str) -> tuple[dict, str]:
    user = run_cli_json(w, "admin", "--data", w.data, "user", "add", name)
    eq(user.get("username"), name, f"`user add {name}` username")
    token = run_cli(w, "admin", "--data", w.data, "token", "add", name).strip()
    check(token and "\n" not in token and " " not in token,
          f"`token add {name}` must print one token, got {token!r}")
    return user, token


def add_project(w: World, full_path: str, public: bool) -> dict:
    args = ["admin", "--data", w.data, "project", "add", full_path]
    if public:
        args.append("--public")
    p = run_cli_json(w, *args)
    eq(p.get("path_with_namespace"), full_path, f"`project add {full_path}` path_with_namespace")
    eq(p.get("visibility"), "public" if public else "private",
       f"`project add {full_path}` visibility")
    return p


def import_job(w: World, project: str, ref: str, name: str, *, status="success", stage="test",
               when=None, pipeline=None, sha=None, artifacts=None, trace=None,
               expire_in=None, user=None, allow_failure=False, bridge=False,
               downstream=None) -> dict:
    args = ["import", "--data", w.data, "--project", project, "--ref", ref, "--job", name,
            "--stage", stage, "--status", status]
    if when:
        args += ["--when", when]
    if pipeline is not None:
        args += ["--pipeline", str(pipeline)]
    if sha:
        args += ["--sha", sha]
    if artifacts:
        args += ["--artifacts", w.fixture_path(artifacts)]
    if trace is not None:
        path = os.path.join(w.tmp, f"trace-{len(w.traces)}.log")
        with open(path, "wb") as f:
            f.write(trace)
        args += ["--trace", path]
    if expire_in:
        args += ["--expire-in", expire_in]
    args += ["--user", user or w.maint_name]
    if allow_failure:
        args.append("--allow-failure")
    if bridge:
        args.append("--bridge")
    if downstream is not None:
        args += ["--downstream", str(downstream)]
    job = run_cli_json(w, *args)
    what = f"`artifact import` of {name!r}"
    check(isinstance(job.get("id"), int), f"{what}: no numeric id in {job!r}")
    eq(job.get("name"), name, f"{what} name")
    eq(job.get("status"), status, f"{what} status")
    eq(job.get("ref"), ref, f"{what} ref")
    if pipeline is not None:
        eq(job["pipeline"]["id"], pipeline, f"{what} pipeline.id")
    if status == "running":
        check(isinstance(job.get("token"), str) and job["token"],
              f"{what}: a running job's JSON must carry its token")
    if trace is not None:
        w.traces[job["id"]] = trace
    if not bridge and project == w.private_path:
        w.builds.append(job)
    return job


def setup(w: World) -> None:
    sfx = secrets.token_hex(3)
    w.maint_name, w.dev_name, w.out_name = f"maint-{sfx}", f"dev-{sfx}", f"outsider-{sfx}"
    w.admin_name = f"admin-{sfx}"
    w.maint_user, w.maint_token = add_user(w, w.maint_name)
    w.dev_user, w.dev_token = add_user(w, w.dev_name)
    w.out_user, w.out_token = add_user(w, w.out_name)

    w.private_path = f"e2e-{sfx}/app"
    w.public_path = f"e2e-{sfx}/site"
    w.private = add_project(w, w.private_path, public=False)
    w.public = add_project(w, w.public_path, public=True)
    for name, role in ((w.maint_name, "maintainer"), (w.dev_name, "developer")):
        run_cli(w, "admin", "--data", w.data, "member", "add", w.private_path, name, role)

    P = w.private_path
    w.builds = []
    w.traces = {}
    j = w.jobs = {}
    # ref main: an older and a newer successful pipeline, both with a `build` job.
    j["old_build"] = import_job(w, P, "main", "build", stage="build", sha=SHA_OLD,
                                artifacts="python-deflate.zip")
    j["build"] = import_job(w, P, "main", "build", stage="build", sha=SHA_NEW,
                            artifacts="infozip-basic.zip", expire_in="1 day",
                            trace=b"Running with artifact e2e\n$ make build\nbuilt \xe2\x9c\x93\n")
    w.p_main = j["build"]["pipeline"]["id"]
    j["test"] = import_job(w, P, "main", "test", stage="test", pipeline=w.p_main, sha=SHA_NEW,
                           trace=b"$ make test\n12 passed\n")
    # A ref with a slash.
    j["package"] = import_job(w, P, "feature/x", "package", stage="package",
                              artifacts="python-stored.zip")
    w.p_feature = j["package"]["pipeline"]["id"]
    # ref work: every status the actions below need.
    j["running"] = import_job(w, P, "work", "deploy-running", status="running", stage="deploy",
                              artifacts="infozip-basic.zip", trace=b"deploying...\n")
    w.p_work = j["running"]["pipeline"]["id"]
    pw = dict(pipeline=w.p_work)
    j["still_running"] = import_job(w, P, "work", "still-running", status="running", **pw)
    j["pending"] = import_job(w, P, "work", "queued", status="pending", **pw)
    j["created"] = import_job(w, P, "work", "created-job", status="created", **pw)
    j["manual"] = import_job(w, P, "work", "manual-deploy", status="manual", when="manual",
                             stage="deploy", **pw)
    j["scheduled"] = import_job(w, P, "work", "timed", status="scheduled", when="delayed",
                                stage="deploy", **pw)
    j["failed"] = import_job(w, P, "work", "flaky", status="failed",
                             trace=b"$ flaky\nexit 1\n", **pw)
    j["skipped"] = import_job(w, P, "work", "skipped-job", status="skipped", **pw)
    j["erase"] = import_job(w, P, "work", "erase-me", artifacts="infozip-basic.zip",
                            trace=b"erase me\n", **pw)
    j["keep"] = import_job(w, P, "work", "keep-me", artifacts="infozip-basic.zip",
                           expire_in="1 day", **pw)
    j["delete"] = import_job(w, P, "work", "delete-me", artifacts="infozip-basic.zip",
                             trace=b"trace survives artifact deletion\n", **pw)
    # ref trigger: a child pipeline made first, then the parent with two bridges.
    j["child"] = import_job(w, P, "trigger", "child-job", artifacts="python-deflate.zip")
    w.p_child = j["child"]["pipeline"]["id"]
    j["prepare"] = import_job(w, P, "trigger", "prepare", stage="build")
    w.p_parent = j["prepare"]["pipeline"]["id"]
    j["bridge_child"] = import_job(w, P, "trigger", "trigger-child", stage="deploy",
                                   pipeline=w.p_parent, bridge=True, downstream=w.p_child)
    j["bridge_other"] = import_job(w, P, "trigger", "trigger-other", stage="deploy",
                                   pipeline=w.p_parent, bridge=True)
    # Bridges of a pipeline of their own, to retry and play (jobs_spec.rb: "when the job is
    # a bridge", "that is a bridge").
    j["bridge_failed"] = import_job(w, P, "bridge-ops", "trigger-again", stage="deploy",
                                    status="failed", bridge=True)
    j["bridge_manual"] = import_job(w, P, "bridge-ops", "trigger-by-hand", stage="deploy",
                                    status="manual", when="manual", bridge=True,
                                    pipeline=j["bridge_failed"]["pipeline"]["id"])
    # ref hotfix/retry: resolution must drop a retried job.
    j["hotfix"] = import_job(w, P, "hotfix/retry", "package", artifacts="infozip-basic.zip")
    # The public project.
    j["pages"] = import_job(w, w.public_path, "main", "pages", stage="deploy",
                            artifacts="python-stored.zip")

    w.maint = Client(w.url, private_token=w.maint_token)
    w.dev = Client(w.url, private_token=w.dev_token)
    w.outsider = Client(w.url, private_token=w.out_token)
    w.anon = Client(w.url)
    w.pid = w.private["id"]
    print(f"ok setup (project {w.private_path} id {w.pid}, {len(w.builds)} build jobs)")


# ---------------------------------------------------------------------------------------
# Checks outside the Jobs API


def test_version(w: World) -> None:
    version, revision = w.maint.gl.version()
    check(version != "unknown" and re.match(r"^\d+\.\d+\.\d+", version) is not None,
          f"gl.version(): expected an x.y.z version, got {version!r} (python-gitlab "
          f"returns 'unknown' when /version fails or lacks version/revision)")
    check(revision != "unknown" and isinstance(revision, str) and revision,
          f"gl.version(): expected a revision, got {revision!r}")
    print(f"ok version ({version} {revision})")


def test_auth(w: World) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w.maint.gl.auth()
    for warning in caught:
        # python-gitlab compares the user's web_url with --url; a server whose web URLs use
        # another base (an external URL) is legal, so this is only reported.
        print(f"note: gl.auth() warned: {str(warning.message).splitlines()[0]}")
    u = w.maint.gl.user
    eq(u.username, w.maint_name, "gl.auth(): gl.user.username")
    eq(u.id, w.maint_user["id"], "gl.auth(): gl.user.id")
    check_keys(u.asdict(), USER_KEYS, "GET /user")
    eq(u.state, "active", "gl.auth(): gl.user.state")
    bad = Client(w.url, private_token="not-a-real-token")
    expect_error("gl.auth() with a bad token", 401, bad.gl.auth, message="401 Unauthorized")
    expect_error("jobs list with a bad token", 401,
                 lambda: bad.project(w.pid).jobs.list(get_all=True),
                 message="401 Unauthorized")
    expect_error("anonymous jobs list (public project)", 401,
                 lambda: w.anon.project(w.public["id"]).jobs.list(get_all=True),
                 message="401 Unauthorized")
    p = w.maint.gl.projects.get(w.private_path)
    eq(p.id, w.pid, "GET /projects/:path id")
    eq(p.path_with_namespace, w.private_path, "GET /projects/:path path_with_namespace")
    eq(p.visibility, "private", "GET /projects/:path visibility")
    print("ok auth")


def test_access(w: World) -> None:
    """Non-members, anonymous readers and the project-existence rule."""
    out = w.outsider
    nf = "404 Project Not Found"
    b = w.jobs["build"]["id"]
    expect_error("non-member GET /projects/:id", 404, lambda: out.gl.projects.get(w.private_path),
                 message=nf)
    expect_error("non-member jobs list", 404, lambda: out.project(w.pid).jobs.list(get_all=True),
                 message=nf)
    expect_error("non-member job get", 404, lambda: out.project(w.pid).jobs.get(b), message=nf)
    expect_error("non-member artifacts", 404, lambda: out.job(w.pid, b).artifacts(), message=nf)
    expect_error("non-member trace", 404, lambda: out.job(w.pid, b).trace(), message=nf)
    expect_error("non-member ref download", 404,
                 lambda: out.project(w.private_path).artifacts.download("main", "build"),
                 message=nf)
    expect_error("non-member cancel", 404, lambda: out.job(w.pid, b).cancel(), message=nf)
    expect_error("anonymous artifacts of a private project", 404,
                 lambda: w.anon.job(w.pid, b).artifacts(), message=nf)
    # A public project: anyone reads jobs and artifacts.
    pages = w.jobs["pages"]
    listed = out.project(w.public_path).jobs.list(get_all=True)
    eq(ids(listed), [pages["id"]], "non-member jobs list of a public project")
    data = w.anon.job(w.public["id"], pages["id"]).artifacts()
    eq(sha256(data), w.fixture_sha("python-stored.zip"), "anonymous archive of a public project")
    # GitLab's pipelines API reads anonymously: a public project's pipeline jobs and bridges
    # (pipelines_spec.rb, "when user is not logged in"); a private one's are 404.
    walked = w.anon.pipeline(w.public["id"], pages["pipeline"]["id"])
    eq(ids(walked.jobs.list(get_all=True)), [pages["id"]], "anonymous pipeline jobs of a public project")
    eq(ids(walked.bridges.list(get_all=True)), [], "anonymous pipeline bridges of a public project")
    expect_error("anonymous pipeline jobs of a private project", 404,
                 lambda: w.anon.pipeline(w.pid, w.p_parent).jobs.list(get_all=True), message=nf)
    entry = w.anon.project(w.public_path).artifacts.raw("main", "ascii/plain.txt", "pages")
    eq(sha256(entry), w.entry_sha("python-stored.zip", "ascii/plain.txt"),
       "anonymous raw entry of a public project")
    print("ok access (non-member 404, public reads, anonymous)")


def test_job_token(w: World) -> None:
    """A running job's token reads its own project's artifacts, and nothing else."""
    run = w.jobs["running"]
    jt = Client(w.url, job_token=run["token"])
    P = w.private_path
    data = jt.job(P, run["id"]).artifacts()
    eq(sha256(data), w.fixture_sha("infozip-basic.zip"), "job token: own job's archive")
    data = jt.job(P, w.jobs["build"]["id"]).artifacts()
    eq(sha256(data), w.fixture_sha("infozip-basic.zip"), "job token: another job's archive")
    data = jt.job(P, run["id"]).artifact("docs/readme.txt")
    eq(sha256(data), w.entry_sha("infozip-basic.zip", "docs/readme.txt"), "job token: one entry")
    data = jt.project(P).artifacts.download("main", "build")
    eq(sha256(data), w.fixture_sha("infozip-basic.zip"), "job token: ref download")
    data = jt.project(P).artifacts.raw("main", "docs/nested/deep/leaf.txt", "build")
    eq(sha256(data), w.entry_sha("infozip-basic.zip", "docs/nested/deep/leaf.txt"),
       "job token: ref raw entry")
    # The `job_token` query parameter that python-gitlab's download() documents.
    data = w.anon.project(P).artifacts.download("main", "build", job_token=run["token"])
    eq(sha256(data), w.fixture_sha("infozip-basic.zip"), "job_token query parameter")
    # Job tokens are for the artifact routes only.
    expect_error("job token on the jobs list", 401,
                 lambda: jt.project(P).jobs.list(get_all=True))
    expect_error("unknown job token", 401,
                 lambda: Client(w.url, job_token="nope").job(P, run["id"]).artifacts())
    job = w.maint.project(w.pid).jobs.get(run["id"])
    check("token" not in job.asdict(), "GET job of a running job must not show its token")
    w.job_token_client = jt
    print("ok job token")


# ---------------------------------------------------------------------------------------
# The 15 operations


def op1_project_jobs_list(w: World) -> None:
    proj = w.maint.project(w.pid)
    all_ids = sorted((j["id"] for j in w.builds), reverse=True)
    jobs = proj.jobs.list(get_all=True)
    eq(ids(jobs), all_ids, "project.jobs.list(): all build jobs, newest id first "
                           "(bridges excluded)")
    expect_status(w.maint, 200, "project.jobs.list()")
    for job in jobs:
        check_job_shape(job.asdict(), f"jobs.list() item {job.id}")

    def expected(*statuses):
        return sorted((j["id"] for j in w.builds if j["status"] in statuses), reverse=True)

    eq(ids(proj.jobs.list(scope="success", get_all=True)), expected("success"),
       "jobs.list(scope='success')")
    eq(ids(proj.jobs.list(scope=["pending", "running"], get_all=True)),
       expected("pending", "running"), "jobs.list(scope=['pending','running'])")
    eq(ids(proj.jobs.list(scope=["manual", "scheduled", "skipped", "created"], get_all=True)),
       expected("manual", "scheduled", "skipped", "created"),
       "jobs.list(scope=[manual, scheduled, skipped, created])")
    raw = w.maint.gl.http_list(f"/projects/{w.pid}/jobs", query_data={"scope": "failed"},
                               get_all=True)
    eq(ids(raw), expected("failed"), "GET jobs?scope=failed (plain string)")
    eq(ids(proj.jobs.list(scope="canceled", get_all=True)), [], "jobs.list(scope='canceled')")
    msg = "scope does not have a valid value"
    expect_error("jobs.list(scope='bogus')", 400,
                 lambda: proj.jobs.list(scope="bogus", get_all=True), message=msg)
    expect_error("jobs.list(scope=['success','bogus'])", 400,
                 lambda: proj.jobs.list(scope=["success", "bogus"], get_all=True), message=msg)
    expect_error("GET jobs?scope=Success", 400,
                 lambda: w.maint.gl.http_list(f"/projects/{w.pid}/jobs",
                                              query_data={"scope": "Success"}, get_all=True),
                 message=msg)

    # Pagination: per_page=1 walks every page through the Link headers.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paged = proj.jobs.list(per_page=1, get_all=True)
        eq(ids(paged), all_ids, "jobs.list(per_page=1, get_all=True)")
        it = proj.jobs.list(per_page=1, iterator=True)
        eq(it.per_page, 1, "iterator: X-Per-Page")
        eq(it.total, len(all_ids), "iterator: X-Total")
        eq(it.total_pages, len(all_ids), "iterator: X-Total-Pages")
        eq(it.current_page, 1, "iterator: X-Page")
        eq(it.next_page, 2, "iterator: X-Next-Page")
        eq(it.prev_page, None, "iterator: X-Prev-Page on the first page")
        eq([job.id for job in it], all_ids, "jobs.list(per_page=1, iterator=True)")
        page2 = proj.jobs.list(per_page=2, page=2)
        eq(ids(page2), all_ids[2:4], "jobs.list(per_page=2, page=2)")
        eq(w.maint.header("X-Page"), "2", "page 2: X-Page")
        eq(w.maint.header("X-Prev-Page"), "1", "page 2: X-Prev-Page")
        scoped = proj.jobs.list(scope=["success"], per_page=1, get_all=True)
        eq(ids(scoped), expected("success"), "scope kept across pages (Link keeps the query)")
    no_base_url_warnings(caught, "project.jobs.list pagination")
    expect_error("jobs.list(per_page='x')", 400,
                 lambda: w.maint.gl.http_list(f"/projects/{w.pid}/jobs",
                                              query_data={"per_page": "x"}, get_all=True))
    # By URL-encoded full path too.
    eq(ids(w.maint.project(w.private_path).jobs.list(get_all=True)), all_ids,
       "jobs.list() on the project by full path")
    # A developer reads jobs too.
    eq(ids(w.dev.project(w.pid).jobs.list(get_all=True)), all_ids, "developer jobs.list()")
    print("ok 1 project.jobs.list")


def op2_pipeline_jobs_list(w: World) -> None:
    j = w.jobs
    main = w.maint.pipeline(w.pid, w.p_main)
    eq(ids(main.jobs.list(get_all=True)), [j["build"]["id"], j["test"]["id"]],
       "pipeline.jobs.list(): id ascending")
    expect_status(w.maint, 200, "pipeline.jobs.list()")
    eq(ids(main.jobs.list(scope="success", get_all=True)), [j["build"]["id"], j["test"]["id"]],
       "pipeline.jobs.list(scope='success')")
    eq(ids(main.jobs.list(scope=["failed"], get_all=True)), [],
       "pipeline.jobs.list(scope=['failed'])")
    work = w.maint.pipeline(w.private_path, w.p_work)
    eq(ids(work.jobs.list(scope=["manual", "scheduled"], get_all=True)),
       sorted([j["manual"]["id"], j["scheduled"]["id"]]),
       "pipeline.jobs.list(scope=['manual','scheduled'])")
    work_ids = sorted(job["id"] for job in w.builds if job["pipeline"]["id"] == w.p_work)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eq(ids(work.jobs.list(per_page=1, get_all=True)), work_ids,
           "pipeline.jobs.list(per_page=1, get_all=True)")
        eq([x.id for x in work.jobs.list(per_page=3, iterator=True)], work_ids,
           "pipeline.jobs.list(per_page=3, iterator=True)")
    no_base_url_warnings(caught, "pipeline.jobs.list pagination")
    for item in work.jobs.list(get_all=True):
        check_job_shape(item.asdict(), f"pipeline.jobs.list() item {item.id}")
        eq(item.pipeline["id"], w.p_work, f"job {item.id} pipeline.id")
    # A child pipeline is listed like any other; a parent lists no bridges.
    eq(ids(w.maint.pipeline(w.pid, w.p_child).jobs.list(get_all=True)), [j["child"]["id"]],
       "child pipeline jobs")
    eq(ids(w.maint.pipeline(w.pid, w.p_parent).jobs.list(get_all=True)), [j["prepare"]["id"]],
       "parent pipeline jobs (bridges are not jobs)")
    expect_error("pipeline.jobs.list(scope='nope')", 400,
                 lambda: main.jobs.list(scope="nope", get_all=True),
                 message="scope does not have a valid value")
    expect_error("jobs of an unknown pipeline", 404,
                 lambda: w.maint.pipeline(w.pid, 987654321).jobs.list(get_all=True),
                 message="404 Not found")
    expect_error("another project's pipeline", 404,
                 lambda: w.maint.pipeline(w.pid, j["pages"]["pipeline"]["id"]).jobs.list(
                     get_all=True))
    # include_retried=True is checked after a retry, in op11 (it needs a retried job).
    print("ok 2 pipeline.jobs.list")


def op3_pipeline_bridges_list(w: World) -> None:
    j = w.jobs
    parent = w.maint.pipeline(w.pid, w.p_parent)
    bridges = parent.bridges.list(get_all=True)
    eq(ids(bridges), [j["bridge_child"]["id"], j["bridge_other"]["id"]],
       "pipeline.bridges.list(): id ascending")
    expect_status(w.maint, 200, "pipeline.bridges.list()")
    for b in bridges:
        check_bridge_shape(b.asdict(), f"bridge {b.id}")
        eq(b.pipeline["id"], w.p_parent, f"bridge {b.id} pipeline.id")
    down = bridges[0].downstream_pipeline
    eq(down["id"], w.p_child, "bridge trigger-child downstream_pipeline.id")
    eq(down["project_id"], w.pid, "downstream_pipeline.project_id")
    eq(down["ref"], "trigger", "downstream_pipeline.ref")
    eq(bridges[1].downstream_pipeline, None, "bridge without a downstream pipeline")
    eq(ids(parent.bridges.list(scope="success", get_all=True)),
       [j["bridge_child"]["id"], j["bridge_other"]["id"]], "bridges.list(scope='success')")
    eq(ids(parent.bridges.list(scope=["failed", "manual"], get_all=True)), [],
       "bridges.list(scope=['failed','manual'])")
    eq(ids(parent.bridges.list(per_page=1, get_all=True)),
       [j["bridge_child"]["id"], j["bridge_other"]["id"]], "bridges.list(per_page=1)")
    eq(ids(w.maint.pipeline(w.pid, w.p_main).bridges.list(get_all=True)), [],
       "a pipeline without bridges")
    expect_error("bridges.list(scope='bogus')", 400,
                 lambda: parent.bridges.list(scope="bogus", get_all=True),
                 message="scope does not have a valid value")
    expect_error("bridges of an unknown pipeline", 404,
                 lambda: w.maint.pipeline(w.pid, 987654321).bridges.list(get_all=True),
                 message="404 Not found")
    print("ok 3 pipeline.bridges.list")


def op4_project_jobs_get(w: World) -> None:
    imported = w.jobs["build"]
    for ident in (w.pid, w.private_path):
        job = w.maint.project(ident).jobs.get(imported["id"])
        expect_status(w.maint, 200, "project.jobs.get()")
        d = job.asdict()
        check_job_shape(d, f"jobs.get({imported['id']}) via project {ident!r}")
        for k in ("id", "name", "stage", "ref", "status", "tag", "allow_failure", "created_at",
                  "started_at", "finished_at", "duration", "artifacts_expire_at",
                  "artifacts_file"):
            eq(d.get(k), imported.get(k), f"GET job vs import JSON: {k}")
        eq(d["name"], "build", "job name")
        eq(d["stage"], "build", "job stage")
        eq(d["ref"], "main", "job ref")
        eq(d["tag"], False, "job tag")
        eq(d["status"], "success", "job status")
        eq(d["pipeline"]["id"], w.p_main, "job pipeline.id")
        eq(d["pipeline"]["project_id"], w.pid, "job pipeline.project_id")
        eq(d["pipeline"]["sha"], SHA_NEW, "job pipeline.sha")
        eq(d["pipeline"]["ref"], "main", "job pipeline.ref")
        eq(d["commit"]["id"], SHA_NEW, "job commit.id")
        eq(d["commit"]["short_id"], SHA_NEW[:8], "job commit.short_id")
        eq(d["user"]["username"], w.maint_name, "job user.username")
        eq(d["artifacts_file"], {"filename": "artifacts.zip",
                                 "size": w.fixture_bytes("infozip-basic.zip")},
           "job artifacts_file")
        rows = {a["file_type"]: a for a in d["artifacts"]}
        eq(rows.get("archive"),
           {"file_type": "archive", "size": w.fixture_bytes("infozip-basic.zip"),
            "filename": "artifacts.zip", "file_format": "zip"},
           "artifacts row for the archive")
        trace = rows.get("trace")
        check(trace is not None, f"artifacts rows lack the trace: {d['artifacts']!r}")
        eq((trace["filename"], trace["file_format"], trace["size"]),
           ("job.log", "raw", len(w.traces[imported["id"]])), "artifacts row for the trace")
        if "metadata" in rows:
            eq((rows["metadata"]["filename"], rows["metadata"]["file_format"]),
               ("metadata.gz", "gzip"), "artifacts row for the metadata")
        check(set(rows) <= {"archive", "metadata", "trace"},
              f"unexpected artifact rows: {d['artifacts']!r}")
        expires = check_time(d["artifacts_expire_at"], "artifacts_expire_at")
        left = expires - dt.datetime.now(dt.timezone.utc)
        check(dt.timedelta(hours=23) < left <= dt.timedelta(days=1),
              f"--expire-in '1 day' should expire in about a day, expires in {left}")
    failed = w.maint.project(w.pid).jobs.get(w.jobs["failed"]["id"]).asdict()
    check_job_shape(failed, "failed job")
    check("failure_reason" in failed, "a failed job has failure_reason")
    plain = w.maint.project(w.pid).jobs.get(w.jobs["test"]["id"]).asdict()
    check("artifacts_file" not in plain, "a job without an archive has no artifacts_file")
    missing = 987654321
    expect_error("jobs.get(unknown id)", 404, lambda: w.maint.project(w.pid).jobs.get(missing),
                 message="404 Not found")
    expect_error("a job of another project", 404,
                 lambda: w.maint.project(w.pid).jobs.get(w.jobs["pages"]["id"]),
                 message="404 Not found")
    expect_error("jobs.get('abc')", 400, lambda: w.maint.project(w.pid).jobs.get("abc"),
                 message="job_id is invalid")
    expect_error("unknown project", 404,
                 lambda: w.maint.project("no-such/project").jobs.get(imported["id"]),
                 message="404 Project Not Found")
    print("ok 4 project.jobs.get")


def op5_job_artifacts(w: World) -> None:
    c = w.maint
    job = c.job(w.pid, w.jobs["build"]["id"])
    want = w.fixture_sha("infozip-basic.zip")
    data = job.artifacts()
    eq(sha256(data), want, "job.artifacts() bytes")
    expect_status(c, 200, "job.artifacts()")
    eq(c.header("Content-Type"), "application/octet-stream", "archive Content-Type")
    eq(c.header("Content-Disposition"), ARCHIVE_DISPOSITION, "archive Content-Disposition")
    eq(c.header("Accept-Ranges"), "bytes", "archive Accept-Ranges")
    etag = c.header("ETag")
    check(bool(etag), "the archive response needs an ETag")
    # streamed=True with an action writing a file.
    path = os.path.join(w.tmp, "streamed-artifacts.zip")
    with open(path, "wb") as f:
        ret = job.artifacts(streamed=True, action=f.write, chunk_size=512)
    eq(ret, None, "job.artifacts(streamed=True) returns None")
    eq(file_sha256(path), want, "job.artifacts(streamed=True, action=f.write) file")
    eq(sha256(b"".join(job.artifacts(iterator=True))), want, "job.artifacts(iterator=True)")
    # Range and conditional requests through python-gitlab's extra_headers.
    eq(job.artifacts(extra_headers={"Range": "bytes=0-3"}), b"PK\x03\x04", "Range bytes=0-3")
    expect_status(c, 206, "Range request")
    expect_error("If-None-Match with the ETag", 304,
                 lambda: job.artifacts(extra_headers={"If-None-Match": etag}))
    expect_error("Range past the end", 416,
                 lambda: job.artifacts(extra_headers={"Range": "bytes=999999-"}))
    expect_error("artifacts of a job without an archive", 404,
                 lambda: c.job(w.pid, w.jobs["test"]["id"]).artifacts())
    expect_error("artifacts of an unknown job", 404,
                 lambda: c.job(w.pid, 987654321).artifacts())
    data = c.job(w.private_path, w.jobs["old_build"]["id"]).artifacts()
    eq(sha256(data), w.fixture_sha("python-deflate.zip"), "older job's archive by project path")
    print("ok 5 job.artifacts")


def op6_ref_download(w: World) -> None:
    c = w.maint
    arts = c.project(w.pid).artifacts
    data = arts.download(ref_name="main", job="build")
    eq(sha256(data), w.fixture_sha("infozip-basic.zip"),
       "download(main, build): the newest successful pipeline's archive")
    expect_status(c, 200, "artifacts.download()")
    eq(c.header("Content-Disposition"), ARCHIVE_DISPOSITION, "ref download Content-Disposition")
    data = arts.download(ref_name="feature/x", job="package")
    eq(sha256(data), w.fixture_sha("python-stored.zip"), "download('feature/x', package)")
    data = arts.download(ref_name="feature%2Fx", job="package")
    eq(sha256(data), w.fixture_sha("python-stored.zip"), "download('feature%2Fx', package)")
    data = c.project(w.private_path).artifacts.download(ref_name="trigger", job="child-job")
    eq(sha256(data), w.fixture_sha("python-deflate.zip"),
       "download(trigger, child-job): found in the child pipeline")
    path = os.path.join(w.tmp, "ref-download.zip")
    with open(path, "wb") as f:
        arts.download("feature/x", "package", streamed=True, action=f.write)
    eq(file_sha256(path), w.fixture_sha("python-stored.zip"), "download(streamed=True) file")
    nf = "404 Not found"
    expect_error("download: unknown job name", 404, lambda: arts.download("main", "nope"),
                 message=nf)
    expect_error("download: unknown ref", 404, lambda: arts.download("no-such-ref", "build"),
                 message=nf)
    expect_error("download: a SHA is not a ref", 404, lambda: arts.download(SHA_NEW, "build"),
                 message=nf)
    expect_error("download: job without artifacts", 404, lambda: arts.download("main", "test"),
                 message=nf)
    print("ok 6 project.artifacts.download")


def op7_job_artifact(w: World) -> None:
    c = w.maint
    job = c.job(w.pid, w.jobs["build"]["id"])
    archive = "infozip-basic.zip"
    data = job.artifact("docs/readme.txt")
    eq(sha256(data), w.entry_sha(archive, "docs/readme.txt"), "job.artifact(docs/readme.txt)")
    expect_status(c, 200, "job.artifact()")
    eq(c.header("Content-Disposition"), 'attachment; filename="readme.txt"',
       "entry Content-Disposition")
    eq(c.header("X-Content-Type-Options"), "nosniff", "entry X-Content-Type-Options")
    check((c.header("Content-Type") or "").startswith("text/plain"),
          f"entry Content-Type from the extension: got {c.header('Content-Type')!r}")
    if c.header("Content-Encoding") is None:
        eq(c.header("Content-Length"), "48", "entry Content-Length (uncompressed size)")
    for name in ("docs/nested/deep/leaf.txt", "data.bin", "empty.txt"):
        eq(sha256(job.artifact(name)), w.entry_sha(archive, name), f"job.artifact({name})")
    path = os.path.join(w.tmp, "big.txt")
    with open(path, "wb") as f:
        job.artifact("big.txt", streamed=True, action=f.write)
    eq(file_sha256(path), w.entry_sha(archive, "big.txt"),
       "job.artifact(big.txt, streamed=True): deflated entry")
    old = c.job(w.private_path, w.jobs["old_build"]["id"])
    for name in ("日本語/ファイル.txt", "répertoire/naïve.txt"):
        eq(sha256(old.artifact(name)), w.entry_sha("python-deflate.zip", name),
           f"job.artifact({name}) (UTF-8 name)")
    expect_error("missing entry", 404, lambda: job.artifact("nope.txt"))
    expect_error("a directory name", 404, lambda: job.artifact("docs"))
    expect_error("case differs", 404, lambda: job.artifact("DOCS/readme.txt"))
    # Sent percent-encoded so requests does not remove the dot segments itself.
    for bad in ("a/%2E%2E/b", "..%2Fx", "%2E%2E/x", "%2E/docs/readme.txt", "%252e%252e/x",
                "docs%5C..%5Cx"):
        expect_error(f"job.artifact({bad!r})", 400, lambda bad=bad: job.artifact(bad))
    expect_error("entry of a job without an archive", 404,
                 lambda: c.job(w.pid, w.jobs["test"]["id"]).artifact("docs/readme.txt"))
    print("ok 7 job.artifact")


def op8_ref_raw(w: World) -> None:
    c = w.maint
    arts = c.project(w.pid).artifacts
    data = arts.raw("main", "docs/readme.txt", "build")
    eq(sha256(data), w.entry_sha("infozip-basic.zip", "docs/readme.txt"),
       "raw(main, docs/readme.txt, build)")
    expect_status(c, 200, "artifacts.raw()")
    eq(c.header("Content-Disposition"), 'attachment; filename="readme.txt"',
       "raw entry Content-Disposition")
    eq(c.header("X-Content-Type-Options"), "nosniff", "raw entry X-Content-Type-Options")
    data = arts.raw(ref_name="feature/x", artifact_path="ascii/plain.txt", job="package")
    eq(sha256(data), w.entry_sha("python-stored.zip", "ascii/plain.txt"),
       "raw('feature/x', ascii/plain.txt, package)")
    data = c.project(w.private_path).artifacts.raw("feature/x", "日本語/ファイル.txt",
                                                   "package")
    eq(sha256(data), w.entry_sha("python-stored.zip", "日本語/ファイル.txt"),
       "raw('feature/x', UTF-8 name)")
    path = os.path.join(w.tmp, "raw-big.txt")
    with open(path, "wb") as f:
        arts.raw("main", "big.txt", "build", streamed=True, action=f.write)
    eq(file_sha256(path), w.entry_sha("infozip-basic.zip", "big.txt"), "raw(big.txt, streamed)")
    data = arts.raw("trigger", "répertoire/naïve.txt", "child-job")
    eq(sha256(data), w.entry_sha("python-deflate.zip", "répertoire/naïve.txt"),
       "raw through the child pipeline")
    expect_error("raw: missing entry", 404, lambda: arts.raw("main", "nope.txt", "build"))
    expect_error("raw: unknown job name", 404,
                 lambda: arts.raw("main", "docs/readme.txt", "nope"), message="404 Not found")
    expect_error("raw: unknown ref", 404,
                 lambda: arts.raw("nope", "docs/readme.txt", "build"), message="404 Not found")
    for bad in ("..%2Fx", "a/%2E%2E/b"):
        expect_error(f"raw({bad!r})", 400, lambda bad=bad: arts.raw("main", bad, "build"))
    print("ok 8 project.artifacts.raw")


def op9_job_trace(w: World) -> None:
    c = w.maint
    jid = w.jobs["build"]["id"]
    eq(c.job(w.pid, jid).trace(), w.traces[jid], "job.trace() bytes")
    expect_status(c, 200, "job.trace()")
    check((c.header("Content-Type") or "").startswith("text/plain"),
          f"trace Content-Type: got {c.header('Content-Type')!r}")
    eq(c.header("Content-Disposition"), f'infile; filename="{jid}.log"',
       "trace Content-Disposition")
    streamed = []
    c.job(w.private_path, jid).trace(streamed=True, action=streamed.append)
    eq(b"".join(streamed), w.traces[jid], "job.trace(streamed=True)")
    eq(c.job(w.pid, w.jobs["old_build"]["id"]).trace(), b"", "trace of a job without one")
    expect_status(c, 200, "empty trace")
    eq(w.dev.job(w.pid, w.jobs["failed"]["id"]).trace(), w.traces[w.jobs["failed"]["id"]],
       "developer reads a trace")
    expect_error("trace of an unknown job", 404, lambda: c.job(w.pid, 987654321).trace())
    print("ok 9 job.trace")


def op10_job_cancel(w: World) -> None:
    c = w.dev
    pending = w.jobs["pending"]["id"]
    result = c.job(w.pid, pending).cancel()
    expect_status(c, 201, "job.cancel()")
    eq(result["id"], pending, "cancel returns the job")
    eq(result["status"], "canceled", "pending -> canceled")
    check_time(result["finished_at"], "canceled job finished_at")
    check_job_shape(result, "cancel result")
    eq(c.project(w.pid).jobs.get(pending).status, "canceled", "GET after cancel")
    created = c.job(w.pid, w.jobs["created"]["id"]).cancel()
    eq(created["status"], "canceled", "created -> canceled")
    # A running job; its token stops working.
    run = w.jobs["running"]["id"]
    eq(c.job(w.pid, run).cancel()["status"], "canceled", "running -> canceled")
    expect_error("job token after its job was canceled", 401,
                 lambda: w.job_token_client.job(w.private_path, run).artifacts())
    # A finished job: 201 and unchanged.
    done = w.jobs["test"]["id"]
    before = c.project(w.pid).jobs.get(done).asdict()
    after = c.job(w.pid, done).cancel()
    expect_status(c, 201, "cancel of a finished job")
    eq((after["status"], after["finished_at"]), (before["status"], before["finished_at"]),
       "cancel of a finished job leaves it unchanged")
    expect_error("cancel as a non-member", 404,
                 lambda: w.outsider.job(w.pid, done).cancel())
    expect_error("cancel of an unknown job", 404, lambda: c.job(w.pid, 987654321).cancel())
    print("ok 10 job.cancel")


def op11_job_retry(w: World) -> None:
    c = w.dev
    P = w.pid
    expect_error("retry of a running job", 403,
                 lambda: c.job(P, w.jobs["still_running"]["id"]).retry(),
                 contains="Job is not retryable")
    old = w.jobs["failed"]["id"]
    new = c.job(P, old).retry()
    expect_status(c, 201, "job.retry()")
    check_job_shape(new, "retry result")
    check(new["id"] != old, f"retry must return a NEW job, got the same id {old}")
    eq(new["name"], "flaky", "retried job name")
    eq(new["pipeline"]["id"], w.p_work, "retried job pipeline")
    check(new["status"] in ("pending", "created"),
          f"a retried job starts pending (or created), got {new['status']!r}")
    eq(c.project(P).jobs.get(new["id"]).id, new["id"], "GET the new job")
    work = c.pipeline(P, w.p_work)
    default_ids = ids(work.jobs.list(get_all=True))
    check(new["id"] in default_ids and old not in default_ids,
          f"pipeline jobs list hides the retried job {old} and shows {new['id']}: {default_ids}")
    retried_ids = ids(work.jobs.list(include_retried=True, get_all=True))
    check(new["id"] in retried_ids and old in retried_ids,
          f"include_retried=True (sent as 'True') shows both {old} and {new['id']}: "
          f"{retried_ids}")
    eq(retried_ids, sorted(retried_ids), "include_retried list is id ascending")
    # A finished bridge is retried too: a new bridge, pending, in its pipeline's bridges.
    old_bridge = w.jobs["bridge_failed"]["id"]
    new_bridge = c.job(P, old_bridge).retry()
    expect_status(c, 201, "bridge retry()")
    check(new_bridge["id"] != old_bridge, "a retried bridge is a new one")
    eq(new_bridge["status"], "pending", "a retried bridge starts pending")
    listed = c.pipeline(P, w.jobs["bridge_failed"]["pipeline"]["id"]).bridges.list(get_all=True)
    check(new_bridge["id"] in ids(listed) and old_bridge not in ids(listed),
          f"the bridges list shows the new bridge, not the retried one: {ids(listed)}")
    # A canceled job is retryable.
    canceled = w.jobs["running"]["id"]
    again = c.job(P, canceled).retry()
    check(again["id"] != canceled, "retry of a canceled job makes a new job")
    # A retried job no longer answers ref + job resolution.
    arts = c.project(P).artifacts
    eq(sha256(arts.download("hotfix/retry", "package")), w.fixture_sha("infozip-basic.zip"),
       "download(hotfix/retry) before the retry")
    c.job(P, w.jobs["hotfix"]["id"]).retry()
    expect_error("download after the only job with artifacts was retried", 404,
                 lambda: arts.download("hotfix/retry", "package"), message="404 Not found")
    expect_error("retry as a non-member", 404,
                 lambda: w.outsider.job(P, w.jobs["test"]["id"]).retry())
    print("ok 11 job.retry")


def op12_job_erase(w: World) -> None:
    jid = w.jobs["erase"]["id"]
    # GitLab's rule: a developer erases only the jobs they started (erase-me is the
    # maintainer's); maintainers erase any.
    expect_error("a developer erasing another user's job", 403, lambda: w.dev.job(w.pid, jid).erase(),
                 contains="403 Forbidden")
    c = w.maint
    job = c.project(w.pid).jobs.get(jid)
    check("artifacts_file" in job.asdict(), "erase-me has an archive before erasing")
    job.erase()
    expect_status(c, 201, "job.erase()")
    body = c.last.json()
    eq(body.get("id"), jid, "erase returns the job")
    d = c.project(w.pid).jobs.get(jid).asdict()
    check_job_shape(d, "erased job")
    check_time(d["erased_at"], "erased_at")
    check("artifacts_file" not in d, f"an erased job has no artifacts_file: {d!r}")
    eq(d["artifacts"], [], "an erased job has no artifact rows")
    eq(d["artifacts_expire_at"], None, "erase clears artifacts_expire_at")
    eq(c.job(w.pid, jid).trace(), b"", "an erased job's trace is empty")
    expect_error("artifacts of an erased job", 404, lambda: c.job(w.pid, jid).artifacts())
    expect_error("erase twice", 403, lambda: c.job(w.pid, jid).erase(),
                 contains="Job is not erasable!")
    expect_error("erase of a running job", 403,
                 lambda: c.job(w.pid, w.jobs["still_running"]["id"]).erase(),
                 contains="Job is not erasable!")
    expect_error("erase of a finished job with nothing stored", 403,
                 lambda: c.job(w.pid, w.jobs["prepare"]["id"]).erase(),
                 contains="Job is not erasable!")
    print("ok 12 job.erase")


def op13_job_keep_artifacts(w: World) -> None:
    c = w.dev
    jid = w.jobs["keep"]["id"]
    job = c.project(w.pid).jobs.get(jid)
    check(job.artifacts_expire_at is not None, "keep-me expires before keep")
    job.keep_artifacts()
    expect_status(c, 200, "job.keep_artifacts()")
    eq(c.last.json().get("id"), jid, "keep returns the job")
    job.refresh()
    eq(job.artifacts_expire_at, None, "keep clears artifacts_expire_at")
    eq(job.artifacts_file, {"filename": "artifacts.zip",
                            "size": w.fixture_bytes("infozip-basic.zip")},
       "a kept archive is still there")
    eq(sha256(c.job(w.pid, jid).artifacts()), w.fixture_sha("infozip-basic.zip"),
       "kept archive bytes")
    c.job(w.pid, jid).keep_artifacts()
    expect_status(c, 200, "keep twice")
    expect_error("keep without an archive", 404,
                 lambda: c.job(w.pid, w.jobs["test"]["id"]).keep_artifacts())
    expect_error("keep as a non-member", 404,
                 lambda: w.outsider.job(w.pid, jid).keep_artifacts())
    print("ok 13 job.keep_artifacts")


def op14_job_delete_artifacts(w: World) -> None:
    jid = w.jobs["delete"]["id"]
    expect_error("delete_artifacts as a developer", 403,
                 lambda: w.dev.job(w.pid, jid).delete_artifacts(), message="403 Forbidden")
    eq(sha256(w.dev.job(w.pid, jid).artifacts()), w.fixture_sha("infozip-basic.zip"),
       "the archive survives a refused delete")
    c = w.maint
    c.job(w.pid, jid).delete_artifacts()
    expect_status(c, 204, "job.delete_artifacts()")
    expect_error("artifacts after delete", 404, lambda: c.job(w.pid, jid).artifacts())
    eq(c.job(w.pid, jid).trace(), w.traces[jid], "delete_artifacts keeps the trace")
    d = c.project(w.pid).jobs.get(jid).asdict()
    check("artifacts_file" not in d, "no artifacts_file after delete")
    eq([a["file_type"] for a in d["artifacts"]], ["trace"], "only the trace row is left")
    c.job(w.pid, jid).delete_artifacts()
    expect_status(c, 204, "delete_artifacts when nothing is left")
    expect_error("delete_artifacts as a non-member", 404,
                 lambda: w.outsider.job(w.pid, jid).delete_artifacts())
    print("ok 14 job.delete_artifacts")


def op15_job_play(w: World) -> None:
    c = w.dev
    jid = w.jobs["manual"]["id"]
    job = c.project(w.pid).jobs.get(jid)
    eq(job.status, "manual", "manual job before play")
    job.play()
    expect_status(c, 200, "job.play()")
    eq(job.id, jid, "play returns the same job")
    eq(job.status, "pending", "manual -> pending")
    eq(job.user["username"], w.dev_name, "play sets user to the caller")
    check_job_shape(job.asdict(), "play result")
    eq(c.project(w.pid).jobs.get(jid).status, "pending", "GET after play")
    expect_error("play twice", 400, lambda: c.job(w.pid, jid).play(), contains="Unplayable Job")
    timed = c.project(w.pid).jobs.get(w.jobs["scheduled"]["id"])
    timed.play()
    eq(timed.status, "pending", "scheduled (delayed) -> pending")
    expect_error("play of a non-manual job", 400,
                 lambda: c.job(w.pid, w.jobs["build"]["id"]).play(), contains="Unplayable Job")
    expect_error("play as a non-member", 404,
                 lambda: w.outsider.job(w.pid, w.jobs["build"]["id"]).play())
    # A manual bridge is played like a manual job.
    bridge = w.jobs["bridge_manual"]["id"]
    played = c.gl.http_post(f"/projects/{w.pid}/jobs/{bridge}/play")
    eq((played["id"], played["status"]), (bridge, "pending"), "a manual bridge -> pending")
    eq(played["user"]["username"], w.dev_name, "play of a bridge sets user to the caller")
    print("ok 15 job.play")


# ---------------------------------------------------------------------------------------
# Main


def load_fixtures(w: World, fixtures: str) -> None:
    with open(os.path.join(fixtures, "manifest.json"), encoding="utf-8") as f:
        manifest = {a["file"]: a for a in json.load(f)}
    w.fixture_path = lambda name: os.path.join(fixtures, name)
    w.fixture_bytes = lambda name: manifest[name]["bytes"]
    w.fixture_sha = lambda name: file_sha256(os.path.join(fixtures, name))

    def entry_sha(archive: str, name: str) -> str:
        for e in manifest[archive]["entries"]:
            if e.get("name") == name:
                return e["sha256"]
        raise Failure(f"fixture {archive} has no entry {name!r} in manifest.json")

    w.entry_sha = entry_sha
    for name in ("infozip-basic.zip", "python-deflate.zip", "python-stored.zip"):
        eq(os.path.getsize(w.fixture_path(name)), manifest[name]["bytes"], f"fixture {name} size")


def test_compat(w: World) -> None:
    """GitLab's rules for empty tokens, token scopes, Sudo and keyset pagination."""
    P = w.pid
    # An anonymous client that always sends the header, empty: public artifacts read.
    empty = Client(w.url)
    empty.gl.headers["PRIVATE-TOKEN"] = ""
    pages = w.jobs["pages"]
    data = empty.job(w.public["id"], pages["id"]).artifacts()
    eq(sha256(data), w.fixture_sha("python-stored.zip"), "empty PRIVATE-TOKEN: public archive")
    entry = empty.project(w.public_path).artifacts.raw("main", "ascii/plain.txt", "pages")
    eq(sha256(entry), w.entry_sha("python-stored.zip", "ascii/plain.txt"),
       "empty PRIVATE-TOKEN: public raw entry")
    # A read_api token reads, and its actions are 403 insufficient_scope.
    ro_token = run_cli(w, "admin", "--data", w.data, "token", "add", w.dev_name,
                       "--scope", "read_api").strip()
    ro = Client(w.url, private_token=ro_token)
    b = w.jobs["build"]["id"]
    eq(ro.project(P).jobs.get(b).id, b, "read_api token: job get")
    eq(sha256(ro.job(P, b).artifacts()), w.fixture_sha("infozip-basic.zip"),
       "read_api token: archive")
    e = expect_error("read_api token cancels", 403, lambda: ro.job(P, b).cancel(),
                     message="insufficient_scope")
    check("api" in e.response_body.decode(), f"the scopes needed are named: {e.response_body!r}")
    expect_error("read_api token retries", 403, lambda: ro.job(P, b).retry(),
                 message="insufficient_scope")
    # An administrator acting with sudo: as the developer, by name and by id.
    run_cli_json(w, "admin", "--data", w.data, "user", "add", w.admin_name, "--admin")
    sudo_token = run_cli(w, "admin", "--data", w.data, "token", "add", w.admin_name,
                         "--scope", "api", "--scope", "sudo").strip()
    admin = Client(w.url, private_token=sudo_token)
    eq(admin.gl.http_get("/user", sudo=w.dev_name)["username"], w.dev_name, "sudo: /user")
    eq(admin.gl.http_get("/user", sudo=w.dev_user["id"])["username"], w.dev_name,
       "sudo by id: /user")
    played = admin.job(P, w.jobs["build"]["id"]).retry(sudo=w.dev_name)
    eq(played["user"]["username"], w.dev_name, "sudo: a retry is the developer's job")
    expect_error("sudo as an outsider", 404,
                 lambda: admin.project(P).jobs.list(get_all=True, sudo=w.out_name),
                 message="404 Project Not Found")
    expect_error("sudo without an admin token", 403,
                 lambda: w.dev.gl.http_get("/user", sudo=w.maint_name),
                 message="403 Forbidden - Must be admin to use sudo")
    expect_error("sudo as nobody", 404, lambda: admin.gl.http_get("/user", sudo="nobody-here"),
                 message="404 User with ID or username 'nobody-here' Not Found")
    # Keyset pagination: the same jobs as offset pagination, newest first.
    by_offset = ids(w.maint.project(P).jobs.list(get_all=True))
    by_keyset = ids(w.maint.project(P).jobs.list(iterator=True, pagination="keyset", per_page=4))
    eq(by_keyset, by_offset, "keyset pagination walks every job once")
    print("ok compat (empty token, read_api, sudo, keyset)")


STEPS = [
    ("version", test_version),
    ("auth", test_auth),
    ("1 project.jobs.list", op1_project_jobs_list),
    ("2 pipeline.jobs.list", op2_pipeline_jobs_list),
    ("3 pipeline.bridges.list", op3_pipeline_bridges_list),
    ("4 project.jobs.get", op4_project_jobs_get),
    ("5 job.artifacts", op5_job_artifacts),
    ("6 project.artifacts.download", op6_ref_download),
    ("7 job.artifact", op7_job_artifact),
    ("8 project.artifacts.raw", op8_ref_raw),
    ("9 job.trace", op9_job_trace),
    ("access", test_access),
    ("job token", test_job_token),
    ("10 job.cancel", op10_job_cancel),
    ("11 job.retry", op11_job_retry),
    ("12 job.erase", op12_job_erase),
    ("13 job.keep_artifacts", op13_job_keep_artifacts),
    ("14 job.delete_artifacts", op14_job_delete_artifacts),
    ("15 job.play", op15_job_play),
    ("compat", test_compat),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifact-bin", required=True, help="the `artifact` binary")
    ap.add_argument("--data", required=True, help="the data directory the server serves")
    ap.add_argument("--url", required=True, help="the running server, http://127.0.0.1:PORT")
    ap.add_argument("--fixtures", required=True, help="tests/data (zip fixtures + manifest)")
    args = ap.parse_args()

    w = World()
    w.artifact_bin, w.data, w.url = args.artifact_bin, args.data, args.url.rstrip("/")
    print(f"python-gitlab {gitlab.__version__} against {w.url}", flush=True)
    with tempfile.TemporaryDirectory(prefix="python-gitlab-e2e-") as tmp:
        w.tmp = tmp
        step = "setup"
        try:
            load_fixtures(w, args.fixtures)
            setup(w)
            for step, fn in STEPS:
                fn(w)
                sys.stdout.flush()
        except Failure as e:
            print(f"FAIL {step}: {e}", flush=True)
            return 1
        except gitlab.exceptions.GitlabError as e:
            print(f"FAIL {step}: unexpected HTTP error {e.response_code}: {e.error_message!r}\n"
                  f"{traceback.format_exc()}", flush=True)
            return 1
        except Exception as e:  # noqa: BLE001 - any other surprise is a failure too
            print(f"FAIL {step}: {type(e).__name__}: {e}\n{traceback.format_exc()}", flush=True)
            return 1
    ops = sum(1 for name, _ in STEPS if name[0].isdigit())
    eq(ops, OPERATIONS_TOTAL, "operations covered")
    print(f"all {OPERATIONS_TOTAL} operations ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
