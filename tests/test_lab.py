"""main.ipynb in a real JupyterLab, driven by headless Chromium (Debian's) through Playwright.

Run on its own with ``pytest -m browser``. It starts JupyterLab on a free local port over a copy
of the notebook with the smoke parameters injected (as papermill would), runs every cell from the
browser, and checks what a person would see: no error, widget progress bars, the raster
explorer's canvas, and that a zoom in the browser reaches Python and redraws the view. The
screenshots go to the test's ``tmp_path`` (``screenshots/``); the path is printed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_notebook import ROOT, smoke_parameters

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Debian's Chromium (apt-get install chromium); .ci/run installs it when missing.
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a sandboxed, offline, headless run (no first-run pages, no background traffic).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RUN_ALL_TIMEOUT_S = 900
#: JupyterLab's "get notified about Jupyter news?" toast, which would cover part of the page.
NEWS = "@jupyterlab/apputils-extension:announcements"

#: Notebook state read from JupyterLab's application object (exposed with expose_app_in_browser).
NOTEBOOK_STATE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel.sessionContext.session?.kernel;
    const cells = panel.content.widgets.filter((c) => c.model.type === "code");
    const outputs = cells.map((c) => Array.from({length: c.model.outputs.length},
        (_, i) => c.model.outputs.get(i).toJSON()));
    return {
        status: kernel ? kernel.status : "none",
        counts: cells.map((c) => c.model.executionCount),
        errors: outputs.flat().filter((o) => o.output_type === "error")
            .map((o) => o.ename + ": " + o.evalue + "\\n" + o.traceback.join("\\n")),
        text: outputs.flat().filter((o) => o.output_type === "stream").map((o) => o.text).join(""),
    };
}"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(tmp_path: Path) -> Path:
    """main.ipynb with the smoke parameters injected, on the small generated data set."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from tiling.synthetic import generate_dataset

    generate_dataset(tmp_path / "data", small=True, seed=0)
    nb = load_notebook_node(str(ROOT / "main.ipynb"))  # as papermill reads it (tags filled in)
    # the smoke model's scores stay below 0.16: keep its best detections so that the explorer
    # shows false (and any true) positives beside the missed objects
    parameters = smoke_parameters(tmp_path, tmp_path / "data", score_thresh=0.1)
    nb = parameterize_notebook(nb, parameters)
    path = tmp_path / "main.ipynb"
    nbformat.write(nb, path)
    return path


def start_lab(tmp_path: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab serving ``tmp_path`` on ``port``; its kernels import this checkout's packages."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "RASTER_DETECT_WIDGETS")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter" / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter" / "runtime"),
        IPYTHONDIR=str(tmp_path / "jupyter" / "ipython"),
    )
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}", "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.workspaces_dir={tmp_path / 'jupyter' / 'workspaces'}",
        "--ServerApp.allow_root=True", "--ServerApp.terminals_enabled=False",
        "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
    ]  # fmt: skip
    labconfig = tmp_path / "jupyter" / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {NEWS: True}}))
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and lab.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return lab
        except OSError:
            time.sleep(0.5)
    lab.terminate()
    raise AssertionError(f"JupyterLab did not start: {(tmp_path / 'lab.log').read_text()[-3000:]}")


def run_all_cells(page, timeout_s: float) -> dict:
    """Run every cell from the browser; the notebook state once done or failed."""
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status"
        " === 'idle'",
        timeout=120_000,
    )
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(2)
        state = page.evaluate(NOTEBOOK_STATE_JS)
        finished = all(c is not None for c in state["counts"]) or state["errors"]
        if finished and state["status"] == "idle":
            return state
    raise AssertionError(f"cells still running after {timeout_s} s: {state['counts']}")


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; missing is a failure in CI (.ci/run installs it), a skip elsewhere."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs it with apt-get install chromium")
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    return CHROMIUM


def test_notebook_runs_in_jupyterlab(tmp_path, chromium):
    from playwright.sync_api import sync_playwright

    notebook = write_notebook(tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    lab = start_lab(tmp_path, port, token)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook.name}?token={token}")
            state = run_all_cells(page, RUN_ALL_TIMEOUT_S)
            page.screenshot(path=shots / "notebook.png")
            assert not state["errors"], "\n\n".join(state["errors"])
            assert all(isinstance(c, int) for c in state["counts"])
            assert "IProgress" not in state["text"] and "TqdmWarning" not in state["text"]
            check_progress_bars(page)
            check_explorer(page, shots)
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    print(f"screenshots in {shots}")


def check_progress_bars(page) -> None:
    """Widget bars (tqdm.notebook) rendered for tiling, the trials and prediction, and finished."""
    bars = page.locator(".jp-OutputArea-output .widget-hprogress")
    assert bars.count() >= 3, f"{bars.count()} widget progress bars on the page"
    done = page.locator(".jp-OutputArea-output .widget-hprogress .progress-bar-success")
    assert done.count() >= 3, f"{done.count()} widget progress bars completed"
    # text content, not inner text: cells scrolled out of view are not laid out
    labels = " ".join(page.locator(".jp-OutputArea-output .widget-hbox").all_text_contents())
    labels = labels.replace("\u2007", " ")  # tqdm.notebook pads with figure spaces
    # the trials run on Ray (the notebook's default): their Lightning bars stay in the worker,
    # the driver's bar over the trials is on the page (Tune's notebook reporter would clear it)
    for desc in ("read tiles", "trials (Ray): 100%", "predict: 100%"):
        assert desc in labels, f"no widget bar labelled {desc!r} in {labels[:500]!r}"


def check_explorer(page, shots: Path) -> None:
    """The explorer's canvas is on the page and a wheel zoom redraws it from Python."""
    canvas = page.locator(".jp-OutputArea-output .bk-Canvas canvas").first
    canvas.wait_for(state="visible", timeout=60_000)
    canvas.scroll_into_view_if_needed()
    plot = page.locator(".jp-OutputArea-output .bk-Column").last
    status = page.get_by_text(re.compile(r"^view x .* objects")).first  # in Bokeh's shadow DOM
    before = status.inner_text()
    kinds = [
        k for k in ("true positive", "false positive", "missed") if page.get_by_text(k).count()
    ]
    assert kinds, "no match kinds in the explorer's filter"  # which ones depends on the smoke model
    plot.screenshot(path=shots / "explorer.png")
    hover_and_click_an_object(page, canvas.bounding_box(), shots)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.mouse.wheel(0, -300)  # one wheel step: Bokeh zooms in, Python reads the new view
    after = before
    deadline = time.monotonic() + 60
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        after = page.get_by_text(re.compile(r"^view x .* objects")).first.inner_text()
    assert after != before, f"the view did not change after a zoom: {before!r}"
    time.sleep(1)
    plot.screenshot(path=shots / "explorer_zoomed.png")
    (shots / "status.json").write_text(json.dumps({"before": before, "after": after}))


def hover_and_click_an_object(page, box: dict, shots: Path) -> None:
    """Sweep the mouse over the canvas until a tooltip shows; click there to pin the object."""
    tooltip = page.get_by_text("pixel x, y")
    for y in range(10, int(box["height"]), 20):
        for x in range(10, int(box["width"]), 20):
            page.mouse.move(box["x"] + x, box["y"] + y)
            if tooltip.count() and tooltip.first.is_visible():
                page.screenshot(path=shots / "hover.png")
                page.mouse.click(box["x"] + x, box["y"] + y)
                pinned = page.get_by_text(re.compile(r": pixel [0-9.]+, [0-9.]+; world [0-9.]+"))
                pinned.first.wait_for(timeout=30_000)
                page.mouse.click(box["x"] + x, box["y"] + y)  # click again: deselect
                return
    raise AssertionError("no tooltip anywhere on the explorer's canvas")
