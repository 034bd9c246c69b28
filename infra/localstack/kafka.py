"""Local single-node Apache Kafka broker (KRaft, combined broker + controller) run as a JVM process.

Jars come from Maven Central (``_kafka_jars.py``, ``deploy/local/kafka/pom.xml``) and are cached once per
machine under ``${XDG_CACHE_HOME:-~/.cache}/karya/kafka-<version>/libs``. Data, log and pid
live under ``<state dir>/kafka``. The broker is started detached and stopped by its recorded pid only.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.protocol.admin import ApiVersionRequest

from infra.localstack._common import (
    LOOPBACK,
    LocalStackError,
    Progress,
    StatePath,
    default_progress,
    env_port_override,
    ephemeral_note,
    file_lock,
    log_excerpt,
    pid_alive,
    pid_cmdline,
    port_open,
    read_pid,
    reap,
    repo_root,
    run_sync,
    state_root,
    terminate_pid,
)
from infra.localstack._kafka_jars import ensure_jars, require_java

KAFKA_VERSION_DEFAULT = "4.1.1"
# Outside Linux's ephemeral range (32768-60999), where a reconnecting client can take a stopped broker's port.
DEFAULT_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 30.0

# Kafka's own flags from kafka-run-class.sh / kafka-server-start.sh.
JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
    "-Xms512m",
    "-Xmx1g",
)
MAIN_CLASS = "kafka.Kafka"
_VERSION_RE = re.compile(r"Kafka version: (\S+)")
_LISTENER_RE = re.compile(r"(PLAINTEXT|CONTROLLER)://[^,\s]+:(\d+)")


@dataclass(frozen=True)
class KafkaInfo:
    """A reachable Kafka broker: where to connect, its pid (None if not ours) and its version."""

    bootstrap: str
    pid: int | None
    version: str


@dataclass(frozen=True)
class _Layout:
    version: str
    port: int
    controller_port: int
    state_dir: Path
    ports_from: str = "defaults"
    """Where the ports came from: "environment", "running broker" (its recorded listeners) or "defaults"."""

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    data_dir = StatePath("data")
    log_file = StatePath("broker.log")
    pid_file = StatePath("kafka.pid")
    properties = StatePath("server.properties")
    formatted = StatePath("formatted.properties")


def _layout() -> _Layout:
    """Where the broker lives. Ports: the environment's, else those a running broker was started with (its
    recorded ``server.properties``, so a stack started on other ports is still found), else the defaults."""
    version = os.environ.get("KARYA_KAFKA_VERSION", "").strip() or KAFKA_VERSION_DEFAULT
    state_dir = state_root() / "kafka"
    state_dir.mkdir(parents=True, exist_ok=True)
    port = env_port_override("KARYA_KAFKA_PORT")
    controller_port = env_port_override("KARYA_KAFKA_CONTROLLER_PORT")
    ports_from = "environment"
    if port is None or controller_port is None:
        recorded = _running_listeners(_Layout(version, DEFAULT_PORT, DEFAULT_CONTROLLER_PORT, state_dir))
        ports_from = "running broker" if recorded is not None else "defaults"
        recorded_port, recorded_controller = recorded or (DEFAULT_PORT, DEFAULT_CONTROLLER_PORT)
        port = recorded_port if port is None else port
        controller_port = recorded_controller if controller_port is None else controller_port
    if port == controller_port:
        raise LocalStackError(f"KARYA_KAFKA_PORT and KARYA_KAFKA_CONTROLLER_PORT are both {port}")
    return _Layout(version, port, controller_port, state_dir, ports_from)


def _listener_ports(properties: str) -> tuple[int, int] | None:
    """(broker port, controller port) from the ``listeners=`` line of a server.properties text."""
    for line in properties.splitlines():
        if line.startswith("listeners="):
            found = dict(_LISTENER_RE.findall(line))
            if "PLAINTEXT" in found and "CONTROLLER" in found:
                return int(found["PLAINTEXT"]), int(found["CONTROLLER"])
    return None


def _running_listeners(lay: _Layout) -> tuple[int, int] | None:
    """The ports the broker of this state dir runs with, when it runs."""
    if _running_pid(lay) is None:
        return None
    try:
        return _listener_ports(lay.properties.read_text())
    except OSError:
        return None


def _log4j_config() -> Path:
    return repo_root() / "deploy" / "local" / "kafka" / "log4j2.properties"


def _server_properties(lay: _Layout) -> str:
    controller = f"{LOOPBACK}:{lay.controller_port}"
    lines = [
        "# written by infra/localstack/kafka.py on every start; edit that file, not this one",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={controller}",
        f"listeners=PLAINTEXT://{lay.bootstrap},CONTROLLER://{controller}",
        f"advertised.listeners=PLAINTEXT://{lay.bootstrap},CONTROLLER://{controller}",
        "inter.broker.listener.name=PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={lay.data_dir}",
        # one node: every internal topic must accept replication factor 1, or InitProducerId
        # (idempotent/transactional producers) and consumer groups hang
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        # dev convenience; production topics are created explicitly with their partition counts
        "auto.create.topics.enable=true",
        "num.partitions=6",
        "default.replication.factor=1",
        "min.insync.replicas=1",
    ]
    return "\n".join(lines) + "\n"


def _java_base(java: str, libs: Path) -> list[str]:
    return [java, *JVM_FLAGS, f"-Dlog4j2.configurationFile={_log4j_config()}", "-cp", f"{libs}/*"]


def _format_storage(lay: _Layout, java: str, libs: Path, say: Progress) -> None:
    """Format the KRaft storage once. Data formatted for another controller port is kept: the storage is
    formatted ``--standalone`` (a dynamic quorum of one voter), and on start the leader records its new endpoint
    in the voter set (tried with Kafka 4.1.1: topics and offsets survive a move of both ports)."""
    if (lay.data_dir / "meta.properties").exists():
        recorded = lay.formatted.read_text() if lay.formatted.exists() else ""
        want = f"controller.port={lay.controller_port}"
        if recorded and want not in recorded.splitlines():
            kept = [ln for ln in recorded.splitlines() if ln and not ln.startswith("controller.port=")]
            old = next((ln.split("=", 1)[1] for ln in recorded.splitlines() if ln.startswith("controller.port=")), "?")
            say(f"the KRaft storage was formatted for controller port {old}; moving it to {lay.controller_port}")
            lay.formatted.write_text("\n".join([*kept, want]) + "\n")
        return
    say(f"formatting KRaft storage in {lay.data_dir}")
    tool = [*_java_base(java, libs), "kafka.tools.StorageTool"]
    uuid = subprocess.run([*tool, "random-uuid"], capture_output=True, text=True, check=False)
    cluster_id = uuid.stdout.strip().splitlines()[-1] if uuid.stdout.strip() else ""
    if uuid.returncode != 0 or not cluster_id:
        raise LocalStackError(f"kafka.tools.StorageTool random-uuid failed:\n{uuid.stdout}{uuid.stderr}")
    fmt = subprocess.run(
        [*tool, "format", "-t", cluster_id, "-c", str(lay.properties), "--standalone", "--ignore-formatted"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if fmt.returncode != 0:
        raise LocalStackError(f"kafka.tools.StorageTool format failed:\n{fmt.stdout}{fmt.stderr}")
    lay.formatted.write_text(f"cluster.id={cluster_id}\ncontroller.port={lay.controller_port}\n")


def _running_pid(lay: _Layout) -> int | None:
    """The recorded broker pid if that process is alive and really is our Kafka JVM."""
    pid = read_pid(lay.pid_file)
    if pid is None:
        return None
    reap(pid)
    if not pid_alive(pid):
        return None
    argv = pid_cmdline(pid)
    if MAIN_CLASS not in argv or str(lay.properties) not in argv:
        return None  # the pid was recycled by an unrelated process
    return pid


def _check_same_listeners(lay: _Layout, pid: int) -> None:
    """A running broker keeps the ports it started with; refuse to wait for it on others."""
    try:
        current = lay.properties.read_text()
    except OSError:
        return
    wanted = next(line for line in _server_properties(lay).splitlines() if line.startswith("listeners="))
    if wanted not in current.splitlines():
        started = next((ln for ln in current.splitlines() if ln.startswith("listeners=")), "?")
        raise LocalStackError(
            f"Kafka (pid {pid}) already runs with {started}, not {wanted}; "
            "stop it first (`karya stack down --no-postgres`) or unset the port overrides"
        )


def _version_from_log(log_file: Path) -> str | None:
    """The version the broker logged at start. The log begins at that start (it is rotated per start) but with
    thousands of partitions to load the line can come after many megabytes, so the file is scanned line by line."""
    try:
        with open(log_file, "rb") as handle:
            for raw in handle:
                if b"Kafka version" in raw:
                    match = _VERSION_RE.search(raw.decode(errors="replace"))
                    if match:
                        return match.group(1)
    except OSError:
        return None
    return None


def _info(lay: _Layout, pid: int) -> KafkaInfo:
    version = _version_from_log(lay.log_file) or lay.version
    return KafkaInfo(bootstrap=lay.bootstrap, pid=pid, version=f"Apache Kafka {version}")


async def _probe(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        await admin.describe_cluster()
    finally:
        await admin.close()


def _wait_ready(lay: _Layout, pid: int, say: Progress) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        reap(pid)
        if not pid_alive(pid):
            lay.pid_file.unlink(missing_ok=True)
            raise LocalStackError(
                f"the Kafka broker (pid {pid}) exited during start; {lay.log_file}:\n{log_excerpt(lay.log_file)}"
            )
        if port_open(lay.port):
            try:
                run_sync(lambda: _probe(lay.bootstrap))
                return
            except Exception as exc:  # readiness probe: any failure means "not yet"
                last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise LocalStackError(
        f"the Kafka broker (pid {pid}) did not answer metadata requests on {lay.bootstrap} within "
        f"{START_TIMEOUT_SECONDS:.0f}s (last error: {last_error}); it is left running, stop it with "
        f"`karya stack down`. {lay.log_file}:\n{log_excerpt(lay.log_file)}"
    )


def ensure_kafka(progress: Progress | None = None) -> KafkaInfo:
    """Start the local broker unless it already runs; wait until it answers metadata requests."""
    say = progress or default_progress
    lay = _layout()
    with file_lock(lay.state_dir / ".lock"):
        pid = _running_pid(lay)
        if pid is not None:
            _check_same_listeners(lay, pid)
            if not port_open(lay.port):
                say(f"Kafka pid {pid} is alive but {lay.bootstrap} does not answer yet; waiting")
                _wait_ready(lay, pid, say)
            return _info(lay, pid)
        lay.pid_file.unlink(missing_ok=True)
        for name, port in (
            ("KARYA_KAFKA_PORT", lay.port),
            ("KARYA_KAFKA_CONTROLLER_PORT", lay.controller_port),
        ):
            if port_open(port):
                raise LocalStackError(
                    f"{LOOPBACK}:{port} is already taken by a process this tool did not start; "
                    f"free it or set {name} to another port"
                )
        java = require_java()
        libs = ensure_jars(lay.version, say)
        lay.properties.write_text(_server_properties(lay))
        lay.data_dir.mkdir(parents=True, exist_ok=True)
        _format_storage(lay, java, libs, say)
        if lay.log_file.exists():
            lay.log_file.replace(lay.log_file.with_suffix(".log.1"))
        say(f"starting Apache Kafka {lay.version} on {lay.bootstrap} (log: {lay.log_file})")
        started = time.monotonic()
        with open(lay.log_file, "wb") as log:
            proc = subprocess.Popen(
                [*_java_base(java, libs), MAIN_CLASS, str(lay.properties)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=lay.state_dir, start_new_session=True,
            )  # fmt: skip
        lay.pid_file.write_text(f"{proc.pid}\n")
        _wait_ready(lay, proc.pid, say)
        say(f"Kafka ready in {time.monotonic() - started:.1f}s (pid {proc.pid})")
        return _info(lay, proc.pid)


def kafka_port_note() -> str | None:
    """A warning when the running local broker was found on ports inside the ephemeral range (old defaults)."""
    lay = _layout()
    if lay.ports_from != "running broker":
        return None
    return ephemeral_note("Kafka", lay.port, DEFAULT_PORT) or ephemeral_note(
        "the Kafka controller", lay.controller_port, DEFAULT_CONTROLLER_PORT
    )


def kafka_status() -> KafkaInfo | None:
    """The running local broker, or None when it is not running or not answering on its port."""
    lay = _layout()
    pid = _running_pid(lay)
    if pid is None or not port_open(lay.port):
        return None
    return _info(lay, pid)


def stop_kafka(progress: Progress | None = None) -> bool:
    """Stop the local broker by its recorded pid (SIGTERM, then SIGKILL after 30 s); False if not running."""
    say = progress or default_progress
    lay = _layout()
    with file_lock(lay.state_dir / ".lock"):
        pid = _running_pid(lay)
        lay_pid_file = lay.pid_file
        if pid is None:
            lay_pid_file.unlink(missing_ok=True)
            return False
        say(f"stopping Kafka (pid {pid})")
        terminate_pid(pid, grace_seconds=STOP_GRACE_SECONDS, progress=say)
        lay_pid_file.unlink(missing_ok=True)
        return True


def _is_local(bootstrap: str, lay: _Layout) -> bool:
    local = {f"{LOOPBACK}:{lay.port}", f"localhost:{lay.port}"}
    return any(part.strip() in local for part in bootstrap.split(","))


async def _api_versions_summary(bootstrap: str) -> str:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    conn = await create_conn(host or first, int(port or 9092), request_timeout_ms=5000)
    try:
        response = await conn.send(ApiVersionRequest())
    finally:
        conn.close()
    versions: dict[int, tuple[int, int]] = {key: (low, high) for key, low, high in response.api_versions}
    produce, fetch = versions.get(0), versions.get(1)
    if produce is None or fetch is None:
        return "Apache Kafka (version not reported)"
    return (
        f"Apache Kafka (version not reported; ApiVersions Produce v{produce[0]}-{produce[1]}, "
        f"Fetch v{fetch[0]}-{fetch[1]})"
    )


def kafka_server_version(bootstrap: str) -> str:
    """Human-readable broker version, e.g. "Apache Kafka 4.1.1".

    Exact for the local broker (read from its log). For another cluster the Kafka protocol carries no
    release number, so this is best effort: a summary of its ApiVersions, or "version not reported".
    """
    lay = _layout()
    if _is_local(bootstrap, lay) and _running_pid(lay) is not None:
        version = _version_from_log(lay.log_file)
        if version:
            return f"Apache Kafka {version}"
    try:
        return run_sync(lambda: _api_versions_summary(bootstrap))
    except Exception:  # best effort: an unreachable or odd cluster still gets an answer
        return "Apache Kafka (version not reported)"
