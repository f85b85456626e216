"""Drive one notebook in a live JupyterLab page and report what a learner would see.

Used by tests/browser/test_browser.py.  Everything here waits on JupyterLab's own state
(`window.jupyterapp`, the kernel's status, the run-all promise) rather than on DOM
attributes that hold misleading defaults (a cell's prompt and a widget's placeholder both
look finished before they are).

The checks are generic: they know nothing about a notebook except the CSS contract the
pkmm widgets promise (`pkmm-widget`, `pkmm-layout-builder` + `pkmm-toggle-bit` ->
`pkmm-pte-grid` and `pkmm-pin` -> `pkmm-physmem`, `pkmm-fork-stepper` + `pkmm-step-next` +
`pkmm-stepper-panel`).
Problems are collected, not raised, so one run reports everything that is wrong.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # playwright is imported lazily so doctest collection never needs it
    from playwright.sync_api import Locator, Page

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# A rendered widget view is the output node's direct child: ipywidgets' views carry
# .jupyter-widgets, pkmm's anywidget views .pkmm-live.
VIEW = "> .jupyter-widgets, {outputs} > .pkmm-live"
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
# axe-core: the WCAG 2.1 A/AA rules; serious and critical violations fail the notebook.
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a",
                                                      "wcag21aa"]},
               "resultTypes": ["violations"]}
AXE_FAIL = ("serious", "critical")
# Page errors of a front end itself, not of pkmm: Notebook 7.6's shortcut settings plugin
# throws this while the page loads, also for a notebook with no widget that never ran.
KNOWN_PAGE_ERRORS = {"notebook": ("Cannot read properties of undefined (reading 'schema')",)}
BAD_WIDGET_TEXTS = ("Error displaying widget", "Loading widget...")

# (root class, clickable class, class whose text must change): the interaction contract.
INTERACTIONS: tuple[tuple[str, str, str], ...] = (
    ("pkmm-layout-builder", "pkmm-toggle-bit", "pkmm-pte-grid"),
    # a pin belongs to the page, so it shows in physical memory, not in the page table
    ("pkmm-layout-builder", "pkmm-pin", "pkmm-physmem"),
    ("pkmm-fork-stepper", "pkmm-step-next", "pkmm-stepper-panel"),
)

_JS_CURRENT = "window.jupyterapp.shell.currentWidget"
UNDER_TEST_ATTR = "data-pkmm-under-test"
SCOPE = f"[{UNDER_TEST_ATTR}]"  # the notebook panel being checked

# Ready = the notebook at `path` is current and its kernel is connected and idle.
_JS_KERNEL_READY = f"""(path) => {{
    const w = {_JS_CURRENT};
    if (!w || !w.context || w.context.path !== path) return false;
    const k = w.sessionContext?.session?.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}}"""

# Start run-all without awaiting it in evaluate() (which has no timeout); the promise
# settles into window.__pkmmRun, which wait_for_function can poll with a timeout.
_JS_START_RUN_ALL = """() => {
    window.__pkmmRun = undefined;
    window.jupyterapp.commands.execute('notebook:run-all-cells').then(
        (ok) => { window.__pkmmRun = {ok: ok !== false}; },
        (err) => { window.__pkmmRun = {ok: false, error: String(err)}; });
}"""

_JS_RUN_SETTLED = f"""() => {{
    const w = {_JS_CURRENT};
    const k = w?.sessionContext?.session?.kernel;
    return window.__pkmmRun !== undefined && !!k && k.status === 'idle';
}}"""

# The model's view of every code cell: what ran, and which errors it stored.
_JS_CELL_STATES = f"""() => {{
    const w = {_JS_CURRENT};
    return w.content.widgets.map((c, i) => {{
        if (c.model.type !== 'code') return null;
        const outs = c.model.outputs.toJSON();
        const tags = c.model.getMetadata('tags') || [];
        const src = c.model.sharedModel.getSource();
        return {{
            index: i,
            source: src,
            // nbval's and JupyterLab's markers for a cell whose error is the lesson
            expectsError: tags.includes('raises-exception')
                || tags.includes('nbval-raises-exception')
                || /^\\s*#\\s*NBVAL_RAISES_EXCEPTION/m.test(src),
            executionCount: c.model.executionCount,
            errors: outs.filter(o => o.output_type === 'error')
                        .map(o => `${{o.ename}}: ${{o.evalue}}`),
            widgetOutputs: outs.filter(o => o.data && o.data['{WIDGET_MIME}']).length,
        }};
    }}).filter(c => c !== null);
}}"""

# Open a notebook, make it current, and mark its panel so every locator below is scoped
# to it.  Raced against a timer because evaluate() itself never times out.
_JS_OPEN = f"""async (path) => {{
    const app = window.jupyterapp;
    const open = (async () => {{
        const w = await app.commands.execute('docmanager:open', {{path, factory: 'Notebook'}});
        await w.context.ready;
        app.shell.activateById(w.id);
        w.node.setAttribute('{UNDER_TEST_ATTR}', path);
    }})();
    const timer = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('docmanager:open timed out')), 60000));
    await Promise.race([open, timer]);
}}"""

# Shut down every open notebook's kernel and close it without a "save changes?" dialog.
# (Notebook 7 shows one notebook per page: its panel is left for the next page load.)
_JS_CLOSE_NOTEBOOKS = """async (dispose) => {
    for (const w of Array.from(window.jupyterapp.shell.widgets('main'))) {
        if (!w.sessionContext) continue;
        await w.sessionContext.shutdown();
        w.context.model.dirty = false;
        if (dispose) w.dispose();
    }
}"""


@dataclass
class NotebookReport:
    """What happened to one notebook: problems found and what was actually exercised."""

    path: str
    front: str = "lab/light"   # front end and theme the notebook ran in
    problems: list[str] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    widget_outputs: int = 0
    screenshot: Path | None = None
    seconds: float = 0.0
    server_log: str = ""  # the server's last lines, to read next to any problem
    axe: Counter[str] = field(default_factory=Counter)  # violations by impact
    axe_checked: int = 0  # widget and picture outputs axe looked at
    retried: list[str] = field(default_factory=list)  # first-run page errors that did not recur

    def failure_message(self) -> str:
        """The problems, then the server log tail that may explain them."""
        return (f"{self.path}:\n- " + "\n- ".join(self.problems)
                + f"\n(jupyter lab log, last lines)\n{self.server_log}")

    def summary(self) -> str:
        """One line for the terminal summary; says what was skipped, not only what passed."""
        inter = ", ".join(self.interactions) or "no interactive pkmm widgets (skipped)"
        status = "ok" if not self.problems else f"{len(self.problems)} problem(s)"
        axe = ", ".join(f"{k} {v}" for k, v in sorted(self.axe.items())) or "none"
        if self.retried:
            status += f" (on a later run; the first had: {'; '.join(self.retried)})"
        return (f"[{self.front}] {self.path}: {status} in {self.seconds:.1f}s; "
                f"{self.widget_outputs} widget output(s); axe on {self.axe_checked} "
                f"output(s), violations: {axe}; interactions: {inter}")


class LabDriver:
    """Check notebooks one at a time in one JupyterLab page against one server.

    The lab is loaded once (~2 s) and each notebook is opened in it, checked, then closed
    with its kernel shut down.  If anything goes wrong mid-notebook the page is thrown away
    and the next notebook gets a freshly loaded one, so a wedged page never leaks into the
    next verdict.
    """

    def __init__(self, browser: Any, base_url: str, *, run_timeout_s: float = 180.0,
                 interaction_timeout_s: float = 15.0, front: str = "lab",
                 theme: str = "light", axe_script: str = "") -> None:
        self.browser = browser
        self.front, self.theme, self.axe_script = front, theme, axe_script
        self.base_url = base_url.rstrip("/")
        self.run_timeout_ms = run_timeout_s * 1000
        self.interaction_timeout_ms = interaction_timeout_s * 1000
        self._context: Any = None
        self._page: Page | None = None
        self._page_errors: list[str] = []

    def check(self, rel_path: str, screenshot_to: Path | None,
              themes: tuple[str, ...] = ("light",),
              shots: dict[str, Path | None] | None = None) -> NotebookReport:
        """Open `rel_path` (relative to the server root), run all cells, then in each of
        `themes` (the live widgets re-theme without a re-run): screenshot (`shots`, or
        `screenshot_to` for the first theme), axe-core, fit; then click the widgets."""
        report = NotebookReport(rel_path, f"{self.front}/{'+'.join(themes)}")
        shots = dict(shots or {themes[0]: screenshot_to})
        start = time.monotonic()
        try:
            page = self._lab_page()
            self._page_errors.clear()
            self._open(page, rel_path)
            self._run_all(page, report)
            self._check_widgets_rendered(page, report)
            for theme in themes:   # the state the author chose, in every theme
                if theme != self.theme:
                    self._set_theme(page, theme)
                    self.theme = theme
                shot = shots.get(theme)
                if shot is not None:
                    report.screenshot = self._screenshot(page, shot, report)
                self._check_axe(page, report, theme)
                self._check_fits(page, report)
            self._check_interactions(page, report)   # then click (in the last theme)
            if self.theme != themes[0]:
                self._set_theme(page, themes[0])
                self.theme = themes[0]
            page.evaluate(_JS_CLOSE_NOTEBOOKS, self.front == "lab")
        except Exception as exc:  # a harness failure is itself a finding for this notebook
            report.problems.append(f"harness could not finish: {type(exc).__name__}: {exc}")
            self.close()  # the server fixture deletes any kernel left behind
        known = KNOWN_PAGE_ERRORS.get(self.front, ())
        report.problems.extend(f"uncaught page error: {e}" for e in self._page_errors
                               if e not in known)
        report.seconds = time.monotonic() - start
        return report

    def close(self) -> None:
        """Drop the current page (the next check() loads a fresh one).  A dark page puts
        the (server-side, shared) theme setting back to light first."""
        if self._context is not None:
            try:
                if self.theme != "light" and self._page is not None:
                    self._set_theme(self._page, "light")
            except Exception:
                pass  # the page is being thrown away; the next one sets its own theme
            try:
                self._context.close()
            finally:
                self._context, self._page = None, None

    @staticmethod
    def _set_theme(page: Page, theme: str) -> None:
        page.evaluate("async (t) => { await window.jupyterapp.commands.execute("
                      "'apputils:change-theme', {theme: t}); }", THEMES[theme])
        light = "true" if theme == "light" else "false"
        page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'",
                               timeout=20_000)

    def _lab_page(self) -> Page:
        """The page with JupyterLab loaded and restored; loaded on first use."""
        if self._page is None:
            # 1024 px wide, the lab's file browser open: the smallest screen we support
            self._context = self.browser.new_context(viewport={"width": 1024, "height": 1000})
            page = self._context.new_page()
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda exc: self._page_errors.append(str(exc)))
            self._page = page
            if self.front == "lab":
                # ?reset: ignore any saved workspace, so no notebook is open yet.
                self._goto(page, f"{self.base_url}/lab?reset")
                self._set_theme(page, self.theme)
        return self._page

    @staticmethod
    def _goto(page: Page, url: str) -> None:
        page.goto(url)
        page.wait_for_function("() => window.jupyterapp !== undefined")
        page.evaluate("async () => { await window.jupyterapp.started;"
                      " await window.jupyterapp.restored; }")

    def _open(self, page: Page, rel_path: str) -> None:
        """Open `rel_path` and wait until its kernel is connected and idle.  JupyterLab
        opens it in the loaded lab; Notebook 7 loads the notebook's own page."""
        if self.front == "notebook":
            self._goto(page, f"{self.base_url}/notebooks/{rel_path}")
            page.wait_for_function(f"(p) => {_JS_CURRENT}?.context?.path === p", arg=rel_path)
            page.evaluate(f"(p) => {_JS_CURRENT}.node.setAttribute('{UNDER_TEST_ATTR}', p)",
                          rel_path)
        else:
            page.evaluate(_JS_OPEN, rel_path)
        deadline = time.monotonic() + 90
        while not page.evaluate(_JS_KERNEL_READY, rel_path):
            # A notebook without kernelspec metadata asks which kernel to use: take the default.
            accept = page.locator(".jp-Dialog .jp-mod-accept")
            if accept.count() and accept.first.is_visible():
                accept.first.click()
            if time.monotonic() > deadline:
                raise TimeoutError(f"kernel for {rel_path} never became connected and idle")
            page.wait_for_timeout(200)

    def _run_all(self, page: Page, report: NotebookReport) -> None:
        """Run every cell; record errors, except in cells tagged to raise (the lesson's point)."""
        page.evaluate(_JS_START_RUN_ALL)
        page.wait_for_function(_JS_RUN_SETTLED, timeout=self.run_timeout_ms, polling=250)
        run = page.evaluate("() => window.__pkmmRun")
        cells = page.evaluate(_JS_CELL_STATES)
        report.widget_outputs = sum(c["widgetOutputs"] for c in cells)
        unexpected = [(c["index"], err) for c in cells if not c["expectsError"]
                      for err in c["errors"]]
        report.problems.extend(f"cell {i} raised {err}" for i, err in unexpected)
        for cell in cells:
            if cell["expectsError"] and cell["executionCount"] and not cell["errors"]:
                report.problems.append(f"cell {cell['index']} is tagged raises-exception "
                                       f"but raised nothing")
        if unexpected:
            return  # JupyterLab stopped at the error; later cells did not run, as expected
        # run-all also reports failure when a tagged cell raised, though it carried on.
        if not run.get("ok") and not any(c["expectsError"] and c["errors"] for c in cells):
            report.problems.append(f"run-all did not complete: {run.get('error', 'stopped')}")
        unrun = [c["index"] for c in cells if c["source"].strip() and c["executionCount"] is None]
        if unrun:
            report.problems.append(f"cells never ran: {unrun}")

    def _check_widgets_rendered(self, page: Page, report: NotebookReport) -> None:
        """Every widget output shows a view: no error text, no loader left, nonzero size."""
        outputs = f"{SCOPE} .jp-OutputArea-output"
        # The widget renderer *is* the output node; a rendered view is its direct child.
        views = page.locator(f"{outputs} " + VIEW.format(outputs=outputs))
        try:  # views render asynchronously after the kernel goes idle
            page.wait_for_function(
                f"""() => [...document.querySelectorAll('{outputs}')].every(
                        n => !(n.textContent || '').includes('Loading widget...'))""",
                timeout=20_000, polling=250)
        except Exception:
            pass  # reported below with the offending text
        area = page.locator(outputs)
        for i in range(area.count()):
            text = area.nth(i).text_content() or ""
            for bad in BAD_WIDGET_TEXTS:
                if bad in text:
                    report.problems.append(f"output {i} shows {text.strip()[:120]!r}")
        if views.count() < report.widget_outputs:
            report.problems.append(f"{report.widget_outputs} widget outputs in the model but "
                                   f"only {views.count()} rendered widget views on the page")
        for i in range(views.count()):
            box = views.nth(i).bounding_box()
            if box is None or box["height"] < 1:
                report.problems.append(f"widget view {i} rendered with no visible size")

    def _check_axe(self, page: Page, report: NotebookReport, theme: str = "light") -> None:
        """axe-core on every pkmm widget and picture: serious/critical violations fail."""
        if not self.axe_script:
            return
        page.evaluate(f"() => {{ if (!window.axe) {{ {self.axe_script} }} }}")
        targets = page.locator(f"{SCOPE} .jp-OutputArea-output > .pkmm-live, "
                               f"{SCOPE} .jp-OutputArea-output .pkmm-picture")
        for i in range(targets.count()):
            result = targets.nth(i).evaluate(
                "async (el, opts) => (await window.axe.run(el, opts)).violations.map("
                "v => ({id: v.id, impact: v.impact, help: v.help, n: v.nodes.length,"
                " html: v.nodes[0] ? v.nodes[0].html.slice(0, 120) : ''}))", AXE_OPTIONS)
            report.axe_checked += 1
            for v in result:
                report.axe[v["impact"] or "unknown"] += v["n"]
                if v["impact"] in AXE_FAIL:
                    report.problems.append(f"axe {v['impact']}: {v['id']} ({v['help']}) on "
                                           f"output {i} ({theme} theme): {v['html']}")

    def _check_fits(self, page: Page, report: NotebookReport) -> None:
        """No pkmm widget is wider than the notebook gives it (nothing hides behind a
        scroll bar at 1024 px with the file browser open)."""
        views = page.locator(f"{SCOPE} .jp-OutputArea-output > .pkmm-live")
        for i in range(views.count()):
            over = views.nth(i).evaluate(
                "el => [...el.querySelectorAll('.pkmm-controls, .pkmm-picture-live, svg')]"
                ".filter(n => n.scrollWidth > n.clientWidth + 2 || "
                "n.getBoundingClientRect().right > el.getBoundingClientRect().right + 2)"
                ".map(n => `${n.className.baseVal ?? n.className}: ${n.scrollWidth}px in "
                "${n.clientWidth}px`)")
            report.problems.extend(f"widget view {i} overflows: {o}" for o in over)

    def _check_interactions(self, page: Page, report: NotebookReport) -> None:
        """Click each pkmm control and require the paired view in the same root to change."""
        for root_cls, click_cls, view_cls in INTERACTIONS:
            roots = page.locator(f"{SCOPE} .jp-OutputArea-output .{root_cls}")
            for i in range(roots.count()):
                root = roots.nth(i)
                label = f"{root_cls}[{i}]: .{click_cls} -> .{view_cls}"
                report.problems.extend(self._click_changes(root, click_cls, view_cls, label))
                report.interactions.append(label)

    def _click_changes(self, root: Locator, click_cls: str, view_cls: str,
                       label: str) -> list[str]:
        """Return problems (empty if clicking `click_cls` changed the text of `view_cls`)."""
        from playwright.sync_api import expect

        button, view = root.locator(f".{click_cls}"), root.locator(f".{view_cls}")
        if not button.count() or not view.count():
            return [f"{label}: root lacks .{click_cls} or .{view_cls}"]
        before = view.first.text_content() or ""
        button.first.scroll_into_view_if_needed()
        button.first.click()
        try:
            expect(view.first).not_to_have_text(before, timeout=self.interaction_timeout_ms)
        except AssertionError:
            errors = root.locator(".pkmm-error")  # the widget may say why it refused
            why = " ".join((errors.nth(i).text_content() or "").strip()
                           for i in range(errors.count()))
            return [f"{label}: text unchanged after click ({before.strip()[:80]!r})"
                    + (f"; the widget says: {why[:200]!r}" if why else "")]
        return []

    def _screenshot(self, page: Page, path: Path, report: NotebookReport) -> Path | None:
        """Save the notebook's main widget: the first live pkmm widget, else the first
        .pkmm-widget (pkmm's static HTML reprs carry the class too), else the first figure
        (a plot says more in a README than a line of text), else the first output."""
        outputs = f"{SCOPE} .jp-OutputArea-output"
        for selector in (f"{outputs} > .pkmm-live", f"{outputs} > .pkmm-widget.jupyter-widgets",
                         f"{outputs} .pkmm-widget", f"{outputs}.jp-RenderedImage", outputs):
            target = page.locator(selector).first
            if target.count():
                break
        else:
            report.interactions.append("no output to screenshot")
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        # The notebook scrolls inside a panel under the lab's toolbars, so an element taller
        # than that panel cannot be captured whole: align its top with the panel's and clip
        # to what is visible (a long text output is shown from its start).
        target.evaluate("el => el.scrollIntoView({block: 'start'})")
        box = target.bounding_box()
        viewport = page.viewport_size
        if box is None or viewport is None:
            raise RuntimeError("screenshot target has no layout box")
        height = min(box["height"], viewport["height"] - box["y"])
        clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": height}
        page.screenshot(path=str(path), clip=clip, animations="disabled")
        return path
