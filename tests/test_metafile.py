"""configs/metafile.yml is the one source of the paper's numbers.

Its entries name existing configs, sm3det.paper reads it, and the
tables of configs/README.md and README.md show exactly its numbers.
"""
import os.path as osp
import re

import pytest
import yaml

from sm3det.paper import (PAPER_GROUPS, PAPER_MODELS, PAPER_TABLES_BEGIN,
                          PAPER_TABLES_END, load_metafile, paper_tables)
from repository import REPO_ROOT


def read(relative_path: str) -> str:
    with open(osp.join(REPO_ROOT, relative_path)) as f:
        return f.read()


def test_every_entry_names_an_existing_config():
    entries = yaml.safe_load(read('configs/metafile.yml'))['Models']
    collections = {
        c['Name']
        for c in yaml.safe_load(read('configs/metafile.yml'))['Collections']
    }
    for entry in entries:
        assert entry['In Collection'] in collections, entry['Name']
        if 'Config' in entry:
            assert osp.isfile(osp.join(REPO_ROOT, entry['Config'])), entry
    assert yaml.safe_load(read('model-index.yml')) == {
        'Import': ['configs/metafile.yml']
    }


def test_configs_readme_tables_are_the_metafile():
    readme = read('configs/README.md')
    begin = readme.index(PAPER_TABLES_BEGIN)
    end = readme.index(PAPER_TABLES_END) + len(PAPER_TABLES_END)
    assert readme[begin:end] == paper_tables(), (
        'configs/README.md differs from configs/metafile.yml: replace its '
        'paper-tables block by the output of python '
        'tools/analysis_tools/model_complexity.py --paper-tables')


def test_readme_size_table_quotes_the_metafile():
    """README.md's "Configs and model size" rows: paper params / FLOPs."""
    rows = re.findall(
        r'^\| `configs/\S+/([\w.\-]+)\.py`[^|]*\| (\d+)M / '
        r'(\d+)G \|', read('README.md'), re.MULTILINE)
    assert len(rows) >= 5
    for name, params, flops in rows:
        paper = PAPER_MODELS[name]
        assert (float(params), float(flops)) == (paper.params, paper.flops)
    separate = re.search(
        r'^\| the three separate models together \| '
        r'(\d+)M / (\d+)G \|', read('README.md'), re.M)
    paper = PAPER_GROUPS[('gfl_convnext-t_fpn_33k_sardet',
                          'oriented-rcnn_convnext-t_fpn_33k_dota',
                          'oriented-rcnn_convnext-t_fpn_33k_dronevehicle')]
    assert tuple(map(float, separate.groups())) == (paper.params, paper.flops)


def test_bad_metafile_entries_are_named(tmp_path):
    path = tmp_path / 'metafile.yml'
    entry = dict(Name='x', Config='configs/x.py', Metadata={'Paper Row': 'X'})
    for bad, message in [
        (dict(entry, Metadata={}), "'x' has no 'Metadata: Paper Row'"),
        (dict(entry, Members=['y']), 'exactly one of `Config` and `Members`'),
        (dict(entry, Config='configs/y.py'), 'Name must be its file name'),
    ]:
        path.write_text(yaml.safe_dump(dict(Models=[bad])))
        with pytest.raises(ValueError, match=re.escape(message)):
            load_metafile(str(path))
    path.write_text(yaml.safe_dump(dict(Models=[entry, entry])))
    with pytest.raises(ValueError, match='listed twice'):
        load_metafile(str(path))
