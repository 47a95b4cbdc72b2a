"""kombu's ``filesystem://`` transport, with messages written atomically.

The embedded default runs a web server, a worker and beat on one folder of
message files. kombu 5.7 writes a message in place (open, lock, write) while
a consumer takes files without looking at locks, so a consumer can pick up a
file that is still empty, fail to decode it, crash, and lose the message.
Here a message is written under a name no consumer reads and renamed into
place once complete; a rename within one folder is atomic.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers take "<stamp>_<id>.<queue>.msg"; a leading dot never matches.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make ``filesystem://`` broker URLs use this transport."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
