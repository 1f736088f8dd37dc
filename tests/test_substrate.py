import numpy as np
import pytest

from napari_synthseg.instances import probabilities_to_instances
from napari_synthseg.model.params import DEFAULT_MIN_CONFIDENCE
from napari_synthseg.substrate import on_support, outline_steps, replace_support, standing_out, support_ids
from test_instances import _targets


def _film_scene(seed: int = 0):
    """A 200×240 micrograph: a film over the left part, told apart from the bare right part only by its
    coarse texture (same mean gray), with a dark particle (radius 18) lying on it.

    Returns the gray image and labels: 1 the film (without the particle), 2 the particle.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:200, :240]
    film = xx < 120 + 20 * np.sin(yy / 25.0)
    coarse = np.kron(rng.normal(0, 0.08, (50, 60)), np.ones((4, 4)))  # grains 4 px wide
    gray = 0.6 + rng.normal(0, 0.02, (200, 240)) + np.where(film, coarse, 0.0)
    particle = np.hypot(yy - 100, xx - 60) < 18
    gray[particle] = 0.2 + rng.normal(0, 0.02, int(particle.sum()))
    labels = np.zeros((200, 240), np.uint32)
    labels[film] = 1
    labels[particle] = 2
    return gray.astype(np.float32), labels


def test_outline_steps_measure_the_gray_step_of_large_objects_only():
    gray, labels = _film_scene()
    steps = outline_steps(labels, gray)
    assert set(steps) == {1}  # the particle covers under three tenths of the image: not judged
    assert steps[1] < 0.05  # the film's mean gray is the bare part's
    yy, xx = np.mgrid[:200, :240]
    disk = (np.hypot(yy - 100, xx - 120) < 70).astype(np.uint32)  # a particle, 0.3 of the image
    image = np.where(disk > 0, 0.8, 0.3) + np.random.default_rng(1).normal(0, 0.02, disk.shape)
    step = outline_steps(disk, image)[1]
    assert 0.8 < step <= 1.0  # its step is the image's whole range
    assert outline_steps(np.ones((50, 50), np.uint32), image[:50, :50]) == {}  # fills the frame: no outline
    assert outline_steps(disk, np.full(disk.shape, 0.5)) == {}  # a flat image says nothing


def test_the_film_is_the_support_and_particles_are_not():
    gray, labels = _film_scene()
    assert support_ids(labels, gray) == [1]  # the film, not the particle on it
    yy, xx = np.mgrid[:200, :240]
    big = (np.hypot(yy - 100, xx - 120) < 70).astype(np.uint32)  # a large particle with an edge
    image = np.where(big > 0, 0.8, 0.3).astype(np.float32)
    image += np.random.default_rng(2).normal(0, 0.02, image.shape).astype(np.float32)
    assert support_ids(big, image) == []
    whole = np.ones((200, 240), np.uint32)  # inside one particle, or a model calling everything object: shown
    assert support_ids(whole, gray) == []


def test_a_piece_surrounded_by_its_neighbour_is_not_judged_against_it():
    """A large particle cut in two (a core and the ring around it, as the watershed can cut texture): the core's
    surroundings are the ring, not the support; it is kept, and so is the ring, which has an edge."""
    yy, xx = np.mgrid[:240, :240]
    r = np.hypot(yy - 120, xx - 120)
    labels = np.where(r < 70, 1, np.where(r < 100, 2, 0)).astype(np.uint32)
    image = np.where(labels > 0, 0.8, 0.3) + np.random.default_rng(3).normal(0, 0.02, labels.shape)
    assert set(outline_steps(labels, image, min_share=0.2)) == {2}
    assert support_ids(labels, image, min_share=0.2) == []


def test_a_support_beside_a_support_is_found_once_that_one_is_left_out():
    """Two films of different texture side by side, bare ground beyond the second only: the first has no ground
    beside it to show its lack of a step until the second, the support, is left out; a particle on it is kept."""
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:200, :300]
    labels = np.where(xx < 100, 1, np.where(xx < 200, 2, 0)).astype(np.uint32)
    gray = 0.6 + rng.normal(0, 0.02, labels.shape)
    gray += np.where(labels == 1, np.kron(rng.normal(0, 0.08, (50, 75)), np.ones((4, 4))), 0.0)
    gray += np.where(labels == 2, np.kron(rng.normal(0, 0.08, (25, 38)), np.ones((8, 8)))[:200, :300], 0.0)
    particle = np.hypot(yy - 100, xx - 50) < 15
    gray[particle] = 0.2
    labels[particle] = 3
    assert support_ids(labels, gray) == [2]  # the first film has no outline against the ground: not judged
    prob = _targets(labels)
    out, n_supports, n_found = replace_support(labels, prob, gray, lambda p: probabilities_to_instances(p))
    assert n_supports == 2  # the second film, then the first
    assert out.max() == 1 and np.array_equal(out > 0, particle)


def test_probabilities_to_instances_leaves_the_film_out_only_with_the_image():
    gray, labels = _film_scene()
    prob = _targets(labels)
    with_image = probabilities_to_instances(prob, drawn_on=gray)
    assert with_image.max() == 1 and np.array_equal(with_image > 0, labels == 2)
    kept = probabilities_to_instances(prob, drawn_on=gray, substrate_step=None)
    assert kept.max() == 2  # the film is an object when asked to keep it ...
    assert probabilities_to_instances(prob).max() == 2  # ... and without the image to judge it by


def _particles_on_film(seed: int = 0):
    """``_film_scene`` with three more dark particles on the film and one on the bare part, and the map of a
    network that called the film and the particles on it one object, surer of the particles (0.97) than of
    the film (0.75, with the film's coarse texture in it).

    Returns the gray image, the probabilities and the true particles' labels.
    """
    gray, labels = _film_scene(seed)
    rng = np.random.default_rng(seed + 10)
    yy, xx = np.mgrid[:200, :240]
    particles = (labels == 2).astype(np.uint32)
    for k, (y, x) in enumerate([(40, 40), (160, 50), (60, 95), (150, 190)], start=2):
        disk = np.hypot(yy - y, xx - x) < 10
        gray[disk] = 0.2 + rng.normal(0, 0.02, int(disk.sum()))
        particles[disk] = k
    network_object = np.where((labels == 1) | ((particles > 0) & (labels != 0)), 1, 0)
    network_object[particles == 5] = 2  # the particle on the bare part is seen on its own
    prob = _targets(network_object.astype(np.uint32))
    texture = np.kron(rng.normal(0, 0.03, (50, 60)), np.ones((4, 4)))
    prob[..., 0] = np.where(network_object == 1, 0.85 + texture, prob[..., 0])
    prob[..., 0] = np.where((particles > 0) & (particles != 5), 0.99, prob[..., 0])
    return gray, np.clip(prob, 0, 1).astype(np.float32), particles


def _best_iou(labels, mask):
    ids = np.unique(labels[mask])
    return max(((labels == i) & mask).sum() / ((labels == i) | mask).sum() for i in ids if i)


def test_the_particles_lying_on_a_film_are_found_when_it_is_left_out():
    gray, prob, particles = _particles_on_film()
    labels = probabilities_to_instances(prob, drawn_on=gray, min_confidence=DEFAULT_MIN_CONFIDENCE)
    assert labels.max() == 5  # the four on the film and the one on the bare part; not the film, nor its texture
    for k in range(1, 6):
        assert _best_iou(labels, particles == k) > 0.8
    merged = probabilities_to_instances(prob, drawn_on=gray, substrate_step=None, min_confidence=DEFAULT_MIN_CONFIDENCE)
    assert merged.max() == 2  # kept as the network called it: the film holding four particles, and the fifth


def test_on_support_sets_the_level_by_the_support_itself():
    prob = np.zeros((10, 10, 3), np.float32)
    prob[..., 0] = np.linspace(0.6, 0.9, 100).reshape(10, 10)
    prob[..., 1] = 0.3
    support = np.zeros((10, 10), bool)
    support[:, :5] = True
    seen = on_support(prob, support)
    level = np.percentile(prob[..., 0][support], 90)
    assert np.allclose(seen[..., 0][prob[..., 0] == prob[..., 0][support].max()], 0.5 + 0.5 * (
        prob[..., 0][support].max() - level) / (1 - level))
    assert (seen[..., 0][support] > 0.5).sum() == 5  # a tenth of the support is above its own level
    assert np.all(seen[..., 0][~support] == 0)  # off the support nothing is looked for
    assert np.all(seen[..., 1] == 0.3) and np.all(prob[..., 0] >= 0.6)  # other channels kept; input unchanged


def test_only_objects_with_an_edge_against_the_support_stand_out():
    gray, labels = _film_scene()
    film = labels > 0
    found = np.zeros(labels.shape, np.uint32)
    found[labels == 2] = 1  # the dark particle: a step against the film
    found[20:34, 20:34] = 2  # a patch of the film's own texture: no step
    found[180:200, 100:140] = 3  # half of it off the film
    kept = standing_out(found, film, gray)
    assert kept.max() == 1 and np.array_equal(kept > 0, labels == 2)
    assert standing_out(np.zeros_like(found), film, gray).max() == 0


def test_replace_support_keeps_labels_without_a_support_as_they_are():
    yy, xx = np.mgrid[:200, :240]
    big = (np.hypot(yy - 100, xx - 120) < 70).astype(np.uint32)  # a large particle with an edge
    image = np.where(big > 0, 0.8, 0.3).astype(np.float32)
    same, n_supports, n_found = replace_support(big, _targets(big), image, lambda p: 1 / 0)  # never segments
    assert same is big and (n_supports, n_found) == (0, 0)


def test_bad_arguments_are_refused_in_one_line():
    gray, labels = _film_scene()
    with pytest.raises(ValueError, match="same shape"):
        support_ids(labels, gray[:100])
    with pytest.raises(ValueError, match="min_share"):
        support_ids(labels, gray, min_share=0.0)
    with pytest.raises(ValueError, match="max_step"):
        support_ids(labels, gray, max_step=0.0)
    with pytest.raises(ValueError, match="on_support: the support mask is empty"):
        on_support(_targets(labels), np.zeros(labels.shape, bool))
    with pytest.raises(ValueError, match="standing_out: the support mask is"):
        standing_out(labels, labels[:100] > 0, gray)
    with pytest.raises(ValueError, match="substrate_step"):
        probabilities_to_instances(_targets(labels), drawn_on=gray, substrate_step=-1.0)
