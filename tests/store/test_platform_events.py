"""An audit source read into the store: each event stored once (also when two readers race,
or a reader dies between reading and storing), the cursor kept with it, every batch
vouched for by the audit chain; a flood read in bounded slices; rotation, truncation and
deletion of the log under the tail. The events are the real API server's
(tests/fixtures/events/k8s-audit.jsonl), given new ids where a test needs many."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from driftwarden.config import load_config
from driftwarden.service.runtime import Runtime
from driftwarden.service.sources.platform import SourceReader
from driftwarden.store.export import export_events
from driftwarden.store.models import PlatformEventRow
from driftwarden.store.platform import source_progress
from driftwarden.system.failpoints import ENV_CRASH_AT
from tests.conftest import EVENTS, REPO, write_demo_config

AUDIT_LINES = (EVENTS / "k8s-audit.jsonl").read_text().splitlines()


def fresh_ids(count: int) -> list[str]:
    """`count` audit lines, copies of the recorded ones with ids of their own."""
    lines: list[str] = []
    while len(lines) < count:
        for line in AUDIT_LINES[: count - len(lines)]:
            event = json.loads(line)
            event["auditID"] = str(uuid.uuid4())
            lines.append(json.dumps(event))
    return lines


@pytest.fixture
def reader(tmp_path: Path, store_url: str) -> SourceReader:
    config = write_demo_config(tmp_path)
    log = tmp_path / "audit.log"
    log.touch()
    config.write_text(
        config.read_text().replace("[daemon]\n", f'[daemon]\ndatabase_url = "{store_url}"\n')
        + f'\n[[audit_sources]]\nname = "cluster"\npath = "{log}"\n'
    )
    runtime = Runtime.open(load_config(config))
    return SourceReader(runtime, runtime.config.audit_sources[0])


def log_of(reader: SourceReader) -> Path:
    assert reader.source.path is not None
    return reader.source.path


def stored(reader: SourceReader) -> list[str]:
    with reader.runtime.store.read() as session:
        return list(session.execute(select(col(PlatformEventRow.event_id))).scalars())


def write(path: Path, lines: list[str]) -> None:
    with path.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def test_each_event_once_with_its_cursor_and_its_chain_link(reader: SourceReader) -> None:
    log = log_of(reader)
    write(log, AUDIT_LINES)
    first = reader.read_file()
    assert first.counts.read == len(AUDIT_LINES)
    people = {event.people for event in first.events if not event.engine}
    assert people == {"admin", "mallory", "admin as eve"}
    assert reader.read_file().events == []  # nothing new, nothing twice
    write(log, AUDIT_LINES)  # the same events again (a replay): stored once
    assert reader.read_file().events == []
    ids = stored(reader)
    assert len(ids) == len(set(ids)) == first.counts.kept
    with reader.runtime.store.read() as session:
        progress = source_progress(session, "cluster")
    assert progress.kept == 2 * first.counts.kept  # kept by the profile, stored once
    assert progress.dropped + progress.kept + progress.malformed == 2 * len(AUDIT_LINES)
    assert reader.runtime.store.audit.verify(reader.runtime.store).ok
    out = io.StringIO()
    export_events(reader.runtime.store, out)
    exported = [json.loads(line) for line in out.getvalue().splitlines()]
    batches = [event for event in exported if "platform.events" in json.dumps(event)]
    assert len(batches) == 1, exported[-1]
    assert f'"count": {first.counts.kept}' in json.dumps(batches[0])
    assert "mallory" in json.dumps(batches[0])


def test_two_readers_racing_store_each_event_once(reader: SourceReader) -> None:
    write(log_of(reader), AUDIT_LINES)
    other = SourceReader(reader.runtime, reader.source)
    one, two = reader.read_file(), other.read_file()
    assert len(one.events) + len(two.events) == len(set(stored(reader)))


def test_a_flood_is_read_in_slices_and_nothing_is_lost(reader: SourceReader) -> None:
    log = log_of(reader)
    lines = fresh_ids(3000)
    write(log, lines)
    total = 0
    while True:
        done = reader.read_file(batches=1)
        total += done.counts.read
        if not done.behind and done.counts.read == 0:
            break
    assert total == 3000
    kept = sum(read is not None for read in (json.loads(line) for line in lines))
    assert kept == 3000
    assert len(stored(reader)) == len(set(stored(reader)))


def test_rotation_truncation_and_deletion_under_the_tail(reader: SourceReader) -> None:
    log = log_of(reader)
    write(log, fresh_ids(20))
    reader.read_file()
    write(log, rotated := fresh_ids(10))
    log.rename(log.with_name("audit.log.1"))  # rotated with 10 events unread
    write(log, fresh_ids(5))
    done = reader.read_file()
    assert done.counts.read == 15
    with log.open("w"):  # copytruncate
        pass
    write(log, fresh_ids(3))
    assert reader.read_file().counts.read == 3
    write(log, fresh_ids(4))
    log.unlink()  # deleted with 4 unread lines, then written anew
    (log.parent / "placeholder").touch()  # (takes the freed inode: the new log has another)
    write(log, fresh_ids(2))
    after = reader.read_file()
    assert after.counts.read == 2
    assert after.counts.lost == 1
    with reader.runtime.store.read() as session:
        assert source_progress(session, "cluster").lost == 1
    assert all(json.loads(line)["auditID"] in stored(reader) for line in rotated
               if json.loads(line)["user"]["username"] in ("admin", "mallory"))  # fmt: skip


DRIVER = """
import sys
from pathlib import Path
from driftwarden.config import load_config
from driftwarden.service.sources.platform import SourceReader
from driftwarden.service.runtime import Runtime
runtime = Runtime.open(load_config(Path(sys.argv[1])))
SourceReader(runtime, runtime.config.audit_sources[0]).read_file()
"""


def test_a_reader_killed_between_reading_and_storing_loses_and_repeats_nothing(
    reader: SourceReader,
) -> None:
    log = log_of(reader)
    write(log, lines := fresh_ids(200))
    config = reader.runtime.config.source
    assert config is not None
    killed = subprocess.run(
        [sys.executable, "-c", DRIVER, str(config)],
        env={**os.environ, ENV_CRASH_AT: "source.before-commit"},
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert stored(reader) == []  # its batch died with it, cursor and all
    reader.read_file()
    ids = stored(reader)
    assert len(ids) == len(set(ids))
    kept = [json.loads(line)["auditID"] for line in lines
            if json.loads(line)["user"]["username"] in ("mallory",)]  # fmt: skip
    assert set(kept) <= set(ids)
