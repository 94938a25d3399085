"""Opening a report page in headless Chromium: console errors, image sizes, a screenshot.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
the browser reads NUL-terminated JSON commands on fd 3 and writes replies and
events on fd 4), with the standard library only. :func:`open_page` loads a file,
waits for its ``load`` event and for every image to decode, and returns the
console errors, uncaught exceptions and each image's natural size; with
``screenshot`` it also saves a PNG of the whole page.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path

from metaunsup.run.outputs import atomic_write_bytes

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe")

# Resolves once every image has decoded (or failed), then reports their sizes.
_IMAGES_JS = """
Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null))).then(() =>
  Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,
                                           width: i.naturalWidth, height: i.naturalHeight})))
"""


def find_chromium() -> str | None:
    """Path of a Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class _Pipe:
    """A DevTools session over the two pipes of a Chromium process."""

    def __init__(self, binary: str, user_data_dir: str, timeout: float):
        self.deadline = time.monotonic() + timeout
        to_r, to_w = os.pipe()    # we write commands; Chromium reads them as fd 3
        from_r, from_w = os.pipe()  # Chromium writes as fd 4; we read
        # Move the child's ends above 4 so the dup2s below cannot overwrite each other.
        c_in = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        c_out = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_r)
        os.close(from_w)
        devnull = os.open(os.devnull, os.O_RDWR)
        argv = [binary, *FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"]
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                   (os.POSIX_SPAWN_DUP2, devnull, 2), (os.POSIX_SPAWN_DUP2, c_in, 3),
                   (os.POSIX_SPAWN_DUP2, c_out, 4)]
        try:
            self.pid = os.posix_spawn(binary, argv, os.environ, file_actions=actions,
                                      setsid=True)
        finally:
            for fd in (c_in, c_out, devnull):
                os.close(fd)
        self.w, self.r = to_w, from_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []

    def _read_message(self) -> dict:
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        for i, ev in enumerate(self.events):
            if ev.get("method") == method:
                return self.events.pop(i)
        while True:
            msg = self._read_message()
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)

    def close(self) -> None:
        try:
            os.write(self.w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass
        for _ in range(50):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.killpg(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.w)
        os.close(self.r)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for ev in events:
        p = ev.get("params", {})
        if ev.get("method") == "Runtime.exceptionThrown":
            out.append("exception: " + p.get("exceptionDetails", {}).get("text", "?"))
        elif ev.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error",
                                                                                    "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                              for a in p.get("args", [])))
        elif ev.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append(f"log: {e.get('text', '')} {e.get('url', '')}".strip())
    return out


def open_page(page, *, screenshot=None, width: int = 1200, max_height: int | None = None,
              timeout: float = 30.0, binary: str | None = None) -> dict:
    """Loads ``page`` (a file) in headless Chromium and inspects it.

    Args:
      page: path of an HTML file.
      screenshot: if given, a PNG of the whole page is written there.
      width: viewport width in CSS pixels.
      max_height: crop the screenshot to the top this many CSS pixels (None: whole page).
      timeout: seconds for the whole session.
      binary: the Chromium executable (default: :func:`find_chromium`).

    Returns:
      ``{"errors": [...], "images": [{"alt", "complete", "width", "height"}], "title"}``.
    """
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium binary found (Debian: apt-get install chromium)")
    url = Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="metaunsup-chromium-") as profile:
        cdp = _Pipe(binary, profile, timeout)
        try:
            target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            sid = cdp.call("Target.attachToTarget", {"targetId": target,
                                                     "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                cdp.call(f"{domain}.enable", session=sid)
            cdp.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900,
                                                            "deviceScaleFactor": 1,
                                                            "mobile": False}, session=sid)
            cdp.call("Page.navigate", {"url": url}, session=sid)
            cdp.wait_event("Page.loadEventFired")
            res = cdp.call("Runtime.evaluate", {"expression": _IMAGES_JS, "awaitPromise": True,
                                                "returnByValue": True}, session=sid)
            images = res.get("result", {}).get("value", [])
            title = cdp.call("Runtime.evaluate", {"expression": "document.title",
                                                  "returnByValue": True},
                             session=sid)["result"].get("value")
            if screenshot is not None:
                size = cdp.call("Page.getLayoutMetrics", session=sid)["cssContentSize"]
                height = int(size["height"]) + 1
                if max_height:
                    height = min(height, int(max_height))
                cdp.call("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height,
                          "deviceScaleFactor": 1, "mobile": False}, session=sid)
                shot = cdp.call("Page.captureScreenshot",
                                {"format": "png", "captureBeyondViewport": not max_height},
                                session=sid)
                atomic_write_bytes(screenshot, base64.b64decode(shot["data"]))
            # Let late console messages arrive before reading the events.
            cdp.call("Runtime.evaluate", {"expression": "1"}, session=sid)
            errors = _errors(cdp.events)
        finally:
            cdp.close()
    return {"errors": errors, "images": images, "title": title}
