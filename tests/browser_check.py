#!/usr/bin/python3
"""browser_check.py: open an HTML page (the tour's gallery) in headless Chromium from a file://
URL, as a reader would, and fail when the page is broken for them:

  * an image that did not load (naturalWidth 0 once the page has loaded),
  * a link to a local file that does not exist,
  * a JavaScript error (an uncaught exception, console.error, or an error the browser logs, such
    as a resource that failed to load).

Then save a full-page screenshot (PNG) to look at.

    browser_check.py PAGE.html SCREENSHOT.png [--width PX]

Exit 0: no problem found; 1: problems (one line each on stdout); 2: bad arguments or no browser.
It drives Chromium through the DevTools protocol over a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so it needs only Python's standard
library and Debian's `chromium` package (scripts/bootstrap --browser installs it).
"""
import argparse
import base64
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

TIMEOUT_S = 60.0


class Browser:
    """Headless Chromium with a DevTools session on one page."""

    def __init__(self, exe, profile):
        # fd 3: our commands to the browser; fd 4: its replies and events.
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--no-default-browser-check", "--hide-scrollbars", "--mute-audio",
                 "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"]

        def child_fds():  # in the child: the pipe ends on fd 3 and 4, as Chromium expects
            # Moved above 10 first, so neither end is overwritten if it already sits on 3 or 4;
            # every other descriptor of ours is close-on-exec (Python's default).
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3, inheritable=True)
            os.dup2(w, 4, inheritable=True)

        self.proc = subprocess.Popen([exe] + flags, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=child_fds, close_fds=False)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._next_id = 0
        self.events = []
        self.session = None

    def close(self):
        try:
            self.send("Browser.close", session=False)
        except Exception:  # noqa: BLE001 (the browser may be gone already)
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read_message(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium within %.0f s" % TIMEOUT_S)
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its DevTools pipe (it crashed or exited)")
                self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True):
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"].get("message")))
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, method):
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e["method"] == method for e in self.events):
            reply = self._read_message(deadline)
            if "method" in reply:
                self.events.append(reply)


def local_path(url):
    """The file a file:// URL names (without its #fragment or ?query), else None."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        return None
    return urllib.parse.unquote(parts.path)


def check(page, screenshot, width):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("browser_check: error: no chromium on PATH (scripts/bootstrap --browser installs it)",
              file=sys.stderr)
        return 2
    problems = []
    with tempfile.TemporaryDirectory(prefix="ssmlab-chromium-") as profile:
        b = Browser(exe, profile)
        try:
            target = b.send("Target.createTarget", {"url": "about:blank"}, session=False)
            b.session = b.send("Target.attachToTarget",
                               {"targetId": target["targetId"], "flatten": True},
                               session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                b.send(domain + ".enable")
            b.send("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            url = pathlib.Path(page).resolve().as_uri()
            nav = b.send("Page.navigate", {"url": url})
            if nav.get("errorText"):
                print("browser_check: error: cannot open %s: %s" % (url, nav["errorText"]),
                      file=sys.stderr)
                return 2
            b.wait_for("Page.loadEventFired")
            # Every image and link as the browser resolved them, once everything has loaded.
            found = b.send("Runtime.evaluate", {"returnByValue": True, "expression": """
                JSON.stringify({
                  images: [...document.images].map(i => ({src: i.currentSrc || i.src,
                                                          complete: i.complete,
                                                          width: i.naturalWidth})),
                  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
                  height: Math.ceil(document.documentElement.scrollHeight)})"""})
            found = json.loads(found["result"]["value"])
            for img in found["images"]:
                if img["width"] == 0:
                    problems.append("image did not load (natural width 0): %s" % img["src"])
            links = 0
            for href in found["links"]:
                path = local_path(href)
                if path is None:
                    continue
                links += 1
                if not os.path.exists(path):
                    problems.append("broken link to a local file: %s" % href)
            for e in b.events:
                p = e.get("params", {})
                if e["method"] == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    text = d.get("exception", {}).get("description") or d.get("text", "")
                    problems.append("JavaScript error: %s" % text.splitlines()[0] if text else "?")
                elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") == "error":
                    args = " ".join(str(a.get("value", a.get("description", "")))
                                    for a in p.get("args", []))
                    problems.append("JavaScript console.error: %s" % args)
                elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    entry = p["entry"]
                    problems.append("browser error: %s %s" % (entry.get("text", ""),
                                                              entry.get("url", "")))
            # The full page: a viewport as tall as the document, then one screenshot.
            height = max(900, min(int(found["height"]), 30000))
            b.send("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
            shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            tmp = screenshot + ".tmp-%d" % os.getpid()
            with open(tmp, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            os.replace(tmp, screenshot)
        finally:
            b.close()
    for line in problems:
        print("FAIL: " + line)
    print("browser_check: %s: %d images, %d local links, %d problems; screenshot %s (%d×%d px)"
          % (page, len(found["images"]), links, len(problems), screenshot, width, height))
    return 1 if problems else 0


def main():
    class Parser(argparse.ArgumentParser):
        def error(self, message):
            self.exit(2, "browser_check: error: %s\n" % message)

    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page")
    ap.add_argument("screenshot")
    ap.add_argument("--width", type=int, default=1280)
    args = ap.parse_args()
    if not os.path.isfile(args.page):
        print("browser_check: error: page '%s' does not exist" % args.page, file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.screenshot))
    if not os.path.isdir(out_dir):
        print("browser_check: error: folder of screenshot '%s' does not exist" % args.screenshot,
              file=sys.stderr)
        return 2
    return check(args.page, args.screenshot, args.width)


if __name__ == "__main__":
    sys.exit(main())
