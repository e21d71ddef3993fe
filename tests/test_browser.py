"""The page of `lyricgen serve` in a real headless Chromium (the system's), driven by Playwright.

The server is the real one: uvicorn on a free loopback port, in a background thread, with
the tiny shared run. Skipped when Playwright or a Chromium executable is missing (CI
installs Debian's `chromium`; Playwright's own browser download is not used).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("uvicorn", reason="lyricgen serve needs uvicorn: pip install '.[serve]'")
pytest.importorskip("starlette", reason="lyricgen serve needs starlette: pip install '.[serve]'")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs playwright: pip install '.[test]'"
)

import lyricgen  # noqa: E402
from lyricgen.craft.rhyme import is_han  # noqa: E402
from lyricgen.frontend import serve  # noqa: E402

HEADS = "星我月风"  # all in the tiny corpus (conftest.SONGS)
TIMEOUT_MS = 10_000


def chromium_executable() -> str | None:
    """$LYRICGEN_CHROMIUM, or the system's Chromium or Chrome."""
    names = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    found = [os.environ.get("LYRICGEN_CHROMIUM")] + [shutil.which(n) for n in names]
    return next((path for path in found if path and os.access(path, os.X_OK)), None)


@pytest.fixture(scope="module")
def server(trained_run: Path) -> Iterator[str]:
    """The real server on a free port; yields its URL."""
    import uvicorn

    app = serve.create_app([lyricgen.load(trained_run)])
    sock = serve.listen("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield serve.url_of(sock)
    uv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def page(server):
    executable = chromium_executable()
    if executable is None:
        pytest.skip("no Chromium executable (apt-get install chromium, or set LYRICGEN_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def result_lines(page) -> list[list[str]]:
    """The lines of each sample block shown, once the results are there."""
    page.wait_for_selector("#results .sample .line")
    return page.eval_on_selector_all(
        "#results .sample",
        "blocks => blocks.map(b => [...b.querySelectorAll('.line')].map(l => l.textContent))",
    )


def han(line: str) -> str:
    return "".join(ch for ch in line if is_han(ch))


def test_form_generates_acrostic_lines(page, server):
    page.goto(server)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#acrostic", HEADS)
    page.fill("#lines", "4")
    page.fill("#line_length", "7")
    page.fill("#seed", "3")
    page.click("#generate")
    [lines] = result_lines(page)
    assert [len(han(line)) for line in lines] == [7, 7, 7, 7]
    assert "".join(han(line)[0] for line in lines) == HEADS
    assert page.text_content("#error") == ""
    # the form's state went into the address, ready to share
    assert f"acrostic={quote(HEADS)}" in page.url and "line_length=7" in page.url
    # the selected run's curves: one line per series, the best epoch marked
    assert page.locator("#curves svg polyline").count() == 3
    assert page.locator("#curves .best").count() == 2


def test_shared_link_generates_without_a_click_and_repeats(page, server):
    link = f"{server}?acrostic={quote(HEADS)}&line_length=7&seed=3"
    texts = []
    for _ in range(2):
        page.goto(link)
        lines = result_lines(page)
        assert len(lines) == 1 and [len(han(line)) for line in lines[0]] == [7, 7, 7, 7]
        assert page.input_value("#acrostic") == HEADS and page.input_value("#seed") == "3"
        texts.append(lines[0])
    assert texts[0] == texts[1]


def test_api_errors_show_on_one_line(page, server):
    page.goto(f"{server}?rhyme=xyz&lines=2")
    page.wait_for_function("document.getElementById('error').textContent !== ''")
    error = page.text_content("#error")
    assert error.startswith("--rhyme 'xyz' is not a rhyme group") and "\n" not in error
    assert page.locator("#results .sample").count() == 0


def test_form_picker_searches_as_you_type_and_shows_the_pattern(page, server):
    page.goto(server)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#form_field", "鹧鸪")
    page.wait_for_selector("#form-list li")
    names = page.eval_on_selector_all("#form-list li", "items => items.map(i => i.dataset.name)")
    assert "鹧鸪天" in names
    page.click("#form-list li[data-name='鹧鸪天']")
    assert page.input_value("#form_field") == "鹧鸪天"
    assert "◎" in page.text_content("#form_pattern") and "rhyme ◎" in page.text_content(
        "#form_pattern"
    )
    page.fill("#seed", "1")
    page.click("#generate")
    [lines] = result_lines(page)
    # the result is laid out in the form: one clause a line here (the tiny corpus has no
    # marks), the two stanzas a blank line apart, under the pattern it keeps
    assert [len(han(line)) for line in lines] == [7, 7, 7, 7, 0, 3, 3, 7, 7, 7]
    assert "◐" in page.text_content("#result-form") and "form=" in page.url


def test_look_inside_colours_the_sample_and_hover_lists_the_alternatives(page, server):
    page.goto(f"{server}?start={quote('星星')}&explain=1&seed=3&length=12")
    page.wait_for_selector("#results .tok")
    assert page.is_checked("#explain")
    tokens = page.locator("#results .explained .tok")
    assert tokens.count() >= 10
    assert page.locator("#why").is_hidden()
    tokens.nth(1).hover()
    page.wait_for_selector("#why:not([hidden])")
    shown = page.inner_text("#why")
    assert "p = " in shown and "what else it could have written" in shown
    assert page.locator("#why li").count() == 5
    # the line-position cell drawn under the sample, one coloured span per character
    assert page.locator("#results .cell-strip span").count() >= 10
    assert "tracks the position in the line" in page.inner_text("#results .cell-title")
    # the neighbour search
    page.fill("#similar", "星")
    page.click("#similar-go")
    page.wait_for_selector("#neighbours span")
    assert "input embedding" in page.inner_text("#neighbours")


def test_lock_two_lines_and_regenerate_keeps_them_and_rewrites_the_rest(page, server):
    page.goto(f"{server}?lines=4&line_length=5&seed=2&keywords={quote('星')}")
    [before] = result_lines(page)
    assert len(before) == 4 and "星" in "".join(before)
    assert "星" in page.text_content("#results .plan")  # the plan is shown with the sample
    lines = page.locator("#results .sample .text .line")
    # a click on a line lists its alternatives, ranked as `lyricgen revise` ranks them
    lines.nth(1).click()
    page.wait_for_selector("#results .alts .alt-list li")
    alts = page.eval_on_selector_all("#results .alts .alt-list li", "xs => xs.length")
    assert alts >= 1
    page.click("#results .alts .lock")
    lines.nth(3).click()
    page.wait_for_selector("#results .alts .lock")
    page.click("#results .alts .lock")
    assert page.locator("#results .line.locked").count() == 2
    page.click("#results .regenerate")
    page.wait_for_function(
        "texts => { const l = [...document.querySelectorAll('#results .sample .text .line')]"
        ".map(d => d.textContent); return l[0] !== texts[0] && l[2] !== texts[2]; }",
        arg=before,
    )
    [after] = result_lines(page)
    assert after[1] == before[1] and after[3] == before[3]  # locked: byte for byte
    assert after[0] != before[0] and after[2] != before[2]  # the others are new
    assert [len(han(line)) for line in after] == [5, 5, 5, 5]
    assert page.text_content("#error") == ""


def test_a_tune_puts_each_note_over_its_character(page, server):
    tune = "1=D 4/4 | 3 5 6 1' | 6 5 3 - | 2 3 5 3 | 2 1 2 - |"  # phrases of 7 and 7
    page.goto(server)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#jianpu", tune)
    page.fill("#seed", "2")
    page.click("#generate")
    page.wait_for_selector("#results .line.sung .note-cell")
    rows = page.eval_on_selector_all(
        "#results .sample .line.sung",
        "rows => rows.map(r => [...r.querySelectorAll('.note-cell')].map(c => c.dataset.note))",
    )
    assert rows == [["3", "5", "6", "1'", "6", "5", "3"], ["2", "3", "5", "3", "2", "1", "2"]]
    # the notes are drawn, not text: a line's text (what Copy takes) is its characters
    [lines] = result_lines(page)
    assert [len(han(line)) for line in lines] == [7, 7] == [len(line) for line in lines]
    summary = page.text_content("#results .fit-summary")
    assert summary.startswith("倒字 ") and " of 13 characters · good " in summary
    assert "2 phrases of 7, 7 notes" in page.text_content("#result-melody")
    for cell in page.query_selector_all("#results .note-cell.fit-unacceptable"):
        assert cell.get_attribute("title").startswith("倒字: ")
    assert page.text_content("#error") == "" and "jianpu=" in page.url
