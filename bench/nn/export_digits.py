"""Exports scikit-learn's 8x8 handwritten digits to data/images/digits_8x8.csv.

The data is the test set of UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak,
1998; CC BY 4.0), as shipped inside scikit-learn (no download). Each image is 8x8 pixels with
values 0..16; the columns pixel_0..pixel_63 are the pixels in row order, then the label.

Run through bench/nn/export_digits.sh, which makes the virtual environment under target/.
"""

import csv
import pathlib
import sys

from sklearn.datasets import load_digits


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "data/images/digits_8x8.csv")
    digits = load_digits()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"pixel_{i}" for i in range(64)] + ["label"])
        for image, label in zip(digits.data, digits.target):
            w.writerow([int(v) for v in image] + [int(label)])
    print(f"wrote {len(digits.target)} images to {out}")


if __name__ == "__main__":
    main()
