# What the headless-browser tests of the local pages share (review_test.py, captions_test.py):
# where lorastudio and Chromium are, a lorastudio server started on a free port with its URL
# read from its first line, temporary folders, a per-test time limit, and a page watcher that
# records script errors and any request leaving the server.
import json
import os
import pathlib
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXE = (pathlib.Path(os.environ["BUILD_DIR"]).resolve() if os.environ.get("BUILD_DIR")
       else ROOT / "build") / "lorastudio"
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"

live_servers = []
tmp_dirs = []


def start_lorastudio_server(command, folder, *args, timeout=20):
    """Starts `lorastudio COMMAND FOLDER --port 0 ARGS`; returns it and the URL it prints first."""
    proc = subprocess.Popen([str(EXE), command, str(folder), "--port", "0", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.command = command
    live_servers.append(proc)
    stderr, lines = [], queue.Queue()

    # Both pipes are drained for the server's whole life, so a chatty server never blocks on a full pipe.
    def pump_out():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)
    proc.pumps = [threading.Thread(target=pump_out, daemon=True),
                  threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)]
    for t in proc.pumps:
        t.start()
    try:
        first = lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no URL from lorastudio {command} within {timeout} s: " + "".join(stderr)) from None
    if first is None:
        code = proc.wait()
        raise AssertionError(f"lorastudio {command} exited {code}: " + "".join(stderr))
    url = first.rstrip("\n")
    if not re.fullmatch(r"http://127\.0\.0\.1:\d+/", url):
        raise AssertionError("unexpected first line: " + url)
    return proc, url


def stop_server(proc, sig=signal.SIGTERM):
    """Sends `sig`, then returns the exit status (negative: the signal that ended it)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"lorastudio {proc.command} ignored signal {sig} for 15 s") from None
    finally:
        if proc in live_servers:
            live_servers.remove(proc)
        for t in proc.pumps:
            t.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    tmp_dirs.append(d)
    return d


def cleanup():
    for proc in list(live_servers):
        proc.kill()
    for d in tmp_dirs:
        shutil.rmtree(d, ignore_errors=True)


def time_limit(seconds):
    """Fails the whole run when a test hangs past `seconds`. A watchdog thread rather than an
    exception: the sync Playwright API cannot be interrupted safely from outside its event loop."""
    def wrap(fn):
        def run(self):
            done = threading.Event()

            def watchdog():
                if not done.wait(seconds):
                    print(f"\nFAIL: {self.id()} ran past its {seconds} s limit\nFAILED (timeout)",
                          file=sys.stderr, flush=True)
                    cleanup()
                    os._exit(1)
            threading.Thread(target=watchdog, daemon=True).start()
            try:
                fn(self)
            finally:
                done.set()
        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        return run
    return wrap


def watch(page, origin):
    """Records page errors and every request that leaves the allowed origin."""
    problems = []
    page.on("pageerror", lambda e: problems.append("page error: " + e.message))
    page.on("console", lambda m: problems.append("console: " + m.text) if m.type == "error" else None)

    def on_request(r):
        u = r.url
        if not (u.startswith(origin) or u.startswith("data:") or u.startswith("blob:")):
            problems.append("request: " + u)
    page.on("request", on_request)
    return problems


class BrowserTest(unittest.TestCase):
    """One headless Chromium for the test class (Debian's, driven by Playwright; no download)."""
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not EXE.exists():
            raise AssertionError(f"{EXE} is missing: build lorastudio first (or set BUILD_DIR)")
        cls.pw = sync_playwright().start()
        try:
            cls.browser = cls.pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                      "--disable-background-networking", "--disable-component-update", "--no-first-run",
                      "--disable-sync"])
        except BaseException:
            cls.pw.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.pw.stop()
