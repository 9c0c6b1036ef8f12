"""The Python API in ten lines: match two images, print the homography, draw the inliers.

    python examples/match_pair.py IMG1 IMG2 [out.png]
"""

import sys
from pathlib import Path

import cv2

import hardmatch
from hardmatch.viz import draw_matches

shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homogr"
img1 = sys.argv[1] if len(sys.argv) > 1 else shared / "BostonA.jpg"
img2 = sys.argv[2] if len(sys.argv) > 2 else shared / "BostonB.jpg"
result = hardmatch.match_pair(img1, img2, geometry="homography")
print(f"inliers {result.num_inliers} of {result.num_matches} tentative; H =\n{result.H}")
if len(sys.argv) > 3:
    gray1, gray2 = hardmatch.core.io.load_gray(img1), hardmatch.core.io.load_gray(img2)
    cv2.imwrite(sys.argv[3], draw_matches(gray1, gray2, *result.inlier_points))
