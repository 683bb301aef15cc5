"""The monitoring store over TLS to a PostgreSQL of the test's own: a private cluster in a temp
folder (initdb, pg_ctl), `ssl = on` with a certificate from the test's CA, and a pg_hba that
accepts TLS connections only. `sslmode=verify-full` with the right CA works end to end (the
store migrates, writes and reads); a wrong CA, a wrong host name and plain TCP are refused.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import free_port
from identity import Pki
from watchkeeper.store import MonitoringStore

DAY = "2026-11-02"


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return Path(found[-1]).parent


def as_owner(command: list[str], owner: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


@pytest.fixture(scope="module")
def tls_postgres():
    """(port, CA file, a CA that did not sign the server) of a TLS-only PostgreSQL, stopped afterwards."""
    binaries = postgres_bin()
    owner = "postgres" if os.geteuid() == 0 else None
    if owner and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb would refuse to start")
    folder = Path(tempfile.mkdtemp(prefix="wk-pg-tls-"))   # not under pytest's root-only tmp: postgres reads it
    data, certs = folder / "data", folder / "certs"
    pki, stranger = Pki(certs, "Store CA"), Pki(folder / "stranger", "Stranger CA")
    if owner:
        shutil.chown(folder, owner)
        for path in [certs, *certs.iterdir()]:
            shutil.chown(path, owner)
    pki.key.chmod(0o600)
    subprocess.run(as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                             "--no-sync"], owner), check=True, capture_output=True, timeout=120)
    port = free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{folder}'\n"
                   f"ssl = on\nssl_cert_file = '{pki.cert}'\nssl_key_file = '{pki.key}'\nfsync = off\n")
    (data / "pg_hba.conf").write_text("hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")
    pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60"]
    started = subprocess.run(as_owner([*pg_ctl, "start"], owner), capture_output=True, text=True, timeout=90)
    assert started.returncode == 0, started.stdout + started.stderr + (folder / "server.log").read_text()
    try:
        yield port, pki.ca, stranger.ca
    finally:
        subprocess.run(as_owner([*pg_ctl, "stop", "-m", "fast"], owner), capture_output=True, timeout=90)
        shutil.rmtree(folder, ignore_errors=True)


def url(port: int, host: str = "localhost", **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"postgresql+psycopg2://postgres@{host}:{port}/postgres?{query}"


def test_the_store_works_over_tls_with_verify_full(tls_postgres):
    port, ca, _ = tls_postgres
    store = MonitoringStore(url(port, sslmode="verify-full", sslrootcert=str(ca)))
    store.put_health("churn", DAY, "2", "degraded", [])
    assert [(r.model, r.status) for r in store.verdicts()] == [("churn", "degraded")]
    with store.engine.connect() as conn:   # the session really is encrypted
        assert conn.exec_driver_sql("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar() is True
    store.engine.dispose()


@pytest.mark.parametrize("case, host, params, error", [
    ("a CA that did not sign the server", "localhost", {"sslmode": "verify-full"}, "certificate verify failed"),
    ("a host name not in the certificate", "127.0.0.2", {"sslmode": "verify-full"}, "does not match host name"),
    ("no TLS at all", "localhost", {"sslmode": "disable"}, "no encryption"),
])
def test_a_wrong_ca_a_wrong_host_or_plain_tcp_is_refused(tls_postgres, case, host, params, error):
    port, ca, stranger = tls_postgres
    rootcert = stranger if case.startswith("a CA") else ca
    if host != "localhost":   # a name the certificate does not carry, resolving to the same server
        params = {**params, "hostaddr": "127.0.0.1"}
    engine = sa.create_engine(url(port, host, sslrootcert=str(rootcert), **params))
    with pytest.raises(sa.exc.OperationalError, match=error):
        MonitoringStore(engine).verdicts()
    engine.dispose()
