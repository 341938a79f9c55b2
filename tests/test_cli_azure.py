"""`mp3pipe --azure drop/status` against a deployed account: an account URL from azd's environment, no key, the
user's own Entra ID sign-in through DefaultAzureCredential (here: Azurite over HTTPS with OAuth, an `az` stand-in
that hands out a token, and the Batch REST stand-in)."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from azure.storage.blob import BlobServiceClient

from devhost.azurite import DEV_ACCOUNT, DEV_KEY, REPO, azurite_binary, free_port
from devhost.media import make_mp4
from tests.support.batch_standin import BatchStandin

pytest_plugins = ["tests.support.batch_fixtures"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def entra_token() -> str:
    """A token shaped like Entra ID's (Azurite's OAuth mode checks issuer, audience and lifetime)."""
    now = int(time.time())
    claims = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/72f988bf-0000-0000-0000-000000000000/",
              "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "oid": "user-object-id"}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return ca, folder


@pytest.fixture(scope="module")
def azurite_oauth(tls, tmp_path_factory) -> Iterator[str]:
    """Azurite over HTTPS with OAuth on: a bearer token reaches it the way one reaches a real account."""
    _, folder = tls
    data, port = tmp_path_factory.mktemp("azurite-oauth"), free_port()
    proc = subprocess.Popen(
        [azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(data),
         "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--oauth", "basic",
         "--cert", str(folder / "cert.pem"), "--key", str(folder / "key.pem")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "Azurite exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Azurite did not listen"
                time.sleep(0.05)
        yield f"https://127.0.0.1:{port}/{DEV_ACCOUNT}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def project(tmp_path, azurite_oauth, batch_standin: BatchStandin, tls) -> dict[str, object]:
    """A checkout after `azd up` (azure.yaml, .azure/config.json, the environment's .env) and a signed-in `az`."""
    root = tmp_path / "checkout"
    (root / ".azure" / "dev").mkdir(parents=True)
    (root / "azure.yaml").write_text("name: mp3pipe\n")
    (root / ".azure" / "config.json").write_text(json.dumps({"version": 1, "defaultEnvironment": "dev"}))
    values = {"AZURE_ENV_NAME": "dev", "AzureWebJobsStorage__blobServiceUri": azurite_oauth,
              "BATCH_GATEWAY": "azure", "BATCH_ACCOUNT_URL": batch_standin.url, "BATCH_POOL_ID": "mp3pipe-pool",
              "BATCH_JOB_ID": "mp3pipe-job", "INPUT_CONTAINER": "mp4-in", "OUTPUT_CONTAINER": "mp3-out",
              "STATE_CONTAINER": "mp3pipe-state"}
    (root / ".azure" / "dev" / ".env").write_text("".join(f"{k}={json.dumps(v)}\n" for k, v in values.items()))
    bin_dir, log = tmp_path / "bin", tmp_path / "az-calls.txt"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\n"
                  "import json, sys, time\n"
                  f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                  f"print(json.dumps({{'accessToken': {entra_token()!r}, 'tokenType': 'Bearer',\n"
                  "    'expires_on': int(time.time()) + 3600, 'expiresOn': '2099-01-01 00:00:00.000000',\n"
                  "    'subscription': 's', 'tenant': 't'}))\n")
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text((tls[1] / "ca.pem").read_text() + Path(batch_standin.ca_path).read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobsStorage", "BATCH_", "AZURE_"))}
    # Left over from local work: --azure must not send files to Azurite or run tasks locally.
    env.update(AzureWebJobsStorage="UseDevelopmentStorage=true", BATCH_GATEWAY="local")
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", AZURE_TOKEN_CREDENTIALS="AzureCliCredential",
               REQUESTS_CA_BUNDLE=str(bundle), COLUMNS="200", PYTHONPATH=str(REPO))
    return {"root": root, "env": env, "log": log, "standin": batch_standin, "url": azurite_oauth,
            "ca": str(tls[1] / "ca.pem")}


def mp3pipe(project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mp3pipe", *args], cwd=project["root"], env=project["env"],
                          capture_output=True, text=True, timeout=120)


def test_drop_and_status_reach_the_deployed_account_with_the_users_sign_in(project, tmp_path):
    clip = make_mp4(tmp_path / "talk.mp4", 1.0, size="64x64")
    dropped = mp3pipe(project, "--azure", "drop", str(clip), "--prefix", "conf")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert "dropped 1 file(s) into container 'mp4-in'" in dropped.stdout

    # The blob is in the account the azd environment names (read back with Azurite's dev key, not the CLI's).
    account = BlobServiceClient(project["url"], credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY},
                                connection_verify=project["ca"])
    blob = account.get_blob_client("mp4-in", "conf/talk.mp4").get_blob_properties()
    assert blob.size == clip.stat().st_size

    status = mp3pipe(project, "--azure", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert [(f["input"], f["state"]) for f in report["files"]] == [("conf/talk.mp4", "waiting")]
    asked = project["log"].read_text()
    assert "https://storage.azure.com" in asked and "https://batch.core.windows.net" in asked
    batch = [r for r in project["standin"].requests if r.path.startswith("/pools/mp3pipe-pool")]
    assert batch and all(r.headers.get("authorization", "").startswith("Bearer ") for r in batch)


def test_without_a_deployment_azure_says_what_to_run(tmp_path):
    (tmp_path / "azure.yaml").write_text("name: mp3pipe\n")
    result = subprocess.run([sys.executable, "-m", "mp3pipe", "--azure", "status"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2 and "run `azd up`" in result.stdout


def test_without_a_sign_in_the_error_says_how_to_sign_in(project):
    az = Path(project["env"]["PATH"].split(os.pathsep)[0]) / "az"
    az.write_text(f"#!{sys.executable}\nimport sys\nprint(\"ERROR: Please run 'az login' to setup account.\", "
                  "file=sys.stderr)\nsys.exit(1)\n")
    result = mp3pipe(project, "--azure", "status")
    assert result.returncode == 2
    assert "no Entra ID sign-in for the storage account (run `az login` or `azd auth login`)" in result.stdout
