"""The bulk DOTA txt reader and checks give exactly what the line-by-line
parser and the one-polygon checks give."""
import re

import numpy as np
import pytest

from sm3det.datasets import (narrow_polygons, parse_dota_txt, polygon_problem,
                             polygon_problems, read_dota_txt)
from sm3det.datasets.dota import objects_from_raw

GOOD = '10 10 60 10 60 40 10 40'

# Each file: what the reader meets in real sets, well-formed and not.
FILES = {
    'plain':
    f'{GOOD} plane 0\n{GOOD} ship 1\n',
    'header':
    f'imagesource:GoogleEarth\ngsd:0.146\n{GOOD} plane 0\n',
    'crlf_and_cr':
    f'{GOOD} plane 0\r\n{GOOD} ship 2\r{GOOD} harbor 0',
    'blank_lines_tabs':
    f'\n  \n{GOOD}\tplane\t0  \n\n',
    'no_difficulty':
    f'{GOOD} plane\n{GOOD} ship 0\n',
    'spaced_name':
    f'{GOOD} freight car 0\n{GOOD} freight car\n',
    'digit_name':
    f'{GOOD} 1st-class 0\n',
    'numeric_name':
    f'{GOOD} 12 3\n',
    'inf_name':
    f'{GOOD} inf 0\n',
    'nan_name':
    f'{GOOD} nan 0\n',
    'three_points':
    f'{GOOD} ship 0\n10 10 60 10 60 40 ship 0\n',
    'nine_numbers':
    f'{GOOD} 5 ship 0\n',
    'nan_coordinate':
    '10 nan 60 10 60 40 10 40 ship 0\n',
    'inf_coordinate':
    '10 inf 60 10 60 40 10 40 ship 0\n',
    'underscore_and_exponent':
    '1_0 1e1 60 10 6e1 40 10 40 ship 0\n',
    'unicode_digits':
    '١٠ 10 60 10 60 40 10 40 ship 0\n',
    'superscript_difficulty':
    f'{GOOD} ship ²\n',
    'only_name':
    'ship 0\n',
    'empty':
    '',
    'only_header':
    'imagesource:GoogleEarth\ngsd:0.5\n',
    'colon_in_name':
    f'{GOOD} a:b 0\n',
    'big':
    ''.join(f'{i} {i + 0.5} {i + 30} 7 {i + 30} 20.25 {i} 20 '
            f'small-vehicle {i % 3}\n' for i in range(1500)),
}


def reference(path):
    """What the line-by-line parser gives, or the exception it raises."""
    try:
        return objects_from_raw(parse_dota_txt(path))
    except Exception as e:  # noqa: BLE001
        return e


@pytest.mark.parametrize('name', sorted(FILES))
def test_bulk_reader_equals_line_by_line_parser(tmp_path, name):
    path = tmp_path / f'{name}.txt'
    path.write_text(FILES[name], encoding='utf-8', newline='')
    expected = reference(str(path))
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=re.escape(str(expected))):
            read_dota_txt(str(path))
        return
    got = read_dota_txt(str(path))
    assert got.polygons.dtype == np.float64
    np.testing.assert_array_equal(got.polygons, expected.polygons)
    assert got.names == expected.names
    assert got.difficulties.tolist() == expected.difficulties.tolist()
    assert got.coords == expected.coords


def test_bulk_reader_on_bad_utf8_raises_like_the_parser(tmp_path):
    path = tmp_path / 'latin1.txt'
    path.write_bytes(f'{GOOD} caf\xe9 0\n'.encode('latin-1'))
    with pytest.raises(UnicodeDecodeError):
        parse_dota_txt(str(path))
    with pytest.raises(UnicodeDecodeError):
        read_dota_txt(str(path))


def test_bulk_checks_equal_one_polygon_checks():
    rng = np.random.default_rng(0)
    polygons = rng.uniform(-50, 150, (4000, 8))
    # near-degenerate ones: area around MIN_POLYGON_AREA, collinear, tiny
    polygons[:1000, 4:] = polygons[:1000, :4] + rng.normal(0, 0.02, (1000, 4))
    polygons[1000:1500] = np.tile(rng.uniform(0, 100, (500, 2)), 4)
    polygons[1500:1600, 1::2] = 5.0
    polygons[1600:1700] = [0, 0, 1, 0, 1, 1, 0, 1]  # area exactly 1
    polygons[1700, 3] = np.inf
    polygons[1701] = np.nan
    coords = polygons.tolist()
    coords[1701] = [1.0, 2.0, 3.0]  # 1.5 points
    widths = np.where(np.arange(len(polygons)) % 2, 100, 120)
    for size in ((100, 80), (widths, 80), (None, None)):
        problems = polygon_problems(polygons, *size, coords)
        expected = {
            i:
            polygon_problem(
                coords[i],
                *(np.broadcast_to(v, len(polygons))[i] if v is not None else v
                  for v in size))
            for i in range(len(polygons))
        }
        assert problems == {i: p for i, p in expected.items() if p}
        assert list(problems) == sorted(problems)


def test_narrow_polygons_equals_min_area_rect_test():
    import cv2
    rng = np.random.default_rng(1)
    centre = rng.uniform(0, 800, (3000, 2))
    w, h = rng.uniform(0.5, 4, 3000), rng.uniform(1, 60, 3000)
    h[:500] = rng.uniform(1.99, 2.01, 500)  # at the threshold
    angle = rng.uniform(0, np.pi, 3000)
    u = np.stack([np.cos(angle), np.sin(angle)], 1)
    v = np.stack([-u[:, 1], u[:, 0]], 1)
    corners = [
        centre + sx * w[:, None] / 2 * u + sy * h[:, None] / 2 * v
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
    ]
    polygons = np.concatenate(corners, axis=1)
    polygons += rng.normal(0, 0.3, polygons.shape)  # not quite rectangles
    expected = np.array([
        min(cv2.minAreaRect(p.reshape(4, 2).astype(np.float32))[1]) < 2
        for p in polygons
    ])
    assert 0 < expected.sum() < len(expected)
    np.testing.assert_array_equal(narrow_polygons(polygons, 2), expected)


def test_dataset_equals_a_file_by_file_reading(tmp_path):
    """Every object ends in its own image with its own label, flag and
    skip-log entry, in file order."""
    import cv2
    from mmrotate.datasets import DOTADataset
    from mmrotate.registry import DATASETS
    (tmp_path / 'annfiles').mkdir()
    (tmp_path / 'images').mkdir()
    for name, text in FILES.items():
        (tmp_path / 'annfiles' / f'{name}.txt').write_text(
            text, encoding='utf-8', newline='')
        cv2.imwrite(
            str(tmp_path / 'images' / f'{name}.png'),
            np.zeros((80, 100, 3), np.uint8))
    names = set()
    for path in (tmp_path / 'annfiles').iterdir():
        try:
            names |= {name for _, name, _ in parse_dota_txt(str(path))}
        except ValueError:  # the unreadable file
            pass
    dataset = DATASETS.build(
        dict(
            type='SOIDOTADataset',
            data_root=f'{tmp_path}/',
            ann_file='annfiles/',
            data_prefix=dict(img_path='images/'),
            class_aliases={
                n: 'plane'
                for n in names - set(DOTADataset.METAINFO['classes'])
            },
            test_mode=True,
            pipeline=[]))
    classes = dataset.metainfo['classes']
    expected, skips = {}, []
    for path in sorted((tmp_path / 'annfiles').iterdir()):
        try:
            objects = parse_dota_txt(str(path))
        except Exception as e:  # noqa: BLE001
            skips.append((str(path), 'image', f'unreadable annotation file '
                          f'({e})'))
            continue
        instances = []
        for coords, name, difficulty in objects:
            problem = polygon_problem(coords, 100, 80)
            if problem:
                skips.append((str(path), 'object', problem))
                continue
            name = dataset.class_aliases.get(name, name)
            instances.append(
                dict(
                    bbox=coords,
                    bbox_label=classes.index(name),
                    ignore_flag=int(difficulty > dataset.diff_thr)))
        expected[path.stem] = instances
    got = {
        dataset.get_data_info(i)['img_id']:
        dataset.get_data_info(i)['instances']
        for i in range(len(dataset))
    }
    assert got == expected
    assert dataset.skip_log.entries == skips


def test_float_cache_stays_bounded_and_exact(tmp_path, monkeypatch):
    from sm3det.datasets import dota
    monkeypatch.setattr(dota._BoundedCache, 'MAX_SIZE', 3)
    monkeypatch.setattr(dota, '_floats', dota._BoundedCache(float))
    path = tmp_path / 'big.txt'
    path.write_text(FILES['big'])
    got = read_dota_txt(str(path))
    assert len(dota._floats) <= 3
    expected = objects_from_raw(parse_dota_txt(str(path)))
    np.testing.assert_array_equal(got.polygons, expected.polygons)
    assert got.coords == expected.coords
