"""OpenCV code that matched with SIFT, switched to HardNet by changing one line.

    python examples/opencv_dropin.py IMG1 IMG2      (default: the Boston pair from ../shared)
"""

import sys
from pathlib import Path

import cv2
import numpy as np

import hardmatch

shared = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "homogr"
path1 = sys.argv[1] if len(sys.argv) > 1 else str(shared / "BostonA.jpg")
path2 = sys.argv[2] if len(sys.argv) > 2 else str(shared / "BostonB.jpg")
img1 = cv2.imread(path1, cv2.IMREAD_GRAYSCALE)
img2 = cv2.imread(path2, cv2.IMREAD_GRAYSCALE)
if img1 is None or img2 is None:
    sys.exit(f"cannot read {path1} or {path2}")

# detector = cv2.SIFT_create(nfeatures=4000)          # before
detector = hardmatch.HardNet_create(nfeatures=4000)   # after: the only changed line

kp1, des1 = detector.detectAndCompute(img1, None)
kp2, des2 = detector.detectAndCompute(img2, None)
matcher = cv2.BFMatcher(cv2.NORM_L2)
good = [m for m, n in matcher.knnMatch(des1, des2, k=2) if m.distance < 0.85 * n.distance]
src = np.float32([kp1[m.queryIdx].pt for m in good])
dst = np.float32([kp2[m.trainIdx].pt for m in good])
H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 3.0)
print(f"{len(kp1)} / {len(kp2)} keypoints, {len(good)} ratio-test matches, "
      f"{int(mask.sum()) if mask is not None else 0} homography inliers")
print(H)
