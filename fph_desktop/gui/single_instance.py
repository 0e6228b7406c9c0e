"""One window per user: photos opened from the file manager while the app runs go to the running
window over a local socket (a named pipe on Windows), instead of starting a second app that would
load the model and open the index again.

The socket's name is derived from the user and the data folder, so a portable install or a test
with its own ``FPH_DESKTOP_DATA_DIR`` is an instance of its own. A socket left behind by a crash is
removed when nothing answers on it. The message is one JSON object: ``{"open": [paths...]}``; the
running app answers ``ok`` once it has taken the photos.
"""

from __future__ import annotations

import getpass
import hashlib
import json

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_MS = 300  # a running app answers within milliseconds; a stale socket does not answer at all
REPLY_MS = 2000


def server_name() -> str:
    from .. import paths

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (some containers): the data folder still tells installs apart
        user = "user"
    key = hashlib.sha256(f"{user}\0{paths.data_dir()}".encode()).hexdigest()[:16]
    return f"fph-desktop-{key}"


def send_to_running_instance(photos: list[str], name: str | None = None) -> bool:
    """Hand ``photos`` (possibly none: "come to the front") to the running app; ``False`` when there is none."""
    socket = QLocalSocket()
    socket.connectToServer(name or server_name())
    if not socket.waitForConnected(CONNECT_MS):
        return False
    socket.write(json.dumps({"open": list(photos)}).encode() + b"\n")
    socket.flush()
    answered = socket.waitForReadyRead(REPLY_MS) and socket.readAll().data().strip() == b"ok"
    socket.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for later launches; ``photosReceived(paths)`` for each (an empty list: just show the window)."""

    photosReceived = Signal(list)

    def __init__(self, parent: QObject | None = None, name: str | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)  # this user only
        if not self.server.listen(self.name):
            QLocalServer.removeServer(self.name)  # left by a crashed instance: nothing answered on it
            self.server.listen(self.name)
        self.server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    @property
    def listening(self) -> bool:
        return self.server.isListening()

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            socket = self.server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._drop(s))

    def _read(self, socket: QLocalSocket) -> None:
        self._buffers[socket] = self._buffers.get(socket, b"") + socket.readAll().data()
        if not self._buffers[socket].endswith(b"\n"):
            return
        try:
            message = json.loads(self._buffers[socket])
            photos = [str(p) for p in message.get("open", [])]
        except (ValueError, AttributeError, TypeError):
            socket.disconnectFromServer()  # not one of ours: ignored
            return
        self._buffers[socket] = b""
        socket.write(b"ok\n")
        socket.flush()
        self.photosReceived.emit(photos)

    def _drop(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()

    def close(self) -> None:
        self.server.close()
