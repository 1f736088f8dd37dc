"""The docks' settings remembered between sessions (``QSettings``)."""

from __future__ import annotations

from qtpy.QtCore import QSettings, Qt
from qtpy.QtWidgets import QAction, QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QWidget

from ._form import PathPicker

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
