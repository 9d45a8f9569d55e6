"""A person's round trip through JupyterLab in a real browser: Playwright driving Debian's chromium.

`notebook_round_trip(url, ...)` opens the URL `nbenv up` printed (it carries `?token=`), creates a
notebook with the environment's kernel from the launcher, types and runs a cell, saves it, renames it
through the File menu and makes a folder through the file browser: every file operation a user does,
each one a real request from the page to Jupyter. It takes a screenshot at the end, and on any failure
raises AssertionError naming the step and a screenshot of the failing page.

No browser is downloaded (`playwright install` is never run): Playwright starts the system chromium
through `executable_path`. Every wait is a Playwright locator or web-first assertion, never a sleep.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CELL = "print(6*7)"
OUTPUT = "42"
STEP_TIMEOUT_MS = 20_000  # one UI step (a click, a dialog, a listing refresh)
KERNEL_TIMEOUT_MS = 45_000  # JupyterLab's first load and a kernel start, on a busy 2-core machine
# Headless, no sandbox (the tests run as root, where chromium's sandbox refuses to start), nothing
# fetched from anywhere but the page's own server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass(frozen=True)
class RoundTrip:
    """What the browser did, as paths relative to the lab's root directory (the mounted workspace)."""

    untitled: str  # the name JupyterLab gave the new notebook (saved under it, then renamed)
    notebook: str  # the renamed notebook
    folder: str | None  # the folder made through the file browser, if asked for
    seconds: float  # from opening the URL to the final screenshot


def system_chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("chromium is not installed: the README's test command (scripts/test) installs it")
    return found


def notebook_round_trip(
    url: str,
    *,
    kernel_label: str,
    rename_to: str,
    screenshot: Path,
    directory: str = "notebooks",
    new_folder: str | None = None,
    executable: str | None = None,
) -> RoundTrip:
    """Create, run, save and rename a notebook in the JupyterLab at `url`, as a person would.

    kernel_label: the launcher card's title, e.g. "Python (traffic-analysis)".
    rename_to:    the notebook's final file name (no slash), e.g. "round-trip.ipynb".
    screenshot:   PNG of the page with the cell's output, taken at the end; on failure the page is
                  saved next to it as `<stem>-failed.png` and named in the AssertionError.
    directory:    folder (relative to the lab's root, "" for the root) entered in the file browser
                  before the notebook is created: the notebook and `new_folder` are made there.
    new_folder:   if given, a folder of that name is made through the file browser's "New Folder".
    executable:   the browser binary (default: the system's chromium).
    """
    if "/" in rename_to or (new_folder is not None and "/" in new_folder):
        raise ValueError("rename_to and new_folder are names inside `directory`, without a slash")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    failed = screenshot.with_name(f"{screenshot.stem}-failed.png")
    failed.unlink(missing_ok=True)  # a picture of an earlier run's failure would mislead
    start = time.monotonic()
    expect.set_options(timeout=STEP_TIMEOUT_MS)  # web-first assertions wait as long as actions (default: 5 s)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable or system_chromium(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = _new_page(browser)
            driver = _Lab(page, failed)
            with driver.step(f"open {_without_token(url)} and wait for JupyterLab's launcher"):
                page.goto(url, timeout=KERNEL_TIMEOUT_MS)
                expect(driver.launcher_card(kernel_label).first).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
            driver.enter(directory)
            untitled = driver.new_notebook(kernel_label)
            driver.run_first_cell(CELL, OUTPUT)
            driver.save(untitled)
            driver.rename(untitled, rename_to)
            folder = None
            if new_folder is not None:
                driver.make_folder(new_folder)
                folder = _join(directory, new_folder)
            with driver.step(f"take the screenshot {screenshot}"):
                expect(driver.output(OUTPUT)).to_be_visible(timeout=STEP_TIMEOUT_MS)
                page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return RoundTrip(
        untitled=_join(directory, untitled),
        notebook=_join(directory, rename_to),
        folder=folder,
        seconds=time.monotonic() - start,
    )


def saved_outputs(notebook: Path) -> list[str]:
    """The text of every output (stream or result) a saved notebook holds."""
    texts = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text", output.get("data", {}).get("text/plain", ""))
            texts.append("".join(text) if isinstance(text, list) else str(text))
    return texts


def check_on_host(trip: RoundTrip, *, lab_root: Path, uid: int, gid: int) -> None:
    """On the host: the renamed notebook holds the cell's output, the untitled name is gone, and the
    notebook, the new folder and Jupyter's checkpoint folder (if any) belong to uid:gid (the workspace's owner).

    lab_root: the host directory mounted at the lab's root directory.
    """
    notebook = lab_root / trip.notebook
    assert notebook.is_file(), f"{notebook}: the renamed notebook is not on the host"
    outputs = saved_outputs(notebook)
    assert any(text.strip() == OUTPUT for text in outputs), f"{notebook}: no saved output {OUTPUT!r}: {outputs}"
    assert not (lab_root / trip.untitled).exists(), f"{lab_root / trip.untitled}: still there after the rename"
    made = [notebook]
    if (checkpoints := notebook.parent / ".ipynb_checkpoints").exists():  # Jupyter's default checkpoints
        made.append(checkpoints)
    if trip.folder is not None:
        assert (lab_root / trip.folder).is_dir(), f"{lab_root / trip.folder}: the new folder is not on the host"
        made.append(lab_root / trip.folder)
    for path in made:
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (uid, gid), (
            f"{path}: made through the browser, owned by {st.st_uid}:{st.st_gid}, "
            f"not by the workspace's owner {uid}:{gid}"
        )


def _new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(STEP_TIMEOUT_MS)
    return page


def _without_token(url: str) -> str:
    return re.sub(r"token=[^&#]*", "token=...", url)


def _join(directory: str, name: str) -> str:
    return f"{directory.strip('/')}/{name}" if directory.strip("/") else name


def _exactly(text: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*{re.escape(text)}\s*$")


class _Lab:
    """The JupyterLab 4 page, by the selectors its own UI uses (classes, data-command, roles)."""

    def __init__(self, page: Page, failed: Path) -> None:
        self.page = page
        self.failed = failed

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run one step; on failure, screenshot the page and say which step failed and where the picture is."""
        try:
            yield
        except (PlaywrightError, AssertionError) as exc:
            try:
                self.page.screenshot(path=str(self.failed))
                picture = f"screenshot of the failing page: {self.failed}"
            except PlaywrightError as shot:
                picture = f"no screenshot ({shot.message.splitlines()[0]})"
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            shown = self._dialog_text()
            raise AssertionError(f"browser round trip: could not {what}: {detail}{shown}\n{picture}") from exc

    def _dialog_text(self) -> str:
        """What an open JupyterLab dialog says (e.g. a save error), for the failure message."""
        try:
            if self.dialog().count():
                return "\nthe page shows a dialog: " + " | ".join(
                    self.dialog().first.inner_text(timeout=2_000).split("\n")
                )
        except PlaywrightError:
            pass
        return ""

    # --- parts of the page ------------------------------------------------------------------------
    def launcher_card(self, kernel_label: str) -> Locator:
        return self.page.locator(f'.jp-LauncherCard[data-category="Notebook"][title="{kernel_label}"]')

    def listing_item(self, name: str) -> Locator:
        return self.page.locator(".jp-DirListing-content .jp-DirListing-item").filter(
            has=self.page.locator(".jp-DirListing-itemText", has_text=_exactly(name))
        )

    def tab(self, name: str) -> Locator:
        return self.page.locator("#jp-main-dock-panel .lm-TabBar-tab").filter(
            has=self.page.locator(".lm-TabBar-tabLabel", has_text=_exactly(name))
        )

    def notebook(self) -> Locator:
        return self.page.locator(".jp-NotebookPanel:visible")

    def output(self, text: str) -> Locator:
        return self.notebook().locator(".jp-OutputArea-output", has_text=_exactly(text)).first

    def dialog(self) -> Locator:
        return self.page.locator(".jp-Dialog")

    def settle(self, *wanted: Locator) -> Locator:
        """Wait until one of `wanted` shows, failing at once if an other dialog (an error) shows first."""
        either = self.dialog()
        for locator in wanted:
            either = either.or_(locator)
        for _ in range(20):  # the page may re-render between two looks (a renamed tab is a new element)
            expect(either.first).to_be_visible()
            for locator in wanted:
                if locator.first.is_visible():
                    return locator
            if self.dialog().first.is_visible():
                raise AssertionError("JupyterLab shows an error")
        raise AssertionError("the page kept changing: neither what was expected nor an error stayed visible")

    def absent(self, name: str) -> None:
        """The current folder has no `name` yet (so the step that makes it proves something)."""
        if self.listing_item(name).count():
            raise AssertionError(f"{name} already exists in the file browser's folder: choose a fresh name")

    # --- steps ----------------------------------------------------------------------------------------
    def enter(self, directory: str) -> None:
        """From the file browser's root, double-click down into `directory`."""
        parts = [part for part in directory.split("/") if part]
        with self.step("go to the file browser's root"):
            self.page.locator(".jp-BreadCrumbs-home").click()
            expect(self.page.locator(".jp-BreadCrumbs")).to_have_text(_exactly("/"))
        for depth, part in enumerate(parts, 1):
            with self.step(f"open the folder {'/'.join(parts[:depth])} in the file browser"):
                self.listing_item(part).dblclick()
                expect(self.page.locator(".jp-BreadCrumbs")).to_contain_text(part)

    def new_notebook(self, kernel_label: str) -> str:
        """A launcher in the current folder, its card for the kernel; returns the new notebook's name."""
        with self.step(f'open a launcher in the current folder and click "{kernel_label}"'):
            self.page.locator('.jp-FileBrowser-toolbar [data-command="launcher:create"]').click()
            self.launcher_card(kernel_label).filter(visible=True).click()
            self.settle(self.notebook())
        with self.step(f'wait for the notebook\'s kernel "{kernel_label}" to be idle'):
            expect(self.notebook().locator(".jp-KernelName")).to_have_text(_exactly(kernel_label))
            expect(self.page.locator(".jp-StatusBar-TextItem", has_text=f"{kernel_label} | Idle")).to_be_visible(
                timeout=KERNEL_TIMEOUT_MS
            )
        with self.step("read the new notebook's name from its tab"):
            label = self.page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel")
            expect(label).to_have_text(re.compile(r"\.ipynb\s*$"))
            return label.inner_text().strip()

    def run_first_cell(self, source: str, output: str) -> None:
        with self.step(f"type {source!r} into the first cell"):
            editor = self.notebook().locator(".jp-Cell .cm-content").first
            editor.click()
            self.page.keyboard.type(source)
            expect(editor).to_have_text(source)
        with self.step(f"run the cell (Shift+Enter) and see its output {output!r}"):
            self.page.keyboard.press("Shift+Enter")
            expect(self.output(output)).to_be_visible(timeout=KERNEL_TIMEOUT_MS)

    def save(self, name: str) -> None:
        """Ctrl+S. JupyterLab 4 offers to rename an untitled file on its first save: keep the name (the
        rename is its own step), which still saves."""
        with self.step(f"save {name} (Ctrl+S)"):
            tab = self.tab(name)
            expect(tab).to_have_class(re.compile(r"\bjp-mod-dirty\b"))
            self.page.keyboard.press("Control+s")
            clean = self.page.locator("#jp-main-dock-panel .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
            offer = self.dialog().filter(has=self.page.locator(".jp-Dialog-header", has_text=_exactly("Rename file")))
            if self.settle(clean, offer) is offer:
                offer.locator(".jp-mod-reject").click()
                expect(self.dialog()).to_have_count(0)
            expect(tab).not_to_have_class(re.compile(r"\bjp-mod-dirty\b"))

    def rename(self, name: str, new_name: str) -> None:
        """File > Rename Notebook…, type the new name, Rename; the tab and the listing follow."""
        with self.step(f'rename {name} to {new_name} (File > "Rename Notebook…")'):
            self.absent(new_name)
            self.page.locator(".lm-MenuBar-item", has_text=_exactly("File")).click()
            self.page.locator('.lm-Menu-item[data-command="docmanager:rename"]').filter(visible=True).click()
            field = self.dialog().locator("input")
            expect(field).to_have_value(name)
            field.fill(new_name)
            self.dialog().locator(".jp-mod-accept").click()
            expect(self.dialog()).to_have_count(0)
            self.settle(self.tab(new_name))
            expect(self.listing_item(new_name)).to_be_visible()
            expect(self.listing_item(name)).to_have_count(0)

    def make_folder(self, name: str) -> None:
        """The file browser's New Folder button, then type the name into its inline editor."""
        with self.step(f'make the folder {name} (file browser: "New Folder")'):
            self.absent(name)
            self.page.locator('.jp-FileBrowser-toolbar [data-command="filebrowser:create-new-directory"]').click()
            editor = self.page.locator(".jp-DirListing-editor")
            expect(editor).to_have_value(re.compile(r"\S"))
            untitled = editor.input_value()  # the folder exists now, as "Untitled Folder"
            editor.fill(name)
            editor.press("Enter")
            expect(editor).to_have_count(0)
            self.settle(self.listing_item(name))
            expect(self.listing_item(untitled)).to_have_count(0)
