"""``sm3det.deploy`` runs on a machine with numpy, onnxruntime and OpenCV
only: in an interpreter where torch and the OpenMMLab packages cannot be
found, it imports, and an exported model gives the detections it gives
here."""
import subprocess
import sys

import cv2
import numpy as np

from sm3det.deploy import OnnxDetector
from repository import REPO_ROOT

#: Packages a deployment machine does not have.
ABSENT = ('torch', 'mmcv', 'mmengine', 'mmdet', 'mmrotate')

#: Hides ABSENT (``find_spec`` gives None, imports fail) before anything
#: is imported, then runs the detector: argv onnx, image, output .npz.
CHILD = f'''
import importlib.abc
import importlib.util
import sys

ABSENT = {ABSENT!r}


class WithoutStack(importlib.abc.MetaPathFinder):
    """The finders it replaces, blind to the ABSENT packages."""

    def __init__(self, finders):
        self.finders = finders

    def find_spec(self, name, path=None, target=None):
        if name.partition('.')[0] in ABSENT:
            return None
        for finder in self.finders:
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                return spec
        return None


sys.meta_path[:] = [WithoutStack(list(sys.meta_path))]
for name in ABSENT:
    assert importlib.util.find_spec(name) is None, name
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise AssertionError(name + ' was imported')

import numpy as np
from sm3det.deploy import OnnxDetector

onnx_path, image_path, out_path = sys.argv[1:]
detector = OnnxDetector(onnx_path)
whole, patches = detector(image_path), detector.predict_by_patches(image_path)
loaded = sorted(n for n in sys.modules if n.partition('.')[0] in ABSENT)
assert not loaded, loaded
np.savez(out_path, *whole, *patches)
'''


def test_runtime_needs_neither_torch_nor_openmmlab(tiny_detector, tmp_path):
    onnx_path = tiny_detector('rbox')
    image = np.zeros((512, 640, 3), np.uint8)
    image[80:160, 160:240] = (0, 0, 255)
    image[300:420, 380:500] = (255, 0, 0)
    image_path = str(tmp_path / 'scene.png')
    cv2.imwrite(image_path, image)
    out_path = str(tmp_path / 'found.npz')

    child = subprocess.run(
        [sys.executable, '-c', CHILD, onnx_path, image_path, out_path],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True)
    assert child.returncode == 0, child.stderr[-3000:]

    detector = OnnxDetector(onnx_path)
    expected = [
        *detector(image_path), *detector.predict_by_patches(image_path)
    ]
    with np.load(out_path) as found:
        assert len(found.files) == len(expected)
        for name, array in zip(found.files, expected):
            assert found[name].dtype == array.dtype
            np.testing.assert_array_equal(found[name], array)
    assert len(expected[1]) > 0 and len(expected[4]) > 0
