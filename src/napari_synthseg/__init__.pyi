# Type stub of the lazily imported public API (napari_synthseg/__init__.py): editors and type
# checkers see each name's real signature in its module.
from napari_synthseg.autoseg import autosegment as autosegment
from napari_synthseg.backgrounds import BackgroundSource as BackgroundSource
from napari_synthseg.bank import ObjectBank as ObjectBank
from napari_synthseg.curation import fill_enclosed as fill_enclosed
from napari_synthseg.image_io import read_image as read_image
from napari_synthseg.image_io import write_tiff as write_tiff
from napari_synthseg.measure import measure_labels as measure_labels
from napari_synthseg.measure import measure_objects as measure_objects
from napari_synthseg.measure import write_measurements_csv as write_measurements_csv
from napari_synthseg.metrics import object_scores as object_scores
from napari_synthseg.metrics import pixel_scores as pixel_scores
from napari_synthseg.model.prediction import load_model as load_model
from napari_synthseg.model.prediction import predict as predict
from napari_synthseg.model.training import train_model as train_model
from napari_synthseg.pipeline import run_pipeline as run_pipeline
from napari_synthseg.sample_data import make_sample_scene as make_sample_scene
from napari_synthseg.scenes import synthesize_scene as synthesize_scene

__version__: str
__all__: list[str]
