"""How alike two independent stretches of a synthetic texture are: the reference for the
``seeds`` column of ``quality.py --pair``.

    python benchmarks/independent_pairs.py [rain stream ...] [--pairs 10] [--seconds 10]

Two outputs of different seeds should be no more alike than two stretches of the texture
itself. A recording's two halves are the only stretches it has, and they are half as long
as a 10 s output; since the instrument's copying measure is a maximum over every shift with
at least a second of overlap, longer pieces score higher by chance alone. The generators of
``make_textures.py`` make as many independent stretches of any length as asked, which gives
the reference at the outputs' own length.
"""

from __future__ import annotations

import argparse

import numpy as np

from make_textures import TEXTURES
from quality import DEFAULT_TEXSTATS, load_texstats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", default=["rain"], choices=sorted(TEXTURES), metavar="NAME")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--texstats", default=DEFAULT_TEXSTATS)
    args = parser.parse_args(argv)
    texstats = load_texstats(args.texstats)
    for name in args.names:
        make = TEXTURES[name]
        scores = []
        for k in range(args.pairs):
            # Seeds away from make_textures.py's own, so no stretch is the shipped example.
            a = make(args.seconds, np.random.default_rng(1000 + 2 * k))
            b = make(args.seconds, np.random.default_rng(1001 + 2 * k))
            scores.append(texstats.max_xcorr(texstats.logmel(a), texstats.logmel(b)))
        print(f"{name}: {args.pairs} pairs of independent {args.seconds:g} s stretches alike "
              f"{min(scores):.3f}-{max(scores):.3f}, mean {np.mean(scores):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
