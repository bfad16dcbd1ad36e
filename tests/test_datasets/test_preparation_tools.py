"""Preparation and inspection: DOTA splitting, DroneVehicle conversion, the
check and browse tools."""
import os

import cv2
import numpy as np
from mmrotate.registry import DATASETS

from sm3det.datasets.preparation import dota_split
from sm3det.datasets.preparation.dronevehicle_to_dota import \
    convert_dronevehicle
from repository import run_script


def read_txt(path):
    return [line.split() for line in open(path).read().splitlines()]


def test_dota_split_windows_objects_and_truncation(tmp_path):
    assert dota_split.window_starts(1000, 800, 400) == [0, 200]
    assert dota_split.window_starts(600, 800, 400) == [0]
    assert dota_split.window_starts(2000, 800, 400) == [0, 400, 800, 1200]
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels').mkdir()
    cv2.imwrite(
        str(tmp_path / 'images' / 'P0001.png'),
        np.zeros((600, 1000, 3), np.uint8))
    (tmp_path / 'labels' / 'P0001.txt').write_text(
        'imagesource:GoogleEarth\ngsd:0.1\n'
        '100 100 150 100 150 150 100 150 plane 0\n'  # only in the first window
        '500 300 560 300 560 340 500 340 ship 1\n'  # in both
        '180 400 260 400 260 420 180 420 harbor 0\n'
    )  # 75% inside the second: cut
    images, patches, objects, problems = dota_split.split_dota(
        str(tmp_path / 'images'), str(tmp_path / 'labels'),
        str(tmp_path / 'out'))
    assert (images, patches, objects, problems) == (1, 2, 5, [])
    first = read_txt(tmp_path / 'out/annfiles/P0001__800__0___0.txt')
    second = read_txt(tmp_path / 'out/annfiles/P0001__800__200___0.txt')
    assert [o[8:] for o in first] == [['plane', '0'], ['ship', '1'],
                                      ['harbor', '0']]
    assert [o[8:] for o in second] == [['ship', '1'], ['harbor', '2']]
    assert [float(v)
            for v in second[0][:2]] == [300.0, 300.0]  # shifted by the window
    patch = cv2.imread(str(tmp_path / 'out/images/P0001__800__200___0.png'))
    assert patch.shape == (800, 800, 3) and tuple(
        patch[700, 10]) == dota_split.PAD_VALUE


def test_dronevehicle_conversion_crops_the_border(tmp_path):
    (tmp_path / 'imgr').mkdir()
    (tmp_path / 'labelr').mkdir()
    img = np.full((712, 840, 3), 255, np.uint8)
    img[100:612, 100:740] = 60
    cv2.imwrite(str(tmp_path / 'imgr' / '00001.jpg'), img)

    def obj(name, x1, y1, x2, y2):
        return (f'<object><name>{name}</name><polygon>'
                f'<x1>{x1}</x1><y1>{y1}</y1><x2>{x2}</x2><y2>{y1}</y2>'
                f'<x3>{x2}</x3><y3>{y2}</y3><x4>{x1}</x4><y4>{y2}</y4>'
                '</polygon></object>')

    (tmp_path / 'labelr' /
     '00001.xml').write_text('<annotation>' + obj('car', 200, 200, 240, 220) +
                             obj('feright car', 80, 300, 160, 330) +
                             obj('truck', 10, 10, 60, 40) + '</annotation>')
    images, objects, problems, unknown = convert_dronevehicle(
        str(tmp_path / 'imgr'), str(tmp_path / 'labelr'),
        str(tmp_path / 'train'))
    assert (images, objects, unknown) == (1, 2, [])
    assert len(problems) == 1 and 'polygon of zero area' in problems[
        0]  # the truck in the border
    assert cv2.imread(str(tmp_path / 'train/images/00001.jpg')).shape == (512,
                                                                          640,
                                                                          3)
    lines = read_txt(tmp_path / 'train/labels/00001.txt')
    assert lines[0] == [
        '100.0', '100.0', '140.0', '100.0', '140.0', '120.0', '100.0', '120.0',
        'car', '0'
    ]
    assert lines[1][:8:2] == ['0.0', '60.0', '60.0', '0.0'
                              ] and lines[1][8] == 'freight_car'

    dataset = DATASETS.build(
        dict(
            type='DroneVehicleDataset',
            data_root=str(tmp_path / 'train'),
            ann_file='labels/',
            data_prefix=dict(img_path='images/'),
            test_mode=True,
            pipeline=[]))
    assert [i['bbox_label']
            for i in dataset.get_data_info(0)['instances']] == [0, 4]


def test_check_and_browse_tools_on_the_mini_config(mini_config, tmp_path):
    config = tmp_path / 'mini.py'
    mini_config.dump(str(config))
    report = run_script('tools/misc/check_dataset.py', config, '--splits',
                        'val').stdout
    assert 'no problems found' in report
    assert '  sar: 4 images' in report and 'freight car:' in report

    run_script('tools/misc/browse_dataset.py', config, '--output-dir',
               tmp_path / 'browse', '--max', '2')
    assert sorted(os.listdir(tmp_path / 'browse')) == [
        'dota_0000.png', 'dota_0001.png', 'dronevehicle_0000.png',
        'dronevehicle_0001.png', 'sar_0000.png', 'sar_0001.png'
    ]
