"""The Kafka broker's runtime: a Java 17+ check and the jar closure fetched once from Maven Central."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from infra.localstack._common import (
    LocalStackError,
    Progress,
    cache_root,
    default_progress,
    file_lock,
    repo_root,
    tail,
)

LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MIN_JAVA = 17
INSTALL_HINT = "apt-get install openjdk-17-jre-headless maven"


def _pom() -> Path:
    return repo_root() / "deploy" / "local" / "kafka" / "pom.xml"


def require_java() -> str:
    """Path of a ``java`` that is version 17 or newer; a clear install hint otherwise."""
    java = shutil.which("java")
    if java is None:
        raise LocalStackError(f"`java` ({MIN_JAVA}+) is not on PATH; install it: {INSTALL_HINT}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if match is None:
        raise LocalStackError(f"cannot tell the Java version from `java -version`:\n{out.stderr}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_x" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalStackError(f"Kafka 4 needs Java {MIN_JAVA}+, found Java {major}; install: {INSTALL_HINT}")
    return java


def _jars_complete(libs: Path, marker: Path) -> bool:
    try:
        names = [n for n in marker.read_text().splitlines() if n.strip()]
    except OSError:
        return False
    return bool(names) and all((libs / name).is_file() for name in names)


def ensure_jars(version: str, progress: Progress | None = None) -> Path:
    """Copy Kafka ``version``'s jar closure into ``<cache>/kafka-<version>/libs`` once; return that dir.

    A marker file listing the jars is written only after a complete copy, so an interrupted download is
    retried on the next call.
    """
    say = progress or default_progress
    cache_dir = cache_root() / f"kafka-{version}"
    libs, marker = cache_dir / "libs", cache_dir / "libs.complete"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / ".lock"):
        if _jars_complete(libs, marker):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalStackError(f"`mvn` is not on PATH (needed once to fetch Kafka jars); install: {INSTALL_HINT}")
        staging = cache_dir / f"libs.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        build_log = cache_dir / "mvn.log"
        say(f"downloading Apache Kafka {version} jars from Maven Central into {libs} (one-time)")
        started = time.monotonic()
        cmd = [
            mvn, "-B", "-q", "-f", str(_pom()),
            f"-Dkafka.version={version}", f"-Dlog4j.version={LOG4J_VERSION}",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        with open(build_log, "wb") as out:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        jars = sorted(p.name for p in staging.glob("*.jar")) if staging.is_dir() else []
        if code != 0 or not any(j.startswith("kafka_2.13-") for j in jars):
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalStackError(f"maven could not fetch Kafka {version} jars (exit {code}):\n{tail(build_log)}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text("\n".join(jars) + "\n")
        say(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f}s")
        return libs
