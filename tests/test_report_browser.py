"""The subject and group reports in a real headless browser (Debian's chromium + chromedriver via
selenium): no console errors, no network requests, the expected sections, decoded images, a
working sortable table, and sidecar strings escaped.

Skipped when chromium/chromedriver/selenium are missing, unless BIDS_ASL_REQUIRE_BROWSER=1 (CI).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from bids_asl.report.subject import write_subject_report

from conftest import run_cli
from fakeclinical import write_lesions, write_run, write_sessions

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
INJECTED = '<script>window.__injected = 1;</script><b id="injected">bold</b>'


def _driver():
    missing = [n for n, ok in (('chromium', CHROMIUM), ('chromedriver', DRIVER)) if not ok]
    try:
        from selenium import webdriver  # noqa: PLC0415
        from selenium.webdriver.chrome.service import Service  # noqa: PLC0415
    except ImportError:
        missing.append('selenium')
    if missing:
        if os.environ.get('BIDS_ASL_REQUIRE_BROWSER') == '1':
            pytest.fail(f'BIDS_ASL_REQUIRE_BROWSER=1 but missing: {", ".join(missing)}')
        pytest.skip(f'no headless browser ({", ".join(missing)} missing)')
    os.environ.setdefault('SE_AVOID_STATS', 'true')
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ('--headless', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1280,2000'):
        opts.add_argument(arg)
    if os.geteuid() == 0:
        opts.add_argument('--no-sandbox')
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL', 'performance': 'ALL'})
    return webdriver.Chrome(options=opts, service=Service(executable_path=DRIVER))


@pytest.fixture(scope='module')
def browser():
    driver = _driver()
    yield driver
    driver.quit()


@pytest.fixture(scope='module')
def reports(group_dataset, tmp_path_factory):
    """The group dataset's outputs copied, a sidecar string made hostile, reports re-rendered."""
    bids, out, _ = group_dataset
    copy = tmp_path_factory.mktemp('browser') / 'out'
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns('.work'))
    sidecar = copy / 'sub-b' / 'perf' / 'sub-b_cbf.json'
    meta = json.loads(sidecar.read_text())
    meta['BloodT1Source'] = INJECTED
    meta['Warnings'] = [INJECTED]
    sidecar.write_text(json.dumps(meta))
    write_subject_report(copy, 'b', errors=[('sub-b_run-9_asl.nii.gz', INJECTED)])
    assert run_cli(bids, copy, 'group') == 0
    return copy


def _load(browser, path: Path) -> dict:
    browser.get_log('browser')
    browser.get_log('performance')  # drop what earlier pages logged
    browser.get(path.resolve().as_uri())
    errors = [e for e in browser.get_log('browser') if e['level'] == 'SEVERE']
    urls = []
    for entry in browser.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            urls.append(message['params']['request']['url'])
    return {'errors': errors, 'urls': urls}


def _ids(browser):
    return set(browser.execute_script(
        "return Array.from(document.querySelectorAll('section[id]')).map(s => s.id)"))


def _check_clean(browser, path, log):
    assert log['errors'] == [], log['errors']
    external = [u for u in log['urls'] if not u.startswith(('file:', 'data:', 'about:'))]
    assert external == []
    assert [u for u in log['urls'] if u.startswith('file:')] == [path.resolve().as_uri()]
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.alt)")
    assert broken == []


def test_subject_report_in_browser(browser, reports):
    path = reports / 'sub-b.html'
    log = _load(browser, path)
    _check_clean(browser, path, log)
    assert {'summary', 'run-sub-b', 'anatomy', 'methods', 'software', 'errors'} <= _ids(browser)
    text = browser.execute_script('return document.body.innerText')
    for heading in ('Images', 'Quality control', 'Tissue CBF', 'Regional CBF',
                    'Acquisition, model and constants', 'QC thresholds'):
        assert heading in text
    n_images = browser.execute_script("return document.querySelectorAll('#run-sub-b img').length")
    assert n_images >= 6  # CBF, SCORE, SCRUB, ΔM, M0+mask, GM overlay, template CBF
    regional = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.regional')).map(t => t.rows.length)")
    assert regional == [4, 3]  # AAL 3 regions, HarvardOxford 2, plus header rows


def test_sidecar_strings_are_escaped(browser, reports):
    html = (reports / 'sub-b.html').read_text()
    assert INJECTED not in html
    assert '&lt;script&gt;window.__injected = 1;&lt;/script&gt;&lt;b id=&#34;injected&#34;&gt;' \
        in html
    _load(browser, reports / 'sub-b.html')
    assert browser.execute_script('return window.__injected === undefined')
    assert browser.execute_script("return document.getElementById('injected') === null")
    text = browser.execute_script("return document.getElementById('errors').innerText")
    assert INJECTED in text  # shown as text, exactly


def test_failed_subject_report_lists_the_error(browser, reports):
    path = reports / 'sub-bad.html'
    _check_clean(browser, path, _load(browser, path))
    text = browser.execute_script("return document.getElementById('errors').innerText")
    assert 'sub-bad_asl.nii.gz' in text and 'RepetitionTimePreparation' in text


def test_lesion_and_comparison_sections_in_browser(browser, tmp_path):
    out = tmp_path / 'out'
    rows = write_lesions(out)
    write_run(out, 'base')
    write_sessions(out)
    path = write_subject_report(out, 'p')
    _check_clean(browser, path, _load(browser, path))
    assert 'comparisons' in _ids(browser)
    count = "return document.querySelectorAll('{}').length"
    assert browser.execute_script(count.format('table.lesions tbody tr')) == len(rows)
    assert browser.execute_script(count.format('#comparisons img')) == 2
    assert browser.execute_script(count.format('table.clusters tbody tr')) == 2
    text = browser.execute_script("return document.getElementById('comparisons').innerText")
    assert 'Clusters' in text and 'Regional change' in text


def test_group_report_in_browser(browser, reports):
    path = reports / 'group.html'
    log = _load(browser, path)
    _check_clean(browser, path, log)
    assert {'summary', 'distributions', 'runs', 'maps', 'software'} <= _ids(browser)
    column = "return Array.from(document.querySelectorAll('#runs-table tbody tr'))" \
             ".map(r => r.cells[{}].innerText.trim())"
    headers = browser.execute_script(
        "return Array.from(document.querySelectorAll('#runs-table th')).map(h => h.innerText)")
    col = headers.index('cbf_mean_brain')
    values = [float(v) for v in browser.execute_script(column.format(col))]
    th = browser.find_elements('css selector', '#runs-table th')[col]
    th.click()
    assert [float(v) for v in browser.execute_script(column.format(col))] == sorted(values)
    th.click()
    assert [float(v) for v in browser.execute_script(column.format(col))] == sorted(
        values, reverse=True)
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#runs-table a')).map(a => a.href)")
    assert len(links) == 4 and all(Path(link.split('#')[0][7:]).is_file() for link in links)
    assert browser.get_log('browser') == []  # sorting raised nothing
