"""ONNX export of one task of a trained detector (needs torch and the
OpenMMLab stack; the runtime that runs the export, :mod:`sm3det.deploy`,
does not)."""
from .exporter import OPSET, ExportCheckError, OnnxExport, export_onnx
from .parity import Agreement, compare_detections
from .task_graph import TaskGraph

__all__ = [
    'OPSET', 'ExportCheckError', 'OnnxExport', 'export_onnx', 'Agreement',
    'compare_detections', 'TaskGraph'
]
