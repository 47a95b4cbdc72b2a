"""The embedded default's broker never hands out a half-written message."""

from __future__ import annotations

import pytest
from kombu import Connection

import mcpsettings.celery  # noqa: F401  (installs the transport)
from mcpsettings import filesystem_broker


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # One folder for the module: kombu remembers declared queues per process,
    # so a queue declared in one folder would not be declared in the next.
    return tmp_path_factory.mktemp("broker")


@pytest.fixture
def connection(folder):
    tmp_path = folder
    folder = str(folder)
    options = {
        "data_folder_in": folder,
        "data_folder_out": folder,
        "control_folder": str(tmp_path / "control"),
    }
    (tmp_path / "control").mkdir(exist_ok=True)
    with Connection("filesystem://", transport_options=options) as conn:
        yield conn


def test_filesystem_urls_use_the_atomic_transport(connection):
    assert isinstance(connection.transport, filesystem_broker.Transport)


def test_messages_round_trip(connection):
    queue = connection.SimpleQueue("jobs")
    queue.put({"n": 1})
    assert queue.get(timeout=1).payload == {"n": 1}
    queue.close()


def test_a_message_being_written_is_invisible_to_consumers(connection, folder):
    queue = connection.SimpleQueue("partial")
    (folder / ".123_abc.partial.msg.partial").write_bytes(b"")
    with pytest.raises(queue.Empty):
        queue.get(timeout=0.2)
    queue.close()


def test_no_consumable_file_exists_until_the_message_is_complete(
    connection, folder, monkeypatch
):
    # kombu's own transport opens the final file name, then writes: a reader
    # listing the folder in between takes an empty message and crashes on it.
    queue = connection.SimpleQueue("atomic")
    seen_while_writing = []
    real = filesystem_broker.str_to_bytes

    def encode_and_look(text):
        seen_while_writing.extend(
            p.name for p in folder.iterdir() if p.name.endswith(".atomic.msg")
        )
        return real(text)

    monkeypatch.setattr(filesystem_broker, "str_to_bytes", encode_and_look)
    queue.put({"n": 1})
    assert seen_while_writing == []
    assert not [p for p in folder.iterdir() if p.name.endswith(".atomic.msg.partial")]
    assert queue.get(timeout=1).payload == {"n": 1}
    queue.close()
