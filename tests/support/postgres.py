"""A real PostgreSQL server for a test: initdb into a fresh folder, serve on 127.0.0.1.

``postgres_server`` (session fixture) starts one server per test session with a database
and a password-protected user, and stops it and removes its folder at teardown. The
server binaries come from Debian's ``postgresql`` package (scripts/bootstrap.sh installs
it) under /usr/lib/postgresql/<major>/bin. PostgreSQL refuses to run as root, so when the
tests run as root (CI) the server runs as the ``postgres`` OS user, which owns the folder.

Administration goes through a Unix socket in that folder (``trust``: only the folder's owner
and root can reach it); the projects under test connect over TCP with the password
(``scram-sha-256``) through ``PostgresServer.url``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.process import sh
from support.servers import free_port

#: SQL type of each ``datagen.column_kinds`` kind.
SQL_TYPES = {"numeric": "double precision", "categorical": "text", "boolean": "boolean"}


def find_bin_dir() -> Path | None:
    """Return the newest /usr/lib/postgresql/<major>/bin holding initdb, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True
    )
    return candidates[0].parent if candidates else None


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class PostgresServer:
    """A running server: connection facts and helpers to set up tables."""

    bin_dir: Path
    folder: Path
    port: int
    user: str
    password: str
    database: str
    run_as: str | None
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        """Folder of the server's Unix socket (administration only)."""
        return self.folder / "socket"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database for the test user (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def url_for(self, *, port: int | None = None, password: str | None = None) -> str:
        """The URL with another port or password (an unreachable or refused database)."""
        return (
            f"postgresql+psycopg://{self.user}:{password or self.password}"
            f"@{self.host}:{port or self.port}/{self.database}"
        )

    def _server_cmd(self, *cmd: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else list(cmd)

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run ``sql`` as the superuser over the Unix socket; return psql's output."""
        proc = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database or self.database,
                "-At",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}\nSQL: {sql[:500]}")
        return proc.stdout

    def load_csv(self, table: str, csv_path: Path, kinds: Mapping[str, str]) -> int:
        """(Re)create ``table`` with a column per ``kinds`` entry (see SQL_TYPES) and COPY the
        CSV (a header row, empty field = NULL) into it; return the row count. The test user
        owns the table.
        """
        columns = ", ".join(f"{_quote_ident(name)} {SQL_TYPES[kind]}" for name, kind in kinds.items())
        names = ", ".join(_quote_ident(name) for name in kinds)
        self.psql(f"DROP TABLE IF EXISTS {_quote_ident(table)}")
        self.psql(f"CREATE TABLE {_quote_ident(table)} ({columns})")
        self.psql(f"ALTER TABLE {_quote_ident(table)} OWNER TO {_quote_ident(self.user)}")
        # \copy reads the file on the client side: the server user needs no access to it.
        self.psql(f"\\copy {_quote_ident(table)} ({names}) FROM {_quote_literal(str(csv_path))} CSV HEADER")
        return int(self.psql(f"SELECT count(*) FROM {_quote_ident(table)}").strip())

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._server_cmd(
                    str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast"
                ),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server(
    *, user: str = "andamio", database: str = "training", listen: str = "127.0.0.1", clients: str = ""
) -> PostgresServer:
    """Initialise a cluster in a new folder under the temp dir and start it on a free port.

    ``listen`` is the one address the server binds (a test network's address on this machine
    for throwaway hosts), ``clients`` a CIDR allowed to log in with the password from there.

    The folder is made with tempfile (not pytest's tmp_path, which is private to root) and
    handed to the ``postgres`` user when running as root.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/bootstrap.sh)"
        )
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="andamio-pg-"))
    server = PostgresServer(
        bin_dir=bin_dir,
        folder=folder,
        port=free_port(),
        user=user,
        # URL-safe, and distinctive enough to grep for in outputs the project writes.
        password="pw" + secrets.token_hex(12),
        database=database,
        run_as=run_as,
        host=listen,
    )
    try:
        server.socket_dir.mkdir()
        if run_as:
            owner = pwd.getpwnam(run_as)
            for path in (folder, server.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        sh(
            None,
            *server._server_cmd(
                str(bin_dir / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ),
        )
        if clients:
            with (server.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {clients} scram-sha-256\n")
        options = (
            f"-c listen_addresses={listen} -p {server.port} -k {server.socket_dir}"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        sh(
            None,
            *server._server_cmd(
                str(bin_dir / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(server.data_dir),
                "-l",
                str(folder / "server.log"),
                "-o",
                options,
            ),
        )
        # Two calls: psql -c runs its statements in one transaction, CREATE DATABASE refuses that.
        server.psql(
            f"CREATE ROLE {_quote_ident(user)} LOGIN PASSWORD {_quote_literal(server.password)}",
            database="postgres",
        )
        server.psql(
            f"CREATE DATABASE {_quote_ident(database)} OWNER {_quote_ident(user)}", database="postgres"
        )
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def running_server(**options: str) -> Iterator[PostgresServer]:
    """Start a server for the ``with`` block; stop it and remove its folder afterwards."""
    server = start_server(**options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test session (see the module docstring)."""
    with running_server() as server:
        yield server
