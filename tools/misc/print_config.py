"""Print a config as its model is built: every ``StockDetector`` (a stock
mmdet / mmrotate config plus changes) resolved into the detector config it
builds, so the whole head is readable in one place.

Usage:
    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]
"""
import argparse

from mmengine.config import Config, DictAction

from sm3det.models.detectors import resolve_stock_detectors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.model = resolve_stock_detectors(cfg.model)
    print(cfg.pretty_text)


if __name__ == '__main__':
    main()
