"""PyTorch kernels for the mmcv 2.0.1 ops that SM3Det reaches.

Each function has the name and signature of the compiled ``mmcv._ext``
function that mmcv's Python wrappers call (outputs written into the tensors
they pass, as the C++ kernels do), so the wrappers, and mmdet and mmrotate
above them, run unchanged. They are vectorised tensor code: the same code
runs on CPU and CUDA. The set is the one that the configs, the evaluation,
the inferencer, the DOTA merge and the converters reach, found by running
them; any other kernel raises an error that names it.
"""
from . import (active_rotated_filter, box_iou_rotated, deform_conv, focal_loss,
               nms, roi_align, roi_align_rotated)

#: ``mmcv._ext`` function name -> PyTorch implementation.
KERNELS = {
    name: getattr(module, name)
    for module in (active_rotated_filter, box_iou_rotated, deform_conv,
                   focal_loss, nms, roi_align, roi_align_rotated)
    for name in module.__all__
}
