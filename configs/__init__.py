"""Training recipes: one `get_config(arg)` file per recipe, run as `python train.py --config configs/X.py[:arg]`.

`common` holds what the recipes share (the paper bases, the argument parser, the small-CPU-run blocks).
"""
