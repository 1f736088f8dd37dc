"""interior_seeds: which interiors of a blob seed an object of their own."""

import numpy as np
from scipy import ndimage as ndi

from napari_synthseg.interior_seeds import seeding_interiors


def _blob_with_two_small_interiors():
    """One blob: a large interior, a small one walled off by a sure outline, a small one behind a faint crease."""
    foreground = np.zeros((60, 100), bool)
    foreground[5:55, 5:95] = True
    boundary = np.zeros((60, 100), np.float32)
    boundary[~ndi.binary_erosion(foreground)] = 1.0
    boundary[9:21, 64:76] = 0.9  # a sure outline round rows 10-19, columns 65-74
    boundary[39:51, 64:76] = 0.4  # a faint crease round rows 40-49, columns 65-74
    boundary[5:55, 55:60] = 0.9  # a line between the large interior and both small ones, open in the middle
    boundary[27:33, 55:60] = 0.0
    boundary[10:20, 65:75] = boundary[40:50, 65:75] = 0.0
    interiors, _ = ndi.label(foreground & (boundary < 0.1))
    return interiors, foreground, boundary


def test_a_small_interior_walled_off_all_round_seeds_and_one_behind_a_faint_crease_does_not():
    interiors, foreground, boundary = _blob_with_two_small_interiors()
    assert interiors.max() == 3
    large, outlined, creased = interiors[30, 30], interiors[15, 70], interiors[45, 70]
    seeds = seeding_interiors(interiors, foreground, boundary, min_prominence=None)
    assert set(np.unique(seeds)) == {0, large, outlined}
    # the share rule alone drops both small ones; no share rule keeps all three
    alone = seeding_interiors(interiors, foreground, boundary, min_prominence=None, min_wall=None)
    assert set(np.unique(alone)) == {0, large}
    np.testing.assert_array_equal(seeding_interiors(interiors, foreground, boundary, min_share=0.0), interiors)
    assert creased > 0
