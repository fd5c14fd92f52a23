"""The web UI in a real browser (headless Debian Chromium through
python3-selenium) against real lockd nodes: list, filter and page 1,000
locks, acquire / renew / release / force release through the forms, copy as
curl, the cluster view of 1 and 3 nodes with a leader change, 360 px and
dark mode, keyboard use, and no console errors anywhere.

The page is served by tests/ui/uiharness.UiProxy (the ui/ files, same
origin as the API it passes through to the node). The tests that need
GET /events are skipped while the node answers it 404.

LOCKD_UI_SCREENSHOTS=DIR saves the three views as DIR/ui-*.png
(`make ui-screenshots` writes docs/).
"""

import http.client
import os
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ui"))

from lockd_helpers import LockdCluster, wait_until  # noqa: E402
from uiharness import Browser, UiProxy, wait_for  # noqa: E402

try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # scripts/deps.sh installs python3-selenium
    pytest.fail("python3-selenium is missing: run scripts/deps.sh", pytrace=False)

SHOTS = os.environ.get("LOCKD_UI_SCREENSHOTS")


# ---------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def browser():
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def ui(node, browser):
    """(node, proxy, browser) on a fresh single node; fails the test on any
    console error the page logged meanwhile."""
    with UiProxy(node.host, node.port) as proxy:
        browser.console()  # drop what earlier tests left
        start = len(browser.log)
        yield node, proxy, browser
        errors = [e for e in browser.console_errors() if e in browser.log[start:]]
        assert not errors, "browser console errors: %r" % errors


def open_view(browser, proxy, hash_):
    browser.driver.get(proxy.origin + "/ui/" + hash_)
    # the shell has run once the node line says which node this is
    wait_for(lambda: browser.driver.find_element(By.ID, "node-info").text.startswith("node "),
             what="the page to load /status")


def css(browser, sel):
    return browser.driver.find_element(By.CSS_SELECTOR, sel)


def csss(browser, sel):
    return browser.driver.find_elements(By.CSS_SELECTOR, sel)


def rows(browser):
    """The names listed, read in one script call (the table may be redrawn
    between two WebDriver calls)."""
    return browser.driver.execute_script(
        "return [...document.querySelectorAll('table.locks tbody tr[data-name]')].map(r => r.dataset.name)")


def cells(browser, name):
    """The texts of the row of `name` ([] if absent), in one script call."""
    return browser.driver.execute_script(
        "const r = [...document.querySelectorAll('table.locks tbody tr')].find(r => r.dataset.name === arguments[0]);"
        "return r ? [...r.cells].map(c => c.innerText) : []", name)


def post(node, name, owner=None, ttl=None, timeout=10):
    q = []
    if owner:
        q.append("owner=" + owner)
    if ttl:
        q.append("ttl=" + ttl)
    return node.request("POST", "/lock/" + name + ("?" + "&".join(q) if q else ""), timeout=timeout)


def acquire_many(node, names, owner="o", threads=8):
    """POSTs every name (keep-alive connections, a few in parallel)."""
    errors = []

    def work(part):
        conn = node.connection(timeout=30)
        try:
            for n in part:
                conn.request("POST", "/lock/%s?owner=%s" % (n, owner))
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors.append((n, r.status))
        except (OSError, http.client.HTTPException) as e:
            errors.append(("connection", repr(e)))
        finally:
            conn.close()

    ts = [threading.Thread(target=work, args=(names[i::threads],)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not errors, errors[:5]


def events_route_exists(node):
    """False while the node answers GET /events 404 (phase 1 of issue 14)."""
    conn = node.connection(timeout=5)
    try:
        conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        r = conn.getresponse()
        return r.status != 404
    finally:
        conn.close()


def shot(browser, name, height=900):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        browser.driver.set_window_size(1280, height)
        try:
            time.sleep(0.3)  # (a screenshot only: let the resized page paint)
            browser.driver.save_screenshot(os.path.join(SHOTS, "ui-%s.png" % name))
        finally:
            browser.driver.set_window_size(1280, 900)


# ---------------------------------------------------------------------------
# locks

def test_list_filters_and_pages_through_1000_locks(ui):
    node, proxy, b = ui
    names = ["page-%04d" % i for i in range(1000)]
    acquire_many(node, names)
    acquire_many(node, ["other-%d" % i for i in range(5)], threads=1)
    open_view(b, proxy, "#/locks")
    wait_for(lambda: len(rows(b)) == 100, what="the first page of 100 rows")
    assert rows(b)[0] == "other-0"
    f = css(b, "#prefix")
    f.clear()
    f.send_keys("page-" + Keys.ENTER)
    wait_for(lambda: rows(b)[:1] == ["page-0000"], what="the filtered list")
    assert rows(b) == names[:100]
    assert "#/locks?prefix=page-" in b.driver.current_url
    seen = list(rows(b))
    for page in range(1, 10):
        css(b, "#next-page").click()
        want = names[page * 100:(page + 1) * 100]
        wait_for(lambda: rows(b) == want, what="page %d" % (page + 1))
        seen += rows(b)
    assert seen == names
    assert not csss(b, "#next-page"), "no next page after the last lock"
    # back one page, then the first
    b.driver.find_element(By.LINK_TEXT, "← Previous").click()
    wait_for(lambda: rows(b) == names[800:900], what="the previous page")
    b.driver.find_element(By.LINK_TEXT, "First").click()
    wait_for(lambda: rows(b) == names[:100], what="the first page again")
    # every row carries the lock's live fields
    token = node.request("GET", "/lock/page-0000").body["token"]
    row = cells(b, "page-0000")
    assert row[1] == "o" and row[2] == str(token) and row[4] == "no TTL", row
    # a prefix nothing has
    f = css(b, "#prefix")
    f.clear()
    f.send_keys("nothing-here" + Keys.ENTER)
    wait_for(lambda: "No lock held with this prefix." in css(b, "table.locks tbody").text, what="the empty state")


def test_ttl_counts_down_and_held_for_counts_up(ui):
    node, proxy, b = ui
    assert post(node, "lease", "w1", "1h").status == 200
    open_view(b, proxy, "#/locks")
    cell = lambda i: cells(b, "lease")[i]  # noqa: E731
    first = wait_for(lambda: cell(4) if cell(4).startswith("59m") else None, what="a TTL near 1h")
    wait_for(lambda: cell(4) != first, timeout=10, what="the TTL to count down")
    held = cell(3)
    wait_for(lambda: cell(3) != held, timeout=10, what="held-for to count up")


# ---------------------------------------------------------------------------
# one lock

def test_acquire_through_the_form_shows_the_token_then_conflict_then_release(ui):
    node, proxy, b = ui
    open_view(b, proxy, "#/lock/ui-acq")
    wait_for(lambda: css(b, "h1 .badge").text == "free", what="the lock to show free")
    form = css(b, "#acquire")
    form.find_element(By.NAME, "owner").send_keys("alice")
    form.find_element(By.NAME, "ttl").send_keys("30s")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    out = wait_for(lambda: form.find_element(By.CSS_SELECTOR, ".note.ok"), what="the acquire result")
    r = node.request("GET", "/lock/ui-acq")
    assert r.status == 200 and r.body["owner"] == "alice", r
    assert out.find_element(By.CSS_SELECTOR, ".token").text == str(r.body["token"])
    wait_for(lambda: css(b, "#f-token").text == str(r.body["token"]), what="the fields to show the token")
    assert css(b, "h1 .badge").text == "held"
    assert css(b, "#f-owner").text == "alice"
    # another owner through the same form: 409, with the holder, where it happened
    own = form.find_element(By.NAME, "owner")
    own.clear()
    own.send_keys("bob")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = wait_for(lambda: form.find_element(By.CSS_SELECTOR, ".note.error"), what="the conflict")
    assert "409" in err.text and "held by alice" in err.text, err.text
    # renew keeps the token
    ren = css(b, "#renew")
    assert ren.find_element(By.NAME, "owner").get_attribute("value") == "alice"
    ren.find_element(By.NAME, "ttl").send_keys("1m")
    ren.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: ren.find_element(By.CSS_SELECTOR, ".note.ok"), what="the renewal")
    r2 = node.request("GET", "/lock/ui-acq")
    assert r2.body["token"] == r.body["token"] and r2.body["ttl_ms"] == 60000, r2
    # release with a wrong token: refused, shown in the release box
    rel = css(b, "#release")
    rel.find_element(By.NAME, "token").send_keys(str(r.body["token"] + 1000))
    rel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    err = wait_for(lambda: rel.find_element(By.CSS_SELECTOR, ".note.error"), what="the token mismatch")
    assert "409" in err.text and "Token mismatch" in err.text, err.text
    tok = rel.find_element(By.NAME, "token")
    tok.clear()
    tok.send_keys(str(r.body["token"]))
    rel.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(lambda: "released" in rel.find_element(By.CSS_SELECTOR, ".note.ok").text, what="the release")
    assert node.request("GET", "/lock/ui-acq").status == 404
    wait_for(lambda: css(b, "h1 .badge").text == "free", what="the lock to show free again")


def test_force_release_needs_the_lock_name_typed(ui):
    node, proxy, b = ui
    assert post(node, "stuck-job", "carol").status == 200
    open_view(b, proxy, "#/lock/stuck-job")
    wait_for(lambda: css(b, "#f-owner").text == "carol", what="the holder")
    form = css(b, "#force")
    button = form.find_element(By.CSS_SELECTOR, "button[type=submit]")
    box = form.find_element(By.NAME, "confirm")
    assert not button.is_enabled()
    box.send_keys("stuck-jo")
    assert not button.is_enabled()
    box.send_keys("bb")
    assert not button.is_enabled()
    box.send_keys(Keys.BACKSPACE, Keys.BACKSPACE)
    box.send_keys("b")
    wait_for(lambda: button.is_enabled(), what="the button to enable on the exact name")
    # Enter in a form with a disabled button must not have released it before
    assert node.request("GET", "/lock/stuck-job").status == 200
    button.click()
    wait_for(lambda: "released" in form.find_element(By.CSS_SELECTOR, ".note.ok").text, what="the forced release")
    assert node.request("GET", "/lock/stuck-job").status == 404
    assert box.get_attribute("value") == ""


def test_copy_as_curl_gives_a_command_that_does_the_same(ui):
    node, proxy, b = ui
    open_view(b, proxy, "#/lock/curl-me")
    form = css(b, "#acquire")
    form.find_element(By.NAME, "owner").send_keys("dave")
    form.find_element(By.NAME, "ttl").send_keys("45s")
    form.find_element(By.CSS_SELECTOR, "button.secondary").click()
    code = wait_for(lambda: form.find_element(By.CSS_SELECTOR, "code.curl").text, what="the curl line")
    assert code == "curl -sS -X POST '%s/lock/curl-me?owner=dave&ttl=45s'" % proxy.origin, code
    assert node.request("GET", "/lock/curl-me").status == 404, "copying must not run the action"
    out = subprocess.run(["sh", "-c", code], capture_output=True, timeout=30, text=True)
    assert out.returncode == 0 and '"owner":"dave"' in out.stdout, out
    r = node.request("GET", "/lock/curl-me")
    assert r.status == 200 and r.body["ttl_ms"] == 45000, r
    force = css(b, "#force")
    force.find_element(By.CSS_SELECTOR, "button.secondary").click()
    code = wait_for(lambda: force.find_element(By.CSS_SELECTOR, "code.curl").text, what="the force curl line")
    assert code == "curl -sS -X DELETE '%s/lock/curl-me?force=true'" % proxy.origin


def test_lock_page_shows_every_field_and_says_what_the_server_lacks(ui):
    node, proxy, b = ui
    assert post(node, "fields", "erin", "2m").status == 200
    body = node.request("GET", "/lock/fields").body
    open_view(b, proxy, "#/lock/fields")
    wait_for(lambda: css(b, "#f-token").text == str(body["token"]), what="the fields")
    text = css(b, "dl.fields").text
    for label in ("Owner", "Token", "Acquired", "TTL", "Expires in", "Waiters"):
        assert label in text, (label, text)
    assert "2m 00s" in text
    # queue and history: shown, or a plain sentence when this server has no such API yet
    wait_for(lambda: css(b, "#queue").text and css(b, "#history").text, what="queue and history sections")
    shot(b, "lock", 1250)


# ---------------------------------------------------------------------------
# keyboard, small screens, dark mode

def test_keyboard_slash_focuses_the_filter_and_enter_opens_a_lock(ui):
    node, proxy, b = ui
    assert post(node, "kbd-lock", "k").status == 200
    open_view(b, proxy, "#/locks")
    wait_for(lambda: "kbd-lock" in rows(b), what="the row")
    css(b, "body").send_keys(Keys.ESCAPE)
    b.driver.execute_script("document.activeElement.blur()")
    b.driver.switch_to.active_element.send_keys("/")
    assert b.driver.switch_to.active_element.get_attribute("id") == "prefix"
    link = css(b, 'tr[data-name="kbd-lock"] a')
    b.driver.execute_script("arguments[0].focus()", link)
    b.driver.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: b.driver.current_url.endswith("#/lock/kbd-lock"), what="the lock page")
    wait_for(lambda: css(b, "#f-owner").text == "k", what="its fields")
    # every input of the lock page has a label
    unlabeled = b.driver.execute_script(
        "return [...document.querySelectorAll('input')].filter(i => !(i.labels && i.labels.length)"
        " && !i.getAttribute('aria-label')).map(i => i.id || i.name)")
    assert unlabeled == [], unlabeled


def test_readable_at_360px_without_sideways_scrolling(ui):
    node, proxy, b = ui
    acquire_many(node, ["narrow-%02d-with-a-longish-name" % i for i in range(5)], threads=1)
    b.driver.set_window_size(360, 740)
    try:
        for view in ("#/locks", "#/lock/narrow-01-with-a-longish-name", "#/cluster"):
            open_view(b, proxy, view)
            time.sleep(0)  # (rendering is polled below)
            wait_for(lambda: css(b, "main h1"), what="the view")
            if view == "#/locks":
                wait_for(lambda: len(rows(b)) == 5, what="the rows")
            width = b.driver.execute_script("return document.documentElement.scrollWidth")
            inner = b.driver.execute_script("return window.innerWidth")
            assert width <= inner, "%s scrolls sideways at 360 px: %d > %d" % (view, width, inner)
    finally:
        b.driver.set_window_size(1280, 900)


def test_dark_mode_follows_the_system(ui):
    node, proxy, b = ui
    try:
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                 {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        open_view(b, proxy, "#/locks")
        bg = b.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        rgb = [int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]]
        assert sum(rgb) < 150, bg
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                 {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
        bg = b.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        rgb = [int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]]
        assert sum(rgb) > 600, bg
    finally:
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_unreachable_server_shows_an_error_not_a_blank_page(node, browser):
    with UiProxy(node.host, node.port) as proxy:
        browser.driver.get(proxy.origin + "/ui/#/locks")
        wait_for(lambda: css(browser, "#node-info").text.startswith("node "), what="the page")
        node.kill9()
        browser.console()
        start = len(browser.log)
        browser.driver.refresh()
        wait_for(lambda: "Cannot read /status" in css(browser, "#banner").text, what="the banner")
        wait_for(lambda: "Could not list locks: 502" in css(browser, "main").text, what="the list error")
        # the proxy answers 502 for the dead node: Chromium logs it; nothing else may appear
        errs = [e for e in browser.console_errors() if e in browser.log[start:]
                and "status of 502" not in e.get("message", "")]
        assert not errs, errs


# ---------------------------------------------------------------------------
# cluster

def test_cluster_view_of_one_node(ui):
    node, proxy, b = ui
    open_view(b, proxy, "#/cluster")
    row = wait_for(lambda: css(b, 'table.cluster tr[data-node="1"]'), what="the node row")
    wait_for(lambda: "leader" in row.text and "ready" in row.text, what="leader and ready")
    assert "this node" in row.text
    assert "Leader: node 1" in css(b, "#leader-line").text
    assert css(b, "#banner").get_attribute("hidden") is not None


def test_cluster_view_shows_three_nodes_and_follows_a_leader_change(node_factory, browser):
    c = LockdCluster(node_factory, size=3, workers=1)
    c.start()
    lid = c.wait_leader(15)
    follower = next(i for i in c.ids if i != lid)
    with UiProxy(c[follower].host, c[follower].port) as proxy:
        browser.console()
        start = len(browser.log)
        open_view(browser, proxy, "#/cluster")
        wait_for(lambda: len(csss(browser, "table.cluster tbody tr")) == 3, what="three rows")
        wait_for(lambda: css(browser, "#leader-id").text == "node %d" % lid, what="the leader")
        roles = {r.get_attribute("data-node"): r.get_attribute("data-role")
                 for r in csss(browser, "table.cluster tbody tr")}
        assert roles[str(lid)] == "leader", roles
        assert sorted(roles.values()).count("follower") == 2, roles
        shot(browser, "cluster")
        c[lid].kill9()
        new = wait_until(lambda: (c.agreed_leader([i for i in c.ids if i != lid]) or None), 20)
        assert new and new != lid, "no new leader"
        wait_for(lambda: css(browser, "#leader-id").text == "node %d" % new, timeout=30,
                 what="the view to show the new leader")
        row = css(browser, 'table.cluster tr[data-node="%d"]' % new)
        assert row.get_attribute("data-role") == "leader"
        errors = [e for e in browser.console_errors() if e in browser.log[start:]]
        assert not errors, errors


# ---------------------------------------------------------------------------
# live updates (need GET /events on the server)

@pytest.fixture
def live_ui(ui):
    node, proxy, b = ui
    if not events_route_exists(node):
        pytest.skip("the node has no GET /events yet (issue 14, phase 2)")
    return ui


def test_another_clients_acquire_appears_within_a_second_through_the_stream(live_ui):
    node, proxy, b = live_ui
    open_view(b, proxy, "#/locks")
    wait_for(lambda: css(b, "#live-state").text.startswith("live"), what="the stream to be live")
    t0 = time.monotonic()
    assert post(node, "from-elsewhere", "eve", "30s").status == 200
    wait_for(lambda: "from-elsewhere" in rows(b), timeout=5, interval=0.01, what="the row")
    took = time.monotonic() - t0
    assert took < 1.0, "the acquire took %.3f s to appear" % took
    assert node.request("DELETE", "/lock/from-elsewhere?owner=eve").status == 200
    wait_for(lambda: "from-elsewhere" not in rows(b), timeout=5, what="the row to go")


def test_pause_switch_holds_updates_until_resumed(live_ui):
    node, proxy, b = live_ui
    open_view(b, proxy, "#/locks")
    wait_for(lambda: css(b, "#live-state").text.startswith("live"), what="the stream")
    css(b, "#live").click()
    assert post(node, "while-paused", "p").status == 200
    wait_for(lambda: "1 update waiting" in css(b, "#live-state").text, what="the waiting count")
    assert "while-paused" not in rows(b)
    css(b, "#live").click()
    wait_for(lambda: "while-paused" in rows(b), what="the row after resuming")


def test_lock_page_shows_the_queue_in_order_and_the_history(live_ui):
    node, proxy, b = live_ui
    assert post(node, "queued", "holder").status == 200
    waiters = []
    for w in ("w1", "w2", "w3"):
        t = threading.Thread(target=lambda w=w: node.request(
            "POST", "/lock/queued?owner=%s&wait=20s" % w, timeout=30))
        t.start()
        waiters.append(t)
        wait_until(lambda w=w: w in str(node.request("GET", "/lock/queued?waiters=true").body), 10)
    open_view(b, proxy, "#/lock/queued")
    items = wait_for(lambda: [li.text for li in csss(b, "#queue li")] or None, what="the queue")
    assert [i.split()[1] for i in items] == ["w1", "w2", "w3"], items
    shot(b, "lock", 1250)
    assert node.request("DELETE", "/lock/queued?owner=holder").status == 200
    wait_for(lambda: "holder" in css(b, "#history").text, what="the history to show the first holder")
    wait_for(lambda: css(b, "#f-owner").text == "w1", what="w1 to hold it")
    for o in ("w1", "w2", "w3"):
        wait_until(lambda o=o: node.request("DELETE", "/lock/queued?owner=" + o).status in (200, 409), 10)
    for t in waiters:
        t.join(30)


def test_screenshot_of_the_locks_view(ui):
    node, proxy, b = ui
    acquire_many(node, ["deploy-prod", "deploy-staging", "job-%d" % 7, "nightly-backup"], threads=1)
    assert post(node, "cache-rebuild", "worker-3", "5m").status == 200
    assert post(node, "report-2024", "analytics@node-2", "1h").status == 200
    open_view(b, proxy, "#/locks")
    wait_for(lambda: len(rows(b)) == 6, what="the rows")
    shot(b, "locks")
