"""The ONNX runtime of SM3Det: one exported task, run with numpy,
onnxruntime and OpenCV only (no torch, mmcv, mmengine, mmdet or mmrotate).

An export is ``<stem>.onnx`` (the graph up to the final NMS) and
``<stem>.json`` (its :class:`DeployMeta`: classes, box type, resize and
normalisation, score threshold and NMS). :class:`OnnxDetector` reads
images (8-bit, or 16-bit / float with the task's scaling), preprocesses
them as the test pipeline does, runs the graph and finishes as the heads
do; ``predict_by_patches`` is the sliding-window mode for large scenes::

    from sm3det.deploy import OnnxDetector
    detector = OnnxDetector('work_dirs/export/dota.onnx')
    found = detector('scene.png')  # Detections(boxes, scores, labels)
    names = [detector.classes[i] for i in found.labels]
    found = detector.predict_by_patches('scene.npy')  # any size
"""
from .metadata import DeployMeta, read_meta, write_meta
from .postprocess import batched_nms, merge_patches, rescale_boxes
from .runtime import Detections, OnnxDetector

__all__ = [
    'OnnxDetector', 'Detections', 'DeployMeta', 'read_meta', 'write_meta',
    'batched_nms', 'rescale_boxes', 'merge_patches'
]
