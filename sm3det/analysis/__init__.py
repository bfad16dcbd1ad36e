"""Analyses behind ``tools/analysis_tools``: parameters and FLOPs as the
paper counts them (``complexity``) and beside its numbers
(``complexity_table``), the results table of test runs (``results_table``),
the DSO multipliers of a training log (``dso_scalars``). The paper's numbers
themselves are :mod:`sm3det.paper`."""
from .complexity import (count_config, count_params_and_flops,
                         fix_proposal_count, measure_config)
from .complexity_table import complexity_rows, format_rows
from .dso_scalars import find_scalars_file, load_dso_scalars
from .results_table import load_work_dir, pooled_group, result_rows

__all__ = [
    'count_config', 'count_params_and_flops', 'fix_proposal_count',
    'measure_config', 'complexity_rows', 'format_rows', 'find_scalars_file',
    'load_dso_scalars', 'load_work_dir', 'pooled_group', 'result_rows'
]
