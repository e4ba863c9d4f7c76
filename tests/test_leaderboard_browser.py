"""leaderboard.html in a real headless browser (Debian's chromium driven by Playwright): rows,
sorting, filters, plots, links, no console errors; and the screenshot path of the CLI."""

import os
import pathlib

import pytest

from seqbench import leaderboard, leaderboard_html
from tests.test_leaderboard import example_runs

if not os.path.exists(leaderboard_html.CHROMIUM):
    pytest.skip(f"{leaderboard_html.CHROMIUM} is missing (apt-get install chromium); the browser "
                "test of leaderboard.html is skipped", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is missing (pip install -e '.[test]'); "
    "the browser test of leaderboard.html is skipped")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = root / "out"
    return leaderboard.build(example_runs(root), str(out)), out


@pytest.fixture(scope="module")
def page(built):
    """The page loaded from file://, with every console error and page error collected."""
    _, out = built
    with sync_api.sync_playwright() as p:
        browser = leaderboard_html.launch_chromium(p)
        tab = browser.new_page()
        errors = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto((out / "leaderboard.html").as_uri())
        tab.errors = errors
        yield tab
        browser.close()


def visible_ids(page, task):
    return page.eval_on_selector_all(
        f'section[data-task="{task}"] tbody tr',
        "rows => rows.filter(r => r.offsetParent !== null).map(r => r.dataset.id)")


def test_tables_render_every_row_in_leaderboard_order(page, built):
    board, _ = built
    for task in ("mqar", "parity_check"):
        assert visible_ids(page, task) == [r["id"] for r in board["rows"] if r["task"] == task]
    assert page.inner_text("#shown") == f"{len(board['rows'])} rows shown"
    assert page.errors == []


def test_clicking_a_header_sorts_and_clicking_again_reverses(page, built):
    board, _ = built
    rows = [r for r in board["rows"] if r["task"] == "parity_check"]
    header = 'section[data-task="parity_check"] th:text-is("params")'
    page.click(header)
    # Descending by parameter count; equal counts keep their previous (score) order.
    expected = sorted(rows, key=lambda r: -r["param_count"])
    assert visible_ids(page, "parity_check") == [r["id"] for r in expected]
    page.click(header)
    assert visible_ids(page, "parity_check") == [
        r["id"] for r in sorted(expected, key=lambda r: r["param_count"])]
    page.click('section[data-task="parity_check"] th:text-is("score")')  # numbers: descending
    page.click('section[data-task="parity_check"] th:text-is("score")')  # ascending; no score last
    scored = sorted((r for r in rows if r["score"]["mean"] is not None),
                    key=lambda r: r["score"]["mean"])
    assert visible_ids(page, "parity_check") == [r["id"] for r in scored] + [
        r["id"] for r in rows if r["score"]["mean"] is None]
    assert page.errors == []


def test_filters_hide_rows_and_tasks(page, built):
    board, _ = built
    page.select_option("#family-filter", "ssm")
    ssm = sorted(r["id"] for r in board["rows"] if r["family"] == "ssm")
    assert sorted(visible_ids(page, "parity_check")) == ssm and len(ssm) == 2
    assert visible_ids(page, "mqar") == []
    page.select_option("#family-filter", "")
    page.select_option("#task-filter", "mqar")
    assert page.is_hidden('section[data-task="parity_check"]')
    assert len(visible_ids(page, "mqar")) == 2 and page.inner_text("#shown") == "2 rows shown"
    page.select_option("#task-filter", "")
    assert page.errors == []


def test_each_task_has_a_drawn_plot_and_links_to_its_runs(page, built):
    _, out = built
    for task in ("mqar", "parity_check"):
        box = page.locator(f'section[data-task="{task}"] figure svg').bounding_box()
        assert box["width"] > 300 and box["height"] > 100
        curves = page.locator(f'section[data-task="{task}"] figure svg path').count()
        assert curves > 10
    for href in page.eval_on_selector_all("tbody a", "links => links.map(a => a.href)"):
        assert (pathlib.Path(href.removeprefix("file://")) / "result.json").exists(), href
    assert page.errors == []


def test_screenshot_is_a_png_of_the_whole_page(page, built):
    _, out = built
    png = leaderboard_html.render_png(page.context.browser, str(out / "leaderboard.html"), 900)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 900 and height > 800  # full page: two tables and two plots


def test_clicking_every_link_of_a_page_built_from_hostile_names_runs_no_script(page, tmp_path,
                                                                              monkeypatch):
    """Issue 16, item 4: run folders named like URLs with a scheme, --out inside --runs
    (relative links); every link is clicked and no script may run (no dialog, no navigation
    to a javascript: URL)."""
    from tests.test_leaderboard import make_record, write_run
    monkeypatch.chdir(tmp_path)
    for name in ("javascript:alert(1)", "data:text,x", "x onclick=alert(1)"):
        write_run(tmp_path / "runs" / name, make_record({4: [1.0], 8: [0.5]}, cell="lstm"))
    leaderboard.build(["runs"], "runs")  # links: "NAME", relative
    tab = page.context.browser.new_page()  # the module's browser: one Playwright per thread
    try:
        dialogs = []
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page_url = (tmp_path / "runs" / "leaderboard.html").as_uri()
        tab.goto(page_url)
        hrefs = tab.eval_on_selector_all("a", "links => links.map(a => a.href)")
        assert len(hrefs) == 3 and all(h.startswith("file://") for h in hrefs)
        for index in range(len(hrefs)):
            tab.goto(page_url)
            tab.locator("a").nth(index).click()
            tab.wait_for_load_state()
            assert tab.url.startswith("file://")
        assert dialogs == []
    finally:
        tab.close()
