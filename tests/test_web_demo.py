"""tools/web_demo.py in a real headless browser, and the side-by-side runner behind it.

The browser test serves the page on a free loopback port with random weights, drives Debian's
chromium through chromedriver (selenium) like a user, and checks what the user sees (two overlays
with their legends) against the label maps tools/test.py writes for the same settings, and that
neither the page nor the server reaches anything beyond loopback.
"""
import io
import json
import os
import os.path as osp
import shutil
import socket
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers import REPO, load_tool, write_image
from sclip.errors import SCLIPError
from sclip.side_by_side import (Knobs, SideBySide, Weights, method_catalogue, method_options, parse_typed_classes,
                                prepare_image, random_clip)

CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
CLASSES = 'background, cat, dog'
LOOPBACK = ('127.0.0.1', '::1', 'localhost')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def outbound(monkeypatch):
    """Every non-loopback address this process connects to while the test runs."""
    seen, connect = [], socket.socket.connect

    def recording(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            seen.append(address)
        return connect(self, address)
    monkeypatch.setattr(socket.socket, 'connect', recording)
    return seen


def browser(profile: str):
    webdriver = pytest.importorskip('selenium.webdriver')
    from selenium.webdriver.chrome.service import Service
    if not (osp.isfile(CHROMIUM) and osp.isfile(CHROMEDRIVER)):
        message = 'Debian chromium and chromium-driver are not installed (.ci/run installs them)'
        if os.environ.get('SCLIP_REQUIRE_BROWSER'):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage', f'--user-data-dir={profile}', '--window-size=1400,1100'):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requested_urls(driver) -> list:
    urls = []
    for entry in driver.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            urls.append(message['params']['request']['url'])
        elif message['method'] == 'Network.webSocketCreated':
            urls.append(message['params']['url'])
    return urls


def fetch_png(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=30) as response:
        return np.array(Image.open(io.BytesIO(response.read())))


def cli_label_map(tmp_path, entry, weights: str, image_path: str) -> np.ndarray:
    """tools/test.py on a one-image dataset of ``image_path`` with the page's settings for ``entry``."""
    root = tmp_path / f'data_{entry.key}'
    (root / 'img').mkdir(parents=True)
    (root / 'ann').mkdir()
    shutil.copy(image_path, root / 'img' / 'photo.png')
    height, width = np.array(Image.open(image_path)).shape[:2]
    Image.fromarray(np.zeros((height, width), np.uint8)).save(root / 'ann' / 'photo.png')
    class_file = tmp_path / f'classes_{entry.key}.txt'
    class_file.write_text(''.join(f'{name.strip()}\n' for name in CLASSES.split(',')))
    config = tmp_path / f'cli_{entry.key}.py'
    config.write_text(f"""_base_ = [{entry.base!r}]
test_pipeline = [dict(type='SCLIPLoadImage'), dict(type='Resize', scale=(2048, 336), keep_ratio=True),
                 dict(type='SCLIPLoadAnnotations'), dict(type='PackSegInputs')]
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                       sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(type='BaseSegDataset', data_root={str(root)!r}, img_suffix='.png',
                                    seg_map_suffix='.png', data_prefix=dict(img_path='img', seg_map_path='ann'),
                                    metainfo=dict(classes={tuple(n.strip() for n in CLASSES.split(','))!r}),
                                    pipeline=test_pipeline))
""")
    options = method_options(entry, Knobs(), Weights(clip=weights, random=True), str(class_file))
    assert set(options) == {'model.class_names', 'model.clip_path'}  # nothing else differs from the base
    out = tmp_path / f'out_{entry.key}'
    load_tool('test').main([str(config), '--work-dir', str(tmp_path / f'work_{entry.key}'), '--out', str(out),
                            '--cfg-options', *[f'{k}={v}' for k, v in options.items()]])
    return np.array(Image.open(out / 'photo.png'))


def test_page_shows_two_methods_like_tools_test(tmp_path, outbound):
    """Upload, classes, two methods, wait: both overlays render with a legend, their label maps
    equal tools/test.py's, and nothing left loopback (browser or server)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    driver = browser(str(tmp_path / 'profile'))  # first: without chromium the test stops here
    tool = load_tool('web_demo')
    port = free_port()
    args = tool.parse_args(['--random-weights', '--port', str(port)])
    try:
        app = tool.build_app(args)
        tool.launch(app, '127.0.0.1', port, block=False)
    except BaseException:
        driver.quit()
        raise
    image_path = str(tmp_path / 'upload' / 'photo.png')
    write_image(image_path, (120, 90), seed=3)
    try:
        driver.get(f'http://127.0.0.1:{port}/')
        wait = WebDriverWait(driver, 180)  # a limit under load, not a timing assertion
        assert 'RANDOM WEIGHTS' in wait.until(lambda d: d.find_element(By.ID, 'random-banner')).text
        upload = '#image-file input[type=file]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
        notes = tmp_path / 'notes.txt'  # a non-image: one line under the upload, nothing else
        notes.write_text('not a picture')
        driver.find_element(By.CSS_SELECTOR, upload).send_keys(str(notes))
        wait.until(lambda d: 'not an image' in d.find_element(By.ID, 'upload-note').text)
        assert driver.find_element(By.ID, 'upload-note').text.strip().count('\n') == 0
        driver.find_element(By.CSS_SELECTOR, '#image-file button[aria-label="Clear"]').click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, upload))
        driver.find_element(By.CSS_SELECTOR, upload).send_keys(image_path)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#preview img'))
        box = driver.find_element(By.CSS_SELECTOR, '#classes textarea')
        box.clear()
        box.send_keys(CLASSES)
        ticked = driver.find_element(By.CSS_SELECTOR, '#methods input[name="SCLIP"]')
        assert ticked.is_selected()  # the default
        driver.find_element(By.CSS_SELECTOR, '#methods input[name="NACLIP"]').click()
        driver.find_element(By.ID, 'run').click()
        wait.until(lambda d: 'Done' in d.find_element(By.ID, 'status').text)
        assert not [e for e in driver.find_elements(By.ID, 'panel-clearclip') if e.is_displayed()]  # not ticked
        entries = {entry.key: entry for entry in method_catalogue()}
        photo = np.array(Image.open(image_path).convert('RGB'))
        for key in ('sclip', 'naclip'):
            title = driver.find_element(By.ID, f'title-{key}').text
            assert 'error' not in title and ' s ' in title + ' ' and 'meaningless' in title, title
            overlay = driver.find_element(By.CSS_SELECTOR, f'#overlay-{key} img')
            loaded = driver.execute_script('return [arguments[0].complete, arguments[0].naturalWidth, '
                                           'arguments[0].naturalHeight]', overlay)
            assert loaded[:2] == [True, 120] and loaded[2] > 90, loaded  # the picture and a legend under it
            links = driver.find_elements(By.CSS_SELECTOR, f'#labels-{key} a')
            labels = fetch_png(links[0].get_attribute('href'))
            assert labels.shape == (90, 120)
            assert np.array_equal(labels, cli_label_map(tmp_path, entries[key], app.runner.weights.clip, image_path))
            # the overlay shows these labels in the legend's colours, and the legend names them
            from sclip.visualize import overlay as blend, palette_for_classes
            palette = palette_for_classes(parse_typed_classes(CLASSES))
            picture = fetch_png(overlay.get_attribute('src'))
            assert np.array_equal(picture[:90, :, :3], blend(photo, labels, palette))
            legend = picture[90:, :, :3].reshape(-1, 3).tolist()
            for c in np.unique(labels):
                assert palette[c] in legend  # its swatch
                assert parse_typed_classes(CLASSES)[c][0] in title  # its name beside the picture
        areas = driver.find_element(By.ID, 'areas').text
        assert 'SCLIP' in areas and 'NACLIP' in areas
        urls = requested_urls(driver)
    finally:
        driver.quit()
        app.close()
    web = [u for u in urls if u.split(':', 1)[0] in ('http', 'https', 'ws', 'wss')]
    assert web and all(u.split('/')[2].rsplit(':', 1)[0] in LOOPBACK for u in web), \
        [u for u in web if u.split('/')[2].rsplit(':', 1)[0] not in LOOPBACK]
    assert outbound == []


def test_catalogue_has_every_method_of_the_harness():
    """Every _base_ method config and every registered method type (a new one appears by itself)."""
    from sclip.models.methods import METHODS, Method, register_method
    import glob
    names = [entry.name for entry in method_catalogue()]
    assert names[:1] == ['SCLIP'] and {'ClearCLIP', 'NACLIP', 'SC-CLIP', 'ResCLIP', 'ProxyCLIP'} <= set(names)
    assert {'CLIP (baseline)', 'MaskCLIP (baseline)'} <= set(names)  # SCLIP's table's baselines
    from mmengine import Config
    bases = [Config.fromfile(p) for p in glob.glob(osp.join(REPO, 'configs', '_base_', '*.py'))]
    assert {cfg.method for cfg in bases if isinstance(cfg.get('method'), str)} <= set(names)

    @register_method('webdemo_probe')
    class Probe(Method):
        pass
    try:
        entry = [e for e in method_catalogue() if e.key == 'webdemo_probe']
        assert len(entry) == 1 and entry[0].overrides['model.method'] == {'type': 'webdemo_probe'}
    finally:
        del METHODS['webdemo_probe']


def test_a_method_without_weights_is_one_line_and_the_others_run(tmp_path, monkeypatch):
    """ProxyCLIP's DINO is nowhere (no folder file, empty cache): its panel gets one line, SCLIP runs."""
    weights = random_clip(str(tmp_path))
    runner = SideBySide(Weights(clip=weights, folder=str(tmp_path)), 'cpu')
    picked = [e for e in method_catalogue() if e.key in ('proxyclip', 'sclip')]
    image = np.array(Image.open(osp.join(REPO, 'docs', 'web_demo_example.png')).convert('RGB'))[::4, ::4]
    results = {r.entry.key: r for r in runner.run(image, parse_typed_classes('sky, grass'), picked, Knobs())}
    assert results['sclip'].error == '' and results['sclip'].labels.shape == image.shape[:2]
    assert results['proxyclip'].labels is None
    assert 'dino_vitbase8_pretrain.pth' in results['proxyclip'].error and '\n' not in results['proxyclip'].error
    # no CLIP file in the folder and none cached: one line naming the file and where it was looked for
    monkeypatch.setattr('sclip.models.clip_loader.cached_weights', lambda *a, **k: None)
    with pytest.raises(SCLIPError, match=r'no ViT-B-16 weights: ViT-B-16\.pt is not in .*--weights DIR'):
        Weights(folder=str(tmp_path)).clip_path('ViT-B-16')


def test_every_vocabulary_in_every_method_separator(tmp_path):
    from sclip.class_names import load_class_names
    from sclip.side_by_side import vocabularies, write_class_file
    assert {'voc21', 'context60', 'ade20k', 'coco_stuff'} <= set(vocabularies())
    for path in vocabularies().values():
        classes = load_class_names(path).classes
        for separator in (', ', ',', '; '):  # SCLIP and most, ClearCLIP, ProxyCLIP
            assert load_class_names(write_class_file(classes, separator, str(tmp_path)), separator).classes == classes
    with pytest.raises(SCLIPError, match="'sky; sea' contains ';'"):
        write_class_file([['sky; sea']], '; ', str(tmp_path))


def test_uploads_and_classes(tmp_path):
    tool = load_tool('web_demo')
    text = tmp_path / 'notes.txt'
    text.write_text('not a picture')
    with pytest.raises(SCLIPError, match=r'^notes\.txt: not an image'):
        tool.read_image(str(text))
    big = np.zeros((1500, 3000, 3), np.uint8)
    resized, note = prepare_image(big)
    assert resized.shape == (512, 1024, 3) and '3000x1500' in note and '1024x512' in note
    small, note = prepare_image(big[:100, :200])
    assert small.shape == (100, 200, 3) and note == ''
    assert parse_typed_classes(' background,cat ,\ndog ') == [['background'], ['cat'], ['dog']]
    with pytest.raises(SCLIPError, match='no class names'):
        parse_typed_classes(' , ')
    with pytest.raises(SCLIPError, match="'cat' is typed twice"):
        parse_typed_classes('cat, dog, cat')
    assert tool.parse_args(['--random-weights']).random_weights
