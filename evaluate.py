"""Paper-style evaluation of an inpainting method: L1 (%), PSNR, SSIM (, FID) per hole-ratio bucket.

Examples:
  python evaluate.py --method telea --images ../shared/data/places \
      --masks ../shared/data/masks_nvidia_test300 --size 256 --out results/telea --masks_per_image 15
  python evaluate.py --method pconv --workdir workdirs/quickstart --images builtin:heldout \
      --masks irregular --out results/pconv --fid-weights pt_inception-2015-12-05.npz
  python evaluate.py --method pconv --images builtin:heldout --masks irregular --out results/shipped
      (no --workdir: the shipped model of that kind, see python -m jaxinpaint.pretrained list)

Writes OUT/results.md (the table), OUT/results.json (rows and per-image scores), OUT/worst.png and
OUT/best.png (input | output | ground truth) and prints the table. Scores are always computed on the
composite (known pixels are the ground truth). See `jaxinpaint.evaluation`.

  python evaluate.py --compare results/telea,results/ns,results/patchmatch

prints the methods side by side (rows metric x method, columns hole-ratio buckets, as the PConv paper).

An image that cannot be decoded stops the evaluation with one error line naming it (an evaluation scores
exactly the set it is given); --skip_unreadable scores the others instead, with one warning line per
skipped file and their count and names in results.json.
"""

import sys
import warnings

from absl import app
from absl import flags
from absl import logging

from jaxinpaint import cli
from jaxinpaint import data
from jaxinpaint import evaluation

_METHOD = flags.DEFINE_enum("method", None, list(evaluation.methods()),
                            "Inpainting method: a trained model (pconv, edgeconnect) or a classical baseline "
                            "(telea, ns: OpenCV; patchmatch: needs pip install pypatchmatch).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Training workdir of a trained model (latest checkpoint). Without "
                                "--workdir/--checkpoint a trained method uses its shipped model.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "A specific checkpoint of a trained model, or a shipped model's "
                                  "name (python -m jaxinpaint.pretrained list).")
_IMAGES = flags.DEFINE_string("images", None, "Ground-truth images: folder, .flist, tfds:NAME[:SPLIT] or builtin[:heldout].")
_MASKS = flags.DEFINE_string("masks", None, "Masks: a mask folder (white = hole, e.g. the NVIDIA test masks) or a "
                             "generator spec (irregular, irregular:0.1-0.2, irregular@0.7 = shapes 0.7x their "
                             "default size, block, half, mix:...).")
_SIZE = flags.DEFINE_integer("size", 256, "Images and masks are evaluated at size x size.")
_OUT = flags.DEFINE_string("out", None, "Output folder for results.md, results.json and the PNG grids.")
_FID_WEIGHTS = flags.DEFINE_string("fid_weights", None, "Inception-v3 weights file (python -m jaxinpaint.weights); "
                                   "adds FID columns. Also accepted as --fid-weights.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the image/mask pairing and of generated masks.")
_LIMIT = flags.DEFINE_integer("limit", None, "Evaluate at most this many pairs.")
_MASKS_PER_IMAGE = flags.DEFINE_integer(
    "masks_per_image", 1, "Pair every image with this many different masks (20 photos x 15 = all 300 NVIDIA "
    "test masks, 50 per bucket).")
_SKIP_UNREADABLE = flags.DEFINE_bool("skip_unreadable", False, "Skip undecodable images (with a warning) "
                                     "instead of stopping with an error naming the file.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Images per predictor call.")
_NUM_CASES = flags.DEFINE_integer("num_cases", 4, "Rows in the worst.png / best.png grids.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_CANNY_EDGES = flags.DEFINE_bool("canny_edges", False,
                                 "For a method without an edge model (telea, ns, patchmatch, pconv), also report "
                                 "edge precision/recall/F1 inside the hole of the Canny edges of its result: the "
                                 "baseline EdgeConnect's edge model is compared with.")

_COMPARE = flags.DEFINE_list("compare", None, "Instead of evaluating: print one paper-style table (rows metric x "
                             "method, columns buckets) from earlier --out folders, e.g. "
                             "--compare results/telea,results/ns,results/patchmatch.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if _WORKDIR.value and _CHECKPOINT.value:
    raise app.UsageError("pass either --workdir or --checkpoint, not both")
  logging.set_verbosity(logging.ERROR)  # keep JAX backend probing and orbax read-only notices out of the table
  if _COMPARE.value:
    try:
      print(evaluation.comparison_table([evaluation.load_results(d) for d in _COMPARE.value]))
    except (ValueError, FileNotFoundError) as e:
      print(f"evaluate.py: error: {e}", file=sys.stderr)
      sys.exit(2)
    return
  missing = [f"--{f.name}" for f in (_METHOD, _IMAGES, _MASKS, _OUT) if not f.value]
  if missing:
    raise app.UsageError(f"flags {', '.join(missing)} are required (or --compare DIR,DIR,...)")
  warnings.formatwarning = lambda message, category, *args, **kwargs: f"evaluate.py: warning: {message}\n"
  warnings.simplefilter("always", data.CorruptImageWarning)  # the source already warns once per file
  try:
    results = evaluation.run(
        method=_METHOD.value, images=_IMAGES.value, masks=_MASKS.value, out=_OUT.value, size=_SIZE.value,
        checkpoint=_WORKDIR.value or _CHECKPOINT.value, fid_weights=_FID_WEIGHTS.value, seed=_SEED.value,
        limit=_LIMIT.value, batch_size=_BATCH_SIZE.value, num_cases=_NUM_CASES.value, progress=_PROGRESS.value,
        masks_per_image=_MASKS_PER_IMAGE.value, skip_unreadable=_SKIP_UNREADABLE.value,
        canny_edges=_CANNY_EDGES.value)
  except (ValueError, FileNotFoundError, ImportError) as e:
    # Bad input is reported in one line naming the culprit, not as a stack trace.
    print(f"evaluate.py: error: {e}", file=sys.stderr)
    sys.exit(2)
  print(results.to_markdown())
  if results.skipped_unreadable:
    print(f"skipped {len(results.skipped_unreadable)} unreadable image file(s) (--skip_unreadable; listed in "
          "results.json)")
  print(f"wrote {_OUT.value}/results.md, results.json, worst.png, best.png")


if __name__ == "__main__":
  # absl flags use underscores; accept the documented --fid-weights spelling too.
  sys.argv = [a.replace("--fid-weights", "--fid_weights", 1) if a.startswith("--fid-weights") else a
              for a in sys.argv]
  cli.exit_with_help_if_asked(sys.argv, __doc__)
  app.run(main)
