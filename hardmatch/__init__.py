"""hardmatch: local-feature matching with the HardNet learned descriptor.

Quick use::

    import hardmatch
    result = hardmatch.match_pair("a.jpg", "b.jpg", geometry="homography")
    print(result.num_inliers, result.H)

    sift_like = hardmatch.HardNet_create(nfeatures=8000)  # instead of cv2.SIFT_create()
    keypoints, descriptors = sift_like.detectAndCompute(gray, None)
"""

from .core import io  # noqa: F401 (hardmatch.core.io: image loading, public)
from .core.errors import HardmatchError, ImageError, NoModelError, WeightsError
from .core.records import Features, PairResult
from .twoview.api import build_matcher, match_pair
from .twoview.config import PRESETS, PipelineConfig
from .twoview.feature2d import HardNet_create, HardNetFeature2D
from .twoview.pipeline import Pipeline

__version__ = "0.1.0"

__all__ = ["match_pair", "build_matcher", "Pipeline", "PairResult", "Features", "PipelineConfig", "PRESETS", "HardNet_create",
           "HardNetFeature2D", "HardmatchError", "ImageError", "WeightsError", "NoModelError", "__version__"]
