"""Shared pieces of the dock widgets: layer choosers, plane helpers, notifications.

Widgets only translate layers <-> numpy arrays and call the core; nothing here
imports TensorFlow or Keras (it segfaults beside napari's OpenGL canvas).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QSettings, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QAction,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    import napari


def notify_error(message: str) -> None:
    """Show an error as a napari notification (never a traceback in the viewer)."""
    from napari.utils.notifications import show_error

    show_error(message)


def notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


def notify_warning(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)


def quiet_worker(function: Callable, *args, **kwargs):
    """A napari thread worker whose exceptions reach only the slots connected to ``errored``.

    napari's ``create_worker`` otherwise re-raises a worker's exception in the event loop,
    which shows a traceback notification next to the dock's own one-line message.
    """
    from napari.qt.threading import create_worker

    return create_worker(function, *args, _ignore_errors=True, **kwargs)


def describe_error(exc: BaseException) -> str:
    """One line naming the error type and its message."""
    text = str(exc).strip() or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {text}"


def _safe(callback: Callable) -> Callable:
    """Wrap a Qt slot so an exception becomes a notification, not a traceback."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as exc:  # a slot must never raise into Qt's event loop
            notify_error(describe_error(exc))
            return None

    wrapper.__name__ = getattr(callback, "__name__", "slot")
    return wrapper


safe_slot = _safe


def connect_click(button, callback: Callable[[], object]) -> None:
    """Run ``callback()`` on a button click (Qt's ``checked`` argument dropped), errors notified."""
    slot = _safe(callback)
    button.clicked.connect(lambda *_: slot())


def _connect_layer_list(viewer: napari.viewer.Viewer, callback: Callable) -> None:
    events = viewer.layers.events
    for name in ("inserted", "removed", "moved", "reordered"):
        emitter = getattr(events, name, None)
        if emitter is not None:
            emitter.connect(callback)


class _LayerTracking:
    """Mix-in: call ``self._refresh`` when layers are added, removed, moved or renamed."""

    def _track_layers(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._named_layers: set[int] = set()
        _connect_layer_list(viewer, self._on_layers_changed)

    def _on_layers_changed(self, event=None) -> None:
        try:
            for layer in self._viewer.layers:
                if id(layer) not in self._named_layers:
                    layer.events.name.connect(self._on_layers_changed)
                    self._named_layers.add(id(layer))
            self._refresh()
        except RuntimeError:  # the Qt side was deleted (widget closed)
            return


class LayerChooser(QComboBox, _LayerTracking):
    """A combo box of the viewer's layers of one type, kept current as layers change.

    The chosen layer is tracked by identity, so renaming it keeps it chosen; with no choice the
    newest layer is chosen, except those ``skip`` (layer -> bool) leaves out. ``prefer``
    (layers -> the layer to choose, or None for none) decides the choice until the user
    makes one: it is asked again whenever layers change, so the choice follows new layers.
    """

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent=None,
                 prefer: Callable[[list], object] | None = None, skip: Callable[[object], bool] | None = None):
        super().__init__(parent)
        self._layer_type = layer_type
        self._layers: list = []
        self._prefer = prefer
        self._skip = skip  # layers never chosen by default (the user may still choose them)
        self._user_choice = None  # a weak reference to the layer the user chose, if any
        self.activated.connect(self._remember_user_choice)
        self._track_layers(viewer)
        self._on_layers_changed()

    def _remember_user_choice(self, *_) -> None:
        layer = self.layer()
        self._user_choice = weakref.ref(layer) if layer is not None else None

    def _refresh(self) -> None:
        current = self.layer()
        layers = [lay for lay in self._viewer.layers if isinstance(lay, self._layer_type)]
        chosen = self._user_choice() if self._user_choice is not None else None
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        for layer in layers:
            self.addItem(layer.name)
        if self._prefer is not None and chosen not in layers:
            preferred = self._prefer(layers)
            self.setCurrentIndex(layers.index(preferred) if preferred in layers else -1)
        elif current is not None and current in layers:
            self.setCurrentIndex(layers.index(current))
        elif layers:
            usable = [i for i, layer in enumerate(layers) if self._skip is None or not self._skip(layer)]
            self.setCurrentIndex(usable[-1] if usable else -1)
        self.blockSignals(False)
        if self.layer() is not current:
            self.currentIndexChanged.emit(self.currentIndex())

    def layer(self):
        """The chosen layer, or None when there is none."""
        index = self.currentIndex()
        if 0 <= index < len(self._layers):
            return self._layers[index]
        return None

    def set_layer(self, layer) -> None:
        self._refresh()
        if layer in self._layers:
            self._user_choice = weakref.ref(layer)
            self.setCurrentIndex(self._layers.index(layer))


class LayerChecklist(QListWidget, _LayerTracking):
    """A list of the viewer's layers of one type with check boxes (multiple choice).

    ``checked_changed`` is emitted when the user ticks or unticks a layer or ``set_checked`` is called.
    """

    checked_changed = Signal()

    def __init__(self, viewer: napari.viewer.Viewer, layer_type: type, parent=None):
        super().__init__(parent)
        self._layer_type = layer_type
        self._layers: list = []
        self._checked: set[int] = set()
        self.setMaximumHeight(90)
        self.itemChanged.connect(self._remember_checks)
        self._track_layers(viewer)
        self._on_layers_changed()

    def _remember_checks(self, item: QListWidgetItem) -> None:
        row = self.row(item)
        if 0 <= row < len(self._layers):
            key = id(self._layers[row])
            if item.checkState() == Qt.Checked:
                self._checked.add(key)
            else:
                self._checked.discard(key)
            self.checked_changed.emit()

    def _refresh(self) -> None:
        layers = [lay for lay in self._viewer.layers if isinstance(lay, self._layer_type)]
        alive = {id(lay) for lay in layers}
        self._checked &= alive
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if id(layer) in self._checked else Qt.Unchecked)
            self.addItem(item)
        self.blockSignals(False)

    def checked_layers(self) -> list:
        return [lay for lay in self._layers if id(lay) in self._checked]

    def set_checked(self, layers: Iterable) -> None:
        self._checked = {id(lay) for lay in layers}
        self._refresh()
        self.checked_changed.emit()


class ActivityProgressBar(QProgressBar):
    """A dock's progress bar that napari's activity panel shows too while a worker runs.

    ``follow(worker)`` opens a ``napari.utils.progress`` named ``description`` with the bar's range
    and value; every later ``setRange`` and ``setValue`` goes to both, and the napari progress is
    closed when the worker finishes (also after an error or a cancel). A range of ``(0, 0)`` (busy)
    is an indeterminate progress there too.
    """

    def __init__(self, description: str, parent=None):
        super().__init__(parent)
        self.description = description
        self.activity = None  # the open napari progress, if any

    def follow(self, worker) -> None:
        """Show this bar in napari's activity panel until ``worker`` finishes."""
        from napari.utils import progress

        self.close_activity()
        activity = progress(total=self.maximum() - self.minimum(), desc=self.description)
        self.activity = activity
        self._mirror_value()

        def finished(*_):  # a plain function: Qt keeps calling it even after the dock was closed
            activity.close()
            if self.activity is activity:
                self.activity = None

        worker.finished.connect(finished)

    def close_activity(self, *_) -> None:
        """Close the napari progress (idempotent)."""
        activity, self.activity = self.activity, None
        if activity is not None:
            activity.close()

    def setRange(self, minimum: int, maximum: int) -> None:
        super().setRange(minimum, maximum)
        if self.activity is not None:
            self.activity.total = maximum - minimum
            self._mirror_value()

    def setValue(self, value: int) -> None:
        super().setValue(value)
        self._mirror_value()

    def _mirror_value(self) -> None:
        if self.activity is None:
            return
        done = max(self.value() - self.minimum(), 0)
        if done != self.activity.n:
            self.activity.update(done - self.activity.n)


class PathPicker(QWidget):
    """A line edit with a "..." button opening a folder or file dialog."""

    def __init__(self, mode: str = "dir", caption: str = "Choose", file_filter: str = "", parent=None):
        super().__init__(parent)
        if mode not in ("dir", "open", "save"):
            raise ValueError(f"mode must be 'dir', 'open' or 'save', not {mode!r}")
        self._mode, self._caption, self._filter = mode, caption, file_filter
        self._confirmed: Path | None = None  # a save dialog asked the user before replacing this file
        self.edit = QLineEdit()
        button = QPushButton("…")
        button.setMaximumWidth(30)
        button.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(button)

    def _browse(self) -> None:
        start = self.edit.text() or os.getcwd()
        if self._mode == "dir":
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        elif self._mode == "open":
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, self._caption, start, self._filter)
        if chosen:
            self.edit.setText(chosen)
            if self._mode == "save":
                self._confirmed = Path(chosen).expanduser()

    def confirmed(self, path: Path) -> bool:
        """Whether the user chose ``path`` in the save dialog, which asks before replacing a file."""
        return self._confirmed is not None and self._confirmed == path

    def path(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def set_path(self, path) -> None:
        self.edit.setText(str(path))


#: Organisation and application names of the docks' remembered settings (``QSettings``, an INI file in the
#: user's configuration folder, e.g. ``~/.config/napari-synthseg/docks.ini`` on Linux).
SETTINGS_ORGANISATION = "napari-synthseg"
SETTINGS_APPLICATION = "docks"


def dock_settings() -> QSettings:
    """The store of the docks' remembered settings (INI format everywhere, so tests can move it with
    ``QSettings.setPath``)."""
    return QSettings(QSettings.IniFormat, QSettings.UserScope, SETTINGS_ORGANISATION, SETTINGS_APPLICATION)


def keep_dock_settings_in(folder) -> None:
    """Keep the docks' remembered settings in ``folder`` for the rest of this process (tests, scripted
    runs): the docks then start from their defaults and never read or change the user's settings."""
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, str(folder))


def _widget_value(widget):
    if isinstance(widget, PathPicker):
        return widget.edit.text()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.value()
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QLineEdit):
        return widget.text()
    raise TypeError(f"cannot remember the setting of a {type(widget).__name__}")


def _set_widget_value(widget, value) -> None:
    """Show a value read back from the settings (INI files give strings) in ``widget``."""
    text = str(value)
    if isinstance(widget, PathPicker):
        widget.edit.setText(text)
    elif isinstance(widget, QCheckBox):
        widget.setChecked(value is True or text.lower() == "true")
    elif isinstance(widget, QSpinBox):
        widget.setValue(int(round(float(text))))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(text))
    elif isinstance(widget, QComboBox):
        if widget.findText(text) >= 0:  # an entry a later version dropped is left at the default
            widget.setCurrentText(text)
    elif isinstance(widget, QLineEdit):
        widget.setText(text)


def _change_signal(widget):
    if isinstance(widget, PathPicker):
        return widget.edit.textChanged
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
        return widget.valueChanged
    if isinstance(widget, QComboBox):
        return widget.currentTextChanged
    return widget.textChanged


class RememberedSettings:
    """A dock's settings kept between sessions: each widget starts with its saved value, and saves each change.

    Parameters
    ----------
    group
        The dock's section in the settings file (e.g. ``"train"``).
    widgets
        Key -> widget (spin box, combo box, check box, line edit or `PathPicker`), bound in this order
        (a combo box that changes the range of a spin box comes first).
    owner
        The dock: its context menu (right click) gets *Restore default settings*.
    """

    def __init__(self, group: str, widgets: dict, owner: QWidget | None = None):
        self.group = group
        self.defaults = {key: (widget, _widget_value(widget)) for key, widget in widgets.items()}
        settings = dock_settings()
        for key, widget in widgets.items():
            saved = settings.value(f"{group}/{key}")
            if saved is not None:
                try:
                    _set_widget_value(widget, saved)
                except (TypeError, ValueError):  # a hand-edited or foreign value: keep the default
                    pass
            _change_signal(widget).connect(lambda *_, key=key, widget=widget: self.save(key, widget))
        if owner is not None:
            action = QAction("Restore default settings", owner)
            action.triggered.connect(lambda *_: self.restore_defaults())
            owner.addAction(action)
            owner.setContextMenuPolicy(Qt.ActionsContextMenu)

    def save(self, key: str, widget) -> None:
        """Keep ``widget``'s value under ``key``."""
        dock_settings().setValue(f"{self.group}/{key}", _widget_value(widget))

    def restore_defaults(self) -> None:
        """Show every bound widget's default again and forget the saved values."""
        for widget, default in self.defaults.values():
            _set_widget_value(widget, default)
        settings = dock_settings()
        settings.remove(self.group)
        settings.sync()


def spatial_shape(layer) -> tuple[int, ...]:
    """Shape of a layer's data without the RGB(A) channel axis."""
    shape = tuple(int(s) for s in layer.data.shape)
    return shape[:-1] if getattr(layer, "rgb", False) else shape


def current_plane(viewer: napari.viewer.Viewer, layer) -> tuple[int, ...]:
    """Indices of the plane of ``layer`` the viewer shows now (``()`` for 2D layers).

    Assumes the last two data axes are the displayed (Y, X) ones.
    """
    shape = spatial_shape(layer)
    if len(shape) <= 2:
        return ()
    coords = layer.world_to_data(viewer.dims.point)
    lead = np.round(np.asarray(coords[: len(shape) - 2], dtype=float)).astype(int)
    return tuple(int(np.clip(i, 0, n - 1)) for i, n in zip(lead, shape[:-2]))


def plane_gray(layer, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of an Image layer as a 2D gray numpy array (RGB collapsed)."""
    from napari_synthseg.image_io import to_gray

    data = np.asarray(layer.data[plane]) if plane else np.asarray(layer.data)
    return to_gray(data, rgb=bool(getattr(layer, "rgb", False)))


def plane_labels(layer, plane: tuple[int, ...]) -> np.ndarray:
    """One plane of a Labels layer as a 2D numpy array."""
    return np.asarray(layer.data[plane]) if plane else np.asarray(layer.data)


def planes_of(layer, scope: str, viewer) -> list[tuple[int, ...]]:
    """The planes an action covers: every plane (``"all"``) or only the current one."""
    from napari_synthseg.image_io import iter_planes

    if scope == "current":
        return [current_plane(viewer, layer)]
    return iter_planes(spatial_shape(layer))


def source_name(layer) -> str:
    """The file a layer came from, or its name when it was not read from a file."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return str(path) if path else str(layer.name)


def spatial_transform(layer) -> dict:
    """``scale``, ``translate`` (and ``units``, napari >= 0.6) of a layer, for a Labels layer made from it."""
    transform = {"scale": tuple(layer.scale), "translate": tuple(layer.translate)}
    units = getattr(layer, "units", None)
    if units is not None:
        transform["units"] = tuple(str(unit) for unit in units)
    return transform


def find_layer(viewer, name: str, layer_type: type | None = None):
    for layer in viewer.layers:
        if layer.name == name and (layer_type is None or isinstance(layer, layer_type)):
            return layer
    return None


def show_labels(viewer, name: str, data: np.ndarray, like, keep_active=None):
    """Put ``data`` into the Labels layer ``name`` (created or replaced), placed like ``like``.

    The active layer is restored afterwards (adding a layer selects it).
    """
    from napari.layers import Labels

    active = keep_active if keep_active is not None else viewer.layers.selection.active
    layer = find_layer(viewer, name, Labels)
    if layer is not None and tuple(layer.data.shape) == tuple(data.shape):
        layer.data = data
        layer.scale, layer.translate = like.scale, like.translate
        if getattr(like, "units", None) is not None:
            layer.units = like.units
    else:
        if layer is not None:
            viewer.layers.remove(layer)
        layer = viewer.add_labels(data, name=name, **spatial_transform(like))
    if active is not None and active in viewer.layers:
        viewer.layers.selection.active = active
    return layer


def gray_backgrounds(layers, viewer) -> list[np.ndarray]:
    """The current plane of each chosen Image layer, as 2D gray arrays."""
    return [plane_gray(layer, current_plane(viewer, layer)) for layer in layers]


def merge_plane_results(viewer, name: str, like, shape: tuple[int, ...], results) -> tuple[object, int]:
    """Write per-plane label results into Labels layer ``name`` (placed like layer ``like``).

    ``results`` is a list of ``(plane, labels2d)``. When only some planes are redone,
    the other planes of an existing layer of that shape stay; ids stay unique across the
    stack (each plane continues after the largest id so far). Returns ``(layer, n_objects)``.
    """
    n_planes = max(1, int(np.prod(shape[:-2])))
    partial = len(results) < n_planes
    existing = find_layer(viewer, name)
    if partial and existing is not None and tuple(existing.data.shape) == tuple(shape):
        data = np.asarray(existing.data).astype(np.uint32, copy=True)
    else:
        data = np.zeros(shape, dtype=np.uint32)
    offset = int(data.max()) if partial else 0
    n_objects = 0
    for plane, labels in results:
        labels = np.asarray(labels)
        region = data[plane]
        region[...] = np.where(labels > 0, labels.astype(np.uint32) + np.uint32(offset), 0)
        offset = max(offset, int(region.max()))
        n_objects += int(np.count_nonzero(np.bincount(labels.ravel().astype(np.int64))[1:]))
    return show_labels(viewer, name, data, like), n_objects


def status_label() -> QLabel:
    """An empty, word-wrapping label for a dock's status line."""
    label = QLabel("")
    label.setWordWrap(True)
    return label


def row(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side."""
    layout = QHBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def stack(parent: QWidget, *items) -> QVBoxLayout:
    """Lay out widgets, layouts and captions (strings) top to bottom in ``parent``."""
    layout = QVBoxLayout(parent)
    for item in items:
        if isinstance(item, str):
            layout.addWidget(QLabel(item))
        elif isinstance(item, QLayout):
            layout.addLayout(item)
        else:
            layout.addWidget(item)
    layout.addStretch(1)
    return layout


#: The plugin's dock widgets in the order they were made (weak references): a new one joins the tabs
#: of the oldest one docked beside it (see ``tabify_stage``).
_STAGE_WIDGETS: list = []


def _dock_of(widget: QWidget):
    """The QDockWidget holding ``widget`` (its nearest one), or None."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def tabify_stage(widget: QWidget) -> None:
    """Dock ``widget`` as a tab beside the plugin's other docks once napari has docked it.

    napari stacks plugin docks one under another (the menu adds them without ``tabify``): the
    five stages then make a column far taller than a 1080p screen. Called from each stage's
    constructor; the tabs are made on the next turn of the event loop, when napari has put
    the widget into its dock. A dock the user floated or moved to another side is left alone.
    """
    _STAGE_WIDGETS[:] = [ref for ref in _STAGE_WIDGETS if ref() is not None]
    ref = weakref.ref(widget)
    _STAGE_WIDGETS.append(ref)
    QTimer.singleShot(0, lambda: _join_stage_tabs(ref()))


def _join_stage_tabs(widget) -> None:
    try:
        dock = _dock_of(widget) if widget is not None else None
        window = dock.parentWidget() if dock is not None else None
        if not isinstance(window, QMainWindow) or dock.isFloating():
            return
        area = window.dockWidgetArea(dock)
        for ref in list(_STAGE_WIDGETS):  # the oldest stage docked on this side anchors the tabs
            other = ref()
            other_dock = _dock_of(other) if other is not None else None
            if (other_dock is None or other_dock.parentWidget() is not window or other_dock.isFloating()
                    or window.dockWidgetArea(other_dock) != area):
                continue
            if other_dock is not dock:
                window.tabifyDockWidget(other_dock, dock)
                dock.show()
                dock.raise_()  # the stage just opened is the tab shown
            return
    except RuntimeError:  # the widget or its dock was deleted meanwhile
        return


#: Suffix of the Image layer the Segment dock makes from an image (the model's foreground probability).
PROBABILITY_SUFFIX = " foreground probability"


def is_probability_layer(layer) -> bool:
    """Whether an Image layer is a model's probability map (never an image to segment or curate by default)."""
    return layer.name.endswith(PROBABILITY_SUFFIX)
